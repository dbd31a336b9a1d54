"""Tiny folders of PNGs: results on perfect/known predictions, and every kind of bad input failing loudly with
the offending file named."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data.errors import LabelFormatError, MassegError
from data.labels import read_labels, write_labels
from submission.jf import EvaluationError, evaluate, evaluate_arrays

def same_scores(a: dict, b: dict) -> bool:
    """Global score dicts equal, NaN (no disappear/reappear segment) equal to NaN."""
    return a.keys() == b.keys() and all(
        a[p].keys() == b[p].keys() and all(x == y or (x != x and y != y) for x, y in
                                           ((a[p][k], b[p][k]) for k in a[p])) for p in a)


H, W, N = 120, 160, 5   # big enough for a real MOSEv2 float radius (0.008 * diagonal = 1.6)


def _frames(seed: int):
    out = []
    for t in range(N):
        lab = np.zeros((H, W), np.uint8)
        lab[5 + t:15 + t, 5:20] = 1
        lab[20:30, 30 + 2 * t:45 + 2 * t] = 2
        out.append(lab)
    return out


def make_set(tmp_path: Path, videos=("a", "b")) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for k, v in enumerate(videos):
        for t, lab in enumerate(_frames(k)):
            write_labels(gt / v / f"{t:05d}.png", lab)
            write_labels(pred / v / f"{t:05d}.png", lab)
    return gt, pred


def test_perfect_predictions_score_one(tmp_path):
    gt, pred = make_set(tmp_path)
    r = evaluate(gt, pred, protocol="all", n_jobs=1)
    for p in ("davis", "mosev2", "vos-benchmark"):
        assert r.global_[p]["n_objects"] == 4
    assert r.global_["davis"]["J&F-Mean"] == 1.0 and r.global_["mosev2"]["J&Fdot"] == 1.0
    assert r.global_["vos-benchmark"]["J&F"] == 1.0
    assert len(r.per_frame) == 2 * 2 * (N - 2) and set(r.per_frame.frame) == {1, 2, 3}


def test_lost_object_scores_zero_on_its_frames(tmp_path):
    gt, pred = make_set(tmp_path, videos=("a",))
    lab = read_labels(pred / "a" / "00002.png").copy()
    lab[lab == 2] = 0
    write_labels(pred / "a" / "00002.png", lab)
    r = evaluate(gt, pred, protocol="davis", n_jobs=1)
    row = r.per_frame[(r.per_frame.obj == 2) & (r.per_frame.frame == 2)].iloc[0]
    assert row.J_davis == 0.0 and row.F_davis == 0.0
    obj2 = r.per_object[r.per_object.obj == 2].iloc[0]
    assert obj2.J_davis == pytest.approx(2 / 3) and obj2.JR_davis == pytest.approx(2 / 3)


def test_parallel_and_chunked_runs_agree(tmp_path):
    gt, pred = make_set(tmp_path)
    lab = read_labels(pred / "b" / "00003.png").copy()
    lab[10:14, 10:30] = 2
    write_labels(pred / "b" / "00003.png", lab)
    a = evaluate(gt, pred, protocol="all", n_jobs=1)
    b = evaluate(gt, pred, protocol="all", n_jobs=2, chunk_frames=1)
    assert a.per_frame.equals(b.per_frame)
    assert same_scores(a.global_, b.global_)


def test_in_memory_evaluation_matches_files(tmp_path):
    gt, pred = make_set(tmp_path)
    videos = {v: ([read_labels(p) for p in sorted((gt / v).glob("*.png"))],
                  [read_labels(p).copy() for p in sorted((pred / v).glob("*.png"))]) for v in ("a", "b")}
    videos["b"][1][2][0:3, 0:3] = 1
    write_labels(pred / "b" / "00002.png", videos["b"][1][2])
    a = evaluate(gt, pred, protocol="all", n_jobs=1)
    b = evaluate_arrays(videos, protocol="all")
    cols = [c for c in a.per_frame.columns if c != "frame_name"]
    assert np.allclose(a.per_frame[cols[3:]].to_numpy(float), b.per_frame[cols[3:]].to_numpy(float),
                       equal_nan=True)
    assert same_scores(a.global_, b.global_)


def test_tables_are_written(tmp_path):
    gt, pred = make_set(tmp_path)
    r = evaluate(gt, pred, protocol=["davis", "mosev2"], n_jobs=1)
    paths = r.write(tmp_path / "out")
    for name in ("global.json", "global.csv", "global.md", "per_video.csv", "per_video.md", "per_object.csv",
                 "per_object.md", "per_frame.csv", "summary.txt"):
        assert paths[name].is_file(), name
    data = json.loads(paths["global.json"].read_text())
    assert data["scores"]["davis"]["J&F-Mean"] == 1.0 and "vos-benchmark" not in data["scores"]
    assert paths["per_object.md"].read_text().startswith("| video | obj | J_davis (%) |")
    assert "| davis | J&F-Mean | 100.00 % |" in paths["global.md"].read_text()
    assert data["units"]["scores"].startswith("fraction")
    assert paths["global.csv"].read_text().splitlines()[0] == "protocol,metric,value,unit"
    assert "davis" in r.summary() and "J&Fdot 100.00" in r.summary()


# ------------------------------------------------------------------------------------------- bad input
def _raises_naming(path: Path, exc=EvaluationError, **kw):
    class Ctx:
        def __enter__(self):
            self.ctx = pytest.raises(exc)
            self.info = self.ctx.__enter__()
            return self.info

        def __exit__(self, *a):
            out = self.ctx.__exit__(*a)
            assert str(path) in str(self.info.value), f"{path} not named in: {self.info.value}"
            return out
    return Ctx()


def test_missing_prediction_video(tmp_path):
    gt, pred = make_set(tmp_path)
    shutil.rmtree(pred / "b")
    with _raises_naming(pred / "b"):
        evaluate(gt, pred, n_jobs=1)


def test_missing_gt_video_in_list(tmp_path):
    gt, pred = make_set(tmp_path)
    with _raises_naming(gt / "zz"):
        evaluate(gt, pred, videos=["a", "zz"], n_jobs=1)


def test_missing_middle_frame(tmp_path):
    gt, pred = make_set(tmp_path)
    (pred / "a" / "00002.png").unlink()
    with _raises_naming(pred / "a" / "00002.png"):
        evaluate(gt, pred, protocol="mosev2", n_jobs=1)


def test_extra_predicted_frame(tmp_path):
    gt, pred = make_set(tmp_path)
    shutil.copy(pred / "a" / "00004.png", pred / "a" / "00005.png")
    with _raises_naming(pred / "a" / "00005.png"):
        evaluate(gt, pred, n_jobs=1)


@pytest.mark.parametrize("frame", ["00002", "00000", "00004"])
def test_prediction_size_mismatch(tmp_path, frame):
    gt, pred = make_set(tmp_path)
    write_labels(pred / "a" / f"{frame}.png", np.zeros((H, W + 2), np.uint8))
    with _raises_naming(pred / "a" / f"{frame}.png"):
        evaluate(gt, pred, n_jobs=1)


def test_gt_size_mismatch_within_video(tmp_path):
    gt, pred = make_set(tmp_path)
    write_labels(gt / "b" / "00003.png", np.zeros((H + 1, W), np.uint8))
    with _raises_naming(gt / "b" / "00003.png"):
        evaluate(gt, pred, n_jobs=2)


def test_rgb_png_is_rejected(tmp_path):
    gt, pred = make_set(tmp_path)
    path = pred / "b" / "00001.png"
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(path)
    with _raises_naming(path, exc=LabelFormatError):
        evaluate(gt, pred, n_jobs=1)


@pytest.mark.parametrize("protocol", ["davis", "mosev2", "vos-benchmark", "all"])
def test_unknown_predicted_id(tmp_path, protocol):
    gt, pred = make_set(tmp_path)
    path = pred / "b" / "00003.png"
    lab = read_labels(path).copy()
    lab[0:4, 0:4] = 7
    write_labels(path, lab)
    with _raises_naming(path) as info:
        evaluate(gt, pred, protocol=protocol, n_jobs=1)
    assert "7" in str(info.value)
    ignored = evaluate(gt, pred, protocol=protocol, n_jobs=1, on_unknown_ids="ignore")
    clean = evaluate(*make_set(tmp_path / "clean"), protocol=protocol, n_jobs=1)
    assert same_scores(ignored.global_, clean.global_)


def test_unknown_id_in_meta_objects(tmp_path):
    gt, pred = make_set(tmp_path)
    meta = {"videos": {v: {"length": N, "objects": ["1"]} for v in ("a", "b")}}
    with _raises_naming(pred / "a" / "00001.png") as info:
        evaluate(gt, pred, protocol="mosev2", meta=meta, n_jobs=1)
    assert "id 2" in str(info.value)
    r = evaluate(gt, pred, protocol="mosev2", meta=meta, n_jobs=1, on_unknown_ids="ignore")
    assert r.global_["mosev2"]["n_objects"] == 2


def test_meta_length_mismatch(tmp_path):
    gt, pred = make_set(tmp_path)
    meta_path = tmp_path / "meta.json"
    meta_path.write_text(json.dumps({"videos": {"a": {"length": 9, "objects": ["1", "2"]},
                                                "b": {"length": N, "objects": ["1", "2"]}}}))
    with _raises_naming(meta_path):
        evaluate(gt, pred, protocol="mosev2", meta=meta_path, n_jobs=1)


def test_empty_split_and_empty_folder(tmp_path):
    gt, pred = make_set(tmp_path)
    with pytest.raises(EvaluationError, match="no video"):
        evaluate(gt, pred, videos=[], n_jobs=1)
    (tmp_path / "empty").mkdir()
    with _raises_naming(tmp_path / "empty"):
        evaluate(tmp_path / "empty", pred, n_jobs=1)


def test_too_few_frames_and_empty_first_frame(tmp_path):
    gt, pred = make_set(tmp_path)
    for t in (2, 3, 4):
        (gt / "a" / f"{t:05d}.png").unlink()
        (pred / "a" / f"{t:05d}.png").unlink()
    with _raises_naming(gt / "a"):
        evaluate(gt, pred, n_jobs=1)
    gt, pred = make_set(tmp_path / "second")
    write_labels(gt / "b" / "00000.png", np.zeros((H, W), np.uint8))
    with _raises_naming(gt / "b" / "00000.png"):
        evaluate(gt, pred, protocol="davis", n_jobs=1)


def test_errors_are_masseg_errors():
    assert issubclass(EvaluationError, MassegError)
    with pytest.raises(ValueError, match="on_unknown_ids"):
        evaluate("x", "y", on_unknown_ids="drop")
