"""What each official evaluator does with the per-frame J and F: frame and object selection, per-object
statistics and the dataset score.

* ``davis`` (davis2017-evaluation): objects 1..max id of the first-frame GT; every frame but the first and
  last; per object mean, recall (fraction of frames > 0.5) and decay (first quarter minus last quarter);
  dataset = mean over (video, object) pairs, J&F = (J + F) / 2.
* ``mosev2`` (MOSE-api MOSEv2 ``tools/score.py``): objects from meta.json (else the first-frame ids); J with
  +1 smoothing, F and the adaptive F-dot; J&F-dot over the frames where an object has disappeared or reappeared.
* ``vos-benchmark`` (hkchengrex/vos-benchmark 0.1.0): objects seen in the scored GT frames; an object's frames
  start where it first appears in GT *or* prediction; same J and F as DAVIS.
"""
from __future__ import annotations

import warnings

import numpy as np

PROTOCOLS = ("davis", "mosev2", "vos-benchmark")
_ALIASES = {"davis": "davis", "davis2017": "davis", "mosev2": "mosev2", "mose": "mosev2",
            "vos-benchmark": "vos-benchmark", "vos_benchmark": "vos-benchmark", "vosb": "vos-benchmark"}
# column suffix of each protocol in the tables (the golden files use the same)
SUFFIX = {"davis": "davis", "mosev2": "mose", "vos-benchmark": "vosb"}


def normalize_protocols(protocol) -> tuple[str, ...]:
    """'davis' | 'mosev2' | 'vos-benchmark' | 'all' | a list of them -> canonical names in PROTOCOLS order."""
    names = [protocol] if isinstance(protocol, str) else list(protocol)
    out = set()
    for name in names:
        key = str(name).strip().lower()
        if key == "all":
            out.update(PROTOCOLS)
        elif key in _ALIASES:
            out.add(_ALIASES[key])
        else:
            raise ValueError(f"unknown protocol {name!r}; choose from {', '.join(PROTOCOLS)} or 'all'")
    if not out:
        raise ValueError("no protocol selected")
    return tuple(p for p in PROTOCOLS if p in out)


def _nanmean(x) -> float:
    x = np.asarray(x, np.float64)
    if x.size == 0 or np.all(np.isnan(x)):
        return float("nan")
    return float(np.nanmean(x))


def davis_statistics(values: np.ndarray, strict_compat: bool = False) -> tuple[float, float, float]:
    """Mean, recall and decay of one object's per-frame values, as ``davis2017/utils.db_statistics``.

    Decay splits the frames into 4 overlapping bins at ``round(linspace(1, n, 5) + 1e-10) - 1`` and subtracts
    the last bin's mean from the first's. The official code casts those bin edges to uint8, so for more than
    256 scored frames they wrap around (and at 256 the last bin is empty). ``strict_compat`` reproduces that
    (x86 wrap-around, modulo 256); the default uses exact integer edges, identical up to 255 frames.
    """
    v = np.asarray(values, np.float64)
    mean = _nanmean(v)
    recall = _nanmean(v > 0.5) if v.size else float("nan")
    edges = np.round(np.linspace(1, len(v), 5) + 1e-10) - 1
    if strict_compat:
        ids = [int(e) % 256 for e in edges.astype(np.int64)]
        ends = [(i + 1) % 256 for i in ids]
    else:
        ids = [int(e) for e in edges]
        ends = [i + 1 for i in ids]
    first = v[ids[0]:ends[1]]
    last = v[ids[3]:ends[4]]
    decay = _nanmean(first) - _nanmean(last)
    return mean, recall, decay


def mose_segments(j: np.ndarray, fdot: np.ndarray, empty_gt: np.ndarray):
    """MOSEv2 disappear / reappear means of one object, as ``merge_chunk_results`` in score.py.

    A disappearance segment runs from a frame whose GT is empty after a non-empty one up to the next
    reappearance (or the end); an object empty from the first scored frame on does not count as disappearing.
    A reappearance segment runs from the first non-empty frame after empty ones to the next disappearance.
    Returns ``(disappear_J, disappear_Fdot, reappear_J, reappear_Fdot)``; ``None`` where there is no segment.
    """
    empty = np.asarray(empty_gt, bool)
    j = np.asarray(j, np.float64)
    f = np.asarray(fdot, np.float64)
    disappear = np.flatnonzero(~empty[:-1] & empty[1:]) + 1
    if empty.size and empty[0]:
        disappear = np.insert(disappear, 0, 0)
    reappear = np.flatnonzero(empty[:-1] & ~empty[1:]) + 1
    n = empty.size

    d_j = d_f = r_j = r_f = None
    segs = []
    for i, start in enumerate(disappear):
        end = reappear[i] if i < len(reappear) else n
        if start > 0:
            segs.append((j[start:end].mean(), f[start:end].mean()))
    if segs:
        d_j = float(np.mean([s[0] for s in segs]))
        d_f = float(np.mean([s[1] for s in segs]))
    segs = []
    for i, start in enumerate(reappear):
        end = disappear[i + 1] if i + 1 < len(disappear) else n
        segs.append((j[start:end].mean(), f[start:end].mean()))
    if segs:
        r_j = float(np.mean([s[0] for s in segs]))
        r_f = float(np.mean([s[1] for s in segs]))
    return d_j, d_f, r_j, r_f


