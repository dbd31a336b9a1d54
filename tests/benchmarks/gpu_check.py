"""`make gpu-check`: on one CUDA GPU, in under 8 minutes, (1) run every test marked ``gpu`` (bf16 / AMP /
compiled paths against their references) and (2) measure frames per second of each member at the published
settings, printed next to the published figures.

    python -m tests.benchmarks.gpu_check [--budget 450] [--frames 80] [--skip-tests] [--members sam2.1_t,...]

Without CUDA it says so and exits 0 (nothing to check; the gpu tests skip with the same reason in `make test`).

Speed protocol, per member, each in its own process (so a compile that runs long is cut off by the budget, and
one member's caches or memory do not help or hurt the next): build the member, run the clip once (warm-up:
cuDNN autotuning, and for ``vos_optimized`` the torch.compile of every memory-bank size), then time a second
full run of the clip: FPS = frames / seconds of that run, from ``run_video``'s first frame to its last (frame
decoding included, as in a real run; model build excluded). Clip: davis2016/bmx-trees from ../shared (80 frames,
854x480, 1 object). Weights: random initialisation of the official architecture (seeded) -- the compute does
not depend on the weight values, and no checkpoint needs downloading.

Published figures (what "published settings" means for each):
* SAM2.1 t/s/b+/l: 91.2 / 84.8 / 64.1 / 39.5 FPS, SAM2.1 README, one A100, torch.compile (``vos_optimized``),
  bf16, image size 1024. Measured here both eager (the project's default) and compiled (the published setting).
* Cutie small/base: 45.5 / 36.4 FPS (../shared/notes/anchors.md, from the Cutie paper; its GPU and AMP setting
  are not stated there): measured with the MOSE preset (480p, as the paper's evaluation) and AMP on.
A different GPU (e.g. an H100/H200) is expected to be faster than the A100 figures; the ratio column says by how
much, which is the useful number when the two runs are on the same kind of GPU.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
CLIP = ("davis2016", "bmx-trees")
DEFAULT_BUDGET_S = 450          # the whole check, tests included: < 8 minutes with start-up to spare
TEST_SHARE_S = 270              # at most this much of it for the gpu-marked tests
MIN_MEMBER_S = {"eager": 25, "compiled": 90, "cutie": 25}   # don't start a member with less left than this
PREFIX = "GPUCHECK "
GPU_TEST_PATHS = ("tests/gpu", "tests/models")   # where gpu-marked tests live (models/*: e.g. SAM2Long's)


@dataclass(frozen=True)
class Member:
    name: str
    model: str                 # "sam2" | "sam2long" | "cutie"
    options: dict
    published: float | None
    source: str
    mode: str                  # "eager" | "compiled" | "cutie" (budget class)

    @property
    def settings(self) -> str:
        o = self.options
        if self.model == "sam2":
            return f"{o['config']}, {o['image_size']}px, bf16{', compiled' if o.get('vos_optimized') else ', eager'}"
        if self.model == "sam2long":
            return f"{o['config']}, {o['image_size']}px, bf16, {o['num_pathway']} pathways"
        return f"cutie-{o['size']}, {o['preset']} preset (480p), {'AMP' if o.get('amp') else 'fp32'}"


SAM2_PUBLISHED = {"t": 91.2, "s": 84.8, "b+": 64.1, "l": 39.5}
SAM2_SOURCE = "SAM2.1 README: A100, compiled, bf16, 1024"
CUTIE_PUBLISHED = {"small": 45.5, "base": 36.4}
CUTIE_SOURCE = "anchors.md (Cutie paper)"
# SAM2Long publishes no FPS: its row is read against the eager SAM2 row of the same variant (about 1/pathways of
# it is the cost the member's benchmark holds it to on CPU)
SAM2LONG_VARIANTS = ("t", "b+")
SAM2LONG_SOURCE = "SAM2Long: no published FPS (compare with the eager SAM2.1 row of the same size / pathways)"


def members() -> list[Member]:
    """Table order: SAM2 eager, SAM2 compiled (the published setting), Cutie. Run order: see :func:`run_order`."""
    out = []
    for compiled in (False, True):
        for size, fps in SAM2_PUBLISHED.items():
            out.append(Member(f"sam2.1_{size}{'-compiled' if compiled else ''}", "sam2",
                              {"config": f"sam2.1_hiera_{size}", "image_size": 1024, "vos_optimized": compiled},
                              fps, SAM2_SOURCE, "compiled" if compiled else "eager"))
    for size, fps in CUTIE_PUBLISHED.items():
        out.append(Member(f"cutie-{size}", "cutie", {"size": size, "preset": "mose", "amp": True}, fps,
                          CUTIE_SOURCE, "cutie"))
    for size in SAM2LONG_VARIANTS:
        out.append(Member(f"sam2long_{size}", "sam2long",
                          {"config": f"sam2.1_hiera_{size}", "image_size": 1024, "num_pathway": 3}, None,
                          SAM2LONG_SOURCE, "eager"))
    return out


def run_order(rows: list[Member]) -> list[Member]:
    """Cheap, certain measurements first (eager SAM2, Cutie), then the compiled ones (minutes of compiling each,
    smallest model first) while the budget lasts."""
    rank = {"eager": 0, "cutie": 1, "compiled": 2}
    return sorted(rows, key=lambda m: rank[m.mode])


@dataclass
class Result:
    member: Member
    fps: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.fps is None or not self.member.published:
            return None
        return self.fps / self.member.published


def format_table(results: list[Result], gpu: str = "") -> str:
    """Markdown table: member, settings, published FPS, measured FPS, measured / published, note."""
    lines = [f"Frames per second per member{f' on {gpu}' if gpu else ''} (published figures: see sources)", "",
             "| member | settings | published FPS | measured FPS | measured / published | note |",
             "|---|---|---:|---:|---:|---|"]
    for r in results:
        pub = f"{r.member.published:.1f}" if r.member.published else "-"
        fps = f"{r.fps:.1f}" if r.fps is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"| {r.member.name} | {r.member.settings} | {pub} | {fps} | {ratio} | {r.note} |")
    sources = sorted({r.member.source for r in results})
    lines += ["", "sources: " + "; ".join(sources)]
    return "\n".join(lines)


def no_gpu_message() -> str:
    return ("gpu-check: no CUDA GPU on this machine (torch.cuda.is_available() is False): nothing measured, "
            "no gpu test run. Run `make gpu-check` on a machine with an NVIDIA GPU (about 8 minutes).")


def parse_child(stdout: str) -> dict | None:
    """The measurement a member's process printed (its last ``GPUCHECK {...}`` line), or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PREFIX):
            try:
                return json.loads(line[len(PREFIX):])
            except json.JSONDecodeError:
                return None
    return None


