"""masseg fuse: configs, voting rules, groups, late objects, untracked objects, missing members, resume, zip."""
from __future__ import annotations

import tomllib
import zipfile

import numpy as np
import pytest
import torch

from data.dataset import VOSDataset
from data.errors import StoreError
from data.labels import read_labels
from ensemble.config import FusionConfig, load_config
from ensemble.errors import FusionConfigError
from ensemble.fuse import fuse
from ensemble.voting import GroupUse, MemberUse, FrameFusion, Vote, majority, soft_merge
from pipeline.cli import main
from tests.ensemble.helpers import sam2_recipe, write_store

H, W = 16, 20


def _store(path, frames_by_video, recipe=None, codec="f32", model="m"):
    """frames_by_video: {video: [ (ids, logits (N, h, w)) per frame ]} with sam2_bilinear at video res H x W."""
    content = {}
    for v, frames in frames_by_video.items():
        names = [f"{t:05d}" for t in range(len(frames))]
        content[v] = {"frame_names": names, "video_hw": [H, W], "recipe": recipe or sam2_recipe([H, W]),
                      "frames": dict(zip(names, frames))}
    write_store(path, model, content, codec=codec)
    return path


def _labels(run, video, n):
    return [read_labels(run / "labels" / video / f"{t:05d}.png") for t in range(n)]


def _box(value_inside, y0, y1, x0, x1, outside=-6.0):
    a = np.full((H, W), outside, np.float32)
    a[y0:y1, x0:x1] = value_inside
    return a


# ---- config ---------------------------------------------------------------------------------------------------
def test_config_toml_round_trip_and_relative_paths(tmp_path):
    (tmp_path / "runs").mkdir()
    cfg = FusionConfig.from_dict({"mode": "majority", "members": [
        {"store": str(tmp_path / "stores" / "sam2 \"big\""), "name": "sam2_é", "weight": 0.1, "scale": 2.5,
         "bias": -1e-05, "group": "sam2", "optional": True},
        {"store": str(tmp_path / "stores" / "cutie"), "weight": 3}]})
    path = tmp_path / "runs" / "fusion.toml"
    cfg.save(path)
    doc = tomllib.loads(path.read_text())
    assert doc["members"][0]["store"] == "../stores/sam2 \"big\""   # relative to the file: the run can move
    back = load_config(path)
    assert back.mode == "majority" and back.names == ["sam2_é", "cutie"]
    assert [m.store.resolve() for m in back.members] == [m.store.resolve() for m in cfg.members]
    assert (back.members[0].weight, back.members[0].scale, back.members[0].bias) == (0.1, 2.5, -1e-05)
    assert back.members[0].group_name == "sam2" and back.members[1].group_name == "cutie"
    assert back.members[0].optional and not back.members[1].optional


@pytest.mark.parametrize("doc,needle", [
    ({"members": []}, "no members"),
    ({"mode": "vote", "members": [{"store": "a"}]}, "unknown mode"),
    ({"members": [{"store": "a", "wieght": 1}]}, "unknown key"),
    ({"members": [{"store": "a", "weight": -1}]}, "weight must be >= 0"),
    ({"members": [{"store": "a", "scale": 0}]}, "scale must be > 0"),
    ({"members": [{"store": "a", "weight": 0}]}, "every member has weight 0"),
    ({"members": [{"store": "x/a"}, {"store": "y/a"}]}, "used twice"),
    ({"version": 2, "members": [{"store": "a"}]}, "version"),
    ({"members": [{"store": "a", "bias": "1"}]}, "finite number"),
])
def test_config_errors_name_the_problem(doc, needle):
    with pytest.raises(FusionConfigError, match=needle):
        FusionConfig.from_dict(doc)


