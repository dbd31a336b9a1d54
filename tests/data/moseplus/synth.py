"""Small synthetic sources in every MOSE+ input format, with known difficulty.

Frames are 48x64 noise images (a seed per clip, so no two clips share a frame unless a test makes them).
Label patterns, 10 annotated frames each unless said otherwise:

* ``plain``   one 16x16 object, nothing hard                          -> no criterion
* ``vanish``  one object, absent on frames 4-6, back from 7           -> disappearance
* ``small``   a 16x16 object and a 4x4 one (0.52 % of the frame)     -> small
* ``overlap`` an object framing a second one (boxes overlap always)   -> occlusion
* ``crowd``   five 8x8 objects apart                                  -> crowding

Leaks of the validation clip ``m_val``: its frame files copied (``yt_leak``), its JPEGs with an extra comment
segment (``yt_repack``: other bytes, same pixels), its pixels stored as PNG (BURST ``leak_png``); and an LVOS
video named ``m_val``.
"""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

H, W = 48, 64


def labels(kind: str, n: int = 10) -> list[np.ndarray]:
    out = []
    for t in range(n):
        lab = np.zeros((H, W), np.int32)
        if kind in ("plain", "small"):
            lab[8:24, 8:24] = 1
        if kind == "small":
            lab[36:40, 50:54] = 2
        if kind == "vanish" and not 4 <= t <= 6:
            lab[10:26, 20:36] = 1
        if kind == "overlap":
            lab[8:32, 8:40] = 1
            lab[14:26, 16:32] = 2
        if kind == "crowd":
            for k in range(5):
                lab[4 + 8 * (k % 2): 12 + 8 * (k % 2), 2 + 12 * k: 10 + 12 * k] = k + 1
        out.append(lab)
    return out


