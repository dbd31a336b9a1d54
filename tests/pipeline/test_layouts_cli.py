"""SA-V end to end through the CLI: inference from per-object first-frame masks on 24 fps frames, fusion of
every frame, evaluation of those predictions on the 6 fps annotations (per-object folders)."""
from __future__ import annotations

import re

import numpy as np
import torch
from PIL import Image

from data.labels import read_labels
from pipeline.cli import main

HW = (32, 48)


def test_sav_infer_fuse_evaluate(tmp_path, capsys):
    from models.cutie import build_cutie
    root = tmp_path / "sav_val"
    frames = root / "JPEGImages_24fps" / "sav_000001"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(9):
        Image.fromarray(rng.integers(0, 255, HW + (3,), dtype=np.uint8)).save(frames / f"{i:05d}.jpg")
    masks = {1: (slice(4, 16), slice(4, 20)), 2: (slice(18, 30), slice(26, 44))}
    for oid, (ys, xs) in masks.items():
        folder = root / "Annotations_6fps" / "sav_000001" / f"{oid:03d}"
        folder.mkdir(parents=True)
        for f in (0, 4, 8):
            m = np.zeros(HW, np.uint8)
            m[ys, xs] = 255
            Image.fromarray(m, mode="L").save(folder / f"{f:05d}.png")
    torch.manual_seed(0)
    ckpt = tmp_path / "cutie_small.pth"
    torch.save(build_cutie("small", device="cpu").state_dict(), ckpt)
    store = tmp_path / "store"
    assert main(["infer", "--model", "cutie", "--size", "small", "--image-size", "32", "--root", str(root),
                 "--out", str(store), "--checkpoint", str(ckpt), "--device", "cpu", "--no-progress"]) == 0
    run = tmp_path / "run"
    assert main(["fuse", "--member", str(store), "--root", str(root), "--out", str(run)]) == 0
    labels = sorted(p.name for p in (run / "labels" / "sav_000001").iterdir())
    assert labels == [f"{i:05d}.png" for i in range(9)]  # every 24 fps frame
    first = read_labels(run / "labels" / "sav_000001" / "00000.png")
    assert first[10, 10] == 1 and first[24, 30] == 2  # the given masks, merged from the object folders
    capsys.readouterr()
    assert main(["evaluate", "--root", str(root), "--pred", str(run / "labels"), "-j", "1",
                 "--extra-frames", "ignore", "--protocol", "vos-benchmark"]) == 0
    out = capsys.readouterr().out
    assert "1 video, 2 objects, 1 scored frame" in out and re.search(r"vos-benchmark +J&F \d+\.\d\d", out)
