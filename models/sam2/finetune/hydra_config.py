"""Translate a `masseg train` config into the official trainer's hydra config.

The starting point is the packaged ``sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml``, loaded as is; only the
values our TOML names are changed, so every other setting (loss, optimizer schedules, layer decay, the SAM2Train
prompt simulation, checkpointing) stays the official recipe. The model section is the packaged inference config of
the chosen variant (``configs/sam2.1/sam2.1_hiera_<size>.yaml``) with the MOSE recipe's training-only keys laid over
it: for b+ this gives back the MOSE yaml's model exactly (checked by the tests).
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .settings import TrainConfig

MOSE_FINETUNE = "configs/sam2.1_training/sam2.1_hiera_b+_MOSE_finetune.yaml"
TRAINER_TARGET = "models.sam2.finetune.trainer.MassegTrainer"
RAW_DATASET_TARGET = "models.sam2.finetune.data.MoseRootRawDataset"
VALIDATOR_TARGET = "pipeline.train_validation.validate"


def package_config(name: str) -> Path:
    import sam2

    return Path(sam2.__path__[0]) / name


def mose_finetune_yaml() -> DictConfig:
    """The official MOSE fine-tune config, unresolved (its ${scratch...} interpolations kept)."""
    return OmegaConf.load(package_config(MOSE_FINETUNE))


def model_config(variant_yaml: str, recipe: DictConfig) -> DictConfig:
    """The variant's packaged model config turned into the recipe's training model (SAM2Train)."""
    model = OmegaConf.load(package_config(variant_yaml)).model
    inference_keys = set(model.keys())
    raw = OmegaConf.to_container(recipe, resolve=False)   # keep ${scratch.resolution} as an interpolation
    for key, value in raw.items():
        if key not in inference_keys:       # training-only keys (prompt simulation, ...) come from the recipe
            model[key] = value
    model._target_ = raw["_target_"]
    model.image_size = raw["image_size"]    # ${scratch.resolution}
    model.image_encoder.trunk.drop_path_rate = recipe.image_encoder.trunk.drop_path_rate
    return model


def official_transforms() -> list:
    """The MOSE fine-tune YAML's own train transforms (ComposeAPI ... NormalizeAPI)."""
    cfg = mose_finetune_yaml()
    return OmegaConf.to_container(cfg.vos.train_transforms, resolve=False)


def train_transforms(cfg: TrainConfig) -> list:
    """The single switch point between the official transforms and the MASSeg augmentation.

    ``augment.preset = "official"``: the MOSE fine-tune YAML's list, unchanged. ``"masseg"``:
    ``models.sam2.finetune.augment.train_transforms_config(settings, image_size)`` (owned by the data side): the
    official transforms classes with MASSeg's settings and additions, wrapped in ComposeAPI as the YAML wraps its
    own list; ``[augment.settings]`` overrides its ``DEFAULTS`` (unknown or out-of-range settings are errors)."""
    if cfg.augment["preset"] == "official":
        return official_transforms()
    from data.errors import MassegError
    try:
        from . import augment
    except ImportError:
        raise MassegError("augment.preset = \"masseg\" needs models/sam2/finetune/augment.py, which this install "
                          "lacks", cfg.path, "use augment.preset = \"official\" or update the pipeline") from None
    try:
        return augment.train_transforms_config(dict(cfg.augment["settings"]), int(cfg.model["image_size"]))
    except MassegError as exc:
        raise MassegError(f"[augment.settings]: {exc}", cfg.path, "see DEFAULTS in models/sam2/finetune/augment.py "
                                                                  "for the settings and their ranges") from None


def _variant_yaml(variant: str) -> str:
    from models.sam2.build import resolve_config

    ref = resolve_config(variant)
    if ref.name is None:
        from data.errors import MassegError
        raise MassegError(f"model.variant {variant!r} must be a packaged SAM2 variant for training",
                          fix="use sam2.1_hiera_t/s/b+/l or sam2_hiera_t/s/b+/l")
    return ref.name