# ---- one member (in its own process) -----------------------------------------------------------------------------
def _clip_root(tmp: Path, frames: int) -> Path:
    root = tmp / "clip"
    src = SHARED / "vos-clips" / CLIP[0]
    names = sorted(p.stem for p in (src / "JPEGImages" / CLIP[1]).glob("*.jpg"))[:frames]
    if not names:
        raise SystemExit(f"gpu-check: clip {src / 'JPEGImages' / CLIP[1]} not found (../shared is needed)")
    for sub, ext, keep in (("JPEGImages", "jpg", names), ("Annotations", "png", names[:1])):
        (root / sub / CLIP[1]).mkdir(parents=True, exist_ok=True)
        for n in keep:
            (root / sub / CLIP[1] / f"{n}.{ext}").symlink_to(src / sub / CLIP[1] / f"{n}.{ext}")
    return root


def _segmenter(member: Member, tmp: Path, device: str, image_size: int | None):
    import torch
    torch.manual_seed(0)
    o = member.options
    if member.model in ("sam2", "sam2long"):
        from models.sam2.build import build_predictor
        predictor, _ = build_predictor(o["config"])
        ckpt = tmp / "weights.pt"
        torch.save({"model": predictor.state_dict()}, ckpt)
        del predictor
        if member.model == "sam2long":
            from models.sam2long.segmenter import Sam2LongSegmenter
            return Sam2LongSegmenter(ckpt, config=o["config"], image_size=image_size or o["image_size"],
                                     device=device, num_pathway=o["num_pathway"], scratch_dir=tmp)
        from models.sam2 import Sam2Segmenter
        return Sam2Segmenter(ckpt, config=o["config"], image_size=image_size or o["image_size"], device=device,
                             vos_optimized=o["vos_optimized"])
    from models.cutie import build_cutie
    from models.cutie.segmenter import CutieSegmenter
    ckpt = tmp / "weights.pth"
    torch.save(build_cutie(o["size"], device="cpu").state_dict(), ckpt)
    seg = CutieSegmenter(ckpt, size=o["size"], preset=o["preset"], scale=image_size, device=device)
    seg.settings = seg.runner.settings = seg.settings.replace(amp=bool(o.get("amp")))
    return seg


