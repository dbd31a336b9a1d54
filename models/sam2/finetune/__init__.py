"""Fine-tuning SAM2 the MASSeg way on the official trainer (`masseg train`).

``settings`` (the TOML), ``hydra_config`` (TOML -> the official MOSE fine-tune hydra config), ``data`` (MOSE-layout
roots, data manifest), ``trainer`` (the official Trainer + exact resume, per-step losses, J&F validation),
``launch`` (official train.py main / torchrun), ``cpu`` (the one CPU adaptation), ``augment`` (MASSeg augmentation,
from the data side). Nothing here imports the package's modules eagerly: ``training`` is heavy.
"""