def frame(seed: int, t: int) -> np.ndarray:
    rng = np.random.default_rng([seed, t])
    base = rng.integers(0, 256, (H // 8, W // 8, 3), dtype=np.uint8)
    return np.kron(base, np.ones((8, 8, 1), np.uint8))  # blocky: survives JPEG recognisably


def jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def put(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def put_png_labels(path: Path, lab: np.ndarray) -> None:
    from data.labels import encode_labels
    put(path, encode_labels(lab.astype(np.uint8)))


def rle(mask: np.ndarray, compressed: bool = True) -> dict:
    from pycocotools import mask as mu
    r = mu.encode(np.asfortranarray(mask.astype(np.uint8)))
    if compressed:
        return {"size": [int(v) for v in r["size"]], "counts": r["counts"].decode("ascii")}
    # uncompressed (YouTube-VIS style): run lengths in column-major order, starting with zeros
    flat = mask.astype(np.uint8).ravel(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v == cur:
            run += 1
        else:
            counts.append(run)
            cur, run = v, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


def davis_clip(root: Path, name: str, kind: str, seed: int, frame_fmt="{:05d}", n=10) -> None:
    for t, lab in enumerate(labels(kind, n)):
        put(root / "JPEGImages" / name / (frame_fmt.format(t) + ".jpg"), jpeg(frame(seed, t)))
        put_png_labels(root / "Annotations" / name / (frame_fmt.format(t) + ".png"), lab)


def build(tmp: Path) -> dict:
    """Write every source under ``tmp`` and return the config (a dict as TOML would give)."""
    tmp = Path(tmp)
    # MOSE (png): two training clips and the validation clip
    mose = tmp / "MOSE" / "train"
    davis_clip(mose, "m_a", "plain", 1)
    davis_clip(mose, "m_b", "vanish", 2)
    davis_clip(mose, "m_val", "overlap", 3)
    (mose / "val.txt").write_text("m_val\n")
    (mose / "train_rest.txt").write_text("m_a\nm_b\n")

    # YouTube-VOS: all frames in JPEGImages (train_all_frames), annotations every 5th frame
    yt = tmp / "YouTubeVOS" / "train"
    meta = {"videos": {}}
    for name, kind, seed in (("yt_vanish", "vanish", 10), ("yt_plain", "plain", 11), ("yt_leak", "vanish", None),
                             ("yt_repack", "vanish", -1)):
        labs = labels(kind)
        objs: dict = {}
        for t in range(50):
            if seed is None:  # copies of the validation clip's frame files, byte for byte
                data = (mose / "JPEGImages" / "m_val" / f"{t // 5:05d}.jpg").read_bytes()
            elif seed == -1:  # the same JPEG data with a comment segment: other bytes, the same pixels
                val = (mose / "JPEGImages" / "m_val" / f"{t // 5:05d}.jpg").read_bytes()
                data = val[:2] + b"\xff\xfe\x00\x0bre-packed" + val[2:]
            else:
                data = jpeg(frame(seed, t))
            put(yt / "JPEGImages" / name / f"{t:05d}.jpg", data)
            if t % 5 == 0:
                lab = labs[t // 5]
                put_png_labels(yt / "Annotations" / name / f"{t:05d}.png", lab)
                for o in np.unique(lab):
                    if o:
                        objs.setdefault(str(int(o)), {"category": "thing", "frames": []})["frames"].append(f"{t:05d}")
        meta["videos"][name] = {"objects": objs}
    (yt / "meta.json").write_text(json.dumps(meta))

    # LVOS: 8-digit frame names from 1, <split>_meta.json; one 30-frame video (cut into 12+12+6) and one
    # video named like a validation clip
    lv = tmp / "LVOS" / "train"
    long_labs = labels("plain", 12) + labels("small", 12) + labels("plain", 6)
    lmeta = {"videos": {"lv_long": {"objects": {}}, "m_val": {"objects": {}}}}
    for t, lab in enumerate(long_labs):
        put(lv / "JPEGImages" / "lv_long" / f"{t + 1:08d}.jpg", jpeg(frame(20, t)))
        put_png_labels(lv / "Annotations" / "lv_long" / f"{t + 1:08d}.png", lab)
    lmeta["videos"]["lv_long"]["objects"] = {
        "1": {"frame_range": {"start": "00000001", "end": "00000030", "frame_nums": 30}},
        "2": {"frame_range": {"start": "00000013", "end": "00000024", "frame_nums": 12}}}
    davis_clip(lv, "m_val", "crowd", 21, frame_fmt="{:08d}")
    lmeta["videos"]["m_val"]["objects"] = {"1": {"frame_range": {"start": "00000000", "end": "00000009",
                                                                 "frame_nums": 10}}}
    (lv / "train_meta.json").write_text(json.dumps(lmeta))

    # SA-V: *_manual.json masklets (annotated every 4th frame of 24 fps) + extracted frames %05d.jpg
    sav, sav_frames = tmp / "SA-V" / "sav_train", tmp / "SA-V" / "JPEGImages_24fps"
    for vid, kind, seed in (("sav_000001", "overlap", 30), ("sav_000002", "plain", 31)):
        labs = labels(kind)
        n_obj = max(int(lab.max()) for lab in labs)
        masklet = [[rle(lab == o + 1) for o in range(n_obj)] for lab in labs]
        for i in range(len(labs)):
            put(sav_frames / vid / f"{4 * i:05d}.jpg", jpeg(frame(seed, i)))
        doc = {"video_id": vid, "video_duration": 40 / 24, "video_frame_count": 40.0, "video_height": float(H),
               "video_width": float(W), "video_resolution": float(H * W), "video_environment": "Indoor",
               "video_split": "train", "masklet": masklet, "masklet_id": list(range(n_obj)),
               "masklet_num": n_obj, "masklet_type": ["manual"] * n_obj}
        put(sav / "sav_000" / f"{vid}_manual.json", json.dumps(doc).encode())

    # OVIS (YouTube-VIS-style JSON): a crowded clip at 12 fps, subsampled to 6; one object uses uncompressed RLE
    ov = tmp / "OVIS"
    labs = labels("crowd")
    files = [f"ov_crowd/img_{t + 1:07d}.jpg" for t in range(10)]
    for t, f in enumerate(files):
        put(ov / "train" / f, jpeg(frame(40, t)))
    anns = [{"id": 100 + o, "video_id": 7, "category_id": 1, "iscrowd": 0,
             "segmentations": [rle(lab == o, compressed=(o != 3)) for lab in labs]} for o in range(1, 6)]
    ovis = {"videos": [{"id": 7, "file_names": files, "height": H, "width": W, "length": 10}],
            "annotations": anns, "categories": [{"id": 1, "name": "Fish"}]}
    (ov / "annotations_train.json").write_text(json.dumps(ovis))

    # BURST: sequences with annotated_image_paths (every 2nd of all_image_paths), RLE per track; a PNG-frame
    # sequence whose pixels are the validation clip's
    bu = tmp / "BURST"
    seqs = []
    for seq, kind, seed in (("seq_small", "small", 50), ("seq_plain", "plain", 51), ("leak_png", "vanish", None)):
        labs = labels(kind)
        ext = ".png" if seed is None else ".jpg"
        all_paths = [f"frame{t:04d}{ext}" for t in range(20)]
        annotated = all_paths[::2]
        for i, f in enumerate(annotated):
            if seed is None:
                with Image.open(mose / "JPEGImages" / "m_val" / f"{i:05d}.jpg") as im:
                    data = png_bytes(np.asarray(im.convert("RGB")))
            else:
                data = jpeg(frame(seed, i))
            put(bu / "frames" / "train" / "YFCC100M" / seq / f, data)
        segs = [{str(int(o)): {"rle": rle(lab == o)["counts"], "is_gt": True, "score": 1.0}
                 for o in np.unique(lab) if o} for lab in labs]
        seqs.append({"id": len(seqs), "dataset": "YFCC100M", "seq_name": seq, "fps": 12, "width": W, "height": H,
                     "all_image_paths": all_paths, "annotated_image_paths": annotated, "segmentations": segs,
                     "track_category_ids": {str(o): 1 for o in range(1, 3)}, "neg_category_ids": [],
                     "not_exhaustive_category_ids": []})
    (bu / "train.json").write_text(json.dumps({"sequences": seqs, "categories": [], "split": "train"}))

    return {
        "seed": 0, "target_fps": 6.0, "max_frames": 12, "min_frames": 4,
        "val": {"split": str(mose / "val.txt"), "root": str(mose)},
        "sources": [
            {"name": "mose", "format": "png", "root": str(mose), "select": "all", "prefix": "", "fps": 6.0},
            {"name": "ytvos", "format": "youtubevos", "root": str(yt)},
            {"name": "lvos", "format": "lvos", "root": str(lv)},
            {"name": "sav", "format": "sav", "root": str(sav), "frames": str(sav_frames), "prefix": ""},
            {"name": "ovis", "format": "ovis", "annotations": str(ov / "annotations_train.json"),
             "frames": str(ov / "train"), "fps": 12.0},
            {"name": "burst", "format": "burst", "annotations": str(bu / "train.json"),
             "frames": str(bu / "frames" / "train")},
        ],
    }


def to_toml(cfg: dict) -> str:
    """The config as TOML text (for CLI tests)."""
    def val(v):
        return json.dumps(v)
    lines = [f"{k} = {val(v)}" for k, v in cfg.items() if not isinstance(v, (dict, list))]
    for table in ("val", "selection"):
        if table in cfg:
            lines += [f"[{table}]"] + [f"{k} = {val(v)}" for k, v in cfg[table].items()]
    for s in cfg["sources"]:
        lines.append("[[sources]]")
        lines += [f"{k} = {val(v)}" for k, v in s.items() if not isinstance(v, dict)]
        if "selection" in s:
            lines += ["[sources.selection]"] + [f"{k} = {val(v)}" for k, v in s["selection"].items()]
    return "\n".join(lines) + "\n"
