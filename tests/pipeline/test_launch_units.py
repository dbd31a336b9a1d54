"""Launcher plumbing without a model: member specs, GPU discovery, worker streaming/failures, store checks.

The local launcher is driven here with a stand-in worker executable (a shell script that prints what it was given),
which shows the per-worker GPU assignment, the shard arguments and the failure report without loading a model.
The real inference path is covered by test_launch.py.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.labels import write_labels
from data.store import LogitStore
from pipeline.launch.local import launch_local, run_workers, visible_gpus
from pipeline.launch.report import Failure, LaunchError, LaunchReport
from pipeline.launch.spec import SpecError, check_spec, member_spec, spec_from_json, spec_from_member_run, spec_to_json


# ---- specs -------------------------------------------------------------------------------------------------
def test_member_spec_defaults_and_json_round_trip():
    spec = member_spec("sam2", "sam2.1_hiera_tiny", image_size=512, flip=True, codec="f32", variant="sam2.1_hiera_t",
                       mem_scale=15.0, mem_bias=None)
    assert spec == {"model": "sam2", "checkpoint": "sam2.1_hiera_tiny", "image_size": 512, "flip": True,
                    "device": "auto", "codec": "f32", "objects_from": "auto", "threads": None,
                    "options": {"variant": "sam2.1_hiera_t", "mem_scale": 15.0, "vos_optimized": False}}
    assert spec_from_json(spec_to_json(spec)) == spec
    cutie = check_spec({"model": "cutie", "checkpoint": "cutie-base-mega"})
    assert cutie["codec"] == "q16" and cutie["image_size"] == 480
    assert cutie["options"] == {"size": "base", "preset": "mose"}
    # defaults from the registry checkpoint: its SAM2 config, its Cutie size; the preset's input size
    assert check_spec({"model": "sam2", "checkpoint": "sam2.1_hiera_small"})["options"]["variant"] == \
        "configs/sam2.1/sam2.1_hiera_s.yaml"
    small = member_spec("cutie", "cutie-small-mega", preset="mose_plus")
    assert small["options"]["size"] == "small" and small["image_size"] == 720


@pytest.mark.parametrize("bad, message", [
    ({"model": "xmem", "checkpoint": "a"}, r"unknown model 'xmem' \(known models: cutie, sam2, sam2long\)"),
    ({"model": "sam2", "options": {"variant": "sam2.1_hiera_t"}}, "checkpoint: missing"),
    ({"model": "sam2", "checkpoint": "a", "image_size": "512"}, "image_size: must be an integer"),
    ({"model": "sam2", "checkpoint": "a", "image_size": 1040, "options": {"variant": "sam2.1_hiera_t"}},
     "image_size: sam2 input size must be a positive multiple of 32"),
    ({"model": "sam2", "checkpoint": "a", "options": {"variant": "sam2.1_hiera_xl"}}, "unknown SAM2 variant"),
    ({"model": "sam2", "checkpoint": "a"}, "variant: not set"),
    ({"model": "cutie", "checkpoint": "a", "options": {"preset": "fast"}}, "preset: 'fast' is not one of"),
    ({"model": "cutie", "checkpoint": "sam2.1_hiera_tiny"}, "is a sam2 checkpoint; model cutie takes cutie"),
    ({"model": "sam2", "checkpoint": "a", "codec": "png"}, "unknown codec 'png'"),
    ({"model": "sam2", "checkpoint": "a", "objects_from": "all"}, "unknown objects_from"),
    ({"model": "sam2", "checkpoint": "a", "options": {"size": "base"}}, "size: not an option of model sam2"),
    ({"model": "sam2", "checkpoint": "a", "gpu": 1}, "unknown member spec keys"),
    ({"model": "sam2", "checkpoint": "a", "threads": 0}, "threads: must be a positive integer"),
])
def test_bad_specs_are_refused(bad, message):
    with pytest.raises(SpecError, match=message):
        check_spec(bad)
    with pytest.raises(SpecError, match="not valid JSON"):
        spec_from_json("{model: sam2}")


def test_spec_from_a_configured_member_run(tmp_path):
    from pipeline.config import load_experiment

    cfg = tmp_path / "exp.toml"
    cfg.write_text('[run]\nout = "runs/x"\n[data]\nroot = "."\n'
                   '[[member]]\nname = "s"\nmodel = "sam2"\ncheckpoint = "sam2.1_hiera_tiny"\nimage_size = [512, 768]\n'
                   'flip = true\nvariant = "sam2.1_hiera_t"\nmem_scale = 15.0\nmem_bias = -7.0\n')
    exp = load_experiment(cfg, check_files=False)
    specs = [spec_from_member_run(r, codec="f16") for r in exp.member_runs()]
    assert [(s["image_size"], s["flip"]) for s in specs] == [(512, False), (512, True), (768, False), (768, True)]
    assert specs[0]["options"] == {"variant": "sam2.1_hiera_t", "mem_scale": 15.0, "mem_bias": -7.0,
                                   "vos_optimized": False}


# ---- GPUs ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env, expected", [("2,3", ["2", "3"]), ("", []), ("-1", []), ("0,-1,1", ["0"]),
                                           ("GPU-aaaa, GPU-bbbb", ["GPU-aaaa", "GPU-bbbb"])])
def test_visible_gpus_follows_cuda_visible_devices(monkeypatch, env, expected):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", env)
    assert visible_gpus() == expected


# ---- worker processes -------------------------------------------------------------------------------------
def test_run_workers_prefixes_lines_and_reports_exit_codes(tmp_path):
    py = sys.executable
    code = ("import sys,os; print('hello from', sys.argv[1]); print('progress\\r50%\\r100%');"
            "sys.stderr.write('to stderr\\n'); sys.exit(int(sys.argv[2]))")
    out = tmp_path / "out.txt"
    with open(out, "w") as fh:
        results = run_workers([[py, "-c", code, "a", "0"], [py, "-c", code, "b", "3"]],
                              [dict(os.environ), dict(os.environ)], ["w0", "w1"], out=fh)
    lines = out.read_text().splitlines()
    assert "[w0] hello from a" in lines and "[w1] hello from b" in lines
    assert "[w0] 100%" in lines and "[w1] to stderr" in lines
    assert [r.returncode for r in results] == [0, 3]
    assert results[1].tail == ["hello from b", "100%", "to stderr"]


def _tiny_dataset(root: Path, frames: dict[str, int]) -> Path:
    rng = np.random.default_rng(0)
    for video, n in frames.items():
        (root / "JPEGImages" / video).mkdir(parents=True)
        (root / "Annotations" / video).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
                root / "JPEGImages" / video / f"{i:05d}.jpg")
        labels = np.zeros((24, 32), np.uint8)
        labels[5:15, 5:20] = 1
        write_labels(root / "Annotations" / video / "00000.png", labels)
    return root


def _fake_python(path: Path, fail_shard: str | None = None) -> str:
    """Stands in for the worker interpreter: prints its GPU, thread setting and shard; fails on one shard."""
    fail = f'case "$*" in *"--shard {fail_shard}"*) echo "error: boom on {fail_shard}" >&2; exit 3;; esac\n' \
        if fail_shard else ""
    path.write_text('#!/bin/sh\n' + fail +
                    'shard=$(echo "$*" | sed "s/.*--shard //")\n'
                    'echo "CVD=${CUDA_VISIBLE_DEVICES-unset} OMP=${OMP_NUM_THREADS-unset} shard=$shard"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_local_launcher_assigns_gpus_round_robin_and_reports_failures(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "ds", {"a": 4, "b": 3, "c": 2, "d": 1})
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    spec = member_spec("sam2", str(ckpt), variant="sam2.1_hiera_t")
    fake = _fake_python(tmp_path / "py", fail_shard="1/3")
    report = launch_local(spec, root, None, tmp_path / "store", workers=3, gpus=["5", "7"], python=fake)
    out = capsys.readouterr().out
    assert "[w0] CVD=5 OMP=unset shard=0/3" in out
    assert "[w1] error: boom on 1/3" in out
    assert "[w2] CVD=5 OMP=unset shard=2/3" in out
    assert not report.ok and len(report.failures) == 1
    assert report.failures[0].unit == "worker 1 (shard 1/3, GPU 7)" and report.failures[0].reason == "exit status 3"
    # the stand-in wrote nothing: the completeness check says so
    assert report.check.missing == ["a", "b", "c", "d"]
    with pytest.raises(LaunchError) as exc:
        report.raise_if_failed()
    msg = str(exc.value)
    assert "2/3 units succeeded" in msg and "worker 1 (shard 1/3, GPU 7): exit status 3" in msg
    assert "| error: boom on 1/3" in msg and "missing: a, b, c, d" in msg and "rerun the same command" in msg


def test_local_launcher_cpu_workers_split_threads_and_never_exceed_videos(tmp_path, capsys):
    root = _tiny_dataset(tmp_path / "ds", {"a": 2, "b": 2})
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    spec = member_spec("sam2", str(ckpt), device="cpu", variant="sam2.1_hiera_t")
    fake = _fake_python(tmp_path / "py")
    report = launch_local(spec, root, None, tmp_path / "store", workers=8, gpus=["0"], python=fake)
    out = capsys.readouterr().out
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert report.units == 2  # 8 asked, 2 videos
    assert f"[w0] CVD=unset OMP={threads} shard=0/2" not in out  # gpus were given explicitly: used
    assert "[w0] CVD=0 OMP=unset shard=0/2" in out and "[w1] CVD=0 OMP=unset shard=1/2" in out
    report = launch_local(spec, root, None, tmp_path / "store", workers=2, python=fake)
    out = capsys.readouterr().out
    assert f"[w0] CVD=unset OMP={threads} shard=0/2" in out and "on CPU" in out


def test_local_launcher_refuses_unknown_videos_and_missing_checkpoints(tmp_path):
    from data.errors import MassegError
    from pipeline.registry import CheckpointError

    root = _tiny_dataset(tmp_path / "ds", {"a": 2})
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        launch_local(member_spec("sam2", str(tmp_path / "nope.pt"), variant="sam2.1_hiera_t"), root, None, tmp_path / "s", python="false")
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(MassegError, match="videos not in the dataset: zz"):
        launch_local(member_spec("sam2", str(ckpt), variant="sam2.1_hiera_t"), root, None, tmp_path / "s", videos=["a", "zz"], python="false")


# ---- store checks (the check itself is data.store's: tests/data/test_store.py) -----------------------------
def _write_video(store: LogitStore, name: str, n: int) -> None:
    frames = [f"{i:05d}" for i in range(n)]
    with store.writer(name, {"frame_names": frames, "video_hw": [8, 8],
                             "recipe": {"kind": "sam2_bilinear", "video_hw": [8, 8], "hflip": False}}) as w:
        for i, f in enumerate(frames):
            w.write(i, f, [1], np.zeros((1, 4, 4), np.float32))


def test_report_without_failures_does_not_raise(tmp_path):
    report = LaunchReport("local", 2, str(tmp_path))
    report.raise_if_failed()
    report.failures.append(Failure("video a", "WorkerCrashedError: died"))
    with pytest.raises(LaunchError, match="video a: WorkerCrashedError: died"):
        report.raise_if_failed()


# ---- the work unit without a model ------------------------------------------------------------------------
def test_run_videos_skips_complete_videos_without_building_a_model(tmp_path):
    from pipeline.launch.work import run_videos

    root = _tiny_dataset(tmp_path / "ds", {"a": 2, "b": 3})
    store = LogitStore.create(tmp_path / "store", {"model": "test"})
    _write_video(store, "a", 2)
    _write_video(store, "b", 3)
    spec = member_spec("sam2", str(tmp_path / "missing.pt"), variant="sam2.1_hiera_t")  # would fail if anything tried to load it
    out = run_videos(spec, root, None, ["a", "b"], tmp_path / "store", echo=None)
    assert out["done"] == [] and out["skipped"] == ["a", "b"]


def test_run_videos_names_unknown_videos_and_missing_checkpoints(tmp_path):
    from data.errors import DatasetError, MassegError
    from pipeline.launch.work import run_videos

    root = _tiny_dataset(tmp_path / "ds", {"a": 2})
    with pytest.raises(DatasetError, match="zz"):
        run_videos(member_spec("sam2", "x.pt", variant="sam2.1_hiera_t"), root, None, ["zz"], tmp_path / "store", echo=None)
    with pytest.raises(MassegError, match="missing.pth"):
        run_videos(member_spec("cutie", str(tmp_path / "missing.pth")), root, None, ["a"], tmp_path / "store",
                   echo=None)
