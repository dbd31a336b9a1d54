"""`masseg submit` / `masseg validate` end to end on generated data and the shared clips."""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from data.dataset import VOSDataset
from data.labels import DAVIS_PALETTE, read_labels
from pipeline.cli import main
from submission.expected import expected_from_dataset
from submission.writer import SubmissionWriter

from .test_dataset_gen import (BETA_PALETTE, SPLIT, VIDEOS, make_dataset, make_ytvos_dataset, predictions,
                               write_label_folder)


@pytest.fixture
def gen(tmp_path):
    """(dataset root, expected, predictions, label folder in P mode with a grey palette)."""
    root = make_dataset(tmp_path / "ds")
    expected = expected_from_dataset(VOSDataset(root, "val"))
    preds = predictions(expected)
    return root, expected, preds, write_label_folder(tmp_path / "labels", preds)


def submit(root, labels, out, *extra):
    return main(["submit", "--root", str(root), "--split", "val", "--labels", str(labels), "--out", str(out),
                 *extra])


def _zip_frames(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        return names, {n: zf.read(n) for n in names if not n.endswith("/")}


def test_submit_writes_official_zip_and_validates(gen, tmp_path, capsys):
    root, expected, preds, labels = gen
    assert submit(root, labels, tmp_path / "out" / "s.zip") == 0
    out = capsys.readouterr().out
    zip_path = tmp_path / "out" / "s.zip"
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    assert f"wrote {zip_path}: 3 videos, 12 frames, {zip_path.stat().st_size} bytes, sha256 {digest}" in out
    names, files = _zip_frames(zip_path)
    want = []
    for v in sorted(SPLIT):
        want += [f"{v}/"] + [f"{v}/{f}.png" for f in expected[v].frame_names]
    assert names == want  # every frame of every split video, JPEG names, sorted, folders first, nothing else
    for v in SPLIT:
        for f in expected[v].frame_names:
            (tmp_path / "x.png").write_bytes(files[f"{v}/{f}.png"])
            lab, pal = read_labels(tmp_path / "x.png", with_palette=True)
            assert Image.open(tmp_path / "x.png").mode == "P" and pal == DAVIS_PALETTE
            assert lab.shape == VIDEOS[v][:2] and np.array_equal(lab, preds[v][f])
    assert os.listdir(tmp_path / "out") == ["s.zip"]  # no temp file left
    assert main(["validate", str(zip_path), "--root", str(root), "--split", "val"]) == 0
    assert capsys.readouterr().out.strip() == f"{zip_path}: OK (3 videos, 12 frames checked)"


def test_zip_is_byte_identical_across_runs_folders_and_write_order(gen, tmp_path, monkeypatch, capsys):
    root, _, preds, labels = gen
    assert submit(root, labels, tmp_path / "a.zip") == 0
    assert submit(root, labels, tmp_path / "b.zip") == 0
    # the same labels written in reverse order, as grayscale PNGs, in another folder; relative paths from
    # another working folder
    work = tmp_path / "elsewhere" / "deeper"
    work.mkdir(parents=True)
    write_label_folder(work / "labels_rev", preds, mode="L", reverse=True)
    monkeypatch.chdir(work)
    assert submit(os.path.relpath(root), "labels_rev", "c.zip") == 0
    a = (tmp_path / "a.zip").read_bytes()
    assert a == (tmp_path / "b.zip").read_bytes() == (work / "c.zip").read_bytes()


def test_dataset_palette_option(gen, tmp_path):
    root, _, _, labels = gen
    assert submit(root, labels, tmp_path / "d.zip", "--palette", "dataset") == 0
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        for v, pal in (("alpha", DAVIS_PALETTE), ("beta", BETA_PALETTE), ("gamma", DAVIS_PALETTE)):
            (tmp_path / "x.png").write_bytes(zf.read(f"{v}/00001.png"))
            assert read_labels(tmp_path / "x.png", with_palette=True)[1] == pal


def test_refuses_bad_labels_reports_all_and_leaves_no_zip(gen, tmp_path, capsys):
    root, _, _, labels = gen
    (labels / "beta" / "00002.png").unlink()
    Image.new("RGB", (16, 16)).save(labels / "gamma" / "00001.png")
    bad = np.zeros((24, 32), np.uint8)
    bad[0, 0] = 9
    Image.fromarray(bad, mode="L").save(labels / "alpha" / "00004.png")
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(labels / "alpha" / "00000.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    assert submit(root, labels, out_dir / "s.zip") == 1
    cap = capsys.readouterr()
    assert "4 problems (missing_frame 1, wrong_size 1, wrong_mode 1, unknown_id 1)" in cap.out
    for line in ("  beta/00002.png: frame missing", "  gamma/00001.png: mode RGB (colour image)",
                 "  alpha/00004.png: ids [9] not among the video's objects (1, 2)",
                 "  alpha/00000.png: 10x10, the video is 32x24"):
        assert line in cap.out.splitlines()
    assert "fix: store object ids as pixel values of a palette PNG" in cap.out
    assert "submission refused, 4 problems: no zip written to" in cap.err
    assert os.listdir(out_dir) == []


def test_refusal_keeps_an_older_zip_untouched_and_says_so(gen, tmp_path, capsys):
    root, _, _, labels = gen
    assert submit(root, labels, tmp_path / "s.zip") == 0
    before = (tmp_path / "s.zip").read_bytes()
    shutil.rmtree(labels / "gamma")
    assert submit(root, labels, tmp_path / "s.zip") == 1
    cap = capsys.readouterr()
    assert "  gamma/: no folder for this video of the split" in cap.out.splitlines()
    assert "was left unchanged and does not hold these labels" in cap.err
    assert (tmp_path / "s.zip").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["ds", "labels", "s.zip"]


def test_run_folder_with_labels_written_by_the_writer(gen, tmp_path, capsys):
    """The ensemble's contract: SubmissionWriter(run/labels) then `masseg submit --labels run`."""
    root, expected, preds, labels = gen
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    writer = SubmissionWriter(run / "labels", expected=expected)
    for v, frames in preds.items():
        for f in writer.missing(v, expected[v].frame_names):
            writer.write(v, f, frames[f])
    assert submit(root, run, tmp_path / "run.zip") == 0
    assert submit(root, labels, tmp_path / "direct.zip") == 0
    assert (tmp_path / "run.zip").read_bytes() == (tmp_path / "direct.zip").read_bytes()


def test_input_extras_are_ignored_with_a_note(gen, tmp_path, capsys):
    root, _, _, labels = gen
    (labels / "delta").mkdir()  # a video of the root that is not in the split
    Image.fromarray(np.zeros((12, 12), np.uint8), mode="L").save(labels / "delta" / "00000.png")
    (labels / ".DS_Store").write_bytes(b"x")
    (labels / "alpha" / "scores.json").write_text("{}")
    assert submit(root, labels, tmp_path / "s.zip") == 0
    out = capsys.readouterr().out
    assert f"note: ignored in {labels} (not copied to the zip): extra_video 1, stray_file 1, hidden_file 1\n" in out
    names, _ = _zip_frames(tmp_path / "s.zip")
    assert {n.split("/")[0] for n in names} == set(SPLIT)


@pytest.mark.parametrize("case", ["no_labels", "no_split_video", "no_root", "bad_zip", "no_source"])
def test_bad_arguments_are_clear_errors(gen, tmp_path, capsys, case):
    root, _, _, labels = gen
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.zip").write_bytes(b"PK junk")
    argv, match = {
        "no_labels": (["submit", "--root", str(root), "--labels", str(tmp_path / "nope"), "--out", "x.zip"],
                      "label folder not found"),
        "no_split_video": (["submit", "--root", str(root), "--labels", str(tmp_path / "empty"), "--out", "x.zip"],
                           "holds no folder of a video of the split (fix: pass the folder holding"),
        "no_root": (["validate", str(labels), "--root", str(tmp_path / "noroot")], "dataset root not found"),
        "bad_zip": (["validate", str(tmp_path / "junk.zip"), "--root", str(root)], "not a readable zip"),
        "no_source": (["validate", str(tmp_path / "nothing"), "--root", str(root)], "submission not found"),
    }[case]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err and "fix:" in err
    assert not (tmp_path / "x.zip").exists()


def test_validate_command_reports_problems(gen, tmp_path, capsys):
    root, _, _, labels = gen
    assert submit(root, labels, tmp_path / "s.zip") == 0
    with zipfile.ZipFile(tmp_path / "s.zip") as src, zipfile.ZipFile(tmp_path / "bad.zip", "w") as dst:
        for info in src.infolist():
            if info.filename != "alpha/00003.png":
                dst.writestr(info, src.read(info))
        dst.writestr("__MACOSX/alpha/._00000.png", b"\0")
    capsys.readouterr()
    assert main(["validate", str(tmp_path / "bad.zip"), "--root", str(root), "--split", "val"]) == 1
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    assert lines[0] == f"{tmp_path / 'bad.zip'}: 2 problems (missing_frame 1, macosx 1); 3 videos, 11 frames checked"
    assert "  alpha/00003.png: frame missing" in lines and "  __MACOSX/: macOS resource folder" in lines
    assert "Error: 2 problems in" in cap.err


def test_ytvos_objects_given_later_are_allowed(tmp_path, capsys):
    root = make_ytvos_dataset(tmp_path / "yt")
    expected = expected_from_dataset(VOSDataset(root))
    preds = predictions(expected)  # ids 1 and 2 on every frame, although 2 is first given on frame 2
    write_label_folder(tmp_path / "labels", preds)
    argv = ["submit", "--root", str(root), "--labels", str(tmp_path / "labels"), "--out", str(tmp_path / "y.zip")]
    assert main(argv) == 0
    assert main(["validate", str(tmp_path / "y.zip"), "--root", str(root)]) == 0
    # the same labels against first-frame objects only: id 2 is unknown on every frame
    assert main(argv[:-2] + ["--out", str(tmp_path / "z.zip"), "--objects-from", "first_frame"]) == 1
    assert "unknown_id 5" in capsys.readouterr().out
    assert not (tmp_path / "z.zip").exists()


def test_shared_clip_with_object_appearing_later(vos_clips, tmp_path, capsys):
    """xmem2 'caps': sparse ground truth, object 2 first given at frame 33. Labels = the latest given mask."""
    root = vos_clips / "xmem2_examples"
    ds = VOSDataset(root, objects_from="appearance")
    video = ds["caps"]
    assert video.first_given == {1: 0, 2: 33}
    writer = SubmissionWriter(tmp_path / "labels")
    given = set(video.annotation_names)
    current = None
    for f in video.frame_names:
        if f in given:
            current = video.annotation(f)
        writer.write("caps", f, current)
    out = tmp_path / "caps.zip"
    argv = ["submit", "--root", str(root), "--labels", str(tmp_path / "labels"), "--out", str(out)]
    assert main(argv + ["--objects-from", "appearance"]) == 0
    names, _ = _zip_frames(out)
    assert len(names) == 1 + 87 and names[1] == "caps/00000.png" and names[-1] == "caps/00086.png"
    capsys.readouterr()
    # DAVIS-style first-frame objects: id 2 is not an object of the video, so the frames from 33 on are refused
    assert main(argv[:-1] + [str(tmp_path / "ff.zip"), "--objects-from", "first_frame", "--max-per-kind", "2"]) == 1
    text = capsys.readouterr().out
    assert "unknown_id 54" in text and "  caps/00033.png: ids [2] not among the video's objects (1)" in text
    assert "  ... and 52 more unknown_id" in text
