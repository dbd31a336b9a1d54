"""Orchestration: the `masseg` command line over all stages (infer, fuse, submit, evaluate, sweep, run)."""