def test_cli_config_errors_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("mode = 'soft'\n[[members]]\nstore = 'x'\nweight = -2\n")
    assert main(["fuse", "--config", str(bad), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "bad.toml" in err and "weight must be >= 0" in err
    binary = tmp_path / "weights.pt"      # a binary file given as the config: one line, not an internal error
    binary.write_bytes(bytes(range(256)))
    assert main(["fuse", "--config", str(binary), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert "weights.pt" in err and "not a text file" in err and len(err.splitlines()) == 1


# ---- voting rules -----------------------------------------------------------------------------------------------
def test_soft_merge_is_the_weighted_mean_with_abstention():
    a = torch.tensor([[0.2], [0.8], [0.0]])
    b = torch.tensor([[0.6], [0.1], [0.3]])
    out = soft_merge([Vote(3.0, a, np.array([True, True, False])), Vote(1.0, b, np.array([True, True, True]))])
    # channel 2: only b has it, so b alone decides it (abstention, not a vote for 0)
    assert torch.allclose(out.map[:, 0], torch.tensor([0.75 * 0.2 + 0.25 * 0.6, 0.75 * 0.8 + 0.25 * 0.1, 0.3]))
    assert out.weight == 4.0 and out.present.all()


def test_majority_plurality_and_ties():
    lab = lambda *v: torch.tensor(v, dtype=torch.uint8)  # noqa: E731
    # plurality: two light groups outvote one heavy group only when they outweigh it
    assert majority([lab(1), lab(2), lab(2)], [0.5, 0.3, 0.3], 3).tolist() == [2]
    assert majority([lab(1), lab(2), lab(2)], [0.7, 0.2, 0.2], 3).tolist() == [1]
    # a tie goes to the tied label the soft vote prefers, whatever the listing order
    soft = torch.tensor([[0.1], [0.3], [0.6]])
    assert majority([lab(1), lab(2)], [0.5, 0.5], 3, soft).tolist() == [2]
    assert majority([lab(2), lab(1)], [0.5, 0.5], 3, soft).tolist() == [2]
    # labels that are not tied never win on probability
    assert majority([lab(0), lab(0), lab(2)], [1, 1, 1], 3, torch.tensor([[0.0], [0.0], [1.0]])).tolist() == [0]


def test_groups_vote_once_in_majority_and_merge_softly_first():
    """Two flips of one model (group g) that disagree with each other, and two other models."""
    table = {"g1": [0.05, 0.95, 0.0], "g2": [0.55, 0.45, 0.0], "x": [0.1, 0.0, 0.9], "y": [0.6, 0.0, 0.4]}

    def maps(name, scale, bias):
        return torch.tensor(table[name], dtype=torch.float32).view(3, 1, 1), np.ones(3, bool)

    ff = FrameFusion(maps, 3, (1, 1))
    flat = tuple(GroupUse(n, (MemberUse(n, 1.0),)) for n in ("g1", "g2", "x", "y"))
    # as four voters: label 0 gets g2 + y = 2 votes, labels 1 and 2 one each
    assert ff.fuse(flat, "majority").item() == 0
    grouped = (GroupUse("g", (MemberUse("g1", 1.0), MemberUse("g2", 1.0))), GroupUse("x", (MemberUse("x", 1.0),)),
               GroupUse("y", (MemberUse("y", 1.0),)))
    # g is merged first (mean [0.3, 0.7, 0] -> label 1) and votes once with weight 2: label 1 wins
    assert ff.fuse(grouped, "majority").item() == 1
    halves = (GroupUse("g", (MemberUse("g1", 0.5), MemberUse("g2", 0.5))), GroupUse("x", (MemberUse("x", 1.0),)),
              GroupUse("y", (MemberUse("y", 1.0),)))
    # now every group weighs 1: a three-way tie, decided by the soft vote [0.333, 0.233, 0.433] -> label 2
    assert ff.fuse(halves, "majority").item() == 2
    # soft voting over groups is the weighted mean over all members
    mean = np.mean([table[n] for n in ("g1", "g2", "x", "y")], axis=0)
    assert ff.fuse(grouped, "soft").item() == ff.fuse(flat, "soft").item() == int(np.argmax(mean))


# ---- late objects, untracked objects, missing members -----------------------------------------------------------
def test_objects_appearing_later_and_objects_a_member_does_not_track(tmp_path):
    """Object 2 first appears on frame 2 (no entry before). Member B never tracks object 2: it abstains on it."""
    obj1 = _box(8.0, 2, 8, 2, 8)
    obj2 = _box(8.0, 9, 14, 10, 18)
    a_frames = [([1], obj1[None]), ([1], obj1[None]), ([1, 2], np.stack([obj1, obj2])), ([1, 2], np.stack([obj1, obj2]))]
    b_frames = [([1], obj1[None])] * 4
    sa = _store(tmp_path / "a", {"v": a_frames})
    sb = _store(tmp_path / "b", {"v": b_frames})
    for mode in ("soft", "majority"):
        cfg = FusionConfig.from_dict({"mode": mode, "members": [{"store": str(sa), "weight": 1.0},
                                                                {"store": str(sb), "weight": 3.0}]})
        run = tmp_path / f"run_{mode}"
        fuse(cfg, run)
        labs = _labels(run, "v", 4)
        assert set(np.unique(labs[0])) == {0, 1} and set(np.unique(labs[1])) == {0, 1}
        expect = np.zeros((H, W), np.uint8)
        expect[2:8, 2:8] = 1
        if mode == "soft":
            # B (weight 3) says background where object 2 is, but it abstains on object 2 itself:
            # object 2 keeps A's probability ~1 against a background of (1*~0 + 3*~1)/4 -> object 2 wins
            expect[9:14, 10:18] = 2
        else:
            # majority: B's background vote (3) outweighs A's object-2 vote (1)
            pass
        assert np.array_equal(labs[2], expect), mode
        assert np.array_equal(labs[3], expect), mode


def test_missing_member_video_fails_clearly_unless_optional(tmp_path, capsys):
    obj = _box(8.0, 2, 8, 2, 8)[None]
    sa = _store(tmp_path / "a", {"v": [([1], obj)] * 3, "w": [([1], obj)] * 3})
    sb = _store(tmp_path / "b", {"v": [([1], obj)] * 3})
    cfg_path = tmp_path / "f.toml"
    FusionConfig.from_dict({"members": [{"store": str(sa)}, {"store": str(sb)}]}).save(cfg_path)
    assert main(["fuse", "--config", str(cfg_path), "--out", str(tmp_path / "r1")]) == 2
    err = capsys.readouterr().err
    assert "b/w" in err and "optional" in err
    assert not (tmp_path / "r1" / "labels").exists(), "nothing may be written when the plan fails"
    FusionConfig.from_dict({"members": [{"store": str(sa)}, {"store": str(sb), "optional": True}]}).save(cfg_path)
    assert main(["fuse", "--config", str(cfg_path), "--out", str(tmp_path / "r2")]) == 0
    assert "optional member b has no logits for this video" in capsys.readouterr().out
    assert len(list((tmp_path / "r2" / "labels" / "w").glob("*.png"))) == 3


def test_member_lacking_frames_and_size_mismatch(tmp_path):
    obj = _box(8.0, 2, 8, 2, 8)[None]
    sa = _store(tmp_path / "a", {"v": [([1], obj)] * 4})
    sb = _store(tmp_path / "b", {"v": [([1], obj)] * 3})        # its video has only 3 frames
    cfg = FusionConfig.from_dict({"members": [{"store": str(sa)}, {"store": str(sb)}]})
    with pytest.raises(StoreError, match="lacks 1 frame"):
        fuse(cfg, tmp_path / "r1")
    assert not (tmp_path / "r1").exists(), "members are checked before anything is written"
    cfg = FusionConfig.from_dict({"members": [{"store": str(sa)}, {"store": str(sb), "optional": True}]})
    fuse(cfg, tmp_path / "r2")
    assert len(list((tmp_path / "r2" / "labels" / "v").glob("*.png"))) == 4
    content = {"v": {"frame_names": ["00000"], "video_hw": [H + 1, W], "recipe": sam2_recipe([H + 1, W]),
                     "frames": {"00000": ([1], obj)}}}
    write_store(tmp_path / "c", "m", content)
    cfg = FusionConfig.from_dict({"members": [{"store": str(sa)}, {"store": str(tmp_path / "c")}]})
    with pytest.raises(StoreError, match="maps video 'v'"):
        fuse(cfg, tmp_path / "r3", videos=["v"])


def test_all_nan_rows_mean_not_predicted_and_inf_is_an_error(tmp_path):
    """The store's whole-NaN row = "not predicted on this frame" (Cutie on a frame whose mask is given): the
    member abstains on that object there. A non-finite value anywhere else is corruption."""
    obj = _box(8.0, 2, 8, 2, 8)
    nan = np.full((H, W), np.nan, np.float32)
    sa = _store(tmp_path / "a", {"v": [([1, 2], np.stack([obj, nan]))] * 3}, codec="q8")
    fuse(FusionConfig.from_dict({"members": [{"store": str(sa)}]}), tmp_path / "r")
    assert set(np.unique(_labels(tmp_path / "r", "v", 3)[1])) == {0, 1}
    bad = obj.copy()
    bad[0, 0] = np.inf
    sb = _store(tmp_path / "b", {"v": [([1], bad[None])] * 3})
    with pytest.raises(StoreError, match="NaN or inf"):
        fuse(FusionConfig.from_dict({"members": [{"store": str(sb)}]}), tmp_path / "r2")


# ---- resume, refusal, zip -----------------------------------------------------------------------------------------
def test_resume_skips_written_frames_and_refuses_another_config(small_members, tmp_path, capsys):
    tmp, stores, root = small_members
    cfg = tmp_path / "f.toml"
    FusionConfig.from_dict({"members": [{"store": str(p), "name": n} for n, p in stores.items()]}).save(cfg)
    run = tmp_path / "run"
    args = ["fuse", "--config", str(cfg), "--root", str(root), "--out", str(run)]
    assert main(args) == 0
    victim = run / "labels" / "ell2" / "00003.png"
    before = victim.read_bytes()
    victim.unlink()
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ell2: 1 frames fused, 9 already done" in out and "ell1: 0 frames fused" in out
    assert victim.read_bytes() == before
    other = tmp_path / "g.toml"
    FusionConfig.from_dict({"mode": "majority", "members": [{"store": str(p), "name": n}
                                                            for n, p in stores.items()]}).save(other)
    assert main(["fuse", "--config", str(other), "--root", str(root), "--out", str(run)]) == 2
    assert "different config" in capsys.readouterr().err
    assert main(["fuse", "--config", str(other), "--root", str(root), "--out", str(run), "--overwrite"]) == 0
    assert load_config(run / "fusion.toml").mode == "majority"


def test_fuse_cli_parallel_and_zip(small_members, tmp_path):
    tmp, stores, root = small_members
    run1, run2 = tmp_path / "r1", tmp_path / "r2"
    members = [f"{stores['good']}@2", f"{stores['drift']}@1", f"{stores['swap']}@1"]
    base = ["fuse", "--root", str(root)] + [x for m in members for x in ("--member", m)]
    assert main(base + ["--out", str(run1), "--jobs", "2", "--zip", str(tmp_path / "sub.zip")]) == 0
    assert main(base + ["--out", str(run2)]) == 0
    for v, n in (("ell1", 8), ("ell2", 10)):
        for a, b in zip(_labels(run1, v, n), _labels(run2, v, n)):
            assert np.array_equal(a, b)
    with zipfile.ZipFile(tmp_path / "sub.zip") as z:
        names = z.namelist()
    assert "ell2/00009.png" in names and "ell1/00000.png" in names
    ds = VOSDataset(root)
    assert main(["validate", str(tmp_path / "sub.zip"), "--root", str(root)]) == 0
    assert [m.weight for m in load_config(run1 / "fusion.toml").members] == [2.0, 1.0, 1.0]
    assert len(ds.video_names) == 2


def test_hflip_members_are_mirrored_back(tmp_path):
    """A member run on mirrored frames (its logits are mirrored) gives the same labels as the plain one."""
    rng = np.random.default_rng(0)
    low = rng.normal(0, 4, (2, 6, 7)).astype(np.float32)
    plain = {"v": {"frame_names": ["00000"], "video_hw": [24, 28], "recipe": sam2_recipe([24, 28]),
                   "frames": {"00000": ([1, 2], low)}}}
    flipped = {"v": {"frame_names": ["00000"], "video_hw": [24, 28], "recipe": sam2_recipe([24, 28], hflip=True),
                     "frames": {"00000": ([1, 2], low[:, :, ::-1].copy())}}}
    write_store(tmp_path / "p", "m", plain)
    write_store(tmp_path / "f", "m", flipped)
    for name in ("p", "f"):
        fuse(FusionConfig.from_dict({"members": [{"store": str(tmp_path / name)}]}), tmp_path / f"r{name}")
    a = read_labels(tmp_path / "rp" / "labels" / "v" / "00000.png")
    b = read_labels(tmp_path / "rf" / "labels" / "v" / "00000.png")
    assert (a != b).mean() < 0.01 and len(np.unique(a)) == 3
