"""`masseg report` and the end of `masseg run`: what the page holds, that it stands alone, the member table,
the test-split case and bad input."""
from __future__ import annotations

import json
import re
import shutil

import pandas as pd

from pipeline.report.html import build_report


def _imgs(html: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', html)


def test_report_of_a_run(small_run):
    cfg, run, root, lines = small_run
    index = run / "report" / "index.html"
    html = index.read_text()
    # stands alone: no server, no CDN, every picture a file next to it
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    srcs = _imgs(html)
    assert srcs and all((index.parent / s).is_file() and (index.parent / s).stat().st_size > 100 for s in srcs)
    assert all(s.startswith("assets/") for s in srcs)
    # metadata: config, checkpoints with sha256, timings
    import hashlib
    sha = hashlib.sha256((cfg.parent / "sam2_tiny_synthetic.pt").read_bytes()).hexdigest()
    assert sha in html and "config.toml" in html and "Timings" in html
    # scores of both members and the fusion, in percent, sortable, gain coloured
    ev = json.loads((run / "eval" / "global.json").read_text())["scores"]["davis"]
    assert f"{100 * ev['J&F-Mean']:.2f}" in html
    for name in ("fusion J&amp;F (%)", "sam2a J&amp;F (%)", "sam2b J&amp;F (%)", "fusion J (%)", "sam2b F (%)",
                 "fusion gain (points)"):
        assert name in html, name
    assert html.count('class="sortable') >= 3 and "addEventListener('click'" in html
    assert re.search(r'class="num gain-(pos|neg|zero)"', html)
    # per video: J curves, worst-frame strips (frame + GT, 2 members, fusion), member disagreement
    for v in ("synth000", "synth001"):
        assert f"assets/{v}/j_curves.png" in srcs and f"assets/{v}/disagreement.png" in srcs
        tiles = [s for s in srcs if s.startswith(f"assets/{v}/") and s.endswith(".jpg")]
        assert len(tiles) == 3 * 4, tiles
    assert "frame + ground truth" in html and "Worst frames" in html
    # the sweep: ranking and plots (two members: the line plot)
    assert "id='sweep'" in html and "assets/sweep/sweep_lines.png" in srcs and "assets/sweep/sweep_scores.png" in srcs
    # the members' own labels come from single-member fusions, beside the run's products
    for m in ("sam2a", "sam2b"):
        assert len(list((run / "members" / m / "labels").rglob("*.png"))) == 12


def test_run_ends_with_members_against_fusion(small_run):
    cfg, run, root, lines = small_run
    summary = json.loads((run / "summary.json").read_text())
    md = (run / "summary.md").read_text()
    assert "report: [report/index.html](report/index.html)" in md
    assert "| video | sam2a J&F (%) | sam2b J&F (%) | fusion J&F (%) | fusion gain (points) |" in md
    assert "**all videos**" in md and "synth000" in md
    printed = "\n".join(lines)
    assert "Each member against the fusion" in printed
    # the table's numbers are the members' own evaluations, in percent with two decimals
    pv = pd.read_csv(run / "members" / "sam2a" / "eval" / "per_video.csv", dtype={"video": str})
    v0 = pv.set_index("video").loc["synth000", "JF_davis"]
    assert re.search(rf"\| synth000 \| {100 * v0:.2f} \|", md)
    assert abs(summary["members"]["fusion"] - summary["jf"]["davis"]["J&F-Mean"]) < 1e-12
    assert "report" in summary["timings"]
    # every J&F a person reads in summary.md is percent (no 0.xxxx fractions)
    assert not re.search(r"\| 0\.\d{4} \|", md) and "J&F-Mean | " in md and " %" in md


def test_report_of_a_test_split_shows_agreement_only(small_run, tmp_path):
    cfg, run, root, lines = small_run
    test_root = tmp_path / "test"
    shutil.copytree(root, test_root)
    for png in (test_root / "Annotations").rglob("*.png"):
        if png.stem != "00000":
            png.unlink()
    out = tmp_path / "rep"
    index = build_report(run, out, root=str(test_root))
    html = index.read_text()
    assert "no ground truth on every frame" in html and "id='scores'" not in html
    assert "members disagree on" in html and "Member disagreement" in html
    srcs = _imgs(html)
    assert all((out / s).is_file() for s in srcs)
    assert not any(s.endswith("j_curves.png") for s in srcs)
    assert any(s.endswith("disagreement.png") for s in srcs)


def test_report_mosev2_shows_j_and_fdot(small_run, tmp_path):
    cfg, run, root, lines = small_run
    index = build_report(run, tmp_path / "rep", protocol="mosev2", max_videos=1, worst_frames=1)
    html = index.read_text()
    for name in ("fusion J&amp;Ḟ (%)", "sam2a J&amp;Ḟ (%)", "fusion J&amp;F (%)", "fusion Ḟ (%)",
                 "mosev2 protocol"):
        assert name in html, name
    ev = json.loads((run / "members" / "fusion" / "eval" / "global.json").read_text())["scores"]["mosev2"]
    assert f"fusion J&amp;Ḟ {100 * ev['J&Fdot']:.2f}%" in html
    assert "the 1 worst of 2" in html and len([s for s in _imgs(html) if s.endswith(".jpg")]) == 4


def test_report_bad_input(small_run, tmp_path, capsys):
    from pipeline.cli import main
    cfg, run, root, lines = small_run

    def fails(*args) -> str:
        assert main(["report", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        return err

    assert "run folder not found" in fails(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    assert "not a fused run folder" in fails(tmp_path / "empty")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "is a file, not a folder" in fails(run, "--out", blocker / "rep")
    # a `masseg fuse` folder says nothing about its dataset: --root is asked for
    fused = tmp_path / "fused"
    shutil.copytree(run / "labels", fused / "labels")
    shutil.copy(run / "fusion.toml", fused / "fusion.toml")
    assert "pass --root" in fails(fused)
