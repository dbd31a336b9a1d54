"""J&F evaluator: exactness on the whole synthetic benchmark, speed and memory (run by `make bench`).

Goals (J&F issue), on the 720p synthetic set (30 videos x 60 frames) with 2 worker processes:
* every per-frame / per-object / per-video number within 1e-9 of the official evaluators' (golden) numbers,
  global scores too, at 720p and 480p, for DAVIS, MOSEv2 and vos-benchmark;
* at least 4x faster than vos-benchmark 0.1.0 (run here, same data, same 2 processes), and within 2x of the
  time it takes only to decode all GT + predicted PNGs (also measured here, same 2 processes);
* peak memory (sum over the process tree) under 500 MB, also on a 600-frame video.
davis2017-evaluation and MOSEv2 score.py timings come from the golden timing.csv (measured on this machine).

Each contender runs in a fresh interpreter whose process tree is sampled (RSS and CPU); wall and CPU times are
those of the work itself (interpreter start and imports of the driving process excluded, worker start-up
included). Other engineers' jobs share the 2 cores and can stretch wall times several fold, so the goals are
asserted on CPU seconds (the tree's user + system time); wall ratios are printed next to them, with the load
average.
"""
from __future__ import annotations

import csv
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.submission.jf.synthetic import GOLDEN, REPO, ensure_synthetic, golden, golden_global, video_names
from tests.submission.jf.test_golden import KEYS, TOL, compare

JOBS = 2
GLOBAL_NAMES = {"davis": "davis2017-evaluation", "mosev2": "MOSEv2 score.py", "vos-benchmark": "vos-benchmark"}


def run_child(code: str, timeout: float = 1800) -> dict:
    """Run ``code`` in a fresh interpreter (cwd = repo); it prints one JSON line last, with ``wall_s`` and
    ``self_cpu_s`` (its own CPU during the work). Adds, sampled every 20 ms over the process tree: peak RSS (sum
    and largest single process) and ``cpu_s`` = own work CPU + all CPU of its worker processes."""
    import psutil
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    ps = psutil.Process(proc.pid)
    peak = [0, 0]
    worker_cpu: dict[int, float] = {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            try:
                procs = [ps] + ps.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            rss = []
            for p in procs:
                try:
                    rss.append(p.memory_info().rss)
                    if p.pid != ps.pid:
                        t = p.cpu_times()
                        worker_cpu[p.pid] = t.user + t.system
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            peak[0], peak[1] = max(peak[0], sum(rss)), max(peak[1], max(rss, default=0))
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate(timeout=timeout)
    done.set()
    th.join()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-4000:]}")
    info = json.loads(out.strip().splitlines()[-1])
    info["peak_tree_MB"], info["peak_proc_MB"] = peak[0] / 2**20, peak[1] / 2**20
    info["cpu_s"] = info.pop("self_cpu_s") + sum(worker_cpu.values())
    return info


DECODE = """
    import json, os, sys, time
    from joblib import Parallel, delayed
    from data.labels import read_labels
    base = sys.argv[1] if len(sys.argv) > 1 else {base!r}
    vids = sorted(os.listdir(f"{{base}}/GT/Annotations"))
    def decode(v):
        for d in (f"{{base}}/GT/Annotations/{{v}}", f"{{base}}/pred/{{v}}"):
            for f in sorted(os.listdir(d)):
                read_labels(f"{{d}}/{{f}}")
        return 0
    t = time.perf_counter(); c = time.process_time()
    n = {jobs}
    if n == 1:
        [decode(v) for v in vids]
    else:
        Parallel(n_jobs=n, batch_size=1)(delayed(decode)(v) for v in vids)
    print(json.dumps({{"wall_s": time.perf_counter() - t, "self_cpu_s": time.process_time() - c}}))
"""

OURS = """
    import json, os, pickle, time
    from submission.jf import evaluate
    base = {base!r}
    meta = f"{{base}}/meta.json" if os.path.exists(f"{{base}}/meta.json") else None
    t = time.perf_counter(); c = time.process_time()
    r = evaluate(f"{{base}}/GT/Annotations", f"{{base}}/pred", protocol={protocol!r}, n_jobs={jobs}, meta=meta)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    if {dump!r}:
        with open({dump!r}, "wb") as fh:
            pickle.dump(r, fh)
    print(json.dumps({{"wall_s": wall, "self_cpu_s": cpu}}))
"""

