"""Ensemble: fuse member logit stores (SAM2, Cutie; scales, flips) into label maps, and sweep fusion settings.

Public API:

* :mod:`ensemble.config`: :class:`FusionConfig` / :class:`MemberSpec`, :func:`load_config` (the TOML schema).
* :func:`ensemble.fuse.fuse`: fuse a split into ``<run>/labels`` through the submission writer.
* :mod:`ensemble.recipes`: each model's own mapping of native logits to video-resolution class maps.
* :mod:`ensemble.voting`: soft / majority voting, groups, :class:`FrameFusion` (one frame, many settings).
* :mod:`ensemble.sweep`: evaluate many settings against ground truth in one pass (``masseg sweep``).

Dependency rule: ``ensemble`` imports ``data`` and ``submission``, never ``models`` or ``pipeline``.
"""
from .config import FusionConfig, MemberSpec, load_config

__all__ = ["FusionConfig", "MemberSpec", "load_config"]
