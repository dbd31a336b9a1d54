"""MASSeg augmentation (models/sam2/finetune/augment.py) through the official training transforms."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from models.sam2.finetune import augment as aug_mod
from models.sam2.finetune.augment import (DEFAULTS, OFFICIAL, AugmentError, augment_sample, build_transforms,
                                          transforms_config, train_transforms_config)

S = 32  # image size
OFF = {"hflip_p": 0.0, "affine_p": 0.0, "global_gray_p": 0.0, "frame_gray_p": 0.0}


def sample(n=3, left=True):
    """n identical frames: blue-ish noise with a red square (the object) in the left half."""
    rng = np.random.default_rng(0)
    img = np.zeros((48, 48, 3), np.uint8)
    img[..., 2] = rng.integers(150, 256, (48, 48))
    img[..., 1] = rng.integers(0, 60, (48, 48))
    lab = np.zeros((48, 48), np.uint8)
    x0 = 6 if left else 26
    lab[14:34, x0:x0 + 16] = 1
    img[lab == 1] = (255, 20, 20)
    return [img.copy() for _ in range(n)], [lab.copy() for _ in range(n)]


def iou(a, b):
    return (a & b).sum() / max(1, (a | b).sum())


def is_gray(img):
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def test_order_and_values_follow_the_official_yaml():
    import sam2
    path = Path(sam2.__file__).parent / "configs" / "sam2.1_training" / "sam2.1_hiera_b+_MOSE_finetune.yaml"
    official = yaml.safe_load(path.read_text())["vos"]["train_transforms"][0]["transforms"]
    ours = transforms_config({"scale": []}, 1024)
    # ours = the official list plus MASSeg's per-frame grayscale after the per-frame jitter
    assert [t["_target_"] for t in ours if not (t["_target_"].endswith("RandomGrayscale")
                                                and not t["consistent_transform"])] == \
        [t["_target_"] for t in official]
    for o, t in zip(official, [t for t in ours if t is not ours[-3]]):
        for k, v in o.items():
            if k == "sizes":
                assert t[k] == 1024
            elif k in ("p",) or k.startswith("_"):
                continue
            else:
                assert t[k] == v, (t["_target_"], k)
    assert ours[0]["p"] == DEFAULTS["hflip_p"] == 0.5
    assert [t["p"] for t in ours if t["_target_"].endswith("RandomGrayscale")] == [0.05, 0.05]
    assert transforms_config(None, 512)[1]["scale"] == [0.8, 1.2]  # multi-scale by default
    wrapped = train_transforms_config(None, 512)
    assert wrapped[0]["_target_"].endswith("ComposeAPI") and wrapped[0]["transforms"] == transforms_config(None, 512)
    assert transforms_config({"affine_p": 0.5}, 512)[1]["_target_"] == f"{aug_mod.__name__}.RandomAffineP"
    assert not any("Affine" in t["_target_"] for t in transforms_config({"affine_p": 0}, 512))
    # OFFICIAL: the official list entry for entry (the trainer then draws the same random numbers)
    resolved = [{**t, "sizes": 1024} if "sizes" in t else dict(t) for t in official]
    resolved[0].setdefault("p", 0.5)  # the YAML leaves RandomHorizontalFlip's p at its default, 0.5
    assert transforms_config(OFFICIAL, 1024) == resolved


def test_instantiated_like_the_trainer_gives_normalised_tensors():
    frames, labels = sample()
    dp = build_transforms(None, S)(aug_mod.make_datapoint(frames, labels))
    assert [tuple(f.data.shape) for f in dp.frames] == [(3, S, S)] * 3
    assert float(dp.frames[0].data.min()) < -1.0  # normalised, not [0, 1]


@pytest.mark.parametrize("bad", [{"hflip": 0.5}, {"hflip_p": 1.5}, {"degrees": -1}, {"scale": [1.2, 0.8]},
                                 {"frame_brightness": [0.1, 0.2]}])
def test_bad_settings_are_errors(bad):
    with pytest.raises(AugmentError):
        transforms_config(bad, 512)


def test_geometry_shared_by_all_frames_and_masks_aligned():
    frames, labels = sample()
    tf = build_transforms({"global_gray_p": 0.0, "frame_gray_p": 0.0, "hflip_p": 0.5}, S, tensors=False)
    plain = augment_sample(frames, labels, OFF, S, seed=0)[1][0]
    moved = 0
    for seed in range(20):
        imgs, labs = augment_sample(frames, labels, None, S, seed=seed, transforms=tf)
        for lab in labs[1:]:
            assert np.array_equal(lab, labs[0])  # identical frames in, identical geometry out
        for img, lab in zip(imgs, labs):
            red = img[..., 0].astype(int) - img[..., 2] > 80  # the object is red, background and fill are not
            assert iou(red, lab == 1) > 0.8  # the mask moved with the image
        moved += not np.array_equal(labs[0], plain)
    assert moved >= 15


def test_per_frame_jitter_differs_across_frames_global_does_not():
    frames, labels = sample()
    per_frame = build_transforms({**OFF}, S, tensors=False)
    global_only = build_transforms({**OFF, "frame_brightness": 0.0, "frame_contrast": 0.0,
                                    "frame_saturation": 0.0}, S, tensors=False)
    differ = 0
    for seed in range(10):
        imgs, labs = augment_sample(frames, labels, None, S, seed=seed, transforms=per_frame)
        differ += any(not np.array_equal(imgs[0], im) for im in imgs[1:])
        assert all(np.array_equal(labs[0], lb) for lb in labs[1:])
        imgs, _ = augment_sample(frames, labels, None, S, seed=seed, transforms=global_only)
        assert all(np.array_equal(imgs[0], im) for im in imgs[1:])
    assert differ == 10
    assert not np.array_equal(augment_sample(frames, labels, None, S, seed=1, transforms=global_only)[0][0],
                              augment_sample(frames, labels, None, S, seed=2, transforms=global_only)[0][0])


def _share(hits, n, p):
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(hits / n - p) < 4.5 * sigma + 1e-9, (hits, n, p)


def test_configured_probabilities_hold_over_many_samples():
    frames, labels = sample()
    n = 240
    settings = {**OFF, "hflip_p": 0.3, "affine_p": 0.5, "scale": [0.5, 0.6], "frame_gray_p": 0.25}
    tf = build_transforms(settings, S, tensors=False)
    plain = augment_sample(frames, labels, OFF, S, seed=0)[1][0]
    flips = affines = gray_frames = mixed = 0
    for seed in range(n):
        imgs, labs = augment_sample(frames, labels, None, S, seed=seed, transforms=tf)
        ys, xs = np.nonzero(labs[0])
        flips += xs.mean() > S / 2  # the object starts in the left half
        zoomed = labs[0].sum() < 0.5 * plain.sum()  # scale 0.5-0.6: the area falls to 25-36 %
        affines += zoomed
        g = [is_gray(im) for im in imgs]
        gray_frames += sum(g)
        mixed += 0 < sum(g) < len(g)
    _share(flips, n, 0.3)
    _share(affines, n, 0.5)
    _share(gray_frames, 3 * n, 0.25)
    assert mixed > n // 4  # frame-wise grayscale hits single frames, not whole samples
    # whole-sample grayscale: all frames or none
    tf = build_transforms({**OFF, "global_gray_p": 0.2}, S, tensors=False)
    whole = 0
    for seed in range(n):
        g = [is_gray(im) for im in augment_sample(frames, labels, None, S, seed=seed, transforms=tf)[0]]
        assert len(set(g)) == 1
        whole += g[0]
    _share(whole, n, 0.2)


def test_seeded_samples_repeat_and_do_not_disturb_the_global_rng():
    import random

    frames, labels = sample()
    random.seed(123)
    state = random.getstate()
    a = augment_sample(frames, labels, None, S, seed=7)
    assert random.getstate() == state
    b = augment_sample(frames, labels, None, S, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a[0] + a[1], b[0] + b[1]))


def test_preview_cli_writes_the_grid(tmp_path, capsys):
    from PIL import Image

    from pipeline.cli import main
    from tests.data.moseplus import synth

    root = tmp_path / "MOSE+"
    synth.davis_clip(root, "clip_a", "overlap", 5)
    (root / "moseplus.txt").write_text("clip_a\n")
    conf = tmp_path / "aug.toml"
    conf.write_text("[augment]\npreset = \"masseg\"\n[augment.settings]\nhflip_p = 1.0\nframe_gray_p = 0.5\n")
    out = tmp_path / "preview.png"
    rc = main(["data", "preview", "--root", str(root), "--frames", "3", "--image-size", "32", "--samples", "2",
               "--config", str(conf), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert im.size == (3 * 36 + 4, 3 * 36 + 4)
    assert "clip_a" in capsys.readouterr().out
    conf.write_text("[augment.settings]\nhflip = 1.0\n")
    rc = main(["data", "preview", "--root", str(root), "--config", str(conf), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown augmentation setting 'hflip'" in err and len(err.strip().splitlines()) == 1
    # the shipped configs' tables are accepted as they are
    repo = Path(__file__).resolve().parents[4]
    rc = main(["data", "preview", "--root", str(root), "--frames", "2", "--image-size", "32",
               "--config", str(repo / "configs" / "moseplus.toml"), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err


def test_official_settings_reproduce_the_official_yaml_bit_for_bit():
    """Seeded, OFFICIAL through our builder and the official YAML through hydra give the same sample."""
    import random

    import sam2
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    path = Path(sam2.__file__).parent / "configs" / "sam2.1_training" / "sam2.1_hiera_b+_MOSE_finetune.yaml"
    cfg = OmegaConf.load(path)
    cfg.scratch.resolution = S
    official = instantiate(OmegaConf.to_container(cfg.vos.train_transforms, resolve=True)[0])
    ours = build_transforms(OFFICIAL, S)
    frames, labels = sample()
    for seed in range(3):
        out = []
        for tf in (official, ours):
            random.seed(seed)
            torch.manual_seed(seed)
            dp = tf(aug_mod.make_datapoint(frames, labels))
            out.append([f.data for f in dp.frames] + [o.segment for f in dp.frames for o in f.objects])
        assert all(torch.equal(a, b) for a, b in zip(*out))
