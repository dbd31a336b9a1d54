"""What the one-line-failure guarantees cost (run by `make bench`).

Goal (issue 11): checking every member zip's CRC before a video's first PNG is written (so a damaged store
never leaves half a video of labels) costs at most 5% of fusing that video. Measured side by side in one run:
`masseg fuse` of a realistic q16 store (256x256 native SAM2-style logits of two objects, 480x854 video, 60
frames) with the check, and the same fusion with the check replaced by a no-op. Wall and CPU time reported.
"""
from __future__ import annotations

import time

import numpy as np

from data.labels import write_labels
from data.store import LogitStore, VideoReader
from ensemble.config import config_from_stores
from ensemble.fuse import fuse
from tests.ensemble.helpers import sam2_recipe, write_store
from tests.helpers.logits import logits_from_mask

HW, NATIVE, FRAMES = (480, 854), (256, 256), 60


def _material(tmp):
    from PIL import Image
    from data.dataset import VOSDataset
    rng = np.random.default_rng(0)
    root = tmp / "root"
    (root / "JPEGImages" / "v").mkdir(parents=True)
    frames = {}
    yy, xx = np.mgrid[:HW[0], :HW[1]]
    for t in range(FRAMES):
        Image.fromarray(np.zeros(HW + (3,), np.uint8)).save(root / "JPEGImages" / "v" / f"{t:05d}.jpg")
        a = (yy - 200 - t) ** 2 + (xx - 300 - 2 * t) ** 2 < 90 ** 2
        b = (abs(yy - 260) < 70) & (abs(xx - 560 + t) < 120)
        if t == 0:
            lab = np.zeros(HW, np.uint8)
            lab[a] = 1
            lab[b & ~a] = 2
            write_labels(root / "Annotations" / "v" / "00000.png", lab)
        frames[f"{t:05d}"] = ([1, 2], np.stack([logits_from_mask(m, NATIVE, rng) for m in (a, b)]))
    store = write_store(tmp / "store", "sam2", {"v": {"frame_names": list(frames), "video_hw": HW,
                                                      "recipe": sam2_recipe(HW), "frames": frames}}, codec="q16")
    return VOSDataset(root), store.root


def _time(fn):
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def test_crc_check_costs_little(tmp_path, monkeypatch):
    ds, store = _material(tmp_path)
    cfg = config_from_stores([store])
    rows = {}
    for rep in range(2):  # alternate, so machine load hits both alike
        for name in ("with_check", "without_check"):
            if name == "without_check":
                monkeypatch.setattr(VideoReader, "verify", lambda self: None)
            else:
                monkeypatch.undo()
            out = tmp_path / f"run_{name}_{rep}"
            rows.setdefault(name, []).append(_time(lambda: fuse(cfg, out, dataset=ds)))
    monkeypatch.undo()
    best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in rows.items()}
    t0 = time.perf_counter()
    with LogitStore.open(store).reader("v") as r:
        r.verify()
    alone = time.perf_counter() - t0
    wall = best["with_check"][0] / best["without_check"][0]
    cpu = best["with_check"][1] / best["without_check"][1]
    print(f"\n[bench_safety] fuse {FRAMES} frames {HW[1]}x{HW[0]}, 2 objects, q16: with CRC check "
          f"{best['with_check'][0]:.2f} s wall / {best['with_check'][1]:.2f} s CPU, without "
          f"{best['without_check'][0]:.2f} s / {best['without_check'][1]:.2f} s; ratio wall {wall:.3f}, CPU {cpu:.3f}; "
          f"the check alone {1e3 * alone:.1f} ms")
    assert alone / best["without_check"][0] <= 0.05
