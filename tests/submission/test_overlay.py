"""Overlays: palette colours blended over the frame, outlines in the object's colour, MP4s that decode, and
`masseg overlay` end to end with its bad-input cases."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data.labels import DAVIS_PALETTE, write_labels
from pipeline.synthetic import make_synthetic_dataset
from submission.overlay import blend, outline, palette_colours, write_mp4
from tests.conftest import REPO


def test_blend_tints_objects_and_draws_outlines():
    img = np.full((40, 60, 3), 100, np.uint8)
    lab = np.zeros((40, 60), np.uint8)
    lab[10:30, 10:30] = 1
    lab[10:30, 35:55] = 2
    out = blend(img, lab, alpha=0.5)
    colours = palette_colours(None)
    assert (out[0, 0] == 100).all()                       # background untouched
    inner = out[20, 20].astype(int)
    assert np.abs(inner - (0.5 * 100 + 0.5 * colours[1])).max() <= 1   # tinted with id 1's DAVIS colour
    assert (out[10, 20] == colours[1]).all() and (out[20, 35] == colours[2]).all()   # outline: solid colour
    edge = outline(lab)
    assert edge[10, 20] and edge[9, 20] and not edge[20, 20]
    # the label PNG's own palette is used
    pal = bytearray(DAVIS_PALETTE)
    pal[3:6] = bytes((0, 255, 0))
    out = blend(img, lab, bytes(pal), alpha=1.0)
    assert (out[20, 20] == (0, 255, 0)).all()
    with pytest.raises(ValueError, match="differ in size"):
        blend(img, lab[:-1])


def test_mp4_decodes_with_every_frame(tmp_path):
    av = pytest.importorskip("av")
    frames = [np.full((33, 47, 3), 20 * t, np.uint8) for t in range(5)]   # odd size: padded to even
    n = write_mp4(tmp_path / "v.mp4", frames, fps=10)
    assert n == 5
    with av.open(str(tmp_path / "v.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (34, 48, 3)
    assert abs(float(decoded[3][:33, :47].mean()) - 60) < 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _masseg(*args):
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *map(str, args)], cwd=REPO, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("ov") / "ds", n_videos=2, n_frames=4, hw=(48, 64), seed=3)


def test_overlay_command(dataset, tmp_path):
    pytest.importorskip("av")
    out = tmp_path / "ov"
    p = _masseg("overlay", "--root", dataset, "--labels", dataset / "Annotations", "--out", out, "--mp4")
    assert p.returncode == 0, p.stderr
    assert "overlays of 2 videos (8 frames)" in p.stdout and "2 MP4s" in p.stdout
    assert sorted(x.name for x in (out / "synth000").iterdir()) == [f"{t:05d}.jpg" for t in range(4)]
    assert (out / "synth000.mp4").stat().st_size > 0 and (out / "synth001.mp4").is_file()
    jpg = np.asarray(Image.open(out / "synth000" / "00000.jpg"))
    assert jpg.shape == (48, 64, 3)
    # one video, sparse labels (only some frames): overlays of the labelled frames only
    sparse = tmp_path / "sparse"
    for t in (0, 2):
        write_labels(sparse / "synth001" / f"{t:05d}.png", np.asarray(Image.open(
            dataset / "Annotations" / "synth001" / f"{t:05d}.png")))
    p = _masseg("overlay", "--root", dataset, "--labels", sparse, "--out", tmp_path / "ov2", "--video", "synth001")
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in (tmp_path / "ov2" / "synth001").iterdir()) == ["00000.jpg", "00002.jpg"]


def test_overlay_bad_input(dataset, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = [
        (("--labels", tmp_path / "missing", "--out", tmp_path / "o"), "label folder not found"),
        (("--labels", dataset / "Annotations", "--out", blocker / "o"), "is a file, not a folder"),
        (("--labels", dataset / "Annotations", "--out", tmp_path / "o", "--video", "nope"), "not in the dataset"),
        (("--labels", dataset / "Annotations", "--out", tmp_path / "o", "--fps", "0"), "--fps"),
    ]
    for args, text in cases:
        p = _masseg("overlay", "--root", dataset, *args)
        assert p.returncode == 2, (args, p.stderr)
        assert text in p.stderr and "Traceback" not in p.stderr, (args, p.stderr)
    wrong = tmp_path / "wrong"
    write_labels(wrong / "synth000" / "00000.png", np.zeros((10, 10), np.uint8))
    p = _masseg("overlay", "--root", dataset, "--labels", wrong, "--out", tmp_path / "o3")
    assert p.returncode == 2 and "label map is 10x10 but the frame is 64x48" in p.stderr
