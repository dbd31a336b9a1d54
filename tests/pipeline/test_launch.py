"""Launchers end to end with the real SAM2 inference (synthetic sam2.1-tiny weights, input size 128, CPU).

Three short clips (3, 3 and 4 frames, one with two objects) are symlinked from ../shared/vos-clips.
* local: `masseg launch-infer` with 2 worker processes; one clip's prompt mask is missing at first, so one worker
  fails and is reported while the other's video lands; after the fix, the rerun computes only what is missing.
* ray: a private CPU Ray instance (2 CPUs); one task SIGKILLs its own worker mid-video the first time it runs
  (a marker file remembers); Ray retries it; every video ends up in the store exactly once, with no partial file,
  and the retried video's logits equal the uninterrupted local run's bit for bit. Then the per-shard mode.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data.store import LogitStore
from pipeline.launch.spec import member_spec
from pipeline.launch.work import check_store, run_videos
from tests.conftest import shared_path
from tests.helpers.golden import sam2_recipe_weights

CLIPS = {  # video -> (source folder under vos-clips, frames)
    "libby": ("davis2016", 3),
    "chair": ("pumavos", 3),
    "bmx-trees": ("davis2017_firstframe", 4),  # two objects
}
VICTIM = "chair"


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    src = shared_path("vos-clips")
    root = tmp_path_factory.mktemp("clips")
    for video, (folder, n) in CLIPS.items():
        (root / "JPEGImages" / video).mkdir(parents=True)
        (root / "Annotations" / video).mkdir(parents=True)
        for i in range(n):
            (root / "JPEGImages" / video / f"{i:05d}.jpg").symlink_to(src / folder / "JPEGImages" / video / f"{i:05d}.jpg")
        (root / "Annotations" / video / "00000.png").symlink_to(src / folder / "Annotations" / video / "00000.png")
    return root


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    pytest.importorskip("sam2", reason="sam2 is not installed (pip install -e .[sam2])")
    return sam2_recipe_weights(tmp_path_factory.mktemp("weights") / "synthetic_sam2.1_hiera_t.pt")


def _spec(weights: Path) -> dict:
    return member_spec("sam2", str(weights), image_size=128, device="cpu", codec="f32", variant="sam2.1_hiera_t",
                       threads=1)


def _assert_same_logits(store_a: Path, store_b: Path, videos) -> None:
    a, b = LogitStore.open(store_a), LogitStore.open(store_b)
    for v in videos:
        with a.reader(v) as ra, b.reader(v) as rb:
            assert ra.frame_names == rb.frame_names
            for fa, fb in zip(ra, rb):
                assert fa.obj_ids == fb.obj_ids
                assert np.array_equal(fa.logits, fb.logits), (v, fa.frame_name)
                assert np.array_equal(fa.scores, fb.scores), (v, fa.frame_name)


def _store_files(store: Path) -> list[str]:
    return sorted(os.listdir(store / "videos"))


@pytest.fixture(scope="module")
def local_run(clips, weights, tmp_path_factory):
    """Two `masseg launch-infer --launcher local --workers 2` runs: first with chair's prompt missing, then fixed."""
    store = tmp_path_factory.mktemp("local") / "store"
    prompt = clips / "Annotations" / VICTIM / "00000.png"
    target = prompt.resolve()
    prompt.unlink()
    spec_file = tmp_path_factory.mktemp("spec") / "spec.json"
    spec_file.write_text(json.dumps(_spec(weights)))
    args = ["launch-infer", "--root", str(clips), "--out", str(store), "--spec", str(spec_file),
            "--launcher", "local", "--workers", "2", "--gpus", ""]
    first = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True)
    after_first = _store_files(store) if (store / "videos").is_dir() else []
    mtimes = {n: (store / "videos" / n).stat().st_mtime_ns for n in after_first}
    prompt.symlink_to(target)
    second = subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True)
    return {"store": store, "first": first, "second": second, "after_first": after_first, "mtimes": mtimes}


def test_local_launcher_reports_a_failed_worker_then_resumes(local_run, clips):
    first, second = local_run["first"], local_run["second"]
    # shards by frame count: bmx-trees (4 frames) alone, chair + libby (3 + 3) together
    assert first.returncode == 2, first.stdout + first.stderr
    assert "[w0] shard 0/2: 1 videos, 4 frames" in first.stdout
    assert "[w1] shard 1/2: 2 videos, 6 frames" in first.stdout
    assert "[w1] error:" in first.stdout and "00000.png" in first.stdout  # the worker named the missing prompt
    err = first.stderr
    assert "1/2 units succeeded" in err and "worker 1 (shard 1/2, CPU): exit status 2" in err
    assert "missing: chair" in err and "rerun the same command" in err
    # the failing worker stopped at chair: its partial file is gone, libby after it was never started
    assert local_run["after_first"] == ["bmx-trees.zip"]
    assert second.returncode == 0, second.stdout + second.stderr
    assert "[w0] shard 0/2: 0 done, 1 already complete" in second.stdout
    assert "[w1] shard 1/2: 2 done, 0 already complete" in second.stdout
    assert "local: 2/2 units succeeded" in second.stdout and "3/3 videos complete" in second.stdout
    store = local_run["store"]
    assert _store_files(store) == ["bmx-trees.zip", "chair.zip", "libby.zip"]
    assert (store / "videos" / "bmx-trees.zip").stat().st_mtime_ns == local_run["mtimes"]["bmx-trees.zip"]
    check = check_store(store, list(CLIPS), {v: n for v, (_, n) in CLIPS.items()})
    assert check.ok and not check.extra
    with LogitStore.open(store).reader("bmx-trees") as r:
        assert r.read(3).obj_ids == [1, 2] and r.read(3).logits.shape == (2, 32, 32)


