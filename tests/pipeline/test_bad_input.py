"""Every failure is one clear line: bad outputs (unwritable, under a regular file, disk full) for infer, fuse,
submit and run; bad checkpoints; damaged or mismatched stores; internal errors; workers left behind; umask."""
from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.labels import read_labels, write_labels
from pipeline.cli import main
from tests.conftest import REPO
from tests.ensemble.helpers import sam2_recipe, write_store

HW = (16, 20)


def _root(tmp_path, n=4, later=False) -> Path:
    """One video 'v' of ``n`` frames, object 1 given on frame 0 (and object 7 on frame 2 when ``later``)."""
    root = tmp_path / "root"
    (root / "JPEGImages" / "v").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full(HW + (3,), 30 * i, np.uint8)).save(root / "JPEGImages" / "v" / f"{i:05d}.jpg")
    lab = np.zeros(HW, np.uint8)
    lab[2:8, 2:8] = 1
    write_labels(root / "Annotations" / "v" / "00000.png", lab)
    if later:
        lab2 = np.zeros(HW, np.uint8)
        lab2[10:14, 12:18] = 7
        write_labels(root / "Annotations" / "v" / "00002.png", lab2)
    return root


def _store(tmp_path, n=4, ids_from=None, objects_from="first_frame", name="store") -> Path:
    """A SAM2-recipe store whose logits say object 1 top-left (and ``ids_from`` {id: first frame})."""
    ids_from = ids_from or {1: 0}
    frames = {}
    for i in range(n):
        ids = [o for o, f in ids_from.items() if f <= i]
        logits = np.full((len(ids),) + HW, -5.0, np.float32)
        for k, o in enumerate(ids):
            if o == 1:
                logits[k, 2:8, 2:8] = 5.0
            else:
                logits[k, 10:14, 12:18] = 5.0
        frames[f"{i:05d}"] = (ids, logits)
    write_store(tmp_path / name, "sam2", {"v": {"frame_names": list(frames), "video_hw": HW,
                                               "recipe": sam2_recipe(HW), "frames": frames}},
                settings={"objects_from": objects_from})
    return tmp_path / name


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ---- outputs -------------------------------------------------------------------------------------------------
def test_outputs_under_a_regular_file_fail_before_any_work(tmp_path, capsys):
    root = _root(tmp_path)
    store = _store(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    # infer: a checkpoint that does not exist would be the error if the model were loaded first
    assert main(["infer", "--model", "cutie", "--root", str(root), "--out", str(blocker / "store"),
                 "--checkpoint", str(tmp_path / "missing.pth")]) == 2
    _one_line_error(capsys, str(blocker), "regular file")
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(blocker / "run")]) == 2
    _one_line_error(capsys, "regular file")
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(blocker)]) == 2
    _one_line_error(capsys, "run folder is a regular file")
    assert main(["sweep", "--member", str(store), "--root", str(root), "--out", str(blocker)]) == 2
    _one_line_error(capsys, "sweep folder is a regular file")
    assert main(["submit", "--labels", str(tmp_path), "--root", str(root), "--out", str(tmp_path)]) == 2
    _one_line_error(capsys, "submission zip is a folder")
    assert main(["submit", "--labels", str(tmp_path), "--root", str(root), "--out", str(blocker / "s.zip")]) == 2
    _one_line_error(capsys, "regular file")
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[run]\nout = "{blocker / "run"}"\n[data]\nroot = "{root}"\n[[member]]\nname = "c"\n'
                   f'model = "cutie"\nsize = "small"\ncheckpoint = "cutie-small-mega"\n')
    assert main(["run", str(cfg)]) == 2
    _one_line_error(capsys, "regular file")
    assert blocker.read_text() == "not a folder"