VOSB = """
    import json, os, tempfile, time
    from vos_benchmark.benchmark import benchmark
    base = {base!r}
    with tempfile.TemporaryDirectory() as tmp:   # vos-benchmark writes results.csv into the mask root
        for v in os.listdir(f"{{base}}/pred"):
            os.symlink(os.path.abspath(f"{{base}}/pred/{{v}}"), f"{{tmp}}/{{v}}")
        t = time.perf_counter(); c = time.process_time()
        jf, j, f, _ = benchmark([f"{{base}}/GT/Annotations"], [tmp], num_processes={jobs}, verbose=False)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    print(json.dumps({{"wall_s": wall, "self_cpu_s": cpu, "J&F": jf[0] / 100}}))
"""


def _load_avg() -> str:
    try:
        return "%.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "n/a"


def _check_exact(result, res: str) -> dict[str, float]:
    worst = {}
    for level, keys in KEYS.items():
        d = compare(getattr(result, level), golden(res, level), keys)
        worst[level] = max(d.values())
        bad = {c: v for c, v in d.items() if v > TOL}
        assert not bad, f"{res} {level}: {bad}"
    g = golden_global(res)
    gmax = 0.0
    for p, name in GLOBAL_NAMES.items():
        for k, want in g[name].items():
            got = result.global_[p][k]
            assert abs(got - want) <= TOL, (res, p, k, got, want)
            gmax = max(gmax, abs(got - want))
    worst["global"] = gmax
    return worst


def _timing_csv() -> dict[tuple[str, str, str], float]:
    with open(GOLDEN / "timing.csv") as fh:
        return {(r["evaluator"], r["res"], r["mode"]): (float(r["wall_s"]), float(r["tree_peak_rss_sum_MiB"]))
                for r in csv.DictReader(fh)}


def _long_video(root: Path, n_frames: int = 600) -> Path:
    """One video of ``n_frames`` frames cycling through the 720p frames of one synthetic video (symlinks)."""
    src = root / "720p"
    v = video_names()[4]   # 5 objects
    out = Path(tempfile.mkdtemp(prefix="jf_long_", dir=REPO / ".cache" / "jf"))
    for kind, sub in (("GT/Annotations", "GT/Annotations"), ("pred", "pred")):
        d = out / sub / v
        d.mkdir(parents=True)
        frames = sorted(os.listdir(src / kind / v))
        for t in range(n_frames):
            k = t % (2 * len(frames) - 2)   # play forwards then backwards: no jump in the masks
            k = k if k < len(frames) else 2 * len(frames) - 2 - k
            os.symlink(src / kind / v / frames[k], d / f"{t:05d}.png")
    return out


