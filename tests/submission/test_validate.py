"""Validator: a clean submission passes; each injected fault is reported as exactly its kind, naming the file,
in a folder and in a zip, one at a time and all at once."""
from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.dataset import VOSDataset
from data.errors import MassegError
from submission.build import build_submission
from submission.expected import ExpectedVideo, expected_from_dataset
from submission.validate import FAULT_KINDS, Problem, Report, check_png, validate

from .test_dataset_gen import make_dataset, predictions, write_label_folder


def zip_folder(folder: Path, dest: Path, dir_entries: bool = True) -> Path:
    """Zip a folder the way a user's zip tool would (every entry, hidden ones included)."""
    with zipfile.ZipFile(dest, "w") as zf:
        for top, dirs, files in sorted(os.walk(folder)):
            rel_top = os.path.relpath(top, folder)
            for d in sorted(dirs):
                if dir_entries:
                    zf.writestr(os.path.normpath(os.path.join(rel_top, d)) + "/", b"")
            for f in sorted(files):
                zf.write(os.path.join(top, f), os.path.normpath(os.path.join(rel_top, f)))
    return dest


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """(expected, folder holding a valid extracted submission, its zip) built by build_submission."""
    base = tmp_path_factory.mktemp("valid")
    expected = expected_from_dataset(VOSDataset(make_dataset(base / "ds"), "val"))
    labels = write_label_folder(base / "labels", predictions(expected))
    result = build_submission(labels, expected, base / "sub.zip")
    assert result.ok, result.report.format()
    with zipfile.ZipFile(base / "sub.zip") as zf:
        zf.extractall(base / "sub")
    return expected, base / "sub", base / "sub.zip"


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _ids_frame(h, w, ids):
    lab = np.zeros((h, w), np.uint8)
    for k, oid in enumerate(ids):
        lab[k, :3] = oid
    return lab


# Each fault edits a valid submission folder and returns the exact {(kind, path)} it must produce.
def f_missing_video(r):
    shutil.rmtree(r / "gamma")
    return {("missing_video", "gamma/")}


def f_extra_video(r):
    (r / "zeta").mkdir()
    shutil.copy(r / "alpha" / "00000.png", r / "zeta" / "00000.png")
    return {("extra_video", "zeta/")}


def f_missing_frame(r):
    (r / "beta" / "00002.png").unlink()
    return {("missing_frame", "beta/00002.png")}


def f_extra_frame(r):
    shutil.copy(r / "alpha" / "00000.png", r / "alpha" / "00099.png")
    return {("extra_frame", "alpha/00099.png")}


def f_wrong_size(r):
    (r / "alpha" / "00001.png").write_bytes(_png(_ids_frame(25, 32, (1, 2)), "L"))
    return {("wrong_size", "alpha/00001.png")}


def f_wrong_mode_rgb(r):
    (r / "beta" / "00001.png").write_bytes(_png(np.zeros((20, 30, 3), np.uint8)))
    return {("wrong_mode", "beta/00001.png")}


def f_wrong_mode_16bit(r):
    (r / "alpha" / "00003.png").write_bytes(_png(_ids_frame(24, 32, (1, 2)).astype(np.uint16)))
    return {("wrong_mode", "alpha/00003.png")}


def f_unknown_id(r):
    (r / "alpha" / "00002.png").write_bytes(_png(_ids_frame(24, 32, (1, 3)), "L"))  # 3 is beta's, not alpha's
    return {("unknown_id", "alpha/00002.png")}


def f_corrupt_truncated(r):
    p = r / "beta" / "00000.png"
    p.write_bytes(p.read_bytes()[:60])
    return {("corrupt_png", "beta/00000.png")}


def f_corrupt_jpeg(r):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((20, 30), np.uint8)).save(buf, format="JPEG")
    (r / "beta" / "00003.png").write_bytes(buf.getvalue())
    return {("corrupt_png", "beta/00003.png")}


def f_stray_files(r):
    (r / "readme.txt").write_text("my submission")
    (r / "alpha" / "notes.txt").write_text("x")
    shutil.copy(r / "alpha" / "00000.png", r / "00000.png")
    return {("stray_file", "readme.txt"), ("stray_file", "alpha/notes.txt"), ("stray_file", "00000.png")}


def f_nested_folder(r):
    (r / "alpha" / "sub").mkdir()
    shutil.copy(r / "alpha" / "00000.png", r / "alpha" / "sub" / "00000.png")
    return {("nested_folder", "alpha/sub/")}


