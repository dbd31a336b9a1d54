"""PNG members: another tool's label maps (``<video>/<frame>.png``) voting next to logit stores.

Expected labels are computed by hand from the members' own label maps / probabilities, so a wrong one-hot,
a wrong confidence split or a PNG member silently ignored all fail here."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from data.dataset import VOSDataset
from data.errors import LabelFormatError, StoreError
from data.labels import DAVIS_PALETTE, read_labels, write_labels
from ensemble.config import FusionConfig, config_from_stores, load_config
from ensemble.errors import FusionConfigError
from ensemble.fuse import fuse
from ensemble.grid import make_settings, parse_member_values
from ensemble.pngs import PngFrame
from ensemble.sweep import sweep
from pipeline.cli import main
from tests.ensemble.helpers import sam2_recipe, write_store

H, W = 12, 16
T = 3


def _write_pngs(folder, video_labels: dict, palette=DAVIS_PALETTE):
    for v, frames in video_labels.items():
        for t, lab in enumerate(frames):
            write_labels(folder / v / f"{t:05d}.png", lab, palette)
    return folder


def _store_from_labels(path, video_labels: dict, inside=4.0):
    """A SAM2-recipe store (logits at video resolution) whose own label maps are ``video_labels``: each
    object's logit is +inside on its pixels and -inside elsewhere (so its probability is sigmoid(4) ~ 0.982)."""
    content = {}
    for v, frames in video_labels.items():
        names = [f"{t:05d}" for t in range(len(frames))]
        fr = {}
        for n, lab in zip(names, frames):
            ids = [1, 2]
            fr[n] = (ids, np.stack([np.where(lab == o, inside, -inside) for o in ids]).astype(np.float32))
        content[v] = {"frame_names": names, "video_hw": [H, W], "recipe": sam2_recipe([H, W]), "frames": fr}
    write_store(path, "m", content)
    return path


def _random_labels(seed, n=T):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 3, (H, W)).astype(np.uint8) for _ in range(n)]


def _fused(run, video="v", n=T):
    return [read_labels(run / "labels" / video / f"{t:05d}.png") for t in range(n)]


def _dataset(root, video_labels):
    """DAVIS-layout root: grey JPEGs, first-frame annotation = the first label map of each video."""
    for v, frames in video_labels.items():
        for t in range(len(frames)):
            p = root / "JPEGImages" / v / f"{t:05d}.jpg"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (W, H), (128, 128, 128)).save(p)
        write_labels(root / "Annotations" / v / "00000.png", frames[0], DAVIS_PALETTE)
    return root


# ---- the map itself -------------------------------------------------------------------------------------------
def test_one_hot_with_confidence():
    lab = np.array([[0, 2], [5, 2]], np.uint8)
    f = PngFrame(lab, [2, 5], 0.7)
    m = f.map([2, 3, 5])                            # channel layout [bg, 2, 3, 5]: C = 4
    other = 0.3 / 3
    expect = np.full((4, 2, 2), other, np.float32)
    expect[0, 0, 0] = expect[1, 0, 1] = expect[1, 1, 1] = expect[3, 1, 0] = 0.7
    assert torch.allclose(m, torch.from_numpy(expect))
    assert torch.allclose(m.sum(0), torch.ones(2, 2))
    assert f.present([2, 3, 5]).all()               # a complete segmentation: never abstains
    hard = PngFrame(lab, [2, 5], 1.0).map([2, 3, 5])
    assert set(hard.unique().tolist()) == {0.0, 1.0} and torch.equal(hard.argmax(0), m.argmax(0))
    with pytest.raises(ValueError, match="lacks the member's objects"):
        f.map([2])


@pytest.mark.parametrize("mode", ["soft", "majority"])
@pytest.mark.parametrize("confidence", [0.51, 1.0])
def test_png_member_alone_is_its_pngs(tmp_path, mode, confidence):
    labels = {"v": _random_labels(0)}
    pngs = _write_pngs(tmp_path / "xmem", labels)
    cfg = FusionConfig.from_dict({"mode": mode, "members": [{"png": str(pngs), "confidence": confidence}]})
    fuse(cfg, tmp_path / "run")
    for got, want in zip(_fused(tmp_path / "run"), labels["v"]):
        assert np.array_equal(got, want)