def test_jf_exact_fast_and_small():
    pytest.importorskip("psutil")
    if not GOLDEN.exists():
        pytest.skip(f"shared golden J&F material not found at {GOLDEN}")
    t0 = time.perf_counter()
    root = ensure_synthetic(None)
    print(f"\nsynthetic benchmark ready in {time.perf_counter() - t0:.1f} s at {root}")

    # ---------------- exactness, all 30 videos, both resolutions (the 720p run is also the timed one)
    exact, ours = {}, {}
    for res in ("720p", "480p"):
        dump = str(REPO / ".cache" / "jf" / f"bench_result_{res}.pkl")
        ours[res] = run_child(OURS.format(base=str(root / res), protocol="all", jobs=JOBS, dump=dump))
        with open(dump, "rb") as fh:
            exact[res] = _check_exact(pickle.load(fh), res)
        os.unlink(dump)
        print(f"{res}: ours (all protocols) {ours[res]['wall_s']:.2f} s, peak tree {ours[res]['peak_tree_MB']:.0f} MB;"
              " max |ours - golden| " + ", ".join(f"{k} {v:.1e}" for k, v in exact[res].items()), flush=True)

    # ---------------- speed at 720p
    base = str(root / "720p")
    decode2 = run_child(DECODE.format(base=base, jobs=JOBS))
    print(f"decode only, {JOBS} jobs: {decode2['wall_s']:.2f} s", flush=True)
    decode1 = run_child(DECODE.format(base=base, jobs=1))
    print(f"decode only, 1 process: {decode1['wall_s']:.2f} s", flush=True)
    davis_only = run_child(OURS.format(base=base, protocol="davis", jobs=JOBS, dump=""))
    print(f"ours, DAVIS only: {davis_only['wall_s']:.2f} s", flush=True)
    vosb = run_child(VOSB.format(base=base, jobs=JOBS))
    print(f"vos-benchmark: {vosb['wall_s']:.2f} s", flush=True)
    gg = golden_global("720p")["vos-benchmark"]
    assert abs(vosb["J&F"] - gg["J&F"]) < 1e-9, "vos-benchmark run here disagrees with its golden numbers"
    long_root = _long_video(root)
    try:
        long = run_child(OURS.format(base=str(long_root), protocol="all", jobs=JOBS, dump=""))
    finally:
        shutil.rmtree(long_root, ignore_errors=True)
    golden_t = _timing_csv()

    o = ours["720p"]
    w, c = o["wall_s"], o["cpu_s"]
    rows = [
        ("ours, all 3 protocols (2 jobs)", o),
        ("ours, DAVIS only (2 jobs)", davis_only),
        ("decode all GT+pred PNGs (2 jobs)", decode2),
        ("decode all GT+pred PNGs (1 process)", decode1),
        ("vos-benchmark 0.1.0 (2 procs, run now)", vosb),
    ]
    print(f"\nload average {_load_avg()}; 720p, 30 videos x 60 frames, 90 objects")
    print(f"{'contender':<44}{'wall s':>8}{'/ ours':>8}{'CPU s':>8}{'/ ours':>8}{'tree MB':>9}{'proc MB':>9}")
    for label, r in rows:
        print(f"{label:<44}{r['wall_s']:>8.2f}{r['wall_s'] / w:>8.2f}{r['cpu_s']:>8.2f}{r['cpu_s'] / c:>8.2f}"
              f"{r['peak_tree_MB']:>9.0f}{r['peak_proc_MB']:>9.0f}")
    r_vosb_wall, r_vosb_cpu = vosb["wall_s"] / w, vosb["cpu_s"] / c
    # timing.csv was measured on a quiet machine: compare through vos-benchmark, measured both there and here,
    # using the CPU ratio (wall times here depend on whatever else runs)
    quiet = golden_t[("vosb", "720p", "2core")][0] / r_vosb_cpu
    print(f"timing.csv (quiet machine); ours estimated there as vos-benchmark's "
          f"{golden_t[('vosb', '720p', '2core')][0]:.1f} s / {r_vosb_cpu:.2f} (CPU ratio) = {quiet:.1f} s")
    for (ev, mode, label) in (("vosb", "2core", "vos-benchmark (timing.csv, 2 procs)"),
                              ("mose", "2core", "MOSEv2 score.py (timing.csv, 2 procs)"),
                              ("davis", "2core", "davis2017-evaluation (timing.csv, 1 proc)")):
        t, mem = golden_t[(ev, "720p", mode)]
        print(f"{label:<44}{t:>8.2f}{t / quiet:>8.2f}{'':>16}{mem:>9.0f}")
    r_dec_wall, r_dec_cpu = w / decode2["wall_s"], c / decode2["cpu_s"]
    print(f"vos-benchmark / ours: wall {r_vosb_wall:.2f}, CPU {r_vosb_cpu:.2f}  (goal >= 4)")
    print(f"ours / decode-only:   wall {r_dec_wall:.2f}, CPU {r_dec_cpu:.2f}  (goal <= 2)")
    print(f"600-frame 5-object 720p video: {long['wall_s']:.1f} s, peak tree {long['peak_tree_MB']:.0f} MB, "
          f"largest process {long['peak_proc_MB']:.0f} MB")
    print(f"480p all protocols: {ours['480p']['wall_s']:.2f} s (timing.csv: vos-benchmark "
          f"{golden_t[('vosb', '480p', '2core')][0]:.1f} s, MOSEv2 {golden_t[('mose', '480p', '2core')][0]:.1f} s,"
          f" DAVIS {golden_t[('davis', '480p', '2core')][0]:.1f} s)")
    for res, worst in exact.items():
        print(f"max |ours - golden| {res}: " + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))

    # CPU seconds are the stable figure when other jobs share the cores; wall ratios are printed above
    assert r_vosb_cpu >= 4, "less than 4x faster than vos-benchmark (CPU)"
    assert r_dec_cpu <= 2, "more than 2x the PNG decoding time (CPU)"
    for r in (ours["720p"], ours["480p"], long):
        assert r["peak_tree_MB"] < 500, f"peak memory {r['peak_tree_MB']:.0f} MB"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-s", "-p", "no:cacheprovider"]))