def f_hidden_files(r):
    (r / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (r / "beta" / "._00000.png").write_bytes(b"\0\5\26\7")
    return {("hidden_file", ".DS_Store"), ("hidden_file", "beta/._00000.png")}


def f_macosx(r):
    (r / "__MACOSX" / "alpha").mkdir(parents=True)
    (r / "__MACOSX" / "alpha" / "._00000.png").write_bytes(b"\0\5\26\7")
    return {("macosx", "__MACOSX/")}


FAULTS = [f_missing_video, f_extra_video, f_missing_frame, f_extra_frame, f_wrong_size, f_wrong_mode_rgb,
          f_wrong_mode_16bit, f_unknown_id, f_corrupt_truncated, f_corrupt_jpeg, f_stray_files, f_nested_folder,
          f_hidden_files, f_macosx]


def wrap(r, name="Annotations"):
    """Move everything one folder down, as a zip made from outside the output folder would."""
    inner = r / name
    entries = list(r.iterdir())
    inner.mkdir()
    for e in entries:
        e.rename(inner / e.name)


def _pairs(report: Report) -> set[tuple[str, str]]:
    return {(p.kind, p.path) for p in report.problems}


def _check_both(valid, tmp_path, inject) -> tuple[set, Report, Report]:
    expected, sub, _ = valid
    folder = tmp_path / "sub"
    shutil.copytree(sub, folder)
    want = inject(folder)
    rep_dir = validate(folder, expected)
    rep_zip = validate(zip_folder(folder, tmp_path / "faulty.zip"), expected)
    return want, rep_dir, rep_zip


def test_valid_submission_is_clean(valid, tmp_path):
    expected, sub, zip_path = valid
    for rep in (validate(sub, expected), validate(zip_path, expected),
                validate(zip_folder(sub, tmp_path / "nodirs.zip", dir_entries=False), expected)):
        assert rep.ok, rep.format()
        assert rep.videos_checked == 3 and rep.frames_checked == 5 + 4 + 3
        assert rep.format().endswith("OK (3 videos, 12 frames checked)")


@pytest.mark.parametrize("inject", FAULTS, ids=lambda f: f.__name__[2:])
def test_each_fault_alone(valid, tmp_path, inject):
    want, rep_dir, rep_zip = _check_both(valid, tmp_path, inject)
    assert _pairs(rep_dir) == want, rep_dir.format()
    assert _pairs(rep_zip) == want, rep_zip.format()


def test_wrapper_folder_alone(valid, tmp_path):
    want, rep_dir, rep_zip = _check_both(valid, tmp_path, lambda r: wrap(r) or {("wrapper_folder", "Annotations/")})
    assert _pairs(rep_dir) == want and _pairs(rep_zip) == want
    assert rep_dir.frames_checked == 12  # the wrapped frames are still checked


def _all_faults(r):
    want = set()
    for f in FAULTS:
        want |= f(r)
    return want


def test_all_faults_at_once(valid, tmp_path):
    want, rep_dir, rep_zip = _check_both(valid, tmp_path, _all_faults)
    assert {k for k, _ in want} == set(FAULT_KINDS) - {"wrapper_folder", "wrong_root"}  # layout-specific: tests/submission/test_layouts.py
    assert _pairs(rep_dir) == want, rep_dir.format()
    assert _pairs(rep_zip) == want, rep_zip.format()


def test_all_faults_inside_a_wrapper(valid, tmp_path):
    def inject(r):
        inner = _all_faults(r)
        wrap(r)
        return {(k, "Annotations/" + p) for k, p in inner} | {("wrapper_folder", "Annotations/")}

    want, rep_dir, rep_zip = _check_both(valid, tmp_path, inject)
    assert {k for k, _ in want} == set(FAULT_KINDS) - {"wrong_root"}
    assert _pairs(rep_dir) == want, rep_dir.format()
    assert _pairs(rep_zip) == want, rep_zip.format()


def test_wrapper_next_to_videos_is_not_descended(valid, tmp_path):
    def inject(r):
        shutil.copytree(r / "alpha", r / "Annotations" / "alpha")
        return {("wrapper_folder", "Annotations/")}

    want, rep_dir, rep_zip = _check_both(valid, tmp_path, inject)
    assert _pairs(rep_dir) == want and _pairs(rep_zip) == want


def test_symlinked_video_folders_are_followed_without_looping(valid, tmp_path):
    expected, sub, _ = valid
    folder = tmp_path / "linked"
    folder.mkdir()
    for v in ("alpha", "beta", "gamma"):
        (folder / v).symlink_to(sub / v, target_is_directory=True)
    assert validate(folder, expected).ok
    (folder / "alpha_loop").symlink_to(folder, target_is_directory=True)  # a cycle must not hang the walk
    assert _pairs(validate(folder, expected)) == {("extra_video", "alpha_loop/")}


def test_zip_entry_name_faults(valid, tmp_path):
    expected, _, zip_path = valid
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("alpha\\00000.png", src.read("alpha/00000.png"))
        dst.writestr("../evil.png", b"x")
        with pytest.warns(UserWarning, match="Duplicate"):
            dst.writestr("beta/00000.png", src.read("beta/00000.png"))
    rep = validate(bad, expected)
    assert _pairs(rep) == {("stray_file", "alpha\\00000.png"), ("stray_file", "../evil.png"),
                           ("stray_file", "beta/00000.png")}, rep.format()


def test_zip_entry_with_bad_crc_is_reported(valid, tmp_path):
    expected, _, zip_path = valid
    data = bytearray(zip_path.read_bytes())
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo("gamma/00001.png")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 40] ^= 0xFF  # flip a byte inside the stored PNG: the entry's CRC no longer matches
    (tmp_path / "crc.zip").write_bytes(bytes(data))
    rep = validate(tmp_path / "crc.zip", expected)
    assert _pairs(rep) == {("corrupt_png", "gamma/00001.png")} and "CRC" in rep.problems[0].detail