# ---- votes ----------------------------------------------------------------------------------------------------
def test_majority_counts_png_labels_as_votes(tmp_path):
    """Two stores and two PNG members, weights 3, 2, 2, 1: the fused label is the weighted plurality of the four
    label maps (ties decided by the soft vote, as for stores), checked pixel by pixel."""
    maps = {k: _random_labels(s) for k, s in (("a", 1), ("b", 2), ("p", 3), ("q", 4))}
    sa = _store_from_labels(tmp_path / "a", {"v": maps["a"]})
    sb = _store_from_labels(tmp_path / "b", {"v": maps["b"]})
    pp = _write_pngs(tmp_path / "p", {"v": maps["p"]})
    pq = _write_pngs(tmp_path / "q", {"v": maps["q"]})
    weights = {"a": 3.0, "b": 2.0, "p": 2.0, "q": 1.0}
    cfg = FusionConfig.from_dict({"mode": "majority", "members": [
        {"store": str(sa), "weight": 3.0}, {"store": str(sb), "weight": 2.0},
        {"png": str(pp), "weight": 2.0, "confidence": 0.9}, {"png": str(pq), "weight": 1.0}]})
    fuse(cfg, tmp_path / "run")
    checked = 0
    for t, got in enumerate(_fused(tmp_path / "run")):
        score = np.zeros((3, H, W))
        for k, w in weights.items():
            for c in range(3):
                score[c] += w * (maps[k][t] == c)
        top = score.max(0)
        unique_winner = (score == top).sum(0) == 1
        want = score.argmax(0)
        assert np.array_equal(got[unique_winner], want[unique_winner]), t
        checked += int(unique_winner.sum())
        # where the vote is tied, the winner is one of the tied labels
        tied = ~unique_winner
        assert np.all(np.take_along_axis(score, got[None].astype(np.int64), 0)[0][tied] == top[tied])
    assert checked > 0.5 * T * H * W


