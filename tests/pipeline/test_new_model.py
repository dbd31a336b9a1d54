"""Test of the registry's design: a new model is one declaration; it then appears in `masseg infer --help` and
`masseg launch-infer --help`, in the experiment config schema (with its own validation), and runs end to end
(infer -> store -> fuse -> submission zip -> J&F, and through the local launcher's worker processes).

The model, "echo", repeats each object's given mask on every later frame as +-margin logits on a SxS grid (the
``sam2_bilinear`` recipe maps them back to video size): simple enough to know what the fusion must write.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data.hashing import file_sha256
from data.labels import read_labels, write_labels
from data.recipes import Sam2Bilinear
from models import registry
from models.registry import BuildRequest, ImageSize, ModelFamily, Option
from models.stage import FrameOutput
from pipeline.cli import main
from tests.conftest import REPO


class Echo:
    name = "echo"

    def __init__(self, req: BuildRequest):
        self.req, self.size, self.margin = req, req.image_size, req.options["margin"]

    def manifest(self):
        return {"model": "echo", "checkpoint_sha256": file_sha256(self.req.checkpoint), "scale": self.size,
                "settings": {"margin": self.margin}, "flip": self.req.flip}

    def recipe(self, video):
        return Sam2Bilinear(video_hw=tuple(video.size), hflip=self.req.flip)

    def video_meta(self, video):
        return {"obj_ids": video.object_ids}

    def run_video(self, video):
        masks, first = video.prompt_masks(), video.first_given
        grid = {t: np.asarray(Image.fromarray(m).resize((self.size, self.size), Image.NEAREST)) for t, m in masks.items()}
        for t in range(len(video)):
            ids = sorted(o for o, f in first.items() if f <= t)
            logits = np.stack([np.where(grid[first[o]] == o, self.margin, -self.margin) for o in ids]
                              ).astype(np.float32) if ids else np.zeros((0, self.size, self.size), np.float32)
            yield FrameOutput(t, video.frame_names[t], ids, logits)


# the whole declaration of a new model
FAMILY = ModelFamily(
    name="echo", help="repeats the given masks", checkpoint_family="echo", recipe_kind="sam2_bilinear",
    image_size=ImageSize(32, "echo: logit grid size (multiple of 8)", lambda s: None if s > 0 and s % 8 == 0
                         else f"grid size must be a positive multiple of 8, got {s}"),
    options=(Option("margin", float, default=4.0, help="echo: logit magnitude",
                    check=lambda v: None if v > 0 else "must be > 0"),),
    build=Echo)


@pytest.fixture
def echo():
    registry.register(FAMILY, replace=True)
    yield FAMILY
    registry.unregister("echo")


@pytest.fixture
def material(tmp_path):
    """A DAVIS-layout root (two videos, GT on every frame, the object still) and a weight file."""
    root = tmp_path / "ds"
    for video, box in (("a", (4, 12, 6, 22)), ("b", (10, 20, 2, 14))):
        (root / "JPEGImages" / video).mkdir(parents=True)
        labels = np.zeros((24, 32), np.uint8)
        labels[box[0]:box[1], box[2]:box[3]] = 1
        for i in range(4):
            Image.new("RGB", (32, 24), (90, 100, 110)).save(root / "JPEGImages" / video / f"{i:05d}.jpg")
            write_labels(root / "Annotations" / video / f"{i:05d}.png", labels)
    ckpt = tmp_path / "echo.bin"
    ckpt.write_bytes(b"echo weights")
    return root, ckpt


def test_appears_in_both_commands_help(echo, capsys):
    for command in ("infer", "launch-infer"):
        assert main([command, "--help"]) == 0
        out = " ".join(capsys.readouterr().out.split())   # help text is wrapped
        assert "echo" in out and "--margin" in out and "[echo] echo: logit magnitude [default: 4.0]" in out
        assert "echo: logit grid size (multiple of 8)" in out
    registry.unregister("echo")
    assert main(["infer", "--help"]) == 0
    assert "--margin" not in capsys.readouterr().out


def test_config_schema_comes_from_the_declaration(echo, material, tmp_path):
    from pipeline.config import ConfigError, load_experiment

    root, ckpt = material
    cfg = tmp_path / "c.toml"
    head = f'[run]\nout = "{tmp_path / "run"}"\n[data]\nroot = "{root}"\n[[member]]\nname = "e"\nmodel = "echo"\n' \
           f'checkpoint = "{ckpt}"\n'
    cfg.write_text(head + 'margin = -1.0\nimage_size = [16, 20]\nvariant = "sam2.1_hiera_t"\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(cfg)
    assert err.value.problems == ["member[0].variant: not an option of model echo (its options: margin)",
                                  "member[0].margin: must be > 0",
                                  "member[0].image_size: echo grid size must be a positive multiple of 8, got 20"]
    cfg.write_text(head + "margin = 6\nimage_size = [16, 24]\n")
    exp = load_experiment(cfg)
    assert [r.store_name for r in exp.member_runs()] == ["e-s16", "e-s24"]
    assert exp.members[0].options == {"margin": 6.0}


def test_runs_end_to_end(echo, material, tmp_path, capsys):
    """infer -> store -> fuse, then a whole `masseg run` of a config with the new model."""
    root, ckpt = material
    store, run = tmp_path / "store", tmp_path / "fused"
    assert main(["infer", "--model", "echo", "--root", str(root), "--out", str(store), "--checkpoint", str(ckpt),
                 "--margin", "5", "--image-size", "16", "--no-progress"]) == 0
    assert main(["infer", "--model", "echo", "--root", str(root), "--out", str(store), "--checkpoint", str(ckpt),
                 "--preset", "mose"]) == 2
    assert "--preset does not apply to --model echo (fix: its options: --margin)" in capsys.readouterr().err
    assert main(["fuse", "--member", str(store), "--out", str(run), "--root", str(root)]) == 0
    for video in ("a", "b"):
        gt = read_labels(root / "Annotations" / video / "00000.png")
        for i in range(4):
            got = read_labels(run / "labels" / video / f"{i:05d}.png")
            assert (got == gt).mean() > 0.9, (video, i)

    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[run]\nout = "{tmp_path / "run"}"\ndevice = "cpu"\n[data]\nroot = "{root}"\n'
                   f'[[member]]\nname = "e"\nmodel = "echo"\ncheckpoint = "{ckpt}"\nimage_size = [16, 32]\n')
    assert main(["run", str(cfg)]) == 0
    out = tmp_path / "run"
    assert sorted(p.name for p in (out / "stores").iterdir()) == ["e-s16", "e-s32"]
    assert (out / "submission.zip").is_file() and (out / "eval" / "global.json").is_file()


def test_launcher_workers_see_a_model_named_in_the_environment(echo, material, tmp_path, monkeypatch, capsys):
    """Worker processes load the registry afresh: $MASSEG_MODELS names the module that declares the model."""
    root, ckpt = material
    monkeypatch.setenv("MASSEG_MODELS", "tests.pipeline.test_new_model")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.chdir(REPO)
    store = tmp_path / "store"
    assert main(["launch-infer", "--model", "echo", "--root", str(root), "--out", str(store), "--checkpoint",
                 str(ckpt), "--workers", "2", "--gpus", "", "--device", "cpu"]) == 0
    from data.store import LogitStore
    assert LogitStore.check(store, ["a", "b"], {"a": 4, "b": 4}).ok
    assert LogitStore.open(store).manifest["model"] == "echo"