def vosb_first_counted(gt_present: np.ndarray, pred_present: np.ndarray) -> int | None:
    """Index (into the scored frames) where vos-benchmark starts counting an object, or None when the object
    never appears in the scored GT (vos-benchmark then does not report it)."""
    gt_present = np.asarray(gt_present, bool)
    if not gt_present.any():
        return None
    return int(np.flatnonzero(gt_present | np.asarray(pred_present, bool))[0])


def object_row(protocols, strict_compat: bool, J: np.ndarray, F: np.ndarray, J_mose: np.ndarray,
               F_mose: np.ndarray, Fdot: np.ndarray, gt_area: np.ndarray, pred_area: np.ndarray,
               frame_index: np.ndarray, in_davis: bool, in_mose: bool) -> dict:
    """Per-object statistics of every protocol that scores this object (keys suffixed by protocol)."""
    row: dict = {}
    if "davis" in protocols and in_davis:
        jm, jr, jd = davis_statistics(J, strict_compat)
        fm, fr, fd = davis_statistics(F, strict_compat)
        row.update(J_davis=jm, JR_davis=jr, JD_davis=jd, F_davis=fm, FR_davis=fr, FD_davis=fd,
                   JF_davis=(jm + fm) / 2, nframes_davis=len(J))
    if "mosev2" in protocols and in_mose:
        empty = gt_area == 0
        jm, fdm, fm = float(J_mose.mean()), float(Fdot.mean()), float(F_mose.mean())
        d_j, d_f, r_j, r_f = mose_segments(J_mose, Fdot, empty)
        nan = float("nan")
        row.update(J_mose=jm, Fdot_mose=fdm, F_mose=fm, JFdot_mose=(jm + fdm) / 2, JF_mose=(jm + fm) / 2,
                   disappear_JFdot_mose=(d_j + d_f) / 2 if d_j is not None else nan,
                   reappear_JFdot_mose=(r_j + r_f) / 2 if r_j is not None else nan,
                   disappear_J_mose=nan if d_j is None else d_j, disappear_Fdot_mose=nan if d_f is None else d_f,
                   reappear_J_mose=nan if r_j is None else r_j, reappear_Fdot_mose=nan if r_f is None else r_f,
                   nframes_mose=len(J_mose))
    if "vos-benchmark" in protocols:
        start = vosb_first_counted(gt_area > 0, pred_area > 0)
        if start is not None:
            jv, fv = float(J[start:].mean()), float(F[start:].mean())
            row.update(J_vosb=jv, F_vosb=fv, JF_vosb=(jv + fv) / 2, nframes_vosb=len(J) - start,
                       first_counted_frame_vosb=int(frame_index[start]))
    return row


def global_scores(protocols, per_object) -> dict:
    """Dataset scores: unweighted means over (video, object) pairs, per protocol (values in [0, 1])."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        if "davis" in protocols:
            d = per_object.dropna(subset=["J_davis"]) if "J_davis" in per_object else per_object.iloc[:0]
            jm, fm = _mean(d, "J_davis"), _mean(d, "F_davis")
            out["davis"] = {"J&F-Mean": (jm + fm) / 2, "J-Mean": jm, "J-Recall": _mean(d, "JR_davis"),
                            "J-Decay": _mean(d, "JD_davis"), "F-Mean": fm, "F-Recall": _mean(d, "FR_davis"),
                            "F-Decay": _mean(d, "FD_davis"), "n_objects": int(len(d))}
        if "mosev2" in protocols:
            d = per_object.dropna(subset=["J_mose"]) if "J_mose" in per_object else per_object.iloc[:0]
            j, fdot, f = _mean(d, "J_mose"), _mean(d, "Fdot_mose"), _mean(d, "F_mose")
            out["mosev2"] = {"J&Fdot": (j + fdot) / 2, "J": j, "Fdot": fdot, "F": f, "J&F": (j + f) / 2,
                             "disappear_J&Fdot": (_mean(d, "disappear_J_mose") + _mean(d, "disappear_Fdot_mose")) / 2,
                             "reappear_J&Fdot": (_mean(d, "reappear_J_mose") + _mean(d, "reappear_Fdot_mose")) / 2,
                             "n_objects": int(len(d))}
        if "vos-benchmark" in protocols:
            d = per_object.dropna(subset=["J_vosb"]) if "J_vosb" in per_object else per_object.iloc[:0]
            j, f = _mean(d, "J_vosb"), _mean(d, "F_vosb")
            out["vos-benchmark"] = {"J&F": (j + f) / 2, "J": j, "F": f, "n_objects": int(len(d))}
    return out


def _mean(df, col) -> float:
    """Mean over the rows that have a value (score.py drops objects without disappear/reappear segments)."""
    if col not in df or len(df) == 0:
        return float("nan")
    return _nanmean(df[col].to_numpy(np.float64))
