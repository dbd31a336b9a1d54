"""Identity: one member, weight 1, scale 1, bias 0 reproduces the model's own masks exactly.

SAM2: the golden low-res logits of the official evaluation flow go into an f32 store; `fuse` must write PNGs
that are byte-identical to the official ones (same palette, taken from the clip's prompt annotation).
Cutie: the golden stride-4 logits go into an f32 store; the fused labels must equal Cutie's argmax (t >= 1;
t = 0 is the given mask, not a network output, and its logits are NaN in the fixture).
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from data.dataset import VOSDataset
from data.labels import read_labels
from ensemble import recipes
from ensemble.config import FusionConfig
from ensemble.fuse import fuse
from ensemble.ops import first_argmax
from tests.conftest import shared_path
from tests.ensemble.helpers import cutie_recipe, sam2_recipe, write_store

SAM2_CASES = [("default", "bmx-trees", "davis2017_firstframe"), ("default", "libby", "davis2016"),
              ("maskscale", "libby", "davis2016")]
CUTIE_VARIANTS = ["A_small_mose_default", "B_small_fifo_stagger_pad", "C_small_long_term", "D_base_mose_default"]


def _single(store, **kw) -> FusionConfig:
    return FusionConfig.from_dict({"mode": kw.pop("mode", "soft"), "members": [dict(store=str(store), **kw)]})


def _clip_root(tmp_path, clips, root_name, video, n_frames):
    """A dataset root with the first n frames of a shared clip (symlinks) and its prompt annotation."""
    root = tmp_path / "clip"
    (root / "JPEGImages" / video).mkdir(parents=True)
    (root / "Annotations" / video).mkdir(parents=True)
    src = clips / root_name
    for t in range(n_frames):
        os.symlink(src / "JPEGImages" / video / f"{t:05d}.jpg", root / "JPEGImages" / video / f"{t:05d}.jpg")
    os.symlink(src / "Annotations" / video / "00000.png", root / "Annotations" / video / "00000.png")
    return VOSDataset(root)


@pytest.mark.parametrize("setting,video,clip_root", SAM2_CASES)
@pytest.mark.parametrize("mode", ["soft", "majority"])
def test_sam2_single_member_is_byte_identical_to_official_pngs(tmp_path, setting, video, clip_root, mode):
    golden = shared_path("golden", "sam2", "outputs", setting)
    clips = shared_path("vos-clips")
    g = np.load(golden / f"{video}.npz")
    names = [str(n) for n in g["frame_names"]]
    ids = [int(i) for i in g["obj_ids"]]
    hw = [int(v) for v in g["video_hw"]]
    frames = {n: (ids, g["lowres_logits"][t]) for t, n in enumerate(names)}
    write_store(tmp_path / "sam2", "sam2", {video: {"frame_names": names, "video_hw": hw,
                                                    "recipe": sam2_recipe(hw), "frames": frames}})
    ds = _clip_root(tmp_path, clips, clip_root, video, len(names))
    # weight 3 (not 1) on purpose: only ratios matter, w/w must still be exactly 1.0
    fuse(_single(tmp_path / "sam2", weight=3.0, mode=mode), tmp_path / "run", dataset=ds)
    for t, n in enumerate(names):
        ours = tmp_path / "run" / "labels" / video / f"{n}.png"
        ref = golden / "png" / video / f"{n}.png"
        assert np.array_equal(read_labels(ours), g["png_labels"][t]), f"{video} frame {n}: labels differ"
        assert ours.read_bytes() == ref.read_bytes(), f"{video} frame {n}: PNG bytes differ"


def _cutie_case(variant):
    cdir = shared_path("golden", "cutie")
    z = np.load(cdir / f"{variant}.npz")
    var = json.loads((cdir / "variants.json").read_text())[variant]
    y0, y1, x0, x1 = var["crop"]
    h, w = y1 - y0, x1 - x0
    hp, wp = (int(s) * 4 for s in z["obj_logits_s4"].shape[-2:])
    ph, pw = hp - h, wp - w
    recipe = cutie_recipe([hp, wp], [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2], [h, w])
    return z, recipe


@pytest.mark.parametrize("variant", CUTIE_VARIANTS)
def test_cutie_single_member_equals_cutie_argmax(tmp_path, variant):
    z, recipe = _cutie_case(variant)
    T = z["mask"].shape[0]
    names = [f"{t:05d}" for t in range(1, T)]
    frames = {n: ([1, 2], z["obj_logits_s4"][t]) for t, n in enumerate(names, 1)}
    write_store(tmp_path / "cutie", "cutie", {"v": {"frame_names": names, "video_hw": recipe["video_hw"],
                                                    "recipe": recipe, "frames": frames}})
    fuse(_single(tmp_path / "cutie"), tmp_path / "run")
    for t, n in enumerate(names, 1):
        ours = read_labels(tmp_path / "run" / "labels" / "v" / f"{n}.png")
        assert np.array_equal(ours, z["mask"][t]), f"{variant} frame {n}: labels differ from Cutie's argmax"


@pytest.mark.parametrize("variant", CUTIE_VARIANTS[:2])        # B: padded 232x420 input
def test_cutie_recipe_reproduces_cutie_probabilities(variant):
    z, recipe = _cutie_case(variant)
    for t in range(1, z["prob"].shape[0]):
        prob = recipes.cutie_video_prob(torch.from_numpy(z["obj_logits_s4"][t].copy()), recipe).numpy()
        assert prob.shape == z["prob"][t].shape
        # measured bitwise equal on the reference machine; the fixture's own tolerance is 2e-4
        assert np.abs(prob - z["prob"][t]).max() <= 1e-6


def test_output_scaling_with_identity_values_changes_nothing(tmp_path):
    """scale 1 / bias 0 skip the arithmetic; a positive scale with bias 0 keeps SAM2's masks (sign kept)."""
    g = np.load(shared_path("golden", "sam2", "outputs", "default") / "bmx-trees.npz")
    hw = [int(v) for v in g["video_hw"]]
    up = recipes.sam2_upsample(torch.from_numpy(g["lowres_logits"][2].copy()), hw)
    own = recipes.sam2_channels(up, [1, 2], 3)
    scaled = recipes.sam2_channels(up, [1, 2], 3, scale=2.5, bias=0.0)
    assert torch.equal(first_argmax(own), first_argmax(scaled))
    biased = recipes.sam2_channels(up, [1, 2], 3, scale=1.0, bias=2.0)
    assert (first_argmax(biased) > 0).sum() > (first_argmax(own) > 0).sum(), "a positive bias must grow masks"