def test_report_format_groups_counts_and_fixes(valid, tmp_path):
    _, rep, _ = _check_both(valid, tmp_path, _all_faults)
    text = rep.format()
    lines = text.splitlines()
    assert lines[0].startswith(f"{rep.source}: {len(rep.problems)} problems (missing_video 1, missing_frame 1, ")
    assert "missing_video (1): a video of the split has no folder (fix: " in text
    assert "stray_file (3): " in text
    # one line per problem (indented), each naming its file
    problem_lines = [ln for ln in lines if ln.startswith("  ")]
    assert len(problem_lines) == len(rep.problems)
    assert "  alpha/00001.png: 32x25, the video is 32x24" in lines
    assert "  alpha/00003.png: mode I;16 (16-bit grayscale)" in lines
    assert "  alpha/00002.png: ids [3] not among the video's objects (1, 2)" in lines
    assert "  beta/00003.png: JPEG data with a .png name" in lines
    short = rep.format(max_per_kind=1).splitlines()
    assert "  ... and 2 more stray_file" in short and len(short) < len(lines)


def test_check_png_modes_and_ids():
    ev = ExpectedVideo("v", ("00000",), (4, 5), frozenset({1, 2}))
    lab = np.zeros((4, 5), np.uint8)
    lab[0, 0], lab[1, 1] = 2, 1
    got, probs = check_png(_png(lab, "L"), "v/00000.png", ev)
    assert probs == [] and np.array_equal(got, lab)
    pal = Image.fromarray(lab, "P")
    pal.putpalette(bytes(768))
    buf = io.BytesIO()
    pal.save(buf, format="PNG")
    assert check_png(buf.getvalue(), "v/00000.png", ev)[1] == []
    for arr, mode, note in [(np.zeros((4, 5, 4), np.uint8), None, "RGBA"), (np.zeros((4, 5), bool), None, "mode 1")]:
        got, probs = check_png(_png(arr, mode), "v/00000.png", ev)
        assert got is None and [p.kind for p in probs] == ["wrong_mode"] and note in probs[0].detail
    sparse = ExpectedVideo("v", ("00000",), (4, 5), frozenset({1, 3}))  # ids need not be contiguous
    lab[2, 2] = 3
    assert check_png(_png(lab, "L"), "v/00000.png", sparse)[1] == [
        Problem("unknown_id", "v/00000.png", "ids [2] not among the video's objects (1, 3)")]
    lab[lab == 2] = 0
    assert check_png(_png(lab, "L"), "v/00000.png", sparse)[1] == []
    got, probs = check_png(b"", "v/00000.png", ev)
    assert probs == [Problem("corrupt_png", "v/00000.png", "an empty file with a .png name")]


def test_unreadable_inputs_are_clear_errors(tmp_path, valid):
    expected = valid[0]
    with pytest.raises(MassegError, match="submission not found"):
        validate(tmp_path / "nope.zip", expected)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(MassegError, match=r"junk.zip: not a readable zip .*fix: rebuild"):
        validate(tmp_path / "junk.zip", expected)


def test_shared_clips_folder_and_zip(vos_clips, tmp_path):
    """Real DAVIS clips: ground truth as labels gives a clean zip; faults on real frames are caught."""
    root = vos_clips / "davis2016"
    (tmp_path / "one.txt").write_text("libby\n")  # one 49-frame video keeps the test short
    expected = expected_from_dataset(VOSDataset(root, tmp_path / "one.txt"))
    assert list(expected) == ["libby"] and expected["libby"].size == (480, 854)
    result = build_submission(root / "Annotations", expected, tmp_path / "clips.zip")
    assert result.ok and result.frames == 49
    assert [p.path for p in result.ignored] == ["bmx-trees/"]  # in the label folder, not in this split
    assert validate(tmp_path / "clips.zip", expected).ok
    folder = tmp_path / "clips"
    with zipfile.ZipFile(tmp_path / "clips.zip") as zf:
        zf.extractall(folder)
    Image.open(folder / "libby" / "00010.png").convert("RGB").save(folder / "libby" / "00010.png")
    (folder / "libby" / "00048.png").unlink()  # the last frame, which scorers still need present
    want = {("wrong_mode", "libby/00010.png"), ("missing_frame", "libby/00048.png")}
    assert _pairs(validate(folder, expected)) == want
    assert _pairs(validate(zip_folder(folder, tmp_path / "faulty.zip"), expected)) == want
