"""MOSE+ assembly on small synthetic sources in every format (tests/data/moseplus/synth.py)."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.labels import read_labels
from data.moseplus import assemble as A  # the module
from data.moseplus.config import MosePlusConfigError, check_config
from pipeline.cli import main

from . import synth

EXPECTED = ["burst_YFCC100M_seq_small", "lvos_lv_long_s01", "m_a", "m_b", "ovis_ov_crowd", "sav_000001",
            "ytvos_yt_vanish"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("moseplus_src")
    raw = synth.build(root)
    return root, raw


def _copy(built, tmp_path: Path) -> dict:
    """A private copy of the sources (tests that break inputs), with the config pointing at it."""
    root, raw = built
    shutil.copytree(root, tmp_path / "src")
    return json.loads(json.dumps(raw).replace(str(root), str(tmp_path / "src")))


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "stats" / "clips.csv", newline="") as fh:
        return {r["clip"]: r for r in csv.DictReader(fh)}


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and A.WORK not in p.parts}


@pytest.fixture(scope="module")
def assembled(built, tmp_path_factory):
    out = tmp_path_factory.mktemp("moseplus_out") / "MOSE+"
    summary = A.assemble(check_config(built[1]), out, progress=False)
    return out, summary


def test_selects_exactly_the_difficult_clips(assembled):
    out, summary = assembled
    assert (out / "moseplus.txt").read_text().split() == EXPECTED
    rows = _rows(out)
    # measured difficulty, one known pattern per source
    assert rows["ytvos_yt_vanish"]["criteria"] == "disappearance" and rows["ytvos_yt_vanish"]["reappearances"] == "1"
    assert rows["burst_YFCC100M_seq_small"]["criteria"] == "small"
    assert float(rows["burst_YFCC100M_seq_small"]["small_share"]) == pytest.approx(16 / (48 * 64))
    assert rows["sav_000001"]["criteria"] == "occlusion" and float(rows["sav_000001"]["overlap_frac"]) == 1.0
    assert rows["ovis_ov_crowd"]["criteria"] == "crowding" and float(rows["ovis_ov_crowd"]["crowding"]) == 5.0
    for plain in ("ytvos_yt_plain", "sav_000002", "burst_YFCC100M_seq_plain", "lvos_lv_long_s00",
                  "lvos_lv_long_s02"):
        assert rows[plain]["status"] == "not selected" and rows[plain]["criteria"] == ""
    # subsampling (OVIS at 12 fps -> 6 fps) and segments (LVOS: 30 frames cut at 12)
    assert rows["ovis_ov_crowd"]["step"] == "2" and rows["ovis_ov_crowd"]["frames"] == "5"
    assert [rows[f"lvos_lv_long_s0{k}"]["frames"] for k in range(3)] == ["12", "12", "6"]
    assert rows["lvos_lv_long_s01"]["first_frame"] == "00000013"
    assert summary.admitted == {"mose": 2, "ytvos": 1, "lvos": 1, "sav": 1, "ovis": 1, "burst": 1}


def test_validation_split_kept_out_by_name_and_frame_hash(assembled):
    out, summary = assembled
    rows = _rows(out)
    assert rows["m_val"]["reason"] == "val split (name)"
    assert rows["lvos_m_val"]["reason"] == "val split (name)"  # another dataset's video with a val name
    assert rows["ytvos_yt_leak"]["status"] == "rejected"       # the val frames' files, under another name
    assert rows["ytvos_yt_leak"]["reason"].startswith("val split (frame file hash)")
    assert rows["burst_YFCC100M_leak_png"]["status"] == "rejected"  # the val pixels, re-encoded as PNG
    assert rows["burst_YFCC100M_leak_png"]["reason"].startswith("val split (frame pixel hash)")
    assert rows["ytvos_yt_repack"]["reason"].startswith("val split (frame pixel hash)")  # same JPEG data
    assert (summary.excluded_name, summary.excluded_hash) == (2, 3)
    for name in ("m_val", "ytvos_yt_leak", "ytvos_yt_repack", "burst_YFCC100M_leak_png"):
        assert not (out / "JPEGImages" / name).exists() and not (out / "Annotations" / name).exists()


def test_layout_frames_and_remapped_ids(assembled):
    out, _ = assembled
    for name in EXPECTED:
        jpgs = sorted(p.name for p in (out / "JPEGImages" / name).iterdir())
        pngs = sorted(p.name for p in (out / "Annotations" / name).iterdir())
        assert jpgs == [f"{k:05d}.jpg" for k in range(len(jpgs))]
        assert [p[:-4] for p in pngs] == [j[:-4] for j in jpgs]
        ids = set()
        for p in pngs:
            with Image.open(out / "Annotations" / name / p) as im:
                assert im.mode == "P" and im.size == (64, 48)
            ids |= set(np.unique(read_labels(out / "Annotations" / name / p)).tolist())
        assert ids - {0} == set(range(1, len(ids)))  # 1..K
    # the LVOS segment: its small object (id 2 in the source) and the big one, in order of appearance
    first = read_labels(out / "Annotations" / "lvos_lv_long_s01" / "00000.png")
    assert first[10, 10] == 1 and first[37, 51] == 2
    # JPEG frames are copied byte for byte; PNG-only sources are converted
    assert (out / "JPEGImages" / "m_a" / "00003.jpg").read_bytes()[:2] == b"\xff\xd8"


def test_yt_frames_are_the_annotated_ones(built, assembled):
    out, _ = assembled
    root = built[0] / "YouTubeVOS" / "train" / "JPEGImages" / "yt_vanish"
    for k in range(10):  # annotations every 5th frame: 00000, 00005, ... become 00000..00009
        assert (out / "JPEGImages" / "ytvos_yt_vanish" / f"{k:05d}.jpg").read_bytes() == \
            (root / f"{5 * k:05d}.jpg").read_bytes()


def test_deterministic_and_resumable(built, assembled, tmp_path, monkeypatch):
    out, _ = assembled
    cfg = check_config(built[1])
    again = tmp_path / "again"
    # a run killed after two clips, with a stale staging folder left behind
    real = A.write_clip
    calls = []

    def dying(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(A, "write_clip", dying)
    with pytest.raises(KeyboardInterrupt):
        A.assemble(cfg, again, progress=False)
    monkeypatch.setattr(A, "write_clip", real)
    assert not (again / "moseplus.txt").exists()
    (again / A.WORK / "staging" / "m_b" / "JPEGImages").mkdir(parents=True)
    summary = A.assemble(cfg, again, progress=False)
    assert summary.resumed == 2 and summary.written == len(EXPECTED) - 2
    assert _tree(again) == _tree(out)  # same inputs and seed: the same bytes, file for file
    assert not (again / A.WORK / "staging").exists()
    # a clip removed by hand is rebuilt, nothing else is touched
    shutil.rmtree(again / "Annotations" / "m_a")
    summary = A.assemble(cfg, again, progress=False)
    assert (summary.written, summary.resumed) == (1, len(EXPECTED) - 1)
    assert _tree(again) == _tree(out)


def test_quota_and_min_criteria(built, tmp_path):
    raw = json.loads(json.dumps(built[1]))
    raw["selection"] = {"min_criteria": 1, "crowding": 2.0}  # now the small clips count as crowded too
    for s in raw["sources"]:
        if s["name"] == "burst":
            s["quota"] = 1
    summary = A.assemble(check_config(raw), tmp_path / "o", progress=False)
    rows = _rows(tmp_path / "o")
    assert rows["burst_YFCC100M_seq_small"]["criteria"] == "small+crowding"
    assert summary.admitted["burst"] == 1
    raw["selection"] = {"min_criteria": 2, "crowding": 2.0}
    summary = A.assemble(check_config(raw), tmp_path / "o", progress=False)
    names = (tmp_path / "o" / "moseplus.txt").read_text().split()
    assert "ytvos_yt_vanish" not in names and "lvos_lv_long_s01" in names and "m_a" in names
    assert not (tmp_path / "o" / "JPEGImages" / "ytvos_yt_vanish").exists()  # stale clip of the first run removed


def _run_cli(cfg: dict, tmp_path: Path, capsys, *extra) -> tuple[int, str]:
    conf = tmp_path / "moseplus.toml"
    conf.write_text(synth.to_toml(cfg))
    rc = main(["data", "moseplus", "--config", str(conf), "--out", str(tmp_path / "out"), "--no-progress", *extra])
    return rc, capsys.readouterr()


def test_cli_summary_line_and_jobs_change_nothing(built, assembled, tmp_path, capsys):
    rc, cap = _run_cli(built[1], tmp_path, capsys, "--jobs", "2")
    assert rc == 0, cap.err
    assert cap.out.splitlines()[0].startswith("MOSE+: 7 clips (2 from mose; extra: ytvos 1, lvos 1, sav 1, ovis 1")
    md = (tmp_path / "out" / "stats" / "clips.md").read_text()
    assert "| MOSE | 2 |" in md and "| MOSE+ | 7 |" in md
    assert (tmp_path / "out" / "stats" / "histograms.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _tree(tmp_path / "out") == _tree(assembled[0])  # 2 worker processes, the same bytes


def _one_line_error(rc, cap, needle):
    assert rc == 2
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in cap.err
    assert needle in lines[0], lines[0]


def test_corrupt_rle_names_the_file(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    path = tmp_path / "src" / "SA-V" / "sav_train" / "sav_000" / "sav_000002_manual.json"
    doc = json.loads(path.read_text())
    doc["masklet"][3][0]["counts"] = doc["masklet"][3][0]["counts"][:-3]  # truncated
    path.write_text(json.dumps(doc))
    rc, cap = _run_cli(cfg, tmp_path, capsys)
    _one_line_error(rc, cap, str(path))
    assert "corrupt RLE for frame 3 object 0" in cap.err


def test_corrupt_burst_rle_names_the_file(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    path = tmp_path / "src" / "BURST" / "train.json"
    doc = json.loads(path.read_text())
    doc["sequences"][1]["segmentations"][2]["1"]["rle"] = "~~~"
    path.write_text(json.dumps(doc))
    rc, cap = _run_cli(cfg, tmp_path, capsys)
    _one_line_error(rc, cap, str(path))


def test_missing_frame_names_the_file(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    frame = tmp_path / "src" / "YouTubeVOS" / "train" / "JPEGImages" / "yt_plain" / "00010.jpg"
    frame.unlink()
    rc, cap = _run_cli(cfg, tmp_path, capsys)
    _one_line_error(rc, cap, str(frame))


def test_mismatched_size_names_the_file(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    frame = tmp_path / "src" / "MOSE" / "train" / "JPEGImages" / "m_a" / "00004.jpg"
    Image.new("RGB", (32, 24)).save(frame)
    rc, cap = _run_cli(cfg, tmp_path, capsys, "--jobs", "2")  # raised in a worker process
    _one_line_error(rc, cap, str(frame))
    assert "32x24" in cap.err
    assert not (tmp_path / "out" / "JPEGImages" / "m_a").exists()  # nothing half-written


def test_annotation_size_mismatch_names_the_png(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    png = tmp_path / "src" / "LVOS" / "train" / "Annotations" / "lv_long" / "00000005.png"
    synth.put_png_labels(png, np.zeros((20, 20), np.int32))
    rc, cap = _run_cli(cfg, tmp_path, capsys)
    _one_line_error(rc, cap, str(png))


def test_config_problems_are_one_line(built, tmp_path, capsys):
    raw = json.loads(json.dumps(built[1]))
    raw["sources"][1]["format"] = "youtube"
    raw["bogus"] = 1
    del raw["val"]
    with pytest.raises(MosePlusConfigError) as exc:
        check_config(raw)
    text = str(exc.value)
    assert "sources[1] (ytvos).format" in text and "bogus: unknown key" in text and "val.split is required" in text
    rc, cap = _run_cli(raw, tmp_path, capsys)
    _one_line_error(rc, cap, "problem(s) in the config")


def test_changed_annotations_are_rescanned(built, tmp_path):
    cfg = _copy(built, tmp_path)
    out = tmp_path / "o"
    A.assemble(check_config(cfg), out, progress=False)
    assert "ytvos_yt_plain" not in (out / "moseplus.txt").read_text().split()
    # the plain YouTube-VOS clip gains a small second object on every annotated frame
    ann = tmp_path / "src" / "YouTubeVOS" / "train" / "Annotations" / "yt_plain"
    for png in sorted(ann.iterdir()):
        lab = read_labels(png).astype(np.int32)
        lab[40:43, 60:63] = 2
        synth.put_png_labels(png, lab)
    A.assemble(check_config(cfg), out, progress=False)
    assert "ytvos_yt_plain" in (out / "moseplus.txt").read_text().split()


def test_truncated_frame_names_the_file(built, tmp_path, capsys):
    cfg = _copy(built, tmp_path)
    frame = tmp_path / "src" / "BURST" / "frames" / "train" / "YFCC100M" / "seq_small" / "frame0004.jpg"
    frame.write_bytes(frame.read_bytes()[:300])
    rc, cap = _run_cli(cfg, tmp_path, capsys)
    _one_line_error(rc, cap, str(frame))
    assert "unreadable frame" in cap.err


def test_files_follow_the_umask_and_unwritable_out_is_one_line(built, tmp_path, capsys):
    import os
    import stat

    old = os.umask(0o027)
    try:
        rc, cap = _run_cli(built[1], tmp_path, capsys)
    finally:
        os.umask(old)
    assert rc == 0, cap.err
    out = tmp_path / "out"
    for p in (out / "moseplus.txt", out / "stats" / "clips.csv", out / "JPEGImages" / "m_a" / "00000.jpg",
              out / "Annotations" / "sav_000001" / "00000.png", out / A.WORK / "done" / "m_a.json"):
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, p
    assert stat.S_IMODE((out / "JPEGImages" / "m_a").stat().st_mode) == 0o750
    assert not list(out.rglob("*.tmp"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    conf = tmp_path / "moseplus.toml"
    rc = main(["data", "moseplus", "--config", str(conf), "--out", str(blocker / "sub"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "not writable" in err and len(err.strip().splitlines()) == 1


def test_shipped_config_is_valid_apart_from_missing_data():
    from data.moseplus.config import load_config

    repo = Path(__file__).resolve().parents[3]
    try:
        cfg = load_config(repo / "configs" / "moseplus.toml")
    except MosePlusConfigError as exc:  # no datasets on this machine: only "not found" may be wrong
        assert exc.problems and all("not found" in p for p in exc.problems), exc.problems
    else:
        assert [s["format"] for s in cfg["sources"]] == ["png", "youtubevos", "lvos", "sav", "ovis", "burst"]
