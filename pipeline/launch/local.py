"""Local launcher: one worker process per visible GPU (or N CPU workers), each on its own shard, one store.

Why processes and not threads: each worker owns one GPU through ``CUDA_VISIBLE_DEVICES`` (so model code needs no
device plumbing and a crash takes down one shard only), and torch's CPU thread pools do not fight inside one
interpreter. Shards come from :mod:`data.shards` (balanced by frame count, deterministic), so this is exactly what
a Slurm array of ``--shard i/n`` tasks would do. Every output line of a worker is prefixed with ``[wI]``. All
workers run to the end even if one fails; then failures are reported and the store is checked for completeness.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence, TextIO

from data.errors import MassegError

from .report import Failure, LaunchReport
from .spec import check_spec, spec_to_json
from .work import check_store, planned_videos

TAIL_LINES = 20


def visible_gpus() -> list[str]:
    """GPU ids this process may hand out: ``CUDA_VISIBLE_DEVICES`` when set (ids or UUIDs), else all devices."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [g.strip() for g in env.split(",") if g.strip()]
        # CUDA stops at the first invalid id ("-1" is the usual "no GPU")
        out = []
        for g in ids:
            if g.startswith("-"):
                break
            out.append(g)
        return out
    try:
        import torch
        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # no torch / broken driver: CPU workers
        return []


@dataclass
class WorkerResult:
    label: str
    returncode: int
    seconds: float
    tail: list[str] = field(default_factory=list)


def run_workers(commands: Sequence[Sequence[str]], envs: Sequence[dict], labels: Sequence[str],
                out: TextIO | None = None) -> list[WorkerResult]:
    """Start every command, stream their merged stdout/stderr line by line with ``[label]`` prefixes, wait for all.

    Ctrl-C (or any exception here) terminates the workers started so far, then re-raises."""
    out = out or sys.stdout
    lock = threading.Lock()
    procs: list[subprocess.Popen] = []
    tails: list[collections.deque] = []
    readers: list[threading.Thread] = []
    starts: list[float] = []

    def pump(proc: subprocess.Popen, label: str, tail: collections.deque) -> None:
        for raw in proc.stdout:  # bytes: text mode would turn every carriage return into a new line
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            # progress bars redraw with carriage returns: keep the last state of the line
            line = line.rsplit("\r", 1)[-1]
            tail.append(line)
            with lock:
                out.write(f"[{label}] {line}\n")
                out.flush()

    try:
        for cmd, env, label in zip(commands, envs, labels):
            proc = subprocess.Popen(list(cmd), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            tail = collections.deque(maxlen=TAIL_LINES)
            t = threading.Thread(target=pump, args=(proc, label, tail), daemon=True)
            t.start()
            procs.append(proc)
            tails.append(tail)
            readers.append(t)
            starts.append(time.perf_counter())
        results = []
        for proc, t, tail, label, t0 in zip(procs, readers, tails, labels, starts):
            rc = proc.wait()
            t.join()
            results.append(WorkerResult(label, rc, time.perf_counter() - t0, list(tail)))
        return results
    except BaseException:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise


def _describe_exit(rc: int) -> str:
    if rc < 0:
        import signal
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def launch_local(member_spec: dict, root, split, store_path, workers: int | None = None,
                 gpus: Sequence[str] | None = None, videos: Sequence[str] | None = None,
                 python: str | None = None, out: TextIO | None = None,
                 echo: Callable[[str], None] | None = None) -> LaunchReport:
    """Run one member over the split with N local workers and check the store; returns the report (raise with
    ``report.raise_if_failed()``).

    ``workers``: default one per GPU in ``gpus`` (default: the visible ones; a spec with device "cpu" uses none),
    or 1 without GPUs. With more workers than GPUs, GPUs are shared round-robin. CPU workers split the machine's
    cores between them (``OMP_NUM_THREADS``) unless the spec sets ``threads``."""
    t0 = time.perf_counter()
    spec = check_spec(member_spec)
    say = echo or (lambda s: print(s, file=out or sys.stdout, flush=True))
    root, store_path = Path(root).resolve(), Path(store_path).resolve()
    dataset, counts = planned_videos(root, split, spec["objects_from"], videos)

    from pipeline.registry import resolve_checkpoint
    resolve_checkpoint(spec["checkpoint"])  # download once here, not N times (and fail before any worker starts)

    if gpus is None:
        gpus = [] if spec["device"] == "cpu" else visible_gpus()
    gpus = list(gpus)
    if workers is not None and workers < 1:
        raise MassegError(f"--workers must be >= 1, got {workers}")
    n = workers or max(1, len(gpus))
    n = min(n, len(counts))  # an empty shard would only start a model for nothing
    threads = None
    if not gpus and spec["threads"] is None:
        threads = max(1, (os.cpu_count() or 1) // n)

    with tempfile.TemporaryDirectory(prefix="masseg-launch-") as tmp:
        plan = Path(tmp) / "plan.json"
        plan.write_text(json.dumps(counts))
        commands, envs, labels, units = [], [], [], []
        for i in range(n):
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            where = "CPU"
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
                where = f"GPU {gpus[i % len(gpus)]}"
            elif threads is not None:
                env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
            wspec = dict(spec, threads=spec["threads"] or threads)
            commands.append([python or sys.executable, "-m", "pipeline.launch.worker", "--spec", spec_to_json(wspec),
                             "--root", str(root), *(["--split", str(split)] if split else []),
                             "--store", str(store_path), "--plan", str(plan), "--shard", f"{i}/{n}"])
            envs.append(env)
            labels.append(f"w{i}")
            units.append(f"worker {i} (shard {i}/{n}, {where})")
        placement = f"on GPUs {','.join(gpus)}" if gpus else f"on CPU, {threads or spec['threads']} threads each"
        say(f"local launcher: {len(counts)} videos, {sum(counts.values())} frames, {n} workers {placement}")
        results = run_workers(commands, envs, labels, out=out)

    report = LaunchReport("local", n, str(store_path), seconds=time.perf_counter() - t0)
    for unit, r in zip(units, results):
        if r.returncode != 0:
            report.failures.append(Failure(unit, _describe_exit(r.returncode), r.tail))
    report.check = check_store(store_path, list(counts), counts)
    say(report.summary())
    return report
