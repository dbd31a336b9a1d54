"""Ensemble: fuse member logit stores (SAM2, Cutie; scales, flips) and other tools' label PNGs into label maps,
and sweep fusion settings.

Public API:

* :mod:`ensemble.config`: :class:`FusionConfig` / :class:`MemberSpec`, :func:`load_config` -- the fusion-config
  TOML schema (``masseg fuse --config``; ``masseg sweep`` writes ``best.toml`` in it).
* :func:`ensemble.fuse.fuse`: fuse a split into ``<run>/labels`` through the submission writer
  (:func:`submission.build.submit_dataset_labels` then validates and zips it).
* :mod:`ensemble.recipes`: each recipe kind's mapping (looked up by the :mod:`data.recipes` type) of native
  logits to video-resolution class maps.
* :mod:`ensemble.pngs`: PNG members -- another tool's label maps (``<video>/<frame>.png``) as one-hot votes with
  a soft-voting ``confidence``, checked like stores, fingerprinted for resume.
* :mod:`ensemble.voting`: soft / majority voting, groups, :class:`~ensemble.voting.FrameFusion` (one frame,
  many settings).
* :mod:`ensemble.grid`: settings to compare (simplex weight grids, scale/bias ranges);
  :func:`ensemble.sweep.sweep` evaluates them in one pass with the project's J&F evaluator;
  :func:`ensemble.report.write_report` writes the ranked tables, plots and ``best.toml``.

Dependency rule: ``ensemble`` imports ``data`` and ``submission``, never ``models`` or ``pipeline``.
"""
from .config import FusionConfig, MemberSpec, load_config

__all__ = ["FusionConfig", "MemberSpec", "load_config"]
