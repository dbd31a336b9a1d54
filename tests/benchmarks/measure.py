"""What the benchmarks measure with, written once: wall and process CPU time, peak resident memory, one measurement
per subprocess, symlinked inputs and the JSON result. Process CPU time is the cost measure everywhere (the machine
is shared, so wall time is noisier); both are reported.

Not a benchmark itself (``make bench`` collects ``bench_*.py`` only)."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(what ``fn()`` returned, wall seconds, CPU seconds of this process)."""
    w0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - w0, time.process_time() - c0


def cpu_seconds() -> float:
    """User + system CPU time of this process: less sensitive than wall time to other work on a shared machine."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class RssSampler:
    """Highest resident set size seen while processing, sampled every 20 ms: ru_maxrss alone cannot tell the
    processing peak from the model-building transient (loading a checkpoint briefly holds two copies)."""

    def __init__(self, interval: float = 0.02):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def run_worker(module: str, spec: dict) -> dict:
    """One measurement in a fresh process (clean peak RSS): ``python -m <module> worker <spec as JSON>`` with a
    temporary ``out`` folder; the worker prints its result as the last line of JSON."""
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=str(REPO))
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-m", module, "worker", json.dumps(dict(spec, out=out))],
                              capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"worker failed ({spec['flow']}, {spec['video']}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def recipe_weights(recipe: Path, out: Path, sha256: str) -> Path:
    """Run a shared ``make_weights.py --out OUT``; it must succeed and print the expected state-dict sha256."""
    proc = subprocess.run([sys.executable, str(recipe), "--out", str(out)], capture_output=True, text=True)
    if proc.returncode != 0 or sha256 not in proc.stdout:
        raise RuntimeError(f"weights recipe failed or sha256 differs:\n{proc.stdout}{proc.stderr}")
    return out


def link(dst: Path, src: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)


def emit(result: dict, out: str | os.PathLike | None) -> None:
    """Print the result as JSON, and write it to ``out`` when given (``--out``)."""
    text = json.dumps(result, indent=1)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


def skip_without_clips() -> None:
    """In a `make bench` entry: skip with the reason where the shared clips are absent."""
    import pytest

    if not (SHARED / "vos-clips").is_dir():
        pytest.skip(f"shared clips not found at {SHARED / 'vos-clips'}")
