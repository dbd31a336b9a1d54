"""Ray launcher: one task per video (or per shard) on an existing Ray cluster, writing into a shared store.

Each task runs :func:`pipeline.launch.work.run_videos` with one GPU (``num_gpus=1``) when the cluster has GPUs,
else one CPU. A task whose worker process dies (OOM killer, preemption, a node lost) is retried by Ray up to
``max_retries`` times; so is a task that raised a transient error (``RuntimeError`` such as CUDA OOM, ``OSError``);
a user-facing error (bad dataset, bad checkpoint) is not retried, since it would fail the same way. A retry of a
video is safe: the store shows a video only once it is complete, and the retry replaces the dead attempt's partial
file. Worker processes keep the built model between tasks of the same member (see ``work.build_segmenter``).

Requirements for a multi-machine cluster: masseg-pipeline (and sam2) installed on every node, the dataset root and
the store folder on a shared filesystem at the same path everywhere (the driver checks the store at the end), and
the checkpoint either cached on every node or downloadable there (each node resolves it into its own cache).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

from data.errors import MassegError
from data.shards import assign_shards

from .report import Failure, LaunchReport
from .spec import check_spec
from .work import check_store, planned_videos, run_videos

RETRY_EXCEPTIONS = [RuntimeError, OSError]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MassegError("the Ray launcher needs the ray package",
                          fix="pip install 'ray>=2.40' (or install masseg-pipeline[ray])") from None
    return ray


def launch_ray(member_spec: dict, root, split, store_path, address: str | None = None, unit: str = "video",
               shards: int | None = None, max_retries: int = 3, videos: Sequence[str] | None = None,
               task: Callable | None = None, init_kwargs: dict | None = None,
               echo: Callable[[str], None] | None = print) -> LaunchReport:
    """Schedule the member's videos on Ray and wait; returns the report (raise with ``report.raise_if_failed()``).

    ``address``: a cluster address ("auto", "ray://host:10001", "host:6379"); "local" starts a private instance
    for this run; None does what ``ray.init()`` does (``$RAY_ADDRESS`` if set, else a private instance). ``unit``: "video" (one task per video: finest retries and balancing) or "shard"
    (``shards`` tasks of frame-balanced video groups: one model build per shard). ``task``: the work-unit
    function (default :func:`run_videos`; same signature)."""
    ray = _import_ray()
    t0 = time.perf_counter()
    spec = check_spec(member_spec)
    say = echo or (lambda s: None)
    if unit not in ("video", "shard"):
        raise MassegError(f"unknown unit {unit!r}", fix="use video or shard")
    root, store_path = Path(root).resolve(), Path(store_path).resolve()
    dataset, counts = planned_videos(root, split, spec["objects_from"], videos)

    started_here = False
    if not ray.is_initialized():
        kwargs = dict(init_kwargs or {})
        kwargs.setdefault("log_to_driver", True)
        from models.registry import ENV_VAR
        if os.environ.get(ENV_VAR):   # models declared outside this repository: the tasks must see them too
            env = kwargs.setdefault("runtime_env", {}).setdefault("env_vars", {})
            env.setdefault(ENV_VAR, os.environ[ENV_VAR])
        if address and address != "local":
            kwargs["address"] = address
        else:  # a private single-machine instance: keep its traffic on loopback
            kwargs.setdefault("_node_ip_address", "127.0.0.1")
        try:
            ray.init(**kwargs)
        except ConnectionError as exc:
            raise MassegError(f"cannot connect to the Ray cluster at {address!r} ({exc})",
                              fix="start it with `ray start --head` or pass the right --address") from None
        started_here = True
    try:
        resources = ray.cluster_resources()
        use_gpu = spec["device"] != "cpu" and resources.get("GPU", 0) > 0
        placement = {"num_gpus": 1} if use_gpu else {"num_cpus": 1}
        fn = ray.remote(task or run_videos).options(max_retries=max_retries, retry_exceptions=RETRY_EXCEPTIONS,
                                                    **placement)
        if unit == "video":
            groups = [[v] for v in counts]
        else:
            n = shards or max(1, int(resources.get("GPU" if use_gpu else "CPU", 1)))
            groups = [g for g in assign_shards(counts, min(n, len(counts))) if g]
        say(f"ray launcher: {len(counts)} videos in {len(groups)} tasks, each with "
            f"{'1 GPU' if use_gpu else '1 CPU'}, up to {max_retries} retries; cluster {dict(resources)}")
        pending = {fn.remote(spec, str(root), split, g, str(store_path)): g for g in groups}
        report = LaunchReport("ray", len(groups), str(store_path))
        done = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            ref = ready[0]
            group = pending.pop(ref)
            label = f"video {group[0]}" if unit == "video" else f"shard of {len(group)} videos ({group[0]}, ...)"
            done += 1
            try:
                result = ray.get(ref)
            except Exception as exc:  # RayTaskError (the task raised), WorkerCrashedError, NodeDiedError, ...
                report.failures.append(Failure(label, _one_line(exc)))
                say(f"[{done}/{len(groups)}] {label}: FAILED ({_one_line(exc)})")
                continue
            state = "done" if result.get("done") else "already complete"
            say(f"[{done}/{len(groups)}] {label}: {state} in {result.get('seconds', 0):.1f} s (pid {result.get('pid')})")
    finally:
        if started_here:
            ray.shutdown()
    report.seconds = time.perf_counter() - t0
    report.check = check_store(store_path, list(counts), counts)
    say(report.summary())
    return report


def _one_line(exc: BaseException) -> str:
    """The root cause of a Ray error in one line (RayTaskError wraps the task's exception and its traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        exc = cause
    text = str(exc).strip().splitlines()
    last = next((t for t in reversed(text) if t.strip()), "") if text else ""
    return f"{type(exc).__name__}: {last}"[:400]
