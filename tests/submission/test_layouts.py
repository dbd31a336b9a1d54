"""Submission and evaluation layouts teams have: YouTube-VOS zips rooted at Annotations/, only the benchmark's
sparse frames from labels inferred on every frame, grayscale 0/255 masks, all-frame predictions against sparse
ground truth, SA-V per-object folders."""
import re
import zipfile

import numpy as np
import pytest
from PIL import Image

from data.labels import write_labels
from pipeline.cli import main

HW = (12, 16)


def _root(path, n, ann=(0,), videos=("v",)):
    for v in videos:
        (path / "JPEGImages" / v).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full(HW + (3,), 9 * i, np.uint8)).save(path / "JPEGImages" / v / f"{i:05d}.jpg")
        for i in ann:
            lab = np.zeros(HW, np.uint8)
            lab[2:6, 3:9] = 1
            write_labels(path / "Annotations" / v / f"{i:05d}.png", lab)
    return path


def _labels(path, frames, value=1, mode="P", video="v"):
    for f in frames:
        lab = np.zeros(HW, np.uint8)
        lab[2:6, 3:9] = value
        (path / video).mkdir(parents=True, exist_ok=True)
        if mode == "P":
            write_labels(path / video / f"{f}.png", lab)
        else:
            Image.fromarray(lab, mode="L").save(path / video / f"{f}.png")
    return path