def test_unwritable_output_folder(tmp_path, capsys, monkeypatch):
    root = _root(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the permission check see what a user would
        import data.atomic
        monkeypatch.setattr(data.atomic.os, "access", lambda path, mode: Path(path) != ro)
    try:
        assert main(["infer", "--model", "cutie", "--root", str(root), "--out", str(ro / "store"),
                     "--checkpoint", str(tmp_path / "missing.pth")]) == 2
        _one_line_error(capsys, "not writable", "chmod")
        assert main(["submit", "--labels", str(tmp_path), "--root", str(root), "--out", str(ro / "s.zip")]) == 2
        _one_line_error(capsys, "not writable")
    finally:
        ro.chmod(0o700)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_while_fusing_and_submitting(tmp_path, capsys, monkeypatch):
    root = _root(tmp_path)
    store = _store(tmp_path)
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(tmp_path / "ok")]) == 0
    capsys.readouterr()
    monkeypatch.setattr(Path, "write_bytes", _enospc)  # every atomic write: fusion.toml, label PNGs
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(tmp_path / "full")]) == 2
    _one_line_error(capsys, "No space left on device", "free disk space")
    assert not list((tmp_path / "full").rglob("*.tmp"))
    monkeypatch.undo()
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _enospc)
    out = tmp_path / "sub.zip"
    assert main(["submit", "--labels", str(tmp_path / "ok"), "--root", str(root), "--out", str(out)]) == 2
    _one_line_error(capsys, str(out), "No space left on device")
    assert os.listdir(tmp_path).count("sub.zip") == 0 and not list(tmp_path.glob(".sub.zip*"))


def test_disk_full_while_inferring_drops_the_partial_video(tmp_path, capsys, monkeypatch):
    from models.cutie import build_cutie
    root = _root(tmp_path, n=3)
    torch.manual_seed(0)
    ckpt = tmp_path / "cutie_small.pth"
    torch.save(build_cutie("small", device="cpu").state_dict(), ckpt)
    monkeypatch.setattr(zipfile.ZipFile, "writestr", _enospc)
    out = tmp_path / "store"
    assert main(["infer", "--model", "cutie", "--size", "small", "--image-size", "32", "--root", str(root),
                 "--out", str(out), "--checkpoint", str(ckpt), "--device", "cpu", "--no-progress"]) == 2
    _one_line_error(capsys, str(out / "videos" / "v.zip"), "No space left on device")
    assert sorted(os.listdir(out / "videos")) == []


def test_disk_full_while_running(tmp_path, capsys, monkeypatch):
    from models.cutie import build_cutie
    root = _root(tmp_path)
    ckpt = tmp_path / "cutie_small.pth"
    torch.save(build_cutie("small", device="cpu").state_dict(), ckpt)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[run]\nout = "{tmp_path / "run"}"\n[data]\nroot = "{root}"\n[[member]]\nname = "c"\n'
                   f'model = "cutie"\nsize = "small"\ncheckpoint = "{ckpt}"\n')
    monkeypatch.setattr(Path, "write_bytes", _enospc)
    assert main(["run", str(cfg)]) == 2
    _one_line_error(capsys, str(tmp_path / "run"), "No space left on device")


# ---- checkpoints -----------------------------------------------------------------------------------------
def test_bad_cutie_checkpoints(tmp_path, capsys):
    root = _root(tmp_path)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a torch file" * 10)
    args = ["infer", "--model", "cutie", "--root", str(root), "--device", "cpu", "--out"]
    assert main(args + [str(tmp_path / "s1"), "--checkpoint", str(garbage), "--size", "small"]) == 2
    _one_line_error(capsys, str(garbage), "is not a readable torch checkpoint", "download it again")
    sam2_like = tmp_path / "sam2_like.pt"
    torch.save({"model": {"image_encoder.trunk.patch_embed.proj.weight": torch.zeros(96, 3, 7, 7),
                          "sam_mask_decoder.iou_token.weight": torch.zeros(1, 256)}}, sam2_like)
    assert main(args + [str(tmp_path / "s2"), "--checkpoint", str(sam2_like), "--size", "small"]) == 2
    line = _one_line_error(capsys, "looks like a SAM2 checkpoint", "--model sam2")
    assert len(line) < 800
    from models.cutie import build_cutie
    small = tmp_path / "small.pth"
    torch.save(build_cutie("small", device="cpu").state_dict(), small)
    assert main(args + [str(tmp_path / "s3"), "--checkpoint", str(small), "--size", "base"]) == 2
    line = _one_line_error(capsys, "looks like a cutie-small checkpoint", "--size small")
    assert len(line) < 800  # a few keys, not all of them


# ---- stores ----------------------------------------------------------------------------------------------
def test_store_with_bad_crc_names_the_store_and_writes_no_label(tmp_path, capsys):
    root = _root(tmp_path)
    store = _store(tmp_path)
    path = store / "videos" / "v.zip"
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("frames/00003.bin")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 3] ^= 0xFF
    path.write_bytes(bytes(data))
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, str(path), "CRC", "rerun inference")
    assert not list((tmp_path / "run" / "labels").rglob("*.png"))