def build_hydra_config(cfg: TrainConfig, checkpoint: str | Path, run_dir: str | Path, device: str) -> DictConfig:
    """The full hydra config (``trainer``, ``launcher``, ``submitit``, ``scratch``, ``vos``) for one run.

    ``device``: "cpu" or "cuda" (already resolved). AMP (bf16, as the official config) is on CUDA only."""
    base = mose_finetune_yaml()
    m, t = cfg.model, cfg.train
    cuda = device == "cuda"
    sc = base.scratch
    sc.resolution = int(m["image_size"])
    sc.train_batch_size = int(t["batch_size"])
    sc.num_train_workers = int(t["workers"])
    sc.num_frames = int(t["num_frames"])
    sc.max_num_objects = int(t["max_objects"])
    sc.base_lr = float(t["lr"])
    sc.vision_lr = float(t["encoder_lr"])
    sc.num_epochs = int(t["epochs"])
    base.vos.train_transforms = train_transforms(cfg)
    del base["dataset"]   # the MOSE paths; our sources go straight into trainer.data below

    tr = base.trainer
    recipe_model = tr.model
    tr._target_ = TRAINER_TARGET
    tr.mode = "train"                 # "train" runs our validation (run_val) between and after epochs
    tr.accelerator = "cuda" if cuda else "cpu"
    tr.seed_value = int(t["seed"])
    tr.val_epoch_freq = int(t["val_every"]) if t["val_every"] else 10 ** 9
    tr.model = model_config(_variant_yaml(m["variant"]), recipe_model)
    tr.model.sigmoid_scale_for_mem_enc = float(m["mem_scale"])
    tr.model.sigmoid_bias_for_mem_enc = float(m["mem_bias"])

    concat = tr.data.train.datasets[0].dataset
    template = OmegaConf.to_container(concat.datasets[0], resolve=False)
    datasets = []
    for src in cfg.sources:
        d = dict(template)
        d["video_dataset"] = {"_target_": RAW_DATASET_TARGET, "root": str(src.root),
                              "list_file": str(src.list) if src.list else None}
        d["multiplier"] = src.multiplier
        datasets.append(d)
    concat.datasets = datasets
    tr.data.train.pin_memory = cuda

    opt = tr.optim
    opt.amp.enabled = bool(t["amp"]) and cuda
    opt.gradient_clip.max_norm = float(t["grad_clip"])
    opt.param_group_modifiers[0].layer_decay_value = float(t["layer_decay"])
    opt.options.weight_decay[0].scheduler.value = float(t["weight_decay"])
    w = tr.loss.all.weight_dict
    w.loss_mask, w.loss_dice, w.loss_iou, w.loss_class = (float(cfg.loss[k]) for k in ("mask", "dice", "iou", "class"))
    tr.distributed.backend = "nccl" if cuda else "gloo"
    tr.logging.log_freq = int(t["log_every"])
    tr.logging.log_scalar_frequency = int(t["log_every"])
    tr.checkpoint.model_weight_initializer.state_dict.checkpoint_path = str(checkpoint)

    validation = None
    if cfg.val_root is not None:
        validation = {"_target_": VALIDATOR_TARGET, "_partial_": True, "root": str(cfg.val_root),
                      "split": cfg.val_split or None, "config": m["variant"], "image_size": int(cfg.val_image_size),
                      "mem_scale": float(m["mem_scale"]), "mem_bias": float(m["mem_bias"]), "device": device}
    tr.masseg = {"run_dir": str(run_dir), "validation": validation, "threads": int(t["threads"])}

    base.launcher.num_nodes = int(t["nodes"])
    base.launcher.gpus_per_node = int(t["gpus"])
    base.launcher.experiment_log_dir = str(run_dir)
    s = cfg.slurm
    base.submitit.use_cluster = bool(s["use_cluster"])
    base.submitit.partition = s["partition"] or None
    base.submitit.account = s["account"] or None
    base.submitit.qos = s["qos"] or None
    base.submitit.timeout_hour = int(s["timeout_hour"])
    base.submitit.cpus_per_task = int(s["cpus_per_task"])
    if s["mem_gb"]:
        base.submitit.mem_gb = int(s["mem_gb"])
    base.submitit.name = f"masseg-train-{Path(run_dir).name}"
    return base
