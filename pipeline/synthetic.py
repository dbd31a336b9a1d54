"""A small synthetic VOS dataset for the demo and the end-to-end tests: textured objects that move and occlude.

Real models need texture to track, so every object and the background carry their own band-limited colour
texture; objects move on smooth paths, change depth order (one passes in front of another) and every frame has
ground truth, so the demo can end with a J&F table. Deterministic for a given seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from data.atomic import atomic_path
from data.dataset import write_split_file
from data.labels import write_labels


@dataclass
class _Obj:
    oid: int
    radius: tuple[float, float]
    start: np.ndarray
    velocity: np.ndarray
    wobble: float
    phase: float
    texture: np.ndarray  # (h, w, 3) float
    depth0: float
    depth_swap: int | None


def _texture(rng: np.random.Generator, hw: tuple[int, int], base: np.ndarray, cells: int) -> np.ndarray:
    noise = rng.normal(0, 1, (cells, cells, 3))
    zoomed = ndimage.zoom(noise, (hw[0] / cells, hw[1] / cells, 1), order=3)[: hw[0], : hw[1]]
    stripes = np.sin(np.linspace(0, rng.uniform(6, 20), hw[1]))[None, :, None]
    return np.clip(base[None, None] + 40 * zoomed + 20 * stripes, 0, 255)


def _objects(rng: np.random.Generator, n: int, hw: tuple[int, int], n_frames: int) -> list[_Obj]:
    objs = []
    for k in range(n):
        r = (rng.uniform(0.12, 0.22) * hw[0], rng.uniform(0.12, 0.22) * hw[1])
        start = np.array([rng.uniform(0.3, 0.7) * hw[0], rng.uniform(0.2, 0.8) * hw[1]])
        vel = rng.uniform(-1, 1, 2) * np.array(hw) * 0.5 / max(n_frames, 1)
        objs.append(_Obj(k + 1, r, start, vel, rng.uniform(0, 0.15), rng.uniform(0, 6.28),
                         _texture(rng, hw, rng.uniform(30, 225, 3), 6), rng.uniform(0, 1),
                         int(rng.integers(n_frames // 3, max(n_frames // 3 + 1, 2 * n_frames // 3)))
                         if rng.random() < 0.5 else None))
    return objs


def _render(objs: list[_Obj], bg: np.ndarray, t: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[: hw[0], : hw[1]].astype(np.float32)
    img = bg.copy()
    lab = np.zeros(hw, np.uint8)
    depth = lambda o: (1 - o.depth0) if (o.depth_swap is not None and t >= o.depth_swap) else o.depth0  # noqa: E731
    for o in sorted(objs, key=depth):  # far to near: nearer objects occlude
        c = o.start + o.velocity * t
        c = np.clip(c, [0.1 * hw[0], 0.1 * hw[1]], [0.9 * hw[0], 0.9 * hw[1]])
        ang = np.arctan2(yy - c[0], xx - c[1])
        rad = 1 + o.wobble * np.sin(3 * ang + o.phase + 0.3 * t)
        inside = ((yy - c[0]) / o.radius[0]) ** 2 + ((xx - c[1]) / o.radius[1]) ** 2 <= rad ** 2
        shift = np.round(o.velocity * t).astype(int)
        tex = np.roll(o.texture, tuple(shift), axis=(0, 1))  # texture moves with the object
        img[inside] = tex[inside]
        lab[inside] = o.oid
    return img.astype(np.uint8), lab


def make_synthetic_dataset(root: str | Path, n_videos: int = 3, n_frames: int = 12, hw: tuple[int, int] = (240, 320),
                           max_objects: int = 3, seed: int = 0, split_name: str = "val") -> Path:
    """Write ``root/JPEGImages``, ``root/Annotations`` (every frame) and ``root/<split_name>.txt``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    names = []
    for v in range(n_videos):
        name = f"synth{v:03d}"
        names.append(name)
        objs = _objects(rng, 1 + v % max_objects, hw, n_frames)
        bg = _texture(rng, hw, rng.uniform(60, 200, 3), 10)
        for t in range(n_frames):
            img, lab = _render(objs, bg, t, hw)
            for o in objs:  # every object must be visible on frame 0 (semi-supervised prompt)
                if t == 0 and not (lab == o.oid).any():
                    o.depth0, o.depth_swap = 2.0, None
            if t == 0:
                img, lab = _render(objs, bg, t, hw)
            jpg = root / "JPEGImages" / name / f"{t:05d}.jpg"
            with atomic_path(jpg) as tmp:
                Image.fromarray(img).save(tmp, format="JPEG", quality=92)
            write_labels(root / "Annotations" / name / f"{t:05d}.png", lab)
    write_split_file(root / f"{split_name}.txt", names)
    return root
