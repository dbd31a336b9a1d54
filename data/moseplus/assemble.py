"""Assemble MOSE+: MOSE train plus the difficult clips of other datasets, in MOSE's layout.

Two passes. The scan decodes the annotations of every source video once (subsampled to ``target_fps``), cuts
it into segments of at most ``max_frames`` and measures each segment's difficulty (:mod:`.stats`); a source's
scan is cached under ``<out>/.moseplus/scan/``. Selection ranks a source's segments by the number of criteria
met (ties broken by a seeded hash of the name, so the choice is reproducible) and keeps them up to the source's
quota. The write pass then copies each chosen segment into ``JPEGImages/<clip>/`` and ``Annotations/<clip>/``
(frames renumbered ``00000.jpg``.., object ids remapped to 1..K in order of appearance; past 255 objects the
later ones are left out, the label maps being 8-bit; JPEG frames, and indexed PNG masks whose ids need no
remapping, are copied byte for byte), building it in a
staging folder and moving it into place, then recording a marker: a killed run resumes at the first clip
without a marker, and a clip is never seen half-written. (A scan is reused while the config and the annotation
files' names, sizes and times are unchanged; a written clip while its config and frame list are.)

The local validation split never leaks in: a video whose name is on the list is skipped at the scan, and every
frame written is compared with the validation frames, by file hash and by decoded-pixel hash; a clip holding
such a frame is rejected and the next candidate of its source takes its place.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..dataset import VOSDataset, read_split_file
from ..errors import DatasetError, MassegError
from ..labels import encode_labels
from . import stats as S
from .sources import Source, SourceClip, safe_name

WORK = ".moseplus"
SCAN_VERSION = 1
HIST_MEASURES = ("crowding", "small_share", "overlap_frac", "area_drops", "reappearances", "objects")
CSV_COLUMNS = ("clip", "source", "video", "first_frame", "last_frame", "frames", "step", *S.MEASURES,
               "criteria", "score", "status", "reason")


def _sha(data) -> str:
    if not isinstance(data, (bytes, bytearray)):
        data = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


def _pixel_hash(arr: np.ndarray) -> str:
    h = hashlib.sha256(repr(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _write(path: Path, data: bytes) -> None:
    """Atomic write, file mode from the user's umask (mkstemp would make it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _decode(data: bytes, path: Path, full: bool) -> tuple[tuple[int, int], np.ndarray | None, str | None]:
    """(size, RGB pixels or None, JPEG draft hash or None) of an image file's bytes.

    A JPEG's draft hash hashes its 1/8-scale decode (the decoder scales the DCT blocks: fast, yet the whole
    stream is read, so truncation is caught). Two JPEGs with the same coefficients (a lossless re-pack, e.g.
    jpegtran) have the same draft hash, so it is the quick test for "same pixels"; the full pixel hash confirms.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            size = (im.height, im.width)
            if full or im.format != "JPEG":
                return size, np.asarray(im.convert("RGB")), None
            im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            return size, None, _pixel_hash(np.asarray(im.convert("RGB")))
    except Exception as exc:
        raise DatasetError(f"unreadable frame ({exc})", path, "replace the corrupt frame") from None


@dataclass
class ValGuard:
    """The validation split: names, and hashes of its frames (file bytes, decoded pixels, JPEG draft decode)."""
    names: set[str]
    file_hashes: set[str] = field(default_factory=set)
    pixel_hashes: set[str] = field(default_factory=set)
    draft_hashes: set[str] = field(default_factory=set)
    key: str = ""

    def check(self, data: bytes, path: Path) -> tuple[str | None, tuple[int, int], np.ndarray | None]:
        """(rejection reason or None, frame size, RGB pixels when decoded in full)."""
        if hashlib.sha256(data).hexdigest() in self.file_hashes:
            return "val split (frame file hash)", (0, 0), None
        size, pixels, draft = _decode(data, path, full=False)
        if draft is not None and draft in self.draft_hashes:
            size, pixels, _ = _decode(data, path, full=True)
        if pixels is not None and _pixel_hash(pixels) in self.pixel_hashes:
            return "val split (frame pixel hash)", size, pixels
        return None, size, pixels

    @classmethod
    def from_cache(cls, got: dict, names=()) -> "ValGuard":
        return cls(set(names), set(got["files"]), set(got["pixels"]), set(got["drafts"]), got["key"])


def load_val_guard(cfg: dict, work: Path, progress: bool) -> ValGuard:
    split = Path(cfg["val"]["split"])
    names = read_split_file(split)
    root = cfg["val"]["root"]
    if root is None:
        if (split.parent / "JPEGImages").is_dir():
            root = str(split.parent)
        else:
            raise DatasetError("cannot hash the validation frames: no val.root and no JPEGImages/ beside the list",
                               split, "set val.root to the dataset the list was carved from")
    ds = VOSDataset(root, split, objects_from="first_frame")
    files = []
    for v in names:
        video = ds[v]
        files += [video.image_dir / f for f in video.frame_files]
    key = _sha([3, str(split.resolve()), _sha(split.read_bytes()), [(str(f), f.stat().st_size) for f in files]])
    cache = work / "val_hashes.json"
    got = _read_json(cache)
    if isinstance(got, dict) and got.get("key") == key:
        return ValGuard.from_cache(got, names)
    fh, ph, dh = set(), set(), set()
    from tqdm import tqdm
    for f in tqdm(files, desc="hash val frames", unit="frame", disable=not progress, leave=False):
        data = f.read_bytes()
        fh.add(hashlib.sha256(data).hexdigest())
        ph.add(_pixel_hash(_decode(data, f, full=True)[1]))
        draft = _decode(data, f, full=False)[2]
        if draft is not None:
            dh.add(draft)
    doc = {"key": key, "files": sorted(fh), "pixels": sorted(ph), "drafts": sorted(dh)}
    _write(cache, json.dumps(doc).encode())
    return ValGuard.from_cache(doc, names)


def _segments(n_frames: int, step: int, max_frames: int, min_frames: int) -> list[list[int]]:
    idx = list(range(0, n_frames, step))
    if max_frames and len(idx) > max_frames:
        chunks = [idx[i:i + max_frames] for i in range(0, len(idx), max_frames)]
    else:
        chunks = [idx]
    return [c for c in chunks if len(c) >= min_frames]


def _step(fps, target: float) -> int:
    if not target or not fps:
        return 1
    return max(1, int(round(float(fps) / target)))


def _object_order(infos: list[dict]) -> list[int]:
    first: dict[int, int] = {}
    for t, f in enumerate(infos):
        for o in f:
            first.setdefault(o, t)
    return sorted(first, key=lambda o: (first[o], o))


def scan_source(src_cfg: dict, cfg: dict, guard: ValGuard, work: Path, progress: bool) -> list[dict]:
    """Candidate segments of one source with their measures (cached by config + validation list)."""
    source = Source(src_cfg)
    key = _sha({"v": SCAN_VERSION, "source": src_cfg, "target_fps": cfg["target_fps"],
                "val": sorted(guard.names), "files": source.fingerprint()})
    cache = work / "scan" / f"{safe_name(src_cfg['name'])}.json"
    got = _read_json(cache)
    if isinstance(got, dict) and got.get("key") == key:
        return got["rows"]
    sel = src_cfg["selection"]
    rows = []
    from tqdm import tqdm
    for video in tqdm(source.videos(), desc=f"scan {src_cfg['name']}", unit="video", disable=not progress,
                      leave=False):
        base = safe_name(src_cfg["prefix"] + video)
        if video in guard.names or base in guard.names:
            rows.append({"clip": base, "source": src_cfg["name"], "video": video, "status": "excluded",
                         "reason": "val split (name)"})
            continue
        clip = source.clip(video)
        step = _step(clip.fps, cfg["target_fps"])
        segs = _segments(len(clip), step, src_cfg["max_frames"], src_cfg["min_frames"])
        if not segs:
            rows.append({"clip": base, "source": src_cfg["name"], "video": video, "status": "excluded",
                         "reason": f"fewer than {src_cfg['min_frames']} frames"})
            continue
        needed = sorted({i for s in segs for i in s})
        infos, area = {}, None
        for i in needed:
            lab = clip.labels(i)
            area = lab.shape[0] * lab.shape[1]
            infos[i] = S.frame_info(lab)
        for k, seg in enumerate(segs):
            name = base if len(segs) == 1 else f"{base}_s{k:02d}"
            seg_infos = [infos[i] for i in seg]
            m = S.measure(seg_infos, area, sel)
            met = S.criteria(m, sel)
            order = _object_order(seg_infos)
            row = {"clip": name, "source": src_cfg["name"], "video": video,
                   "first_frame": clip.frame_names[seg[0]], "last_frame": clip.frame_names[seg[-1]],
                   "frames": len(seg), "step": step, **m, "criteria": "+".join(met), "score": len(met),
                   "frame_idx": seg, "object_ids": order[:255], "status": "candidate", "reason": ""}
            if not order:
                row.update(status="excluded", reason="no object")
            elif name in guard.names:
                row.update(status="excluded", reason="val split (name)")
            rows.append(row)
    _write(cache, json.dumps({"key": key, "rows": rows}).encode())
    return rows


def rank(rows: list[dict], src_cfg: dict, seed: int) -> list[dict]:
    """Eligible candidates of a source, best first."""
    cands = [r for r in rows if r["status"] == "candidate"]
    if src_cfg["select"] == "all":
        return sorted(cands, key=lambda r: r["clip"])
    need = int(src_cfg["selection"]["min_criteria"])
    for r in cands:
        if r["score"] < need:
            r.update(status="not selected", reason=f"meets {r['score']} of {need} criteria needed")
    cands = [r for r in cands if r["status"] == "candidate"]
    return sorted(cands, key=lambda r: (-r["score"], _sha(f"{seed}:{r['clip']}".encode()), r["clip"]))


def _remap(lab: np.ndarray, ids: list[int]) -> np.ndarray:
    """Original ids -> 1..K (in the order of ``ids``), anything else -> 0, as uint8."""
    top = 255 if lab.dtype == np.uint8 else (int(lab.max()) if lab.size else 0)
    if top < 1 << 16 and (lab.dtype == np.uint8 or lab.min() >= 0):
        lut = np.zeros(top + 1, np.uint8)
        for j, old in enumerate(ids, 1):
            if old <= top:
                lut[old] = j
        return lut[lab]
    new = np.zeros(lab.shape, np.uint8)
    for j, old in enumerate(ids, 1):
        new[lab == old] = j
    return new


def write_clip(clip: SourceClip, row: dict, out: Path, work: Path, guard: ValGuard, quality: int) -> str | None:
    """Write one segment (staged, then moved into place). Returns a rejection reason or None."""
    name = row["clip"]
    stage = work / "staging" / name
    if stage.exists():
        shutil.rmtree(stage)
    (stage / "JPEGImages").mkdir(parents=True)
    (stage / "Annotations").mkdir()
    ids = row["object_ids"]
    # masks whose ids are already 1..K in order of appearance are copied as they are (indexed PNGs only)
    identity = clip.ann_paths is not None and ids == list(range(1, len(ids) + 1))
    try:
        for k, i in enumerate(row["frame_idx"]):
            src = clip.image_paths[i]
            try:
                data = src.read_bytes()
            except FileNotFoundError:
                raise DatasetError("frame missing", src, "re-extract the frames of this video") from None
            hit, size, pixels = guard.check(data, src)
            if hit:
                shutil.rmtree(stage)
                return f"{hit}: {src.name}"
            is_jpeg = data[:2] == b"\xff\xd8"
            if not is_jpeg and pixels is None:
                size, pixels, _ = _decode(data, src, full=True)
            png = None
            if identity:
                png = clip.ann_paths[i].read_bytes()
                with Image.open(io.BytesIO(png)) as im:
                    lab_size = (im.height, im.width)
                    if im.mode != "P":
                        png = None
            if png is None:
                lab = clip.labels(i)
                lab_size = lab.shape
            if lab_size != size:
                raise DatasetError(f"frame is {size[1]}x{size[0]} but its annotation is "
                                   f"{lab_size[1]}x{lab_size[0]}", src, "frames and masks must have one size")
            stem = f"{k:05d}"
            if is_jpeg:
                (stage / "JPEGImages" / f"{stem}.jpg").write_bytes(data)
            else:
                buf = io.BytesIO()
                Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
                (stage / "JPEGImages" / f"{stem}.jpg").write_bytes(buf.getvalue())
            (stage / "Annotations" / f"{stem}.png").write_bytes(png if png is not None
                                                                else encode_labels(_remap(lab, ids)))
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    for sub in ("JPEGImages", "Annotations"):
        dest = out / sub / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(stage / sub, dest)
    stage.rmdir()
    return None


@dataclass
class Summary:
    out: Path
    admitted: dict[str, int]
    base_sources: list[str]
    written: int
    resumed: int
    excluded_name: int
    excluded_hash: int
    rows: list[dict]

    def line(self) -> str:
        total = sum(self.admitted.values())
        base = sum(self.admitted.get(s, 0) for s in self.base_sources)
        extra = ", ".join(f"{s} {n}" for s, n in self.admitted.items() if s not in self.base_sources) or "none"
        return (f"MOSE+: {total} clips ({base} from {'+'.join(self.base_sources) or 'no base source'}; extra: "
                f"{extra}); {self.written} written, {self.resumed} already done; kept out as validation: "
                f"{self.excluded_name} by name, {self.excluded_hash} by frame hash -> {self.out}")


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise MassegError(f"output folder is not writable ({exc.strerror})", out, "pass a writable --out") from None


_WORKER: dict = {}


def _write_task(run: str, src_cfg: dict, row: dict, out: Path, work: Path, quality: int,
                guard: ValGuard | None = None):
    """Write one clip and its marker; in a worker process the source index and the validation hashes are
    loaded once per run (from the files the main process wrote), not shipped with every task."""
    if _WORKER.get("run") != run:
        _WORKER.clear()
        _WORKER["run"] = run
    skey = _sha(src_cfg)
    if skey not in _WORKER:
        _WORKER[skey] = Source(src_cfg)
    if guard is None:
        got = _read_json(work / "val_hashes.json")
        if _WORKER.get("guard_key") != got["key"]:
            _WORKER["guard"] = ValGuard.from_cache(got)
            _WORKER["guard_key"] = got["key"]
        guard = _WORKER["guard"]
    reason = write_clip(_WORKER[skey].clip(row["video"]), row, out, work, guard, quality)
    status = "rejected" if reason else "admitted"
    _write(work / "done" / f"{row['clip']}.json",
           json.dumps({"key": row["_key"], "status": status, "reason": reason or ""}).encode())
    return status, reason or ""


def assemble(cfg: dict, out: str | os.PathLike, progress: bool = True, jobs: int = 1) -> Summary:
    from tqdm import tqdm

    out = Path(out)
    _check_writable(out)
    work = out / WORK
    work.mkdir(exist_ok=True)
    guard = load_val_guard(cfg, work, progress)
    all_rows: list[dict] = []
    plans = []
    for src_cfg in cfg["sources"]:
        rows = scan_source(src_cfg, cfg, guard, work, progress)
        all_rows += rows
        plans.append((src_cfg, rank(rows, src_cfg, cfg["seed"])))
    seen: dict[str, str] = {}
    for r in all_rows:
        if r["clip"] in seen and r.get("status") != "excluded":
            raise MassegError(f"clip name {r['clip']!r} comes from sources {seen[r['clip']]!r} and "
                              f"{r['source']!r}", None, "give one of them a different prefix")
        seen[r["clip"]] = r["source"]

    planned = sum(min(len(c), s["quota"]) if s["quota"] else len(c) for s, c in plans)
    done_dir = work / "done"
    written = resumed = 0
    admitted: dict[str, int] = {}
    run = f"{os.getpid()}-{time.time_ns()}"
    pool = None
    if jobs > 1:
        from joblib import Parallel
        pool = Parallel(n_jobs=jobs, return_as="generator")
    with tqdm(total=planned, desc="write clips", unit="clip", disable=not progress) as bar:
        for src_cfg, cands in plans:
            n = pos = 0
            quota = src_cfg["quota"]
            # in batches of exactly the clips still needed: a rejected clip's place goes to the next candidate,
            # and the outcome does not depend on the number of jobs
            while pos < len(cands) and (not quota or n < quota):
                batch = cands[pos: pos + (quota - n if quota else len(cands))]
                pos += len(batch)
                todo = []
                for r in batch:
                    r["_key"] = _sha({"source": src_cfg, "quality": cfg["jpeg_quality"], "val": guard.key,
                                      "row": {k: r[k] for k in ("video", "frame_idx", "object_ids")}})
                    got = _read_json(done_dir / f"{r['clip']}.json")
                    if (isinstance(got, dict) and got.get("key") == r["_key"]
                            and (got["status"] != "admitted" or all((out / sub / r["clip"]).is_dir()
                                                                    for sub in ("JPEGImages", "Annotations")))):
                        r.update(status=got["status"], reason=got["reason"])
                        resumed += r["status"] == "admitted"
                        bar.update(r["status"] == "admitted")
                    else:
                        todo.append(r)
                args = [(run, src_cfg, r, out, work, cfg["jpeg_quality"]) for r in todo]
                if pool is None:
                    results = (_write_task(*a, guard=guard) for a in args)
                else:
                    from joblib import delayed
                    results = pool(delayed(_write_task)(*a) for a in args)
                for r, (status, reason) in zip(todo, results):
                    r.update(status=status, reason=reason)
                    written += status == "admitted"
                    bar.update(status == "admitted")
                n = sum(r["status"] == "admitted" for r in cands[:pos])
            for r in cands[pos:]:
                r.update(status="not selected", reason="source quota reached")
            for r in cands:
                r.pop("_key", None)
            admitted[src_cfg["name"]] = n
    _remove_stale(out, done_dir, {r["clip"] for r in all_rows if r["status"] in ("admitted", "rejected")})
    shutil.rmtree(work / "staging", ignore_errors=True)

    names = sorted(r["clip"] for r in all_rows if r["status"] == "admitted")
    _write(out / "moseplus.txt", "".join(f"{n}\n" for n in names).encode())
    base = [s["name"] for s in cfg["sources"] if s["select"] == "all"]
    write_tables(all_rows, base, out / "stats")
    summary = Summary(out, admitted, base, written, resumed,
                      sum(r["reason"] == "val split (name)" for r in all_rows),
                      sum(r["status"] == "rejected" and r["reason"].startswith("val split") for r in all_rows),
                      all_rows)
    return summary


def _remove_stale(out: Path, done_dir: Path, keep: set[str]) -> None:
    """Clips an earlier run of this folder admitted that this config does not: removed with their markers."""
    if not done_dir.is_dir():
        return
    for marker in sorted(done_dir.glob("*.json")):
        name = marker.stem
        if name in keep:
            continue
        for sub in ("JPEGImages", "Annotations"):
            shutil.rmtree(out / sub / name, ignore_errors=True)
        marker.unlink()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def write_tables(rows: list[dict], base_sources: list[str], folder: Path) -> dict[str, Path]:
    """clips.csv (every candidate, fractions), clips.md (summary + admitted clips), histograms.png."""
    rows = sorted(rows, key=lambda r: (r["source"], r["clip"]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in CSV_COLUMNS])
    paths = {"csv": folder / "clips.csv", "md": folder / "clips.md", "png": folder / "histograms.png"}
    _write(paths["csv"], buf.getvalue().encode())

    admitted = [r for r in rows if r["status"] == "admitted"]
    mose = [r for r in admitted if r["source"] in base_sources]
    lines = ["# MOSE+ clip statistics", "",
             "Measures per clip (see `data/moseplus/stats.py`): crowding = objects visible per frame; "
             "small share = smallest per-object median area, in % of the frame; overlap = % of frames where two "
             "objects' boxes overlap; drops = sudden area losses (partial occlusion); reappear = objects that "
             "come back after vanishing.", "",
             "| source | videos | candidates | admitted | kept out: val name | val frame hash "
             "| not selected, too short or empty |",
             "|---|---|---|---|---|---|---|"]
    for src in sorted({r["source"] for r in rows}):
        rs = [r for r in rows if r["source"] == src]
        by_name = sum(r["reason"] == "val split (name)" for r in rs)
        other = sum(r["status"] in ("excluded", "not selected") for r in rs) - by_name
        lines.append(f"| {src} | {len({r['video'] for r in rs})} | {sum('frames' in r for r in rs)} | "
                     f"{sum(r['status'] == 'admitted' for r in rs)} | {by_name} | "
                     f"{sum(r['status'] == 'rejected' for r in rs)} | {other} |")
    lines += ["", "| set | clips | frames | crowding | small share % | overlap % | drops | reappear | "
              + " | ".join(f"{c} %" for c in S.CRITERIA) + " |", "|---" * (8 + len(S.CRITERIA)) + "|"]
    for label, rs in (("MOSE", mose), ("MOSE+", admitted)):
        if not rs:
            lines.append(f"| {label} | 0 |" + " |" * (7 + len(S.CRITERIA)))
            continue
        mean = lambda k: float(np.mean([r[k] for r in rs]))  # noqa: E731
        crit = [100.0 * sum(c in r["criteria"].split("+") for r in rs) / len(rs) for c in S.CRITERIA]
        lines.append(f"| {label} | {len(rs)} | {sum(r['frames'] for r in rs)} | {mean('crowding'):.2f} | "
                     f"{100 * mean('small_share'):.2f} | {100 * mean('overlap_frac'):.2f} | {mean('area_drops'):.2f} | "
                     f"{mean('reappearances'):.2f} | " + " | ".join(f"{c:.2f}" for c in crit) + " |")
    lines += ["", "## Admitted clips", "",
              "| clip | source | video | frames | objects | crowding | small share % | overlap % | drops | reappear "
              "| criteria |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in admitted:
        lines.append(f"| {r['clip']} | {r['source']} | {r['video']} | {r['frames']} | {r['objects']} | "
                     f"{r['crowding']:.2f} | {100 * r['small_share']:.2f} | {100 * r['overlap_frac']:.2f} | "
                     f"{r['area_drops']} | {r['reappearances']} | {r['criteria'] or '-'} |")
    _write(paths["md"], ("\n".join(lines) + "\n").encode())
    _write(paths["png"], histograms(mose, admitted))
    return paths


def histograms(mose: list[dict], plus: list[dict]) -> bytes:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6.5), dpi=80)
    titles = {"crowding": "objects visible per frame", "small_share": "smallest object (% of frame)",
              "overlap_frac": "frames with overlapping boxes (%)", "area_drops": "area drops (occlusion)",
              "reappearances": "reappearances", "objects": "objects per clip"}
    scale = {"small_share": 100.0, "overlap_frac": 100.0}
    for k, m in enumerate(HIST_MEASURES):
        ax = fig.add_subplot(2, 3, k + 1)
        a = np.array([r[m] for r in mose], float) * scale.get(m, 1.0)
        b = np.array([r[m] for r in plus], float) * scale.get(m, 1.0)
        both = np.concatenate([a, b]) if len(a) + len(b) else np.zeros(1)
        lo, hi = float(both.min()), float(both.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
        ax.hist(b, bins=bins, alpha=0.55, label=f"MOSE+ ({len(b)})", color="tab:orange")
        ax.hist(a, bins=bins, alpha=0.55, label=f"MOSE ({len(a)})", color="tab:blue")
        ax.set_title(titles[m], fontsize=10)
        ax.set_ylabel("clips", fontsize=8)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.legend(fontsize=8)
    fig.suptitle("Difficulty measures: MOSE alone vs MOSE+")
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.06, top=0.9, wspace=0.25, hspace=0.35)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
