"""`masseg infer --model sam2long` (declared in models/members/sam2long.py through the model registry) end to end on
a shared clip at a small size, then `masseg fuse` with it as a member next to a SAM2 member; bad options fail with
one line (exit 2) before any model is loaded."""
from __future__ import annotations

import json

import numpy as np
import pytest

from data.labels import read_labels
from data.store import LogitStore
from pipeline.cli import main

from .conftest import CONFIG


def infer_args(model: str, root, out, weights, *extra: str) -> list[str]:
    return ["infer", "--model", model, "--root", str(root), "--out", str(out), "--config", CONFIG,
            "--checkpoint", str(weights), "--image-size", "256", "--device", "cpu", "--no-progress", *extra]


@pytest.fixture
def small_root(sl_root, tmp_path):
    root = tmp_path / "root"
    for sub, ext, n in (("JPEGImages", "jpg", 4), ("Annotations", "png", 1)):
        (root / sub / "bmx-trees").mkdir(parents=True)
        for i in range(n):
            (root / sub / "bmx-trees" / f"{i:05d}.{ext}").symlink_to(sl_root / sub / "bmx-trees" / f"{i:05d}.{ext}")
    return root


def test_infer_then_fuse_as_member(small_root, sl_weights, tmp_path, capsys):
    long_store, sam2_store, run = tmp_path / "sam2long", tmp_path / "sam2", tmp_path / "run"
    assert main(infer_args("sam2long", small_root, long_store, sl_weights, "--num-pathway", "2",
                           "--uncertainty", "1.5")) == 0
    assert "done: 1 run, 0 already complete" in capsys.readouterr().out
    man = json.loads((long_store / "manifest.json").read_text())
    assert man["model"] == "sam2long" and man["scale"] == 256
    assert man["settings"]["num_pathway"] == 2 and man["settings"]["uncertainty"] == 1.5
    assert man["settings"]["iou_threshold"] == 0.1
    assert list((long_store / "tmp").iterdir()) == []  # the spill left nothing
    with LogitStore.open(long_store).reader("bmx-trees") as r:
        assert r.recipe["kind"] == "sam2_bilinear"
        frames = [r.read(i) for i in range(len(r))]
    assert [f.obj_ids for f in frames] == [[1, 2]] * 4 and frames[0].logits.shape == (2, 64, 64)
    # a rerun with the same options resumes (skips); a different option is a different member
    assert main(infer_args("sam2long", small_root, long_store, sl_weights, "--num-pathway", "2",
                           "--uncertainty", "1.5")) == 0
    assert "done: 0 run, 1 already complete" in capsys.readouterr().out
    assert main(infer_args("sam2long", small_root, long_store, sl_weights)) == 2
    assert "different settings" in capsys.readouterr().err

    assert main(infer_args("sam2", small_root, sam2_store, sl_weights)) == 0
    assert main(["fuse", "--member", str(long_store), "--member", str(sam2_store), "--root", str(small_root),
                 "--out", str(run)]) == 0
    pngs = sorted((run / "labels" / "bmx-trees").glob("*.png"))
    assert [p.stem for p in pngs] == ["00000", "00001", "00002", "00003"]
    labels = np.stack([read_labels(p) for p in pngs])
    assert labels.shape == (4, 480, 854) and set(np.unique(labels)) <= {0, 1, 2} and (labels[1:] > 0).any()


@pytest.mark.parametrize("extra,needle", [
    (("--num-pathway", "0"), "num_pathway: must be a positive integer (e.g. 3), got 0"),
    (("--iou-threshold", "1.5"), "iou_threshold: must be in [0, 1) (e.g. 0.1), got 1.5"),
    (("--uncertainty", "-1"), "uncertainty: must be a finite number >= 0 (e.g. 2), got -1.0"),
])
def test_bad_options_one_line_before_loading(small_root, tmp_path, capsys, extra, needle):
    missing = tmp_path / "no-such-weights.pt"  # never read: the options fail first
    assert main(infer_args("sam2long", small_root, tmp_path / "s", missing, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and len(err.splitlines()) == 1
    assert not (tmp_path / "s").exists()


def test_sam2_only_option_is_refused(small_root, sl_weights, tmp_path, capsys):
    assert main(infer_args("sam2long", small_root, tmp_path / "s", sl_weights, "--vos-optimized")) == 2
    assert "--vos-optimized does not apply to --model sam2long" in capsys.readouterr().err


def test_registered_with_its_options():
    from models.registry import get

    fam = get("sam2long")
    assert fam.recipe_kind == "sam2_bilinear" and fam.checkpoint_family == "sam2"
    assert {o.name: o.default for o in fam.options if o.default is not None} == \
        {"num_pathway": 3, "iou_threshold": 0.1, "uncertainty": 2.0}


def test_experiment_config_member(tmp_path):
    """`model = "sam2long"` in an experiment config: defaults filled, bad values reported before any inference."""
    from pipeline.config import ConfigError, load_experiment

    cfg = ('[run]\nout = "{out}"\n[data]\nroot = "{root}"\nprotocol = "none"\n[[member]]\nname = "long"\n'
           'model = "sam2long"\ncheckpoint = "sam2.1_hiera_tiny"\nimage_size = [512]\n{extra}')
    (tmp_path / "ok.toml").write_text(cfg.format(out=tmp_path / "run", root=tmp_path, extra="uncertainty = 1\n"))
    exp = load_experiment(tmp_path / "ok.toml")
    assert [r.store_name for r in exp.member_runs()] == ["long-s512"]
    opts = exp.members[0].options
    assert (opts["num_pathway"], opts["iou_threshold"], opts["uncertainty"]) == (3, 0.1, 1.0)
    (tmp_path / "bad.toml").write_text(cfg.format(out=tmp_path / "run", root=tmp_path,
                                                  extra="num_pathway = 0\niou_threshold = 2\n"))
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "bad.toml")
    assert "num_pathway: must be a positive integer" in str(err.value)
    assert "iou_threshold: must be in [0, 1)" in str(err.value)