def test_youtube_vos_zip_rooted_at_annotations_with_only_the_benchmark_frames(tmp_path, capsys):
    all_frames = _root(tmp_path / "valid_all_frames", 11)             # inference ran on every frame
    sparse = _root(tmp_path / "valid", 0)                              # the benchmark: every 5th frame
    for i in (0, 5, 10):
        Image.fromarray(np.zeros(HW + (3,), np.uint8)).save(sparse / "JPEGImages" / "v" / f"{i:05d}.jpg")
    labels = _labels(tmp_path / "labels", [f"{i:05d}" for i in range(11)])
    out = tmp_path / "yt.zip"
    assert main(["submit", "--labels", str(labels), "--root", str(all_frames), "--frames-root", str(sparse),
                 "--layout", "annotations-root", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
    assert names == ["Annotations/", "Annotations/v/", "Annotations/v/00000.png", "Annotations/v/00005.png",
                     "Annotations/v/00010.png"]
    assert "extra_frame 8" in capsys.readouterr().out  # the frames the benchmark does not score: not packed
    # the validator accepts the layout the benchmark expects, and only that one
    args = ["validate", str(out), "--root", str(all_frames), "--frames-root", str(sparse)]
    assert main(args + ["--layout", "annotations-root"]) == 0
    assert main(args) == 1
    assert "wrapper_folder" in capsys.readouterr().out
    root_zip = tmp_path / "root.zip"
    assert main(["submit", "--labels", str(labels), "--root", str(all_frames), "--frames-root", str(sparse),
                 "--out", str(root_zip)]) == 0
    capsys.readouterr()
    assert main(args[:1] + [str(root_zip)] + args[2:] + ["--layout", "annotations-root"]) == 1
    assert "wrong_root" in capsys.readouterr().out


def test_frames_root_must_be_frames_of_the_inferred_video(tmp_path, capsys):
    root = _root(tmp_path / "r", 4)
    other = _root(tmp_path / "o", 6)
    labels = _labels(tmp_path / "labels", [f"{i:05d}" for i in range(4)])
    assert main(["submit", "--labels", str(labels), "--root", str(root), "--frames-root", str(other),
                 "--out", str(tmp_path / "s.zip")]) == 2
    assert "frame 00004 of 'v' is not a frame of the inferred video" in capsys.readouterr().err


def test_grayscale_0_255_labels_are_object_1_in_submit_and_evaluate(tmp_path, capsys):
    root = _root(tmp_path / "r", 4, ann=range(4))
    labels = _labels(tmp_path / "labels", [f"{i:05d}" for i in range(4)], value=255, mode="L")
    out = tmp_path / "s.zip"
    assert main(["submit", "--labels", str(labels), "--root", str(root), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        import io
        got = np.asarray(Image.open(io.BytesIO(z.read("v/00002.png"))))
    assert set(np.unique(got).tolist()) == {0, 1}
    from submission.jf import evaluate
    assert evaluate(root / "Annotations", labels, n_jobs=1).headline("davis") == pytest.approx(1.0)
    # a finished zip holding 0/255 is what the server would read as id 255: refused, with the hint
    raw = tmp_path / "raw"
    _labels(raw, [f"{i:05d}" for i in range(4)], value=255, mode="L")
    assert main(["validate", str(raw), "--root", str(root)]) == 1
    assert "grayscale 0/255 mask" in capsys.readouterr().out


def test_extra_frames_ignore_scores_sparse_ground_truth(tmp_path, capsys):
    root = _root(tmp_path / "r", 12, ann=(0, 4, 8, 11))                  # sparse GT
    pred = _labels(tmp_path / "pred", [f"{i:05d}" for i in range(12)])  # every frame
    assert main(["evaluate", "--root", str(root), "--pred", str(pred), "-j", "1"]) == 2
    assert "--extra-frames ignore" in capsys.readouterr().err
    assert main(["evaluate", "--root", str(root), "--pred", str(pred), "-j", "1", "--extra-frames", "ignore",
                 "--protocol", "vos-benchmark"]) == 0
    out = capsys.readouterr().out
    assert "2 scored frames" in out and "vos-benchmark  J&F 100.00" in out  # frames 4 and 8: GT's inner frames


def test_sav_per_object_folders_evaluate(tmp_path, capsys):
    root = tmp_path / "sav_val"
    (root / "JPEGImages_24fps" / "sav_1").mkdir(parents=True)
    a = np.zeros(HW, bool)
    a[2:6, 3:9] = True
    for i in range(9):  # 24 fps frames, 6 fps annotations
        Image.fromarray(np.zeros(HW + (3,), np.uint8)).save(root / "JPEGImages_24fps" / "sav_1" / f"{i:05d}.jpg")
    for i in (0, 4, 8):
        for base in (root / "Annotations_6fps", tmp_path / "pred"):  # SAM2 --per_obj_png_file output: same form
            (base / "sav_1" / "001").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.where(a, 255, 0).astype(np.uint8), mode="L").save(
                base / "sav_1" / "001" / f"{i:05d}.png")
    assert main(["evaluate", "--root", str(root), "--pred", str(tmp_path / "pred"), "-j", "1"]) == 0
    out = capsys.readouterr().out
    assert "1 video, 1 object, 1 scored frame\n" in out and re.search(r"davis +J&F 100\.00", out), out  # 00004: inner GT frame


def test_run_config_keys_for_youtube_vos(tmp_path):
    """`masseg run`'s submit stage: [run] layout and [data] frames_root reach the zip."""
    from data.dataset import VOSDataset
    from pipeline.config import load_experiment
    from submission.build import submit_dataset_labels
    all_frames = _root(tmp_path / "valid_all_frames", 6)
    sparse = _root(tmp_path / "valid", 0)
    for i in (0, 5):
        Image.fromarray(np.zeros(HW + (3,), np.uint8)).save(sparse / "JPEGImages" / "v" / f"{i:05d}.jpg")
    cfg = tmp_path / "yt.toml"
    cfg.write_text(f'[run]\nout = "{tmp_path / "run"}"\nlayout = "annotations-root"\n[data]\nroot = "{all_frames}"\n'
                   f'frames_root = "{sparse}"\nprotocol = "none"\n[[member]]\nname = "c"\nmodel = "cutie"\n'
                   f'size = "small"\ncheckpoint = "cutie-small-mega"\n')
    exp = load_experiment(cfg, check_files=False)
    assert exp.run["layout"] == "annotations-root" and exp.data["frames_root"] == str(sparse)
    labels = _labels(tmp_path / "labels", [f"{i:05d}" for i in range(6)])
    res = submit_dataset_labels(labels, VOSDataset(all_frames), tmp_path / "s.zip", palette="davis",
                                layout=exp.run["layout"], frames_from=VOSDataset(exp.data["frames_root"]))
    assert res.ok and res.frames == 2
    with zipfile.ZipFile(tmp_path / "s.zip") as z:
        assert [n for n in z.namelist() if n.endswith(".png")] == ["Annotations/v/00000.png", "Annotations/v/00005.png"]
