"""Run the official ``training/train.py`` (its ``main``, unmodified) on a YAML outside the sam2 package.

    python official_train.py CONFIG_DIR CONFIG_NAME

The official script composes ``-c NAME`` from the sam2 package's config module; here hydra is pointed at
CONFIG_DIR instead, which is all its ``__main__`` block does besides parsing arguments. On a machine without CUDA
the one CPU adaptation (``models.sam2.finetune.cpu``: the per-step memory meter) is applied first, exactly as
`masseg train` applies it; nothing else of ours is imported.
"""
import argparse
import sys

from hydra import initialize_config_dir

from models.sam2.finetune import cpu
from training.train import main
from training.utils.train_utils import register_omegaconf_resolvers

if __name__ == "__main__":
    config_dir, name = sys.argv[1], sys.argv[2]
    cpu.apply()
    register_omegaconf_resolvers()
    with initialize_config_dir(config_dir=config_dir, version_base="1.2"):
        main(argparse.Namespace(config=name, use_cluster=None, partition=None, account=None, qos=None,
                                num_gpus=None, num_nodes=None))
