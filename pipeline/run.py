"""`masseg run CONFIG`: every stage in order, each skipped when its outputs are complete.

infer (each member run into its own store) -> fuse (label maps) -> submit (validated, byte-identical zip) ->
evaluate (J&F when the split has ground truth on every frame). Each stage is resumable by itself (stores only
show complete videos, fusion writes each PNG atomically and skips written frames, the zip is renamed into place),
and a finished stage leaves a marker holding the fingerprint of its inputs, so a rerun after a crash or a SIGKILL
redoes exactly what was not finished and produces the same bytes as an uninterrupted run.

The run folder records what produced it: ``config.toml`` (the config as given) and ``resolved.json`` (every
default filled in, stores and fusion spelled out), ``environment.json`` (package versions, device),
``checkpoints.json`` (path and sha256 of every weight file), ``timings.json`` (seconds per stage, kept across
reruns) and ``summary.md`` / ``summary.json`` (J&F table when available, zip path and size).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable

from data.atomic import atomic_write_text, check_writable
from data.dataset import VOSDataset
from data.errors import MassegError

from .config import Experiment, load_experiment

STAGES = ("infer", "sweep", "fuse", "submit", "evaluate", "report")


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunFolder:
    """Paths and stage markers of one run folder."""

    def __init__(self, root: Path):
        self.root = root

    def store(self, store_name: str) -> Path:
        return self.root / "stores" / store_name

    @property
    def zip(self) -> Path:
        return self.root / "submission.zip"

    def _marker(self, stage: str) -> Path:
        return self.root / ".stages" / f"{stage}.json"

    def is_done(self, stage: str, fingerprint: str) -> bool:
        try:
            return json.loads(self._marker(stage).read_text()).get("fingerprint") == fingerprint
        except (FileNotFoundError, json.JSONDecodeError):
            return False

    def mark_done(self, stage: str, fingerprint: str) -> None:
        atomic_write_text(self._marker(stage), json.dumps({"fingerprint": fingerprint}) + "\n")

    @contextlib.contextmanager
    def lock(self):
        """One `masseg run` per folder at a time (workers it starts are waited for inside the lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise MassegError("another `masseg run` is using this run folder", self.root,
                                  "wait for it to finish, or use another [run] out") from None
            yield
        finally:
            os.close(fd)

    def sweep_leftovers(self) -> list[Path]:
        """Temp files of writers killed mid-write (never read by any stage); safe only under the lock, once every
        worker has finished. Each layer removes its own: the stores their partial videos, atomic writes their
        temp files."""
        from data.atomic import remove_temp_files
        from data.store import LogitStore

        gone = []
        stores = self.root / "stores"
        for store in sorted(stores.iterdir()) if stores.is_dir() else []:
            gone += LogitStore.remove_partials(store)
        return gone + remove_temp_files(self.root)

    def write_json(self, name: str, obj) -> None:
        atomic_write_text(self.root / name, json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n")

    def read_json(self, name: str, default):
        try:
            return json.loads((self.root / name).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return default


def checkpoint_problem(name_or_path: str) -> str | None:
    """For config checking: None when the checkpoint is a registry name or an existing file."""
    from .registry import entry_for
    if Path(name_or_path).is_file() or entry_for(name_or_path) is not None:
        return None
    return (f"{name_or_path!r} is neither a file nor a registry name "
            "(see `masseg checkpoints list`)")


def _versions() -> dict:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("masseg-pipeline", "torch", "torchvision", "sam2", "numpy", "pillow", "scipy", "pandas", "ray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    try:
        import torch
        out["cuda"] = torch.cuda.is_available()
        out["cuda_devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # pragma: no cover - torch is a hard dependency
        out["cuda"] = False
    return out


def has_full_ground_truth(ds: VOSDataset) -> bool:
    """J&F needs a mask on every frame; MOSE/DAVIS test splits have only the first."""
    return all(len(v.annotation_names) == len(v) for v in ds)


def fusion_config(exp: Experiment, folder: RunFolder, best_path: str | Path | None = None):
    """The experiment's fusion as an ensemble FusionConfig: one member per store, grouped by configured member.

    A member's weight is shared by its runs (input sizes / flips), so the group takes part with the configured weight.
    A sweep result (``[fusion] best``, or this run's own sweep) wins: its members are matched to this experiment's
    stores by store name, so a setting tuned on a local validation split carries over to the test split."""
    from ensemble.config import FusionConfig, MemberSpec, load_config
    members = []
    for m in exp.members:
        runs = m.runs()
        table = exp.fusion["members"].get(m.name, {})  # load_experiment filled the defaults of listed members
        weight, scale, bias = table.get("weight", 1.0), table.get("scale", 1.0), table.get("bias", 0.0)
        for r in runs:
            members.append(MemberSpec(name=r.store_name, store=folder.store(r.store_name), weight=weight / len(runs),
                                      scale=scale, bias=bias, group=m.name, optional=m.optional))
    for name, table in exp.fusion["members"].items():   # PNG members: other tools' labels, fused as they are
        if table.get("png"):
            members.append(MemberSpec(name=name, store=Path(table["png"]), weight=table["weight"],
                                      optional=table["optional"], kind="png", confidence=table["confidence"]))
    best_path = best_path or exp.fusion.get("best")
    if not best_path:
        return FusionConfig(tuple(members), mode=exp.fusion["mode"])
    best = load_config(best_path)
    ours = {m.name: m for m in members}
    theirs = {m.name for m in best.members}
    if theirs != set(ours):
        raise MassegError(f"the sweep result's members {sorted(theirs)} are not this experiment's stores "
                          f"{sorted(ours)}", best_path, "sweep with the same members, input sizes and flips")
    kinds = [b.name for b in best.members if b.kind != ours[b.name].kind]
    if kinds:
        raise MassegError(f"in the sweep result, member(s) {kinds} are not of the kind they are here (logit store "
                          "or PNG member)", best_path, "sweep with the same members")
    return FusionConfig(tuple(MemberSpec(name=b.name, store=ours[b.name].store, weight=b.weight, scale=b.scale,
                                         bias=b.bias, group=b.group or ours[b.name].group, optional=b.optional,
                                         kind=b.kind, confidence=b.confidence)
                              for b in best.members), mode=best.mode)


def sweep_settings(exp: Experiment, base) -> list:
    """The settings the experiment's [sweep] asks for (parsed before any work starts: a bad grid is a config
    problem, not a failure after inference)."""
    from ensemble.grid import make_settings, parse_member_values, parse_weights
    sw = exp.sweep
    weights = [w for text in (sw["weights"] or []) for w in parse_weights(text, len(base.members))] or None
    return make_settings(base, sw["modes"] or None, weights,
                         parse_member_values(sw["scale"] or [], base.names, "scale", skip=base.png_names),
                         parse_member_values(sw["bias"] or [], base.names, "bias", skip=base.png_names))


def _sweep(exp: Experiment, folder: RunFolder, ds: VOSDataset, base, echo) -> Path:
    """Rank fusion settings on this split's ground truth; returns the best.toml it wrote."""
    from ensemble.report import write_report
    from ensemble.sweep import sweep
    settings = sweep_settings(exp, base)
    echo(f"[sweep] {len(settings)} settings over {len(ds.video_names)} videos ({exp.data['protocol']})")
    result = sweep(base, settings, ds, exp.data["protocol"], echo=echo)
    paths = write_report(result, folder.root / "sweep", extra={"root": exp.data["root"], "split": exp.data["split"]})
    return Path(paths["best.toml"])


def _infer(exp: Experiment, folder: RunFolder, ds: VOSDataset, echo, ran: list | None = None) -> dict:
    """Run each member's inference; ``ran`` collects the stores that had work (a resumed run whose stores are
    complete loads no model and keeps the stage's recorded time)."""
    from data.store import LogitStore

    from .launch.spec import spec_from_member_run
    from .launch.work import run_videos
    done = {}
    for run in exp.member_runs():
        spec = spec_from_member_run(run, device=exp.run["device"], codec=exp.run["codec"],
                                    objects_from=ds.objects_from, threads=exp.run["threads"] or None)
        store = folder.store(run.store_name)
        if LogitStore.check(store, ds.video_names, ds.frame_counts()).ok:
            echo(f"[infer] {run.store_name} complete, skipped")
            done[run.store_name] = LogitStore.open(store).manifest.get("checkpoint_sha256")
            continue
        if ran is not None:
            ran.append(run.store_name)
        echo(f"[infer] {run.store_name}")
        launcher = exp.run["launcher"]
        split = exp.data["split"] or None
        if launcher == "inline":
            run_videos(spec, exp.data["root"], split, ds.video_names, store, echo=echo)
        elif launcher == "local":
            from .launch.local import launch_local
            launch_local(spec, exp.data["root"], split, store, workers=exp.run["workers"]).raise_if_failed()
        else:
            from .launch.ray_launcher import launch_ray
            launch_ray(spec, exp.data["root"], split, store, address=exp.run["address"]).raise_if_failed()
        check = LogitStore.check(store, ds.video_names, ds.frame_counts())
        if not check.ok:
            raise MassegError(f"store {run.store_name} is incomplete after inference: {check.describe()}", store)
        done[run.store_name] = LogitStore.open(store).manifest.get("checkpoint_sha256")
    return done


def preflight(exp: Experiment, folder: RunFolder, ds: VOSDataset, fusion, stages=STAGES) -> None:
    """What the config file alone cannot show, checked before any inference, every problem at once (ConfigError):
    the sweep grid parses against this experiment's stores, and the weights of every member still to run are
    available (resolved, downloaded once, verified; a Ray cluster's workers fetch their own, so only the names
    are checked then)."""
    from data.store import LogitStore

    from .config import ConfigError
    from .registry import resolve_checkpoint

    problems = []
    if exp.sweep is not None:
        try:
            sweep_settings(exp, fusion)
        except MassegError as exc:
            problems.append(f"sweep: {exc}")
    if "infer" in stages and exp.run["launcher"] != "ray":
        seen = {}
        for i, m in enumerate(exp.members):
            todo = [r for r in m.runs() if not all(LogitStore.has_video(folder.store(r.store_name), v)
                                                    for v in ds.video_names)]
            if not todo or m.checkpoint in seen:
                continue
            try:
                resolve_checkpoint(m.checkpoint)
                seen[m.checkpoint] = None
            except MassegError as exc:
                seen[m.checkpoint] = str(exc)
                problems.append(f"member[{i}].checkpoint: {exc}")
    if problems:
        raise ConfigError(exp.path, problems)


def run_experiment(config_path: str | Path, echo: Callable[[str], None] = print,
                   stages: tuple[str, ...] = STAGES, overrides: dict | None = None) -> dict:
    """Run (or resume) an experiment; returns the summary dict."""
    exp = load_experiment(config_path, overrides=overrides, resolve_checkpoint=checkpoint_problem)
    for w in exp.warnings:
        echo(f"warning: {w}")
    folder = RunFolder(exp.out)
    check_writable(exp.out, "run folder")
    if exp.run["zip"]:
        check_writable(exp.run["zip"], "submission zip", is_dir=False)
    ds = VOSDataset(exp.data["root"], exp.data["split"] or None, objects_from=exp.data["objects_from"])
    fusion = fusion_config(exp, folder)  # checked before any work starts
    preflight(exp, folder, ds, fusion, stages)
    with folder.lock():
        summary = _run_locked(exp, folder, ds, fusion, config_path, echo, stages)
        folder.sweep_leftovers()
    return summary


def _run_locked(exp: Experiment, folder: RunFolder, ds: VOSDataset, fusion, config_path, echo, stages) -> dict:
    atomic_write_text(exp.out / "config.toml", Path(config_path).read_text())
    resolved = {"run": exp.run, "data": dict(exp.data, videos=ds.video_names),
                "members": [{"store": r.store_name, "model": r.member.model, "checkpoint": r.member.checkpoint,
                             "image_size": r.image_size, "flip": r.flip, "options": r.member.options}
                            for r in exp.member_runs()],
                "fusion": fusion.to_dict(relative_to=exp.out)}
    folder.write_json("resolved.json", resolved)
    folder.write_json("environment.json", _versions())
    timings = folder.read_json("timings.json", {})
    summary: dict = {"run": str(exp.out), "videos": len(ds.video_names)}

    def timed(stage, fn, keep_if=None):
        t0 = time.perf_counter()
        out = fn()
        if keep_if is None or keep_if():  # a stage that found everything done keeps the time it took then
            timings[stage] = round(time.perf_counter() - t0, 3)
            folder.write_json("timings.json", timings)
        return out

    if "infer" in stages:
        ran: list = []
        ckpts = timed("infer", lambda: _infer(exp, folder, ds, echo, ran), keep_if=lambda: bool(ran))
        folder.write_json("checkpoints.json", {
            "members": {r.store_name: {"checkpoint": r.member.checkpoint, "sha256": ckpts.get(r.store_name)}
                        for r in exp.member_runs()}})
    from ensemble.fuse import png_fingerprints
    from ensemble.pngs import recorded_fingerprints
    pngs = png_fingerprints(fusion, ds)   # PNG members' files can change after a fusion: part of its identity
    if exp.sweep is not None:
        if not has_full_ground_truth(ds):
            raise MassegError("[sweep] needs ground truth on every frame of the split", ds.ann_root,
                              "sweep on a split carved from train (`masseg split`), or remove [sweep]")
        sweep_fp = _fingerprint([fusion.to_dict(relative_to=exp.out), exp.sweep, exp.data["protocol"],
                                 ds.video_names] + ([pngs] if pngs else []))
        best = folder.root / "sweep" / "best.toml"
        if "sweep" in stages and not (folder.is_done("sweep", sweep_fp) and best.is_file()):
            best = timed("sweep", lambda: _sweep(exp, folder, ds, fusion, echo))
            folder.mark_done("sweep", sweep_fp)
        elif best.is_file():
            echo("[sweep] complete, skipped")
        if best.is_file():
            fusion = fusion_config(exp, folder, best)
            summary["sweep_best"] = str(best)
    fuse_fp = _fingerprint([fusion.to_dict(relative_to=exp.out), ds.video_names] + ([pngs] if pngs else []))
    if "fuse" in stages:
        if folder.is_done("fuse", fuse_fp):
            echo("[fuse] complete, skipped")
        else:
            from ensemble.config import load_config
            from ensemble.fuse import CONFIG_NAME, fuse
            echo("[fuse] " + ", ".join(f"{m.name}:{m.weight:g}" for m in fusion.members) + f" ({fusion.mode})")
            previous = exp.out / CONFIG_NAME
            # labels of another fusion (e.g. before a new sweep) are redone; a killed fusion of this one resumes
            changed = previous.is_file() and load_config(previous).to_dict() != fusion.to_dict()
            changed = changed or (bool(pngs) and any(recorded_fingerprints(exp.out).get(m, {}).get(v, d) != d
                                                     for m, vs in pngs.items() for v, d in vs.items()))
            timed("fuse", lambda: fuse(fusion, exp.out, dataset=ds, echo=echo, overwrite=changed))
            folder.mark_done("fuse", fuse_fp)
    zip_path = Path(exp.run["zip"]) if exp.run["zip"] else folder.zip
    palette = "dataset" if exp.data["palette_from_dataset"] else "davis"
    layout, frames_root = exp.run.get("layout", "root"), exp.data.get("frames_root") or None
    submit_fp = _fingerprint([fuse_fp, str(zip_path), palette] + ([layout, frames_root] if frames_root or
                                                                  layout != "root" else []))
    if "submit" in stages:
        if folder.is_done("submit", submit_fp) and zip_path.is_file():
            echo(f"[submit] {zip_path} complete, skipped")
        else:
            from submission.build import submit_dataset_labels
            from submission.writer import LABELS_SUBDIR
            frames_from = VOSDataset(frames_root, exp.data["split"] or None, objects_from="first_frame") \
                if frames_root else None
            timed("submit", lambda: submit_dataset_labels(exp.out / LABELS_SUBDIR, ds, zip_path, palette=palette,
                                                          layout=layout, frames_from=frames_from))
            folder.mark_done("submit", submit_fp)
            echo(f"[submit] {zip_path} ({zip_path.stat().st_size} bytes)")
        summary["zip"] = {"path": str(zip_path), "bytes": zip_path.stat().st_size,
                          "sha256": hashlib.sha256(zip_path.read_bytes()).hexdigest()}
    protocol = exp.data["protocol"]
    if "evaluate" in stages and protocol != "none":
        if has_full_ground_truth(ds):
            from submission.jf.evaluate import evaluate
            from submission.writer import LABELS_SUBDIR
            eval_dir = exp.out / "eval"
            eval_fp = _fingerprint([fuse_fp, protocol])
            if folder.is_done("evaluate", eval_fp):
                echo("[evaluate] complete, skipped")
            else:
                result = timed("evaluate", lambda: evaluate(ds.ann_root, exp.out / LABELS_SUBDIR,
                                                            videos=ds.video_names, protocol=protocol))
                result.write(eval_dir)
                folder.mark_done("evaluate", eval_fp)
            summary["jf"] = json.loads((eval_dir / "global.json").read_text())["scores"]
            summary["jf_table"] = (eval_dir / "global.md").read_text()
            summary["eval_dir"] = str(eval_dir)
        else:
            echo("[evaluate] skipped: the split has no ground truth on every frame")
    if "report" in stages and (exp.out / "labels").is_dir():
        # the report shows the fusion, its scores and the other stages' timings: unchanged inputs, same report
        report_fp = _fingerprint([fuse_fp, protocol, summary.get("sweep_best"),
                                  {k: v for k, v in timings.items() if k != "report"}])
        cached = folder.read_json("report.json", None)
        if folder.is_done("report", report_fp) and cached and Path(cached.get("report", "")).is_file():
            echo("[report] complete, skipped")
        else:
            from .report.runend import report_stage
            cached = timed("report", lambda: report_stage(exp.out, fusion, ds, protocol, has_full_ground_truth(ds),
                                                          echo))
            folder.write_json("report.json", cached)
            folder.mark_done("report", report_fp)
        summary.update(cached)
    summary["timings"] = timings
    folder.write_json("summary.json", summary)
    atomic_write_text(exp.out / "summary.md", _summary_md(summary))
    echo(_summary_md(summary))
    return summary


def _summary_md(summary: dict) -> str:
    lines = [f"# Run {summary['run']}", "", f"videos: {summary['videos']}"]
    if "zip" in summary:
        z = summary["zip"]
        lines.append(f"submission: `{z['path']}` ({z['bytes']} bytes, sha256 {z['sha256'][:16]}...)")
    if summary.get("report"):
        rel = os.path.relpath(summary["report"], summary["run"])
        lines.append(f"report: [{rel}]({rel}) (`masseg report {summary['run']}` writes it again)")
    if summary.get("jf_table"):
        lines += ["", "## J&F", "", summary["jf_table"].rstrip()]
    if summary.get("members_table"):
        lines += ["", "## Each member against the fusion (per video)", "", summary["members_table"].rstrip()]
    if summary.get("timings"):
        lines += ["", "| stage | seconds |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in summary["timings"].items()]
    return "\n".join(lines) + "\n"