def test_soft_voting_uses_the_confidence(tmp_path):
    """One store (object 1 with p = sigmoid(z) = 0.8 on the left half) and one PNG member painting object 1 on
    the top half, equal weights. Object 1 wins where only the store has it iff 0.8 + (1 - c) > 0.2 + c, i.e.
    iff c < 0.8; where only the PNG has it iff c + 0.2 > (1 - c) + 0.8, i.e. iff c > 0.8."""
    z = float(np.log(0.8 / 0.2))
    left = np.full((H, W), -z, np.float32)
    left[:, : W // 2] = z
    content = {"v": {"frame_names": ["00000"], "video_hw": [H, W], "recipe": sam2_recipe([H, W]),
                     "frames": {"00000": ([1], left[None])}}}
    store = tmp_path / "s"
    write_store(store, "m", content)
    top = np.zeros((H, W), np.uint8)
    top[: H // 2] = 1
    pngs = _write_pngs(tmp_path / "p", {"v": [top]})
    store_only = np.zeros((H, W), bool)
    store_only[H // 2:, : W // 2] = True
    png_only = np.zeros((H, W), bool)
    png_only[: H // 2, W // 2:] = True
    both = np.zeros((H, W), bool)
    both[: H // 2, : W // 2] = True
    for c, store_wins in ((0.7, True), (0.9, False)):
        cfg = FusionConfig.from_dict({"members": [{"store": str(store)}, {"png": str(pngs), "confidence": c}]})
        run = tmp_path / f"run{c}"
        fuse(cfg, run)
        got = _fused(run, n=1)[0]
        assert np.all(got[both] == 1) and np.all(got[~(both | store_only | png_only)] == 0)
        assert np.all(got[store_only] == (1 if store_wins else 0)), c
        assert np.all(got[png_only] == (0 if store_wins else 1)), c


def test_png_member_in_a_group_and_as_optional(tmp_path):
    maps = {"a": _random_labels(5), "p": _random_labels(6)}
    sa = _store_from_labels(tmp_path / "a", {"v": maps["a"], "w": maps["a"]})
    pp = _write_pngs(tmp_path / "p", {"v": maps["p"]})        # no PNGs for video w
    cfg = FusionConfig.from_dict({"members": [{"store": str(sa)}, {"png": str(pp), "optional": True, "weight": 5}]})
    results = fuse(cfg, tmp_path / "run")
    by = {r.video: r for r in results}
    assert "optional member p has no logits for this video" in by["w"].notes
    assert all(np.array_equal(g, w) for g, w in zip(_fused(tmp_path / "run", "w"), maps["a"]))
    assert all(np.array_equal(g, w) for g, w in zip(_fused(tmp_path / "run", "v"), maps["p"]))   # weight 5 wins


# ---- config and CLI -------------------------------------------------------------------------------------------
def test_config_round_trip_and_cli_detection(tmp_path, capsys):
    labels = {"v": _random_labels(7)}
    sa = _store_from_labels(tmp_path / "stores" / "a", labels)
    pp = _write_pngs(tmp_path / "xmem", labels)
    cfg = config_from_stores([sa, pp], [1.0, 2.0], confidence=0.75)
    assert [m.kind for m in cfg.members] == ["store", "png"] and cfg.png_names == ["xmem"]
    path = tmp_path / "runs" / "f.toml"
    cfg.save(path)
    text = path.read_text()
    assert 'png = "../xmem"' in text and "confidence = 0.75" in text
    back = load_config(path)
    assert back.members[1].is_png and back.members[1].confidence == 0.75
    assert back.members[1].store.resolve() == pp.resolve()
    # the CLI: a store and a PNG folder given the same way; then a masseg run folder as a member
    run1 = tmp_path / "run1"
    assert main(["fuse", "--member", str(sa), "--member", f"{pp}@2", "--confidence", "0.75", "--out", str(run1)]) == 0
    assert load_config(run1 / "fusion.toml").members[1].confidence == 0.75
    run2 = tmp_path / "run2"
    assert main(["fuse", "--member", str(run1), "--out", str(run2)]) == 0
    assert all(np.array_equal(g, w) for g, w in zip(_fused(run2), labels["v"]))
    assert main(["fuse", "--config", str(path), "--confidence", "0.8", "--out", str(tmp_path / "r3")]) == 2
    assert "--confidence goes with --member" in capsys.readouterr().err


@pytest.mark.parametrize("doc,needle", [
    ({"members": [{"png": "p", "confidence": 0.5}]}, r"confidence must be in \(0.5, 1\]"),
    ({"members": [{"png": "p", "confidence": 1.2}]}, r"confidence must be in \(0.5, 1\]"),
    ({"members": [{"png": "p", "confidence": "high"}]}, "confidence must be a number"),
    ({"members": [{"png": "p", "scale": 2.0}]}, "scale does not apply to a PNG member"),
    ({"members": [{"png": "p", "store": "s"}]}, "either store"),
    ({"members": [{"store": "s", "confidence": 0.9}]}, "confidence applies to PNG members only"),
    ({"members": [{"png": ""}]}, "png must be a non-empty path"),
])
def test_config_errors(doc, needle):
    with pytest.raises(FusionConfigError, match=needle):
        FusionConfig.from_dict(doc)


def test_sweep_scale_skips_png_members_and_refuses_naming_them(tmp_path):
    labels = {"v": _random_labels(8)}
    cfg = config_from_stores([_store_from_labels(tmp_path / "a", labels), _write_pngs(tmp_path / "p", labels)])
    vals = parse_member_values(["*=1,2"], cfg.names, "scale", skip=cfg.png_names)
    assert vals == {"a": [1.0, 2.0]}
    assert len(make_settings(cfg, scales=vals)) == 2
    with pytest.raises(FusionConfigError, match="PNG member"):
        parse_member_values(["p=2"], cfg.names, "scale", skip=cfg.png_names)
    with pytest.raises(FusionConfigError, match="PNG member"):
        make_settings(cfg, scales={"p": [2.0]})


# ---- bad inputs: one line naming the file ----------------------------------------------------------------------
def _bad_case(tmp_path, case):
    labels = {"v": _random_labels(9)}
    pngs = _write_pngs(tmp_path / "p", labels)
    target = pngs / "v" / "00001.png"
    root = None
    if case == "missing frame":
        target.unlink()
    elif case == "misnamed frames":
        for f in sorted((pngs / "v").glob("*.png")):
            f.rename(f.with_name(f"{int(f.stem)}.png"))
        target = pngs / "v" / "00000.png"
    elif case == "size":
        write_labels(target, np.zeros((H + 2, W), np.uint8))
    elif case == "rgb":
        Image.new("RGB", (W, H)).save(target)
    elif case == "not a png":
        target.write_bytes(b"GIF89a not a png at all, just bytes padding padding")
    elif case == "unknown id":
        root = _dataset(tmp_path / "data", labels)          # objects 1, 2
        lab = labels["v"][1].copy()
        lab[0, 0] = 7
        write_labels(target, lab)
    elif case == "no video":
        shutil.rmtree(pngs / "v")
        (pngs / "other").mkdir()
        write_labels(pngs / "other" / "00000.png", labels["v"][0])
        root = _dataset(tmp_path / "data", labels)
        target = pngs / "v"
    elif case == "no folder":
        shutil.rmtree(pngs)
        pngs.mkdir()
        target = pngs
        shutil.rmtree(pngs)
        pngs = tmp_path / "p"
    return pngs, target, root


@pytest.mark.parametrize("case,needle", [
    ("missing frame", "lacks 1 of 3 frames"),
    ("misnamed frames", "named like 0.png"),
    ("size", f"is {W}x{H + 2} but the video is {W}x{H}"),
    ("rgb", "PNG is RGB"),
    ("not a png", "not a PNG file"),
    ("unknown id", r"object id\(s\) \[7\] are not objects of video 'v'"),
    ("no video", "has no PNGs for video 'v'"),
    ("no folder", "folder not found"),
])
def test_bad_png_members_fail_in_one_line_naming_the_file(tmp_path, capsys, case, needle):
    pngs, target, root = _bad_case(tmp_path, case)
    store = _store_from_labels(tmp_path / "s", {"v": _random_labels(9)})
    cfg = tmp_path / "f.toml"
    FusionConfig.from_dict({"members": [{"store": str(store)}, {"png": str(pngs)}]}).save(cfg)
    args = ["fuse", "--config", str(cfg), "--out", str(tmp_path / "run")] + (["--root", str(root)] if root else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(target) in err, err
    import re
    assert re.search(needle, err), err
    if case not in ("unknown id",):   # header problems are found before anything is written
        assert not (tmp_path / "run" / "labels").exists()


def test_errors_at_api_level_keep_their_types(tmp_path):
    pngs, target, _ = _bad_case(tmp_path, "rgb")
    cfg = FusionConfig.from_dict({"members": [{"png": str(pngs)}]})
    with pytest.raises(LabelFormatError):
        fuse(cfg, tmp_path / "run")
    pngs, target, _ = _bad_case(tmp_path / "x", "size")
    with pytest.raises(StoreError):
        fuse(FusionConfig.from_dict({"members": [{"store": str(_store_from_labels(tmp_path / "s", {"v": _random_labels(1)}))},
                                                  {"png": str(pngs)}]}), tmp_path / "run2")


# ---- resume -----------------------------------------------------------------------------------------------------
def test_resume_and_changed_pngs(tmp_path, capsys):
    labels = {"v": _random_labels(10), "w": _random_labels(11)}
    store = _store_from_labels(tmp_path / "s", labels)
    pngs = _write_pngs(tmp_path / "p", {"v": _random_labels(12), "w": _random_labels(13)})
    run = tmp_path / "run"
    args = ["fuse", "--member", str(store), "--member", f"{pngs}@2", "--out", str(run)]
    assert main(args) == 0
    victim = run / "labels" / "v" / "00002.png"
    before = victim.read_bytes()
    victim.unlink()
    capsys.readouterr()
    assert main(args) == 0                                   # same config, same PNGs: resumes
    out = capsys.readouterr().out
    assert "v: 1 frames fused, 2 already done" in out and "w: 0 frames fused" in out
    assert victim.read_bytes() == before
    write_labels(pngs / "w" / "00001.png", np.zeros((H, W), np.uint8))   # the tool re-ran on one video
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "PNGs of member 'p' for video 'w' changed" in err and "png_members.json" in err
    assert main(args + ["--overwrite"]) == 0
    fresh = tmp_path / "fresh"
    assert main(args[:-2] + ["--out", str(fresh)]) == 0
    assert all(np.array_equal(a, b) for v in ("v", "w") for a, b in zip(_fused(run, v), _fused(fresh, v)))
    assert main(args) == 0                                   # recorded again: resumes


# ---- sweep --------------------------------------------------------------------------------------------------
def test_sweep_with_a_png_member(small_members, tmp_path):
    """The dataset's own annotations as a PNG member: alone it scores 100% J&F, and the sweep ranks it first."""
    tmp, stores, root = small_members
    cfg = FusionConfig.from_dict({"members": [{"store": str(stores["drift"]), "name": "drift"},
                                              {"png": str(root / "Annotations"), "name": "gt", "confidence": 0.9}]})
    settings = make_settings(cfg, ["soft", "majority"], [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)])
    res = sweep(cfg, settings, VOSDataset(root), protocol="davis")
    best = res.best
    assert best.weights[0] == 0.0 and res.table.iloc[0]["score"] == pytest.approx(1.0)
    alone = res.table[(res.table["w_drift"] == 1.0)]["score"]
    assert (alone < 1.0).all()
    assert isinstance(res.table, pd.DataFrame)


def test_sweep_cli_with_a_png_member(small_members, tmp_path):
    tmp, stores, root = small_members
    out = tmp_path / "sweep"
    rc = main(["sweep", "--member", str(stores["good"]), "--member", str(root / "Annotations"), "--confidence", "0.8",
               "--root", str(root), "--out", str(out), "--weights", "simplex:0.5", "--scale", "*=1,2"])
    assert rc == 0
    table = pd.read_csv(out / "sweep_ranked.csv")
    assert len(table) == 3 * 2 - 1          # 3 weight vectors x 2 scales of the store; (0, 1) ignores the scale
    assert set(table["scale_Annotations"]) == {1.0}
    best = load_config(out / "best.toml")
    assert best.member("Annotations").is_png and best.member("Annotations").confidence == 0.8
    assert best.member("Annotations").weight > 0


def test_grayscale_and_low_bit_palette_pngs_are_read_and_16_bit_refused(tmp_path, capsys):
    """Tools write 8-bit grayscale (L) or 1/2/4-bit palette PNGs too: both hold ids and are read; 16-bit is refused."""
    labels = _random_labels(14)
    folder = tmp_path / "tool"
    (folder / "v").mkdir(parents=True)
    Image.fromarray(labels[0]).save(folder / "v" / "00000.png")          # uint8 -> mode L
    for t in (1, 2):
        im = Image.frombytes("P", (W, H), labels[t].tobytes())
        im.putpalette(DAVIS_PALETTE[:48])
        im.save(folder / "v" / f"{t:05d}.png", bits=4)
    with open(folder / "v" / "00001.png", "rb") as fh:
        assert fh.read(25)[24] == 4, "PIL wrote a 4-bit palette PNG"
    fuse(FusionConfig.from_dict({"members": [{"png": str(folder)}]}), tmp_path / "run")
    assert all(np.array_equal(g, w) for g, w in zip(_fused(tmp_path / "run"), labels))
    Image.fromarray(labels[0].astype(np.uint16) * 1000).save(folder / "v" / "00000.png")   # 16-bit grey
    assert main(["fuse", "--member", str(folder), "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err
    assert "PNG is 16-bit" in err and "00000.png" in err
