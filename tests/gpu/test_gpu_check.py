"""The CPU side of `make gpu-check` (tests/benchmarks/gpu_check.py): the no-GPU message, the table, the budget
order, reading a member process's result, and one member measured end to end on CPU (tiny sizes: it proves the
measuring code runs, its number means nothing)."""
from __future__ import annotations

import pytest

from tests.benchmarks import gpu_check as gc


def test_without_cuda_it_says_so_and_exits_0(monkeypatch, capsys):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.main([]) == 0
    out = capsys.readouterr().out
    assert "no CUDA GPU on this machine" in out and "make gpu-check" in out


def test_members_and_published_figures():
    ms = {m.name: m for m in gc.members()}
    assert [ms[f"sam2.1_{s}-compiled"].published for s in ("t", "s", "b+", "l")] == [91.2, 84.8, 64.1, 39.5]
    assert ms["sam2.1_l-compiled"].options == {"config": "sam2.1_hiera_l", "image_size": 1024, "vos_optimized": True}
    assert ms["sam2.1_l"].options["vos_optimized"] is False
    assert (ms["cutie-small"].published, ms["cutie-base"].published) == (45.5, 36.4)
    assert ms["sam2long_b+"].published is None and ms["sam2long_b+"].options["num_pathway"] == 3
    assert ms["sam2long_b+"].settings == "sam2.1_hiera_b+, 1024px, bf16, 3 pathways"
    order = [m.mode for m in gc.run_order(gc.members())]
    assert order == sorted(order, key=["eager", "cutie", "compiled"].index)


def test_table():
    ms = {m.name: m for m in gc.members()}
    rows = [gc.Result(ms["sam2.1_t-compiled"], 182.4, "warm-up 95 s"), gc.Result(ms["cutie-base"], None,
                                                                                  "not measured: 10 s of the budget left")]
    text = gc.format_table(rows, "NVIDIA H200")
    lines = text.splitlines()
    assert "on NVIDIA H200" in lines[0]
    assert "| sam2.1_t-compiled | sam2.1_hiera_t, 1024px, bf16, compiled | 91.2 | 182.4 | 2.00x | warm-up 95 s |" in lines
    assert "| cutie-base | cutie-base, mose preset (480p), AMP | 36.4 | - | - | not measured: 10 s of the budget left |" \
        in lines
    assert lines[-1].startswith("sources: ") and "SAM2.1 README" in lines[-1]


def test_parse_child():
    assert gc.parse_child("noise\nGPUCHECK {\"fps\": 12.5}\n") == {"fps": 12.5}
    assert gc.parse_child("Traceback ...") is None
    assert gc.parse_child("GPUCHECK {broken") is None


@pytest.mark.timeout(600)
@pytest.mark.parametrize("member, frames", [("sam2.1_t", 2), ("sam2long_t", 3)])
def test_one_member_measured_on_cpu(member, frames, capsys):
    pytest.importorskip("sam2")
    gc.SHARED.joinpath("vos-clips").exists() or pytest.skip("../shared/vos-clips not found")
    assert gc.main(["--one", member, "--frames", str(frames), "--device", "cpu", "--image-size", "128"]) == 0
    got = gc.parse_child(capsys.readouterr().out)
    assert got["member"] == member and got["frames"] == frames and got["fps"] > 0 and got["peak_gib"] is None


def test_every_gpu_test_is_under_the_checked_paths():
    """gpu-check runs `pytest -m gpu` on GPU_TEST_PATHS only (collecting the whole suite costs budget): a gpu test
    elsewhere would silently never run."""
    import re
    from pathlib import Path
    root = gc.REPO / "tests"
    outside = [p for p in root.rglob("test_*.py")
               if re.search(r"pytest\.mark\.gpu|mark\.gpu\b", p.read_text(errors="ignore"))
               and not any(p.is_relative_to(gc.REPO / q) for q in gc.GPU_TEST_PATHS)]
    assert not outside, f"gpu-marked tests outside {gc.GPU_TEST_PATHS}: {outside}"
    assert any(True for _ in (gc.REPO / "tests" / "gpu").glob("test_gpu_*.py"))
    assert Path(gc.__file__).name == "gpu_check.py"
