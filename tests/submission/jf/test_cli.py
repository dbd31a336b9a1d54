"""`masseg evaluate`: options, tables on disk, and a non-zero exit with the file named on bad input."""
from __future__ import annotations

import json

import pytest

from pipeline import cli
from tests.submission.jf.test_inputs import make_set


@pytest.fixture
def run(monkeypatch):
    # the command is registered in pipeline/cli.py by its owner; make sure the test sees it either way
    monkeypatch.setitem(cli.COMMANDS, "evaluate", "pipeline.commands.evaluate:evaluate")
    return lambda *args: cli.main(["evaluate", *map(str, args)])


def davis_root(tmp_path):
    gt, pred = make_set(tmp_path / "src", videos=("a", "b", "c"))
    root = tmp_path / "DAVIS"
    (root / "Annotations").mkdir(parents=True)
    gt.rename(root / "Annotations" / "480p")
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("a\nc\n")
    return root, pred


def test_root_split_and_tables(run, tmp_path, capsys):
    root, pred = davis_root(tmp_path)
    out = tmp_path / "out"
    assert run("--root", root, "--pred", pred, "--split", "val", "--protocol", "davis",
               "--protocol", "vos-benchmark", "-j", "1", "--out", out) == 0
    text = capsys.readouterr().out
    assert "2 videos, 4 objects" in text and "davis" in text and "vos-benchmark" in text
    scores = json.loads((out / "global.json").read_text())["scores"]
    assert set(scores) == {"davis", "vos-benchmark"} and scores["davis"]["J&F-Mean"] == 1.0
    assert (out / "per_object.md").is_file() and (out / "per_frame.csv").is_file()


def test_gt_folder_videos_and_meta(run, tmp_path, capsys):
    gt, pred = make_set(tmp_path)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"videos": {"a": {"objects": ["1", "2"]}, "b": {"objects": ["2"]}}}))
    assert run("--gt", gt, "--pred", pred, "--videos", "a,b", "--protocol", "mosev2", "--meta", meta,
               "--unknown-ids", "ignore", "--strict-compat") == 0
    assert "[3 objects]" in capsys.readouterr().out


def test_bad_input_exits_non_zero_naming_the_file(run, tmp_path, capsys):
    gt, pred = make_set(tmp_path)
    (pred / "b" / "00003.png").unlink()
    assert run("--gt", gt, "--pred", pred) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(pred / "b" / "00003.png") in err


def test_empty_split_file(run, tmp_path, capsys):
    gt, pred = make_set(tmp_path)
    split = tmp_path / "val.txt"
    split.write_text("# nothing\n")
    assert run("--gt", gt, "--pred", pred, "--split", split) == 2
    err = capsys.readouterr().err
    assert "empty" in err and str(split) in err


def test_option_conflicts(run, tmp_path, capsys):
    gt, pred = make_set(tmp_path)
    assert run("--root", tmp_path, "--gt", gt, "--pred", pred) != 0
    assert run("--pred", pred) != 0
    assert "exactly one of --root and --gt" in capsys.readouterr().err
