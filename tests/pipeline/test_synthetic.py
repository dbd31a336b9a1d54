import hashlib

import numpy as np

from data.dataset import VOSDataset
from pipeline.synthetic import make_synthetic_dataset


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_synthetic_dataset_is_valid_deterministic_and_occludes(tmp_path):
    root = make_synthetic_dataset(tmp_path / "a", n_videos=3, n_frames=8, hw=(96, 128), seed=1)
    ds = VOSDataset(root, "val")
    assert ds.video_names == ["synth000", "synth001", "synth002"]
    v = ds["synth002"]
    assert v.object_ids == [1, 2, 3] and len(v.annotation_names) == 8 and v.size == (96, 128)
    areas = np.array([[(v.annotation(t) == o).sum() for o in v.object_ids] for t in range(8)])
    assert (areas[0] > 0).all()
    frames = np.stack([v.frame(t) for t in range(8)]).astype(float)
    assert frames.std() > 20  # textured, not flat
    assert np.abs(np.diff(frames, axis=0)).mean() > 1  # things move
    assert _digest(root) == _digest(make_synthetic_dataset(tmp_path / "b", n_videos=3, n_frames=8,
                                                           hw=(96, 128), seed=1))
