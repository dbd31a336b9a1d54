"""Difficulty measures of a clip, computed from its annotations alone.

A frame is summarised as ``{object id: (area, y0, x0, y1, x1)}`` (box end exclusive), so a long video is decoded
once and any of its segments is measured from these summaries. The measures follow the difficulties MOSE is known
for (and MOSE+ should add more of):

* occlusion: ``overlap_frac`` (share of frames in which two objects' boxes overlap by at least ``box_overlap`` of
  the smaller box) and ``area_drops`` (times an object still visible loses at least ``area_drop`` of its area
  from one frame to the next: partly hidden);
* disappearance: ``disappearances`` (visible -> absent) and ``reappearances`` (absent -> visible again);
* small objects: ``small_share``, the smallest per-object median area as a share of the frame;
* crowding: ``crowding``, objects visible per frame on average (``max_visible`` the peak).
"""
from __future__ import annotations

from statistics import median

import numpy as np
from scipy import ndimage

MEASURES = ("objects", "crowding", "max_visible", "small_share", "overlap_frac", "area_drops",
            "disappearances", "reappearances")
CRITERIA = ("occlusion", "disappearance", "small", "crowding")

DEFAULT_SELECTION = {
    "min_criteria": 1,             # a clip is admitted when it meets at least this many criteria
    "box_overlap": 0.2,            # intersection / smaller box for two objects to count as overlapping
    "occlusion_overlap_frac": 0.25,
    "area_drop": 0.5,
    "occlusion_area_drops": 2,
    "reappearances": 1,
    "small_share": 0.01,
    "crowding": 4.0,
}


def frame_info(labels: np.ndarray) -> dict[int, tuple[int, int, int, int, int]]:
    """Area and box of every object id in one label map."""
    labels = np.asarray(labels)
    if not labels.size:
        return {}
    small = labels.dtype in (np.uint8, np.uint16) or (labels.min() >= 0 and labels.max() < 1 << 16)
    if small:
        areas = np.bincount(labels.ravel())
        ids = np.nonzero(areas[1:])[0] + 1
        if len(ids) <= 16:  # a few objects: row/column projections beat find_objects
            out = {}
            for i in ids:
                m = labels == i
                rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
                out[int(i)] = (int(areas[i]), int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)
            return out
        boxes = ndimage.find_objects(labels.astype(np.int32, copy=False))
        return {i + 1: (int(areas[i + 1]), s[0].start, s[1].start, s[0].stop, s[1].stop)
                for i, s in enumerate(boxes) if s is not None}
    ids, inv = np.unique(labels, return_inverse=True)
    inv = inv.reshape(labels.shape).astype(np.int32) + 1
    areas = np.bincount(inv.ravel(), minlength=len(ids) + 1)
    boxes = ndimage.find_objects(inv)
    return {int(ids[i]): (int(areas[i + 1]), s[0].start, s[1].start, s[0].stop, s[1].stop)
            for i, s in enumerate(boxes) if s is not None and ids[i] != 0}


def _overlap(a, b) -> float:
    ih = min(a[3], b[3]) - max(a[1], b[1])
    iw = min(a[4], b[4]) - max(a[2], b[2])
    if ih <= 0 or iw <= 0:
        return 0.0
    sa = (a[3] - a[1]) * (a[4] - a[2])
    sb = (b[3] - b[1]) * (b[4] - b[2])
    return ih * iw / max(1, min(sa, sb))


def measure(infos: list[dict], frame_area: int, sel: dict | None = None) -> dict:
    """The difficulty measures of a sequence of frame summaries (see the module docstring)."""
    sel = {**DEFAULT_SELECTION, **(sel or {})}
    t = len(infos)
    objs = sorted(set().union(*infos)) if infos else []
    visible = [len(f) for f in infos]
    out = {"frames": t, "objects": len(objs),
           "crowding": float(np.mean(visible)) if t else 0.0, "max_visible": max(visible, default=0)}
    shares = [median(f[o][0] for f in infos if o in f) / frame_area for o in objs]
    out["small_share"] = float(min(shares)) if shares else 1.0
    overlapping = 0
    for f in infos:
        items = list(f.values())
        if any(_overlap(items[i], items[j]) >= sel["box_overlap"]
               for i in range(len(items)) for j in range(i + 1, len(items))):
            overlapping += 1
    out["overlap_frac"] = overlapping / t if t else 0.0
    drops = dis = re = 0
    for o in objs:
        seen = False
        prev = None  # area in the previous frame, None when absent
        for f in infos:
            cur = f[o][0] if o in f else None
            if cur is not None and prev is not None and cur <= (1.0 - sel["area_drop"]) * prev:
                drops += 1
            if cur is None and prev is not None:
                dis += 1
            if cur is not None and prev is None and seen:
                re += 1
            seen = seen or cur is not None
            prev = cur
    out.update(area_drops=drops, disappearances=dis, reappearances=re)
    return out


def criteria(m: dict, sel: dict | None = None) -> list[str]:
    """Names of the difficulty criteria a clip's measures meet."""
    sel = {**DEFAULT_SELECTION, **(sel or {})}
    met = []
    if m["overlap_frac"] >= sel["occlusion_overlap_frac"] or m["area_drops"] >= sel["occlusion_area_drops"]:
        met.append("occlusion")
    if m["reappearances"] >= sel["reappearances"]:
        met.append("disappearance")
    if m["objects"] and m["small_share"] <= sel["small_share"]:
        met.append("small")
    if m["crowding"] >= sel["crowding"]:
        met.append("crowding")
    return met
