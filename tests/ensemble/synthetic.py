"""Synthetic members made from ground truth, stored as real logit stores, for the "fusion helps" proof.

Each member's logits are signed distances to the GT masks (positive inside), taken at a stride-4 native
resolution and stored with the ``sam2_bilinear`` recipe, then spoiled with independent, realistic errors:

* boundary noise: a smooth random field (new every frame) added to the signed distance;
* missed frames: the tracker loses an object (its logits drop to about -8);
* drift: the member's mask of one object slides away over a range of frames, then snaps back;
* id swap: two objects' logits are exchanged over a range of frames (multi-object videos);
* false positive: a blob with an object's id appears elsewhere for a few frames.

Member "good" is clearly the least noisy; "drift" and "swap" are noisier and carry the structured errors, on
different frames and objects, so that every error is outvoted by the two other members.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from data.labels import DAVIS_PALETTE, write_labels
from tests.ensemble.helpers import load_module, sam2_recipe, write_store

STRIDE = 4
SLOPE = 4.0          # logit per native pixel of signed distance
CLIP = 12.0


@dataclass
class MemberErrors:
    noise: float                                   # boundary noise amplitude, in native pixels
    miss: dict = field(default_factory=dict)      # frame -> object ids lost on that frame
    drift: tuple | None = None                     # (obj, start, end, native px per frame)
    swap: tuple | None = None                      # (a, b, start, end)
    false_pos: tuple | None = None                 # (obj, start, end)


def _signed_distance(mask: np.ndarray) -> np.ndarray:
    if not mask.any():
        return -np.full(mask.shape, 50.0, np.float32)
    inside = ndimage.distance_transform_edt(mask)
    outside = ndimage.distance_transform_edt(~mask)
    return (inside - outside).astype(np.float32)


def _smooth_noise(rng, shape, amp):
    if amp <= 0:
        return np.zeros(shape, np.float32)
    coarse = rng.normal(0, 1, (max(2, shape[0] // 6), max(2, shape[1] // 6)))
    zoom = (shape[0] / coarse.shape[0], shape[1] / coarse.shape[1])
    field_ = ndimage.zoom(coarse, zoom, order=3)[:shape[0], :shape[1]]
    return (amp * field_).astype(np.float32)


def member_logits(gt: np.ndarray, ids: list[int], errors: MemberErrors, seed: int) -> list[np.ndarray]:
    """(T, H, W) GT label maps -> per frame (N, h, w) logits at stride 4 with the member's errors."""
    rng = np.random.default_rng(seed)
    T, H, W = gt.shape
    h, w = -(-H // STRIDE), -(-W // STRIDE)
    # native pixel centres in video coordinates (nearest sample of the full-resolution signed distance)
    ys = np.clip(np.round((np.arange(h) + 0.5) * H / h - 0.5).astype(int), 0, H - 1)
    xs = np.clip(np.round((np.arange(w) + 0.5) * W / w - 0.5).astype(int), 0, W - 1)
    out = []
    for t in range(T):
        per_obj = []
        for o in ids:
            mask = gt[t] == o
            if errors.drift and errors.drift[0] == o and errors.drift[1] <= t < errors.drift[2]:
                shift = int(round(errors.drift[3] * STRIDE * (t - errors.drift[1] + 1)))
                mask = np.roll(mask, shift, axis=1)
            if errors.false_pos and errors.false_pos[0] == o and errors.false_pos[1] <= t < errors.false_pos[2]:
                yy, xx = np.mgrid[:H, :W]
                mask = mask | (((yy - 0.25 * H) / (0.12 * H)) ** 2 + ((xx - 0.8 * W) / (0.1 * W)) ** 2 <= 1)
            sd = _signed_distance(mask)[np.ix_(ys, xs)] * (h / H)        # in native pixels
            sd = sd + _smooth_noise(rng, (h, w), errors.noise)
            logit = np.clip(SLOPE * sd, -CLIP, CLIP)
            if o in errors.miss.get(t, ()):
                logit = np.minimum(logit, 0) - 8.0
            per_obj.append(logit.astype(np.float32))
        arr = np.stack(per_obj) if per_obj else np.zeros((0, h, w), np.float32)
        if errors.swap and errors.swap[2] <= t < errors.swap[3]:
            a, b = ids.index(errors.swap[0]), ids.index(errors.swap[1])
            arr[[a, b]] = arr[[b, a]]
        out.append(arr)
    return out


def write_dataset(root: Path, videos: dict[str, np.ndarray]) -> None:
    """DAVIS-layout root: flat grey JPEGs of the GT size and every GT frame as a palette PNG."""
    for name, gt in videos.items():
        T, H, W = gt.shape
        img = Image.new("RGB", (W, H), (128, 128, 128))
        for t in range(T):
            p = root / "JPEGImages" / name / f"{t:05d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            img.save(p, quality=50)
            write_labels(root / "Annotations" / name / f"{t:05d}.png", gt[t], DAVIS_PALETTE)


def member_errors(name: str, ids: list[int], T: int, rng) -> MemberErrors:
    """The three members' error profiles for one video. The structured errors sit on disjoint frame ranges
    (independent errors: on every frame at most one member is grossly wrong); ``rng`` picks the objects."""
    def at(f):
        return int(round(f * T))
    if name == "good":
        return MemberErrors(noise=0.2, miss={at(0.42): (ids[-1],), at(0.8): (ids[0],)})
    if name == "drift":
        obj = ids[int(rng.integers(len(ids)))]
        return MemberErrors(noise=0.5, drift=(obj, at(0.12), at(0.4), 0.6), miss={at(0.9): tuple(ids)})
    if name == "swap":
        e = MemberErrors(noise=0.5, miss={1: tuple(ids)})
        if len(ids) >= 2:
            a, b = rng.choice(ids, 2, replace=False)
            e.swap = (int(a), int(b), at(0.45), at(0.7))
        else:
            e.false_pos = (ids[0], at(0.45), at(0.7))
        return e
    raise ValueError(name)


MEMBERS = ("good", "drift", "swap")


def build_members(tmp: Path, videos: dict[str, np.ndarray], codec: str = "q8") -> dict[str, Path]:
    """Write the dataset and one store per member; returns {member: store path} (dataset at tmp/data)."""
    write_dataset(tmp / "data", videos)
    stores = {}
    for k, member in enumerate(MEMBERS):
        content = {}
        for v, (name, gt) in enumerate(videos.items()):
            ids = sorted(int(o) for o in np.unique(gt[0]) if o)
            errs = member_errors(member, ids, gt.shape[0], np.random.default_rng(100 * v + k))
            logits = member_logits(gt, ids, errs, seed=1000 * v + k)
            names = [f"{t:05d}" for t in range(gt.shape[0])]
            frames = {}
            for t, n in enumerate(names):
                keep = [i for i, o in enumerate(ids) if (gt[:t + 1] == o).any()]   # entries from first appearance
                frames[n] = ([ids[i] for i in keep], logits[t][keep])
            content[name] = {"frame_names": names, "video_hw": list(gt.shape[1:]),
                             "recipe": sam2_recipe(gt.shape[1:]), "frames": frames}
        stores[member] = tmp / "stores" / member
        write_store(stores[member], "synthetic", content, codec=codec, settings={"member": member})
    return stores


def clip_videos(clips: Path, frames: int, factor: int) -> dict[str, np.ndarray]:
    """GT of davis2016/libby and pumavos/chair, first ``frames`` frames, downscaled by ``factor`` (nearest)."""
    out = {}
    for root, name in (("davis2016", "libby"), ("pumavos", "chair")):
        labs = []
        for t in range(frames):
            im = Image.open(clips / root / "Annotations" / name / f"{t:05d}.png")
            im = im.resize((im.width // factor, im.height // factor), Image.NEAREST)
            labs.append(np.asarray(im, np.uint8))
        out[name] = np.stack(labs)
    return out


def synthetic_videos(gen_path: Path, indices, frames: int, size=(180, 320)) -> dict[str, np.ndarray]:
    """GT of videos of the shared synthetic benchmark (gen_synthetic.py's own generator, same seeds), first
    ``frames`` frames, resized to ``size`` (nearest)."""
    gen = load_module(gen_path, "gen_synthetic_for_tests")
    out = {}
    for v in indices:
        rng = np.random.default_rng(1000 + v)
        _, gt = gen.make_gt(rng, v % 5 + 1)
        labs = [np.asarray(Image.fromarray(g).resize((size[1], size[0]), Image.NEAREST)) for g in gt[:frames]]
        out[f"synth{v:02d}"] = np.stack(labs)
    return out