def measure(member: Member, frames: int, device: str = "cuda", image_size: int | None = None) -> dict:
    """Build, warm up on the clip, time a second run of it."""
    import torch
    from data.dataset import VOSDataset
    with tempfile.TemporaryDirectory(prefix="gpucheck-") as tmp:
        tmp = Path(tmp)
        video = VOSDataset(_clip_root(tmp, frames))[CLIP[1]]
        t0 = time.perf_counter()
        seg = _segmenter(member, tmp, device, image_size)
        build = time.perf_counter() - t0

        def one_pass() -> float:
            start = time.perf_counter()
            n = sum(1 for _ in seg.run_video(video))
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            assert n == len(video)
            return time.perf_counter() - start

        warm = one_pass()
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        timed = one_pass()
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None
    return {"member": member.name, "frames": len(video), "fps": len(video) / timed, "seconds": timed,
            "warmup_s": warm, "build_s": build, "peak_gib": peak}


# ---- the whole check ---------------------------------------------------------------------------------------------
def run_tests(timeout: float) -> tuple[bool, str]:
    """Every gpu-marked test (-s so their measured agreement numbers are printed)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-s", "-rA", "-p", "no:cacheprovider", "-m", "gpu",
           *GPU_TEST_PATHS]
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return False, out + f"\n(gpu tests stopped after {timeout:.0f} s: over the check's budget)"
    return p.returncode == 0, p.stdout + p.stderr


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--budget", type=float, default=DEFAULT_BUDGET_S, help="seconds for the whole check")
    ap.add_argument("--frames", type=int, default=80, help="frames of the clip per timed run")
    ap.add_argument("--skip-tests", action="store_true", help="speed table only")
    ap.add_argument("--members", default="", help="comma-separated member names (default: all)")
    ap.add_argument("--json", default="", help="also write the results here")
    ap.add_argument("--one", default="", help=argparse.SUPPRESS)          # child mode: measure one member
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)   # smoke tests on CPU
    ap.add_argument("--image-size", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    table = {m.name: m for m in members()}
    if args.one:
        print(PREFIX + json.dumps(measure(table[args.one], args.frames, args.device, args.image_size)), flush=True)
        return 0

    import torch
    if not torch.cuda.is_available():
        print(no_gpu_message())
        return 0
    start = time.perf_counter()
    gpu = torch.cuda.get_device_name(0)
    print(f"gpu-check on {gpu} (torch {torch.__version__}, CUDA {torch.version.cuda}); budget {args.budget:.0f} s",
          flush=True)
    wanted = [m for m in members() if not args.members or m.name in args.members.split(",")]
    tests_ok = True
    if not args.skip_tests:
        tests_ok, out = run_tests(min(TEST_SHARE_S, args.budget * 0.6))
        print(out.rstrip())
        print(f"gpu tests: {'passed' if tests_ok else 'FAILED'} ({time.perf_counter() - start:.0f} s)", flush=True)
    results = {m.name: Result(m) for m in wanted}
    for m in run_order(wanted):
        left = args.budget - (time.perf_counter() - start)
        if left < MIN_MEMBER_S[m.mode]:
            results[m.name].note = f"not measured: {left:.0f} s of the budget left"
            continue
        cmd = [sys.executable, "-m", "tests.benchmarks.gpu_check", "--one", m.name, "--frames", str(args.frames)]
        try:
            p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=left)
        except subprocess.TimeoutExpired:
            results[m.name].note = f"stopped after {left:.0f} s (budget)"
            continue
        got = parse_child(p.stdout)
        if p.returncode != 0 or got is None:
            last = (p.stderr.strip().splitlines() or ["no output"])[-1][:120]
            results[m.name].note = f"failed: {last}"
            continue
        r = results[m.name]
        r.fps, r.extra = got["fps"], got
        r.note = (f"warm-up {got['warmup_s']:.0f} s, build {got['build_s']:.0f} s"
                  + (f", peak {got['peak_gib']:.1f} GiB" if got.get("peak_gib") is not None else ""))
        print(f"{m.name}: {r.fps:.1f} FPS", flush=True)
    ordered = [results[m.name] for m in wanted]
    print()
    print(format_table(ordered, gpu))
    failed = [r.member.name for r in ordered if r.note.startswith("failed")]
    print(f"\ngpu-check: tests {'passed' if tests_ok else 'FAILED'}; {sum(r.fps is not None for r in ordered)} of "
          f"{len(ordered)} members measured{'; failed: ' + ', '.join(failed) if failed else ''}; "
          f"{time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"gpu": gpu, "tests_passed": tests_ok,
                                               "members": [dict(r.extra, name=r.member.name, fps=r.fps,
                                                                published=r.member.published, note=r.note)
                                                           for r in ordered]}, indent=1))
    return 0 if tests_ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