def test_store_with_more_frames_than_the_video(tmp_path, capsys):
    root = _root(tmp_path, n=3)
    store = _store(tmp_path, n=4)
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, "1 frame of video 'v' that the video does not have", "00003")


def test_objects_from_appearance_travels_with_the_store(tmp_path, capsys):
    root = _root(tmp_path, later=True)
    store = _store(tmp_path, ids_from={1: 0, 7: 2}, objects_from="appearance")
    run = tmp_path / "run"
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(run)]) == 0
    assert set(np.unique(read_labels(run / "labels" / "v" / "00003.png")).tolist()) == {0, 1, 7}
    assert main(["submit", "--labels", str(run), "--root", str(root), "--out", str(tmp_path / "s.zip")]) == 0
    err = capsys.readouterr().err
    assert "map labels" not in err and "are not objects" not in err


def test_later_objects_warning_is_one_line(tmp_path, capsys):
    root = _root(tmp_path, later=True)
    assert main(["validate", str(tmp_path / "nothing"), "--root", str(root)]) == 2
    err = capsys.readouterr().err
    warn = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "objects 7 (frame 00002)" in warn[0] and "--objects-from appearance" in warn[0]


# ---- the CLI's own contract ----------------------------------------------------------------------------------
def test_unexpected_errors_are_one_internal_error_line(tmp_path, capsys, monkeypatch):
    import data.dataset

    def boom(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(data.dataset.VOSDataset, "__init__", boom)
    args = ["split", "--root", str(tmp_path), "--count", "1", "--out", str(tmp_path / "s.txt")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err == "internal error: RuntimeError: boom second line (rerun with --debug for the traceback, and report it)"
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug"] + args)


@pytest.mark.parametrize("argv, needle", [
    (["fuse", "--bogus"], "No such option '--bogus'"),
    (["evaluate", "--jobs", "x"], "'x' is not a valid integer"),
    (["infer", "--model", "nosuch"], "'nosuch' is not one of"),
    (["nosuch"], "No such command 'nosuch'"),
])
def test_usage_errors_are_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err and "--help" in err


def test_one_problem_is_singular(tmp_path, capsys):
    root = _root(tmp_path)
    labels = tmp_path / "labels" / "v"
    labels.mkdir(parents=True)
    for i in range(4):
        write_labels(labels / f"{i:05d}.png", np.zeros(HW, np.uint8))
    (labels / "00002.png").unlink()
    assert main(["submit", "--labels", str(tmp_path / "labels"), "--root", str(root),
                 "--out", str(tmp_path / "s.zip")]) == 1
    err = capsys.readouterr().err
    assert "1 problem:" in err and "1 problems" not in err


def test_files_are_created_with_the_umask(tmp_path):
    root = _root(tmp_path)
    store = _store(tmp_path)
    old = os.umask(0o002)
    try:
        assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(tmp_path / "run"),
                     "--zip", str(tmp_path / "s.zip")]) == 0
    finally:
        os.umask(old)
    for p in [tmp_path / "s.zip", tmp_path / "run" / "fusion.toml", tmp_path / "run" / "labels" / "v" / "00001.png"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o664, p


def test_evaluate_leaves_no_worker_processes(tmp_path):
    psutil = pytest.importorskip("psutil")
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for v in ("a", "b"):
        for i in range(6):
            lab = np.zeros(HW, np.uint8)
            lab[i:i + 5, 2:9] = 1
            write_labels(gt / v / f"{i:05d}.png", lab)
            write_labels(pred / v / f"{i:05d}.png", np.roll(lab, 1, axis=1))
    mark = uuid.uuid4().hex
    env = dict(os.environ, MASSEG_TEST_MARK=mark, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "pipeline.cli", "evaluate", "--gt", str(gt), "--pred", str(pred),
                        "-j", "2"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    left = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.environ().get("MASSEG_TEST_MARK") == mark:
                left.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    assert not left, f"worker processes still running after masseg evaluate exited: {left}"


def test_grayscale_0_255_first_frame_mask_is_object_1_for_fuse_and_submit(tmp_path):
    root = _root(tmp_path)
    m = np.zeros(HW, np.uint8)
    m[2:8, 2:8] = 255
    Image.fromarray(m, mode="L").save(root / "Annotations" / "v" / "00000.png")  # what many tools write
    store = _store(tmp_path)  # object 1
    run = tmp_path / "run"
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(run),
                 "--zip", str(tmp_path / "s.zip")]) == 0
    assert set(np.unique(read_labels(run / "labels" / "v" / "00000.png")).tolist()) == {0, 1}
