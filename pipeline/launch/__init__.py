"""Scale-out launchers: run one member's inference over many videos on several GPUs / processes / machines.

Everything here funnels into one work unit, :func:`pipeline.launch.work.run_videos` (a JSON-able member spec,
a dataset, a list of videos, a store folder), so that a local process, a Slurm array task and a Ray task do
exactly the same thing. Workers coordinate only through the logit store: a video becomes visible there only when
complete (atomic rename), complete videos are skipped, so any worker may die and any rerun or retry resumes.

* :mod:`.local`: one subprocess per visible GPU (or N CPU workers), each on ``--shard i/N``; output prefixed.
* :mod:`.ray_launcher`: one Ray task per video (or per shard) on an existing cluster, retried on failure.
* :func:`.work.check_store`: after either, every video must be in the store exactly once.
"""
from .spec import member_spec, spec_from_member_run
from .work import StoreCheck, check_store, run_videos

__all__ = ["StoreCheck", "check_store", "member_spec", "run_videos", "spec_from_member_run"]
