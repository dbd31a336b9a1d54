"""Long commands show a tqdm bar on stderr (stdout keeps the results) and end with a summary line; `evaluate`
lists the worst videos in percent."""
from __future__ import annotations

import re

import pytest

from data.progress import enabled
from pipeline.cli import main
from tests.ensemble import synthetic
from tests.ensemble.conftest import moving_ellipses


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("progress")
    videos = {"ell2": moving_ellipses(8, (48, 64), 2, 0), "ell1": moving_ellipses(6, (40, 56), 1, 1)}
    stores = synthetic.build_members(tmp, videos)
    return tmp, stores, tmp / "data"


def test_switch(monkeypatch):
    monkeypatch.setenv("MASSEG_PROGRESS", "1")
    assert enabled() is False
    monkeypatch.setenv("MASSEG_PROGRESS", "0")
    assert enabled() is True
    monkeypatch.delenv("MASSEG_PROGRESS")
    assert enabled() is None          # tqdm decides: a bar on a terminal only


def test_bars_and_summary_lines(members, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MASSEG_PROGRESS", "1")
    tmp, stores, root = members
    member_args = [a for s in stores.values() for a in ("--member", str(s))]
    run = tmp_path / "run"

    def call(*args):
        assert main([str(a) for a in args]) == 0
        return capsys.readouterr()

    out = call("fuse", *member_args, "--root", root, "--out", run)
    assert "fuse:" in out.err and "video" in out.err and "fuse:" not in out.out
    assert out.out.strip().splitlines()[-1].startswith("fused 2 videos")
    out = call("evaluate", "--root", root, "--pred", run / "labels", "-j", "1")
    assert "evaluate:" in out.err and "frame" in out.err
    assert "J&F evaluation (scores in %)" in out.out
    worst = re.findall(r"^  (ell\d)\s+(\d+\.\d\d) %$", out.out, re.M)
    assert [v for v, _ in worst] and len(worst) == 2 and float(worst[0][1]) <= float(worst[1][1])
    assert "worst 2 of 2 videos by davis J&F-Mean" in out.out
    out = call("sweep", *member_args, "--root", root, "--out", tmp_path / "sw", "--weights", "simplex:0.5")
    assert "sweep:" in out.err
    assert re.search(r"settings in [\d.]+ s; best -> ", out.out.strip().splitlines()[-1])
    assert "davis score (%)" in out.out
    out = call("submit", "--root", root, "--labels", run, "--out", tmp_path / "sub.zip")
    assert "submit:" in out.err and out.out.strip().splitlines()[-1].startswith("wrote ")
    out = call("overlay", "--root", root, "--labels", run, "--out", tmp_path / "ov")
    assert "overlay:" in out.err and out.out.strip().startswith("overlays of 2 videos")
    # off: no bar at all
    monkeypatch.setenv("MASSEG_PROGRESS", "0")
    out = call("evaluate", "--root", root, "--pred", run / "labels", "-j", "1", "--worst", "0")
    assert "evaluate:" not in out.err and "worst" not in out.out
