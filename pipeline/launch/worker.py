"""One worker process of the local launcher: ``python -m pipeline.launch.worker --spec JSON ... --shard i/n``.

It runs :func:`pipeline.launch.work.run_videos` on its shard of the plan (the same deterministic, frame-balanced
assignment as ``masseg infer --shard``, so a Slurm array task running that command does the same work). Exit
status: 0 done, 2 user-facing error (one ``error:`` line), 1 anything else (with a traceback).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from data.errors import MassegError
from data.shards import parse_shard, shard_videos


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # the launcher stops workers with SIGTERM: unwind normally so the video being written drops its partial file
    signal.signal(signal.SIGTERM, _interrupt)
    ap = argparse.ArgumentParser(prog="python -m pipeline.launch.worker", description=__doc__)
    ap.add_argument("--spec", required=True, help="member spec as JSON")
    ap.add_argument("--root", required=True)
    ap.add_argument("--split", default=None)
    ap.add_argument("--store", required=True)
    ap.add_argument("--shard", default=None, help="i/n")
    ap.add_argument("--plan", default=None, help="JSON {video: frame count} to shard (default: the whole split)")
    args = ap.parse_args(argv)
    try:
        from .spec import spec_from_json
        from .work import open_dataset, run_videos

        spec = spec_from_json(args.spec)
        parse_shard(args.shard)
        if args.plan:
            try:
                counts = json.loads(Path(args.plan).read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise MassegError(f"cannot read the launch plan ({exc})", args.plan) from None
        else:
            counts = open_dataset(args.root, args.split, spec["objects_from"]).frame_counts()
        videos = shard_videos(counts, args.shard)
        print(f"shard {args.shard or '0/1'}: {len(videos)} videos, {sum(counts[v] for v in videos)} frames",
              flush=True)
        if videos:
            out = run_videos(spec, args.root, args.split, videos, args.store)
            print(f"shard {args.shard or '0/1'}: {len(out['done'])} done, {len(out['skipped'])} already complete, "
                  f"{out['seconds']:.1f} s", flush=True)
    except MassegError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
