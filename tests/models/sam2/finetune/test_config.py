"""The TOML -> hydra translation: the official MOSE fine-tune recipe is kept except for what the TOML names."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from data.errors import MassegError
from models.sam2.finetune.hydra_config import build_hydra_config, mose_finetune_yaml, train_transforms
from models.sam2.finetune.settings import load_config, parse_config

REPO = Path(__file__).resolve().parents[4]


def doc(tmp_path, **train):
    root = tmp_path / "root"
    for sub in ("JPEGImages/v", "Annotations/v"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return {"model": {"checkpoint": "x.pt"}, "data": {"train": [{"root": str(root)}]},
            "train": {"out": str(tmp_path / "run"), **train}}


def test_b_plus_defaults_give_back_the_official_mose_recipe(tmp_path):
    d = doc(tmp_path)
    d["augment"] = {"preset": "official"}
    cfg = parse_config(d)
    ours = build_hydra_config(cfg, "/ckpt.pt", tmp_path / "run", "cuda")
    official = mose_finetune_yaml()
    a = OmegaConf.to_container(ours.trainer.model, resolve=False)
    b = OmegaConf.to_container(official.trainer.model, resolve=False)
    assert a.pop("compile_image_encoder") is False      # the inference config's default, absent from the recipe
    assert a == b
    assert ours.scratch == official.scratch.copy()        # 1024 px, 8 frames, 3 objects, lrs, 40 epochs, 10 workers
    for key in ("optim", "loss", "distributed"):
        assert ours.trainer[key] == official.trainer[key], key
    assert ours.trainer.optim.amp.enabled and ours.trainer.optim.amp.amp_dtype == "bfloat16"
    assert ours.vos.train_transforms == official.vos.train_transforms
    ds = ours.trainer.data.train.datasets[0].dataset.datasets[0]
    assert ds.video_dataset._target_ == "models.sam2.finetune.data.MoseRootRawDataset"
    assert ds.multiplier == 1.0 and ds.sampler == official.trainer.data.train.datasets[0].dataset.datasets[0].sampler


def test_toml_values_reach_the_hydra_config(tmp_path):
    from models.sam2.finetune.launch import _register_resolvers
    _register_resolvers()     # the official ${times:...} / ${divide:...} resolvers
    d = doc(tmp_path, epochs=5, lr=1e-5, encoder_lr=2e-6, num_frames=4, max_objects=2, seed=9, grad_clip=0.5,
            weight_decay=0.05, layer_decay=0.8, amp=True)
    d["model"].update(variant="sam2.1_hiera_s", image_size=512, mem_scale=15.0, mem_bias=-7.0)
    d["loss"] = {"mask": 10, "dice": 2}
    cfg = parse_config(d)
    h = build_hydra_config(cfg, "/ckpt.pt", tmp_path / "run", "cpu")
    r = OmegaConf.to_container(h, resolve=True)
    t = r["trainer"]
    assert r["scratch"]["resolution"] == 512 and t["model"]["image_size"] == 512
    assert t["max_epochs"] == 5 and t["seed_value"] == 9 and t["accelerator"] == "cpu"
    assert t["model"]["image_encoder"]["trunk"]["stages"] == [1, 2, 11, 2]      # the small trunk
    assert t["model"]["sigmoid_scale_for_mem_enc"] == 15.0 and t["model"]["sigmoid_bias_for_mem_enc"] == -7.0
    assert t["optim"]["options"]["lr"][0]["scheduler"]["start_value"] == 1e-5
    assert t["optim"]["options"]["lr"][1]["scheduler"]["start_value"] == 2e-6
    assert t["optim"]["options"]["lr"][1]["param_names"] == ["image_encoder.*"]
    assert t["optim"]["amp"]["enabled"] is False                            # never on CPU
    assert t["distributed"]["backend"] == "gloo" and t["data"]["train"]["pin_memory"] is False
    assert t["loss"]["all"]["weight_dict"] == {"loss_mask": 10.0, "loss_dice": 2.0, "loss_iou": 1.0,
                                               "loss_class": 1.0}
    assert t["optim"]["gradient_clip"]["max_norm"] == 0.5
    assert t["optim"]["param_group_modifiers"][0]["layer_decay_value"] == 0.8
    assert t["optim"]["options"]["weight_decay"][0]["scheduler"]["value"] == 0.05
    sampler = t["data"]["train"]["datasets"][0]["dataset"]["datasets"][0]["sampler"]
    assert sampler["num_frames"] == 4 and sampler["max_num_objects"] == 2
    assert t["checkpoint"]["model_weight_initializer"]["state_dict"]["checkpoint_path"] == "/ckpt.pt"


def test_default_augmentation_is_masseg(tmp_path):
    """As `masseg data preview` reads a config without [augment]: the MASSeg augmentation with its DEFAULTS."""
    from models.sam2.finetune import augment
    cfg = parse_config(doc(tmp_path))
    assert cfg.augment["preset"] == "masseg"
    assert train_transforms(cfg) == augment.train_transforms_config({}, 1024)


def test_shipped_configs_parse():
    for name in ("train_mose_b+.toml", "train_tiny_cpu.toml"):
        cfg = load_config(REPO / "configs" / name)
        assert cfg.sources and cfg.train["out"]
    b = load_config(REPO / "configs" / "train_mose_b+.toml")
    assert b.model["variant"] == "sam2.1_hiera_b+" and b.augment["preset"] == "masseg"
    assert (b.train["epochs"], b.train["num_frames"], b.train["max_objects"], b.model["image_size"]) == (40, 8, 3, 1024)


def test_augment_switch(tmp_path, train_root):
    """preset "masseg" takes the data side's transforms list; its settings are checked with the config; the
    trainer's dataset instantiates it and yields augmented samples of the configured size."""
    from hydra.utils import instantiate

    from models.sam2.finetune import augment
    from models.sam2.finetune.hydra_config import official_transforms

    d = doc(tmp_path)
    d["data"]["train"][0]["root"] = str(train_root)
    d["data"]["train"][0]["list"] = "train.txt"
    d["model"]["image_size"] = 256
    d["train"].update(num_frames=3, max_objects=2)
    d["augment"] = {"preset": "masseg", "settings": {"frame_gray_p": 0.2}}
    cfg = parse_config(d)
    items = train_transforms(cfg)
    assert items == augment.train_transforms_config({"frame_gray_p": 0.2}, 256)
    names = [t["_target_"].rsplit(".", 1)[1] for t in items[0]["transforms"]]
    assert names[-3:] == ["RandomGrayscale", "ToTensorAPI", "NormalizeAPI"]
    h = build_hydra_config(cfg, "/ckpt.pt", tmp_path / "run", "cpu")
    dataset = instantiate(h.trainer.data.train.datasets[0])
    dataset.set_epoch(0)      # as the official TorchTrainMixedDataset does before loading
    sample = dataset[0]
    assert len(sample.frames) == 3 and tuple(sample.frames[0].data.shape) == (3, 256, 256)
    # the official preset is the YAML's list; the helper's OFFICIAL settings give the same transforms in order
    official = OmegaConf.to_container(OmegaConf.create({"scratch": {"resolution": 256}, "t": official_transforms()}),
                                      resolve=True)["t"]
    helper = augment.train_transforms_config(augment.OFFICIAL, 256)
    assert [t["_target_"] for t in helper[0]["transforms"]] == [t["_target_"] for t in official[0]["transforms"]]
    assert official[0]["transforms"][2]["sizes"] == 256
    d["augment"]["settings"] = {"frame_grey_p": 0.2}
    with pytest.raises(MassegError, match=r"\[augment.settings\]: .*frame_grey_p"):
        train_transforms(parse_config(d))
