"""`masseg infer --model sam2` end to end: sharding, resume, identity checks, and bad input (clear error naming the
file, exit status 2, the video never marked complete, nothing half-written)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.dataset import VOSDataset
from data.labels import read_labels, write_labels
from data.shards import shard_videos
from data.store import LogitStore
from pipeline.cli import main

from tests.helpers.golden import frames_range, link_video

from .conftest import CONFIG


def infer_args(root: Path, out: Path, weights: Path, *extra: str) -> list[str]:
    return ["infer", "--model", "sam2", "--root", str(root), "--out", str(out), "--config", CONFIG,
            "--checkpoint", str(weights), "--image-size", "256", "--device", "cpu", "--no-progress", *extra]


def leftovers(store: Path) -> list[str]:
    folder = store / "videos"
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


@pytest.fixture
def two_videos(clips, tmp_path) -> Path:
    root = tmp_path / "root"
    link_video(root, "bmx-trees", clips / "davis2017_firstframe", frames_range(3), ["00000"])
    link_video(root, "libby", clips / "davis2016", frames_range(2), ["00000"])
    return root


def read_all(store: Path, video: str):
    with LogitStore.open(store).reader(video) as r:
        return [r.read(i) for i in range(len(r))], r.meta


def test_shards_resume_and_identity(two_videos, golden_weights, tmp_path, capsys):
    out = tmp_path / "store"
    counts = VOSDataset(two_videos).frame_counts()
    # two shard workers on one store
    assert main(infer_args(two_videos, out, golden_weights, "--codec", "q8", "--shard", "1/2")) == 0
    only = shard_videos(counts, "1/2")
    assert LogitStore.open(out).videos() == only and len(only) == 1
    assert main(infer_args(two_videos, out, golden_weights, "--codec", "q8", "--shard", "0/2")) == 0
    assert LogitStore.open(out).videos() == ["bmx-trees", "libby"]
    other = shard_videos(counts, "0/2")
    assert set(other) | set(only) == set(counts) and not set(other) & set(only)
    man = json.loads((out / "manifest.json").read_text())
    assert man["model"] == "sam2" and man["codec"] == "q8" and man["scale"] == 256
    assert man["settings"]["objects_from"] == "first_frame"
    frames, meta = read_all(out, "bmx-trees")
    assert meta["recipe"] == {"kind": "sam2_bilinear", "video_hw": [480, 854], "hflip": False}
    assert [f.obj_ids for f in frames] == [[1, 2]] * 3 and frames[0].logits.shape == (2, 64, 64)
    assert capsys.readouterr().out.strip().endswith("done: 1 run, 0 already complete -> " + str(out))

    # a rerun skips complete videos without touching them
    before = (out / "videos" / "libby.zip").stat().st_mtime_ns
    assert main(infer_args(two_videos, out, golden_weights, "--codec", "q8")) == 0
    assert "done: 0 run, 2 already complete" in capsys.readouterr().out
    assert (out / "videos" / "libby.zip").stat().st_mtime_ns == before

    # a killed run: the video's zip never appeared, a partial file is left; the rerun redoes exactly that video
    libby_before, _ = read_all(out, "libby")
    (out / "videos" / "libby.zip").unlink()
    (out / "videos" / ".libby.zip.partial").write_bytes(b"half a zip")
    assert main(infer_args(two_videos, out, golden_weights, "--codec", "q8")) == 0
    assert "done: 1 run, 1 already complete" in capsys.readouterr().out
    assert leftovers(out) == []
    libby_after, _ = read_all(out, "libby")
    for a, b in zip(libby_before, libby_after, strict=True):
        assert np.array_equal(a.logits, b.logits) and np.array_equal(a.scores, b.scores)

    # resuming with other member settings is refused: the store's logits would mean two things
    assert main(infer_args(two_videos, out, golden_weights, "--codec", "q8", "--mem-scale", "15")) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "different settings" in err and "manifest.json" in err


def test_missing_first_frame_mask(two_videos, golden_weights, tmp_path, capsys):
    ann = two_videos / "Annotations" / "libby" / "00000.png"
    ann.unlink()
    out = tmp_path / "store"
    assert main(infer_args(two_videos, out, golden_weights)) == 2
    err = capsys.readouterr().err
    assert f"error: {ann}: first-frame annotation missing" in err
    store = LogitStore.open(out)
    assert store.videos() == ["bmx-trees"] and not store.is_complete("libby") and leftovers(out) == []


def test_object_id_with_no_pixels(clips, golden_weights, tmp_path, capsys):
    """YouTube-VOS layout: meta.json says object 3 is first given on frame 00001, whose mask lacks it."""
    root = tmp_path / "root"
    link_video(root, "libby", clips / "davis2016", frames_range(3), ["00000"])
    labels, palette = read_labels(root / "Annotations" / "libby" / "00000.png", with_palette=True)
    write_labels(root / "Annotations" / "libby" / "00001.png", labels, palette)  # ids {0, 1}: no 3
    (root / "meta.json").write_text(json.dumps({"videos": {"libby": {"objects": {
        "1": {"frames": ["00000"]}, "3": {"frames": ["00001"]}}}}}))
    out = tmp_path / "store"
    assert main(infer_args(root, out, golden_weights)) == 2
    err = capsys.readouterr().err
    assert "object 3 has no pixels" in err and str(root / "Annotations" / "libby" / "00001.png") in err
    assert LogitStore.open(out).videos() == [] and leftovers(out) == []


def test_checkpoint_that_does_not_fit_the_config(two_videos, golden_weights, tmp_path, capsys):
    out = tmp_path / "store"
    args = infer_args(two_videos, out, golden_weights)
    args[args.index(CONFIG)] = "sam2.1_hiera_s"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not match config configs/sam2.1/sam2.1_hiera_s.yaml" in err and "image_encoder.trunk.blocks" in err
    assert "--config sam2.1_hiera_t" in err and str(golden_weights) in err
    assert not out.exists()  # nothing created before the model is ready


def test_unreadable_frame(two_videos, golden_weights, tmp_path, capsys):
    bad = two_videos / "JPEGImages" / "libby" / "00001.jpg"
    bad.unlink()
    bad.write_bytes(b"\xff\xd8\xff\xe0garbage")
    out = tmp_path / "store"
    assert main(infer_args(two_videos, out, golden_weights)) == 2
    captured = capsys.readouterr()
    assert str(bad) in captured.err and "unreadable frame" in captured.err
    assert "libby: failed; the video stays incomplete" in captured.out
    store = LogitStore.open(out)
    assert store.videos() == ["bmx-trees"] and not store.is_complete("libby") and leftovers(out) == []


def test_bad_shard_and_missing_checkpoint_fail_before_anything_is_built(two_videos, golden_weights, tmp_path,
                                                                         capsys):
    assert main(infer_args(two_videos, tmp_path / "s", golden_weights, "--shard", "2/2")) == 2
    assert "bad shard '2/2'" in capsys.readouterr().err
    args = infer_args(two_videos, tmp_path / "s", golden_weights)
    del args[args.index("--checkpoint"):args.index("--checkpoint") + 2]
    assert main(args) == 2
    assert "--checkpoint is required" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_console_script_exit_status(two_videos, golden_weights, tmp_path):
    """The installed `masseg` process itself exits 2 with a one-line error, no traceback."""
    (two_videos / "Annotations" / "bmx-trees" / "00000.png").unlink()
    exe = Path(sys.executable).with_name("masseg")
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="2")
    proc = subprocess.run([str(exe), *infer_args(two_videos, tmp_path / "store", golden_weights)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 2, proc.stderr
    assert "error: " in proc.stderr and "bmx-trees/00000.png" in proc.stderr and "Traceback" not in proc.stderr
