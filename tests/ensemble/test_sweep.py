"""The sweep: its J&F per setting equals `fuse` + the project's evaluator on the written PNGs, and it writes a
ranked table, plots and a best.toml that `masseg fuse --config` accepts."""
from __future__ import annotations

import math
import tomllib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data.dataset import VOSDataset
from ensemble.config import FusionConfig, load_config
from ensemble.fuse import fuse
from ensemble.grid import Setting, make_settings, parse_values, parse_weights, simplex_grid
from ensemble.report import heatmap_axes
from ensemble.sweep import sweep
from pipeline.cli import main
from submission.jf.evaluate import evaluate


def _cfg(stores, **extra):
    return FusionConfig.from_dict({"members": [{"store": str(p), "name": n, **extra.get(n, {})}
                                               for n, p in stores.items()]})


def test_sweep_scores_equal_fuse_then_evaluate(small_members, tmp_path):
    tmp, stores, root = small_members
    cfg = _cfg(stores, drift={"group": "pair"}, swap={"group": "pair"})
    settings = [
        Setting("soft", (0.5, 0.3, 0.2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
        Setting("majority", (1 / 3, 1 / 3, 1 / 3), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)),
        Setting("majority", (0.6, 0.3, 0.1), (1.0, 2.0, 1.0), (0.0, -1.0, 0.5)),
        Setting("soft", (0.0, 1.0, 0.0), (1.0, 0.5, 1.0), (0.0, 1.5, 0.0)),
    ]
    ds = VOSDataset(root)
    res = sweep(cfg, settings, ds, protocol="all")
    for i, s in enumerate(settings):
        run = tmp_path / f"run{i}"
        fuse(s.config(cfg), run, dataset=ds)
        ref = evaluate(root / "Annotations", run / "labels", protocol="all", n_jobs=1)
        got = res.results[i]
        for proto in ("davis", "mosev2", "vos-benchmark"):
            for k, v in ref.global_[proto].items():
                w = got.global_[proto][k]
                assert (math.isnan(v) and math.isnan(w)) or v == pytest.approx(w, abs=1e-12), (s, proto, k)
        pd.testing.assert_frame_equal(got.per_object.reset_index(drop=True), ref.per_object.reset_index(drop=True))


def test_sweep_cli_writes_ranked_tables_plots_and_a_usable_best_config(small_members, tmp_path):
    tmp, stores, root = small_members
    base = tmp_path / "base.toml"
    _cfg(stores).save(base)
    out = tmp_path / "sweep"
    rc = main(["sweep", "--config", str(base), "--root", str(root), "--out", str(out),
               "--weights", "simplex:0.5", "--mode", "soft", "--mode", "majority", "--protocol", "davis"])
    assert rc == 0
    table = pd.read_csv(out / "sweep_ranked.csv")
    n_settings = 2 * len(simplex_grid(3, 0.5))
    assert len(table) == n_settings and list(table["rank"]) == list(range(1, n_settings + 1))
    assert table["score"].is_monotonic_decreasing
    assert {"mode", "w_good", "w_drift", "w_swap", "davis:J&F-Mean", "label"} <= set(table.columns)
    per_video = pd.read_csv(out / "sweep_per_video.csv")
    assert set(per_video["video"]) == {"ell1", "ell2"} and len(per_video) == 2 * n_settings
    assert (out / "sweep_ranked.md").read_text().startswith("Fusion settings ranked by davis")
    for png in ("sweep_heatmap.png", "sweep_scores.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG" and im.width > 100
    best = load_config(out / "best.toml")
    top = table.iloc[0]
    assert best.mode == top["mode"]
    assert [m.weight for m in best.members] == pytest.approx([top["w_good"], top["w_drift"], top["w_swap"]])
    assert tomllib.loads((out / "best.toml").read_text())["version"] == 1
    # best.toml is a valid fusion config: fusing with it reproduces the sweep's best score
    run = tmp_path / "run"
    assert main(["fuse", "--config", str(out / "best.toml"), "--root", str(root), "--out", str(run)]) == 0
    ref = evaluate(root / "Annotations", run / "labels", protocol="davis", n_jobs=1)
    assert ref.headline("davis") == pytest.approx(top["score"], rel=1e-9)   # the CSV keeps 10 digits


def test_sweep_over_scale_and_bias_plots_scale_by_bias(small_members, tmp_path):
    tmp, stores, root = small_members
    cfg = _cfg(stores)
    settings = make_settings(cfg, ["soft"], [(0.5, 0.25, 0.25)], scales={"good": [0.5, 1.0, 2.0]},
                             biases={"good": [-1.0, 0.0, 1.0]})
    assert len(settings) == 9
    res = sweep(cfg, settings, VOSDataset(root), protocol="davis")
    assert heatmap_axes(res) == ("scale_good", "bias_good")
    own = next(i for i, s in enumerate(settings) if s.scales[0] == 1.0 and s.biases[0] == 0.0)
    assert not np.isnan(res.table.set_index("setting").loc[own, "score"])


def test_sweep_needs_ground_truth_on_the_scored_frames(small_members, tmp_path):
    tmp, stores, root = small_members
    import shutil
    bare = tmp_path / "bare"
    shutil.copytree(root, bare)
    for f in sorted((bare / "Annotations" / "ell1").iterdir())[1:]:
        f.unlink()
    rc = main(["sweep", "--member", str(stores["good"]), "--root", str(bare), "--out", str(tmp_path / "o")])
    assert rc == 2


def test_sweep_refuses_too_many_settings(small_members, tmp_path, capsys):
    tmp, stores, root = small_members
    rc = main(["sweep", "--member", str(stores["good"]), "--member", str(stores["drift"]), "--root", str(root),
               "--out", str(tmp_path / "o"), "--weights", "simplex:0.01", "--max-settings", "50"])
    assert rc == 2
    assert "exceed --max-settings" in capsys.readouterr().err


def test_grid_parsing():
    assert simplex_grid(2, 0.5) == [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
    assert len(simplex_grid(3, 0.1)) == 66 and all(math.isclose(sum(w), 1.0) for w in simplex_grid(3, 0.1))
    assert parse_values("-1:1:0.5") == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert parse_values("1,2,4") == [1.0, 2.0, 4.0]
    assert parse_weights("0.5,0.5", 2) == [(0.5, 0.5)]
    from ensemble.errors import FusionConfigError
    for bad in ("simplex:0.3", "1,2,3", "0,0"):
        with pytest.raises(FusionConfigError):
            parse_weights(bad, 2)


def test_sweep_rows_use_the_evaluators_column_order():
    """The sweep hands per-(object, frame) rows to the evaluator's tables: same columns, same defaults."""
    import importlib
    ev = importlib.import_module("submission.jf.evaluate")      # the package re-exports a function of that name
    sw = importlib.import_module("ensemble.sweep")
    assert tuple(ev._COLS) == sw.COLS
    assert np.array_equal(ev._DEFAULT, sw.DEFAULT_ROW)


def test_sweep_refuses_ids_the_ground_truth_never_has(small_members, tmp_path):
    tmp, stores, root = small_members
    from submission.jf.errors import EvaluationError
    from tests.ensemble.helpers import sam2_recipe, write_store
    ds = VOSDataset(root)
    video = ds["ell1"]
    H, W = video.size
    frames = {n: ([1, 5], np.full((2, H // 4, W // 4), 3.0, np.float32)) for n in video.frame_names}
    write_store(tmp_path / "stray", "m", {"ell1": {"frame_names": list(video.frame_names), "video_hw": [H, W],
                                                   "recipe": sam2_recipe([H, W]), "frames": frames}})
    cfg = FusionConfig.from_dict({"members": [{"store": str(tmp_path / "stray")}]})
    with pytest.raises(EvaluationError, match=r"object id\(s\) \[5\]"):
        sweep(cfg, make_settings(cfg), ds, videos=["ell1"])


def test_sweep_in_parallel_gives_the_same_table(small_members):
    tmp, stores, root = small_members
    cfg = _cfg(stores)
    settings = make_settings(cfg, ["soft", "majority"], [(0.5, 0.3, 0.2)])
    one = sweep(cfg, settings, VOSDataset(root), protocol="davis", jobs=1)
    two = sweep(cfg, settings, VOSDataset(root), protocol="davis", jobs=2)
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.per_video, two.per_video)
