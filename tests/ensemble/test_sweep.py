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


def _late_object_case(tmp_path):
    """A video whose first GT frame holds no object (object 1 appears on frame 2, object 2 on frame 4) and two
    members that track them from their first appearance, with different errors."""
    from tests.ensemble.conftest import moving_ellipses
    from tests.ensemble.helpers import sam2_recipe, write_store
    from tests.ensemble.synthetic import write_dataset

    gt = moving_ellipses(8, (48, 64), 2, 3)
    gt[:2] = 0
    gt[:4][gt[:4] == 2] = 0
    root = tmp_path / "data"
    write_dataset(root, {"late": gt})
    names = [f"{t:05d}" for t in range(len(gt))]
    rng = np.random.default_rng(7)
    stores = {}
    for m, shift in (("a", 1), ("b", -2)):
        frames = {}
        for t, n in enumerate(names):
            ids = [o for o in (1, 2) if (gt[:t + 1] == o).any()]
            logits = np.stack([np.where(np.roll(gt[t], shift, axis=1) == o, 6.0, -6.0).astype(np.float32)
                               + rng.normal(0, 2, gt.shape[1:]).astype(np.float32) for o in ids]) if ids \
                else np.zeros((0, 48, 64), np.float32)
            frames[n] = (ids, logits)
        stores[m] = tmp_path / "stores" / m
        write_store(stores[m], "m", {"late": {"frame_names": names, "video_hw": [48, 64],
                                              "recipe": sam2_recipe([48, 64]), "frames": frames}})
    return root, _cfg(stores)


def test_first_frame_without_objects_sweep_agrees_with_the_evaluator(tmp_path):
    """The sweep scores through the evaluator's own per-frame primitive: on a first GT frame without objects it
    gives the evaluator's numbers (vos-benchmark) and the evaluator's refusal (MOSEv2 without meta.json, DAVIS),
    where its former copy of the bookkeeping went on scoring nothing."""
    from submission.jf.errors import EvaluationError
    root, cfg = _late_object_case(tmp_path)
    ds = VOSDataset(root, objects_from="appearance")
    settings = make_settings(cfg, ["soft", "majority"], [(0.5, 0.5), (0.8, 0.2)])
    res = sweep(cfg, settings, ds, protocol="vos-benchmark")
    for i, s in enumerate(settings):
        run = tmp_path / f"run{i}"
        fuse(s.config(cfg), run, dataset=ds)
        ref = evaluate(root / "Annotations", run / "labels", protocol="vos-benchmark", n_jobs=1)
        pd.testing.assert_frame_equal(res.results[i].per_object.reset_index(drop=True),
                                      ref.per_object.reset_index(drop=True))
        assert res.results[i].global_ == ref.global_
    for protocol in ("mosev2", "davis"):
        with pytest.raises(EvaluationError, match="first-frame ground truth holds no object") as ours:
            sweep(cfg, settings, ds, protocol=protocol)
        with pytest.raises(EvaluationError, match="first-frame ground truth holds no object") as theirs:
            evaluate(root / "Annotations", tmp_path / "run0" / "labels", protocol=protocol, n_jobs=1)
        assert str(ours.value).split(":")[-2:] == str(theirs.value).split(":")[-2:]


def test_sweep_refuses_ids_the_ground_truth_never_has(small_members, tmp_path):
    tmp, stores, root = small_members
    from submission.jf.errors import EvaluationError
    from tests.ensemble.helpers import sam2_recipe, write_store
    ds = VOSDataset(root)
    video = ds["ell1"]
    H, W = video.size
    logits = np.full((2, H // 4, W // 4), 3.0, np.float32)
    logits[1, :, W // 8:] = 5.0                              # id 5 wins on the right half of every frame
    frames = {n: ([1, 5], logits) for n in video.frame_names}
    write_store(tmp_path / "stray", "m", {"ell1": {"frame_names": list(video.frame_names), "video_hw": [H, W],
                                                   "recipe": sam2_recipe([H, W]), "frames": frames}})
    cfg = FusionConfig.from_dict({"members": [{"store": str(tmp_path / "stray")}]})
    # the evaluator's unknown-id rule (its default, on_unknown_ids='error'), naming the frame and the setting
    with pytest.raises(EvaluationError, match=r"ell1/00001 fused with setting 0.*predicted object id 5 .*protocol davis.*same object ids"):
        sweep(cfg, make_settings(cfg), ds, videos=["ell1"])
    with pytest.raises(EvaluationError, match=r"predicted object id 5 never appears in the ground truth"):
        sweep(cfg, make_settings(cfg), ds, videos=["ell1"], protocol="vos-benchmark")


def test_sweep_in_parallel_gives_the_same_table(small_members):
    tmp, stores, root = small_members
    cfg = _cfg(stores)
    settings = make_settings(cfg, ["soft", "majority"], [(0.5, 0.3, 0.2)])
    one = sweep(cfg, settings, VOSDataset(root), protocol="davis", jobs=1)
    two = sweep(cfg, settings, VOSDataset(root), protocol="davis", jobs=2)
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_frame_equal(one.per_video, two.per_video)