def test_local_launcher_matches_a_direct_run(local_run, clips, weights, tmp_path):
    """The launcher changes no number: same bits as calling the work unit in this process."""
    direct = tmp_path / "direct"
    out = run_videos(_spec(weights), clips, None, ["libby"], direct, echo=None)
    assert out["done"] == ["libby"]
    _assert_same_logits(direct, local_run["store"], ["libby"])
    assert LogitStore.open(direct).manifest["settings"] == LogitStore.open(local_run["store"]).manifest["settings"]


# ---- Ray ------------------------------------------------------------------------------------------------------
def _kill_once_task(marker_dir: str, victim: str):
    """The real work unit, except that the first attempt at ``victim`` SIGKILLs its own worker process after the
    second frame is in the partial file. Built as a closure so Ray ships it by value to its workers."""

    def task(member_spec, root, split, videos, store_path):
        from pathlib import Path as P

        markers = P(marker_dir)
        for v in videos:
            with open(markers / f"{v}.attempts", "a") as fh:
                fh.write(f"{os.getpid()}\n")
        killed = markers / "killed.json"
        if victim in videos and not killed.exists():
            import data.store as store_mod

            original = store_mod.VideoWriter.write
            written = []

            def write(self, *args, **kwargs):
                original(self, *args, **kwargs)
                written.append(1)
                if self.video == victim and len(written) == 2:
                    self._zip.fp.flush()
                    killed.write_text(json.dumps({"pid": os.getpid(), "partial_exists": self.partial.exists(),
                                                  "partial_bytes": self.partial.stat().st_size}))
                    os.kill(os.getpid(), signal.SIGKILL)

            store_mod.VideoWriter.write = write
        return run_videos(member_spec, root, split, videos, store_path)

    return task


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'ray>=2.40')")
    # a small object store: the tasks exchange only file names and summaries
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 2**20,
             _node_ip_address="127.0.0.1")  # keep all of Ray's traffic on loopback
    yield ray
    ray.shutdown()


def test_ray_launcher_survives_a_worker_killed_mid_video(ray_session, clips, weights, local_run, tmp_path, capsys):
    from pipeline.launch.ray_launcher import launch_ray

    store = tmp_path / "store"
    markers = tmp_path / "markers"
    markers.mkdir()
    lines = []
    report = launch_ray(_spec(weights), clips, None, store, max_retries=2,
                        task=_kill_once_task(str(markers), VICTIM), echo=lines.append)
    killed = json.loads((markers / "killed.json").read_text())
    assert killed["partial_exists"] and killed["partial_bytes"] > 0  # it really died mid-video
    attempts = {v: (markers / f"{v}.attempts").read_text().split() for v in CLIPS}
    assert len(attempts[VICTIM]) == 2 and attempts[VICTIM][0] == str(killed["pid"])
    assert attempts[VICTIM][1] != attempts[VICTIM][0]  # the retry ran in a fresh worker
    assert all(len(attempts[v]) == 1 for v in CLIPS if v != VICTIM)
    assert report.ok and not report.failures, "\n".join(lines)
    assert report.units == 3 and any("1 CPU" in line for line in lines)
    # exactly once: one zip per video, nothing half-written, nothing else
    assert _store_files(store) == ["bmx-trees.zip", "chair.zip", "libby.zip"]
    check = check_store(store, list(CLIPS), {v: n for v, (_, n) in CLIPS.items()})
    assert check.ok and not check.extra and not check.partial
    # the retried video and the others are what an uninterrupted run produces
    _assert_same_logits(store, local_run["store"], list(CLIPS))

    # per-shard tasks into a fresh store (workers already hold the model)
    store2 = tmp_path / "store2"
    report2 = launch_ray(_spec(weights), clips, None, store2, unit="shard", shards=2, echo=lines.append)
    assert report2.ok and report2.units == 2
    _assert_same_logits(store2, local_run["store"], list(CLIPS))


def test_ray_launcher_reports_a_video_that_fails_for_good(ray_session, clips, weights, tmp_path):
    from pipeline.launch.ray_launcher import launch_ray
    from pipeline.launch.report import LaunchError

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    spec = dict(_spec(weights), checkpoint=str(bad))
    lines = []
    report = launch_ray(spec, clips, None, tmp_path / "store", videos=["libby"], max_retries=1, echo=lines.append)
    assert [f.unit for f in report.failures] == ["video libby"]
    assert "cannot read checkpoint" in report.failures[0].reason
    with pytest.raises(LaunchError, match="video libby: CheckpointError"):
        report.raise_if_failed()
