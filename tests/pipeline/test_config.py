import pytest

from pipeline.config import ConfigError, load_experiment

GOOD = """
[run]
out = "{out}"
[data]
root = "{root}"
protocol = "davis"
[[member]]
name = "sam2t"
model = "sam2"
variant = "sam2.1_hiera_t"
checkpoint = "sam2.1_hiera_tiny"
scales = [512, 768]
flip = true
mem_scale = 15
mem_bias = -7.0
[[member]]
name = "cutie"
model = "cutie"
size = "small"
checkpoint = "cutie-small-mega"
[fusion]
mode = "soft"
[fusion.members.sam2t]
weight = 0.7
bias = 1.0
"""


def test_good_config_expands_members(tmp_path):
    (tmp_path / "cfg.toml").write_text(GOOD.format(out=tmp_path / "run", root=tmp_path))
    exp = load_experiment(tmp_path / "cfg.toml")
    assert [r.store_name for r in exp.member_runs()] == [
        "sam2t-s512", "sam2t-s512-flip", "sam2t-s768", "sam2t-s768-flip", "cutie-s480"]
    assert exp.members[0].options == {"variant": "sam2.1_hiera_t", "mem_scale": 15.0, "mem_bias": -7.0,
                                      "vos_optimized": False}
    assert exp.members[1].options == {"size": "small", "preset": "mose"}
    assert exp.fusion["members"]["sam2t"] == {"weight": 0.7, "scale": 1.0, "bias": 1.0}
    assert exp.run["launcher"] == "inline" and exp.data["objects_from"] == "auto"


def test_all_problems_reported_at_once(tmp_path):
    bad = GOOD.format(out=tmp_path / "run", root=tmp_path / "missing")
    bad = bad.replace('protocol = "davis"', 'protocol = "jandf"\ncolour = 1')
    bad = bad.replace("scales = [512, 768]", "scales = [500]").replace("flip = true", 'flip = "yes"')
    bad = bad.replace('size = "small"', 'size = "huge"').replace("weight = 0.7", "weight = -1")
    bad += '\n[fusion.members.nobody]\nweight = 1\n[extra]\nx = 1\n'
    (tmp_path / "cfg.toml").write_text(bad)
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "cfg.toml", resolve_checkpoint=lambda c: "unknown checkpoint" if "cutie" in c else None)
    text = str(err.value)
    for expected in ("data.protocol", "data.colour: unknown key", "data.root: folder", "member[0].scales",
                     "member[0].flip: expected true/false", "member[1].size", "fusion.members.sam2t.weight",
                     "fusion.members.nobody: no member", "extra: unknown section", "member[1].checkpoint: unknown",
                     "cfg.toml"):
        assert expected in text, expected
    assert len(err.value.problems) == 10


def test_missing_required_and_duplicates(tmp_path):
    (tmp_path / "c.toml").write_text('[data]\nroot = "."\n[[member]]\nname = "a"\nmodel = "sam2"\n'
                                     'checkpoint = "x"\n[[member]]\nname = "a"\nmodel = "xmem"\n')
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "c.toml")
    text = str(err.value)
    assert "run.out: missing" in text and "member[1].name: 'a' used twice" in text
    assert "member[1].model: unknown model 'xmem' (known models: cutie, sam2, sam2long)" in text
    assert "member[1].checkpoint: missing" in text
    # a checkpoint outside the registry names no SAM2 config: the variant must be given
    assert "member[0].variant: not set" in text


def test_invalid_toml_and_missing_file(tmp_path):
    (tmp_path / "c.toml").write_text("[run\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_experiment(tmp_path / "c.toml")
    with pytest.raises(Exception, match="config not found"):
        load_experiment(tmp_path / "nope.toml")


def test_cutie_presets_match_the_model():
    """The registry declaration lists the presets (and their input sizes) without importing the model."""
    from models.cutie import PRESETS
    from models.members.cutie import PRESET_SIZES
    assert sorted(PRESET_SIZES) == sorted(PRESETS)
    assert PRESET_SIZES == {k: max(p.resize_shorter_side, 0) for k, p in PRESETS.items()}


def test_shipped_configs_parse():
    from pathlib import Path
    from tests.conftest import REPO
    import tomllib
    # experiment configs (configs/ also ships other commands' configs: masseg data moseplus, masseg train)
    names = sorted(p.name for p in (REPO / "configs").glob("*.toml") if "member" in tomllib.loads(p.read_text()))
    assert {"mose_masseg.toml", "mose_fast.toml", "mose_val_sweep.toml", "demo.toml"} <= set(names)
    for name in names:
        exp = load_experiment(REPO / "configs" / name, check_files=False)
        assert exp.member_runs()
    masseg = load_experiment(REPO / "configs" / "mose_masseg.toml", check_files=False)
    assert [r.store_name for r in masseg.member_runs()] == ["sam2l-s1024", "sam2l-s1280", "cutie_b-s480"]
    assert masseg.members[0].options["mem_scale"] == 15.0


# ---- every problem before any inference (`masseg run`) ------------------------------------------------------
def _tiny_root(root):
    import numpy as np
    from PIL import Image
    from data.labels import write_labels

    for video in ("a", "b"):
        (root / "JPEGImages" / video).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 24), (100, 120, 140)).save(root / "JPEGImages" / video / f"{i:05d}.jpg")
            labels = np.zeros((24, 32), np.uint8)
            labels[4:12, 4:20] = 1
            write_labels(root / "Annotations" / video / f"{i:05d}.png", labels)
    return root


MEMBERS = """
[run]
out = "{out}"
device = "cpu"
[data]
root = "{root}"
[[member]]
name = "first"
model = "cutie"
checkpoint = "{ckpt}"
[[member]]
name = "second"
model = "sam2"
variant = "sam2.1_hiera_xl"
checkpoint = "{ckpt}"
image_size = [1024, 1040]
vos_optimized = true
[[member]]
name = "third"
model = "cutie"
checkpoint = "cutie-small-mega"
preset = "fastest"
size = "base"
[[member]]
name = "fourth"
model = "xmem"
checkpoint = "{ckpt}"
"""


def test_member_problems_of_every_model_are_reported_before_any_inference(tmp_path, capsys):
    """Per-model validation comes from the registry: the second member's unknown SAM2 variant used to surface
    only after the first member had run."""
    from pipeline.cli import main

    ckpt = tmp_path / "weights.pth"
    ckpt.write_bytes(b"not loaded: the config fails first")
    cfg = tmp_path / "exp.toml"
    cfg.write_text(MEMBERS.format(out=tmp_path / "run", root=_tiny_root(tmp_path / "ds"), ckpt=ckpt))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    for expected in ("member[1].variant: unknown SAM2 variant 'sam2.1_hiera_xl'",
                     "member[1].image_size: sam2 input size must be a positive multiple of 32 (e.g. 512, 768, "
                     "1024, 1280), got 1040",
                     "member[2].preset: 'fastest' is not one of",
                     "member[3].model: unknown model 'xmem' (known models: cutie, sam2, sam2long)",
                     "4 problems"):
        assert expected in err, (expected, err)
    assert not (tmp_path / "run").exists()       # nothing ran, nothing was written


def test_consistency_with_checkpoint_and_device_and_the_old_size_key(tmp_path):
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    text = (f'[run]\nout = "{tmp_path / "run"}"\ndevice = "cpu"\n[data]\nroot = "{tmp_path}"\n'
            '[[member]]\nname = "s"\nmodel = "sam2"\ncheckpoint = "sam2.1_hiera_tiny"\nvariant = "sam2.1_hiera_l"\n'
            '[[member]]\nname = "v"\nmodel = "sam2"\ncheckpoint = "sam2.1_hiera_tiny"\nvos_optimized = true\n'
            '[[member]]\nname = "c"\nmodel = "cutie"\ncheckpoint = "sam2.1_hiera_small"\n'
            f'[[member]]\nname = "old"\nmodel = "sam2"\ncheckpoint = "{ckpt}"\nvariant = "sam2.1_hiera_t"\n'
            'scales = [512]\nimage_size = 512\n')
    (tmp_path / "c.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment(tmp_path / "c.toml")
    problems = "\n".join(err.value.problems)
    assert "member[0].variant: sam2.1_hiera_l does not fit checkpoint sam2.1_hiera_tiny" in problems
    assert "member[1].vos_optimized: the compiled VOS predictor needs CUDA" in problems
    assert "member[2].checkpoint: sam2.1_hiera_small is a sam2 checkpoint; model cutie takes cutie" in problems
    assert "member[3].scales: old name of image_size; give only image_size" in problems
    assert len(err.value.problems) == 4
    # the old key alone still works (with a warning); a single size may be given as an integer
    (tmp_path / "c.toml").write_text(text.split("[[member]]")[0] + "[[member]]" + text.split("[[member]]")[4]
                                     .replace("image_size = 512\n", "") + '[[member]]\nname = "one"\nmodel = '
                                     '"cutie"\ncheckpoint = "cutie-small-mega"\nimage_size = 600\npreset = "mose_plus"\n'
                                     '[[member]]\nname = "plus"\nmodel = "cutie"\ncheckpoint = "cutie-base-mega"\n'
                                     'preset = "mose_plus"\n')
    exp = load_experiment(tmp_path / "c.toml", check_files=False)
    assert [r.store_name for r in exp.member_runs()] == ["old-s512", "one-s600", "plus-s720"]
    assert exp.warnings == ["member[0].scales: renamed image_size (one name for the input size everywhere); "
                            "`scales` is still read"]
    assert exp.members[1].options == {"size": "small", "preset": "mose_plus"}   # size from the checkpoint entry


def test_a_bad_sweep_grid_is_a_config_problem_before_any_inference(tmp_path, capsys):
    from pipeline.cli import main

    ckpt = tmp_path / "weights.pth"
    ckpt.write_bytes(b"x")
    cfg = tmp_path / "exp.toml"
    cfg.write_text(f'[run]\nout = "{tmp_path / "run"}"\ndevice = "cpu"\n[data]\nroot = "{_tiny_root(tmp_path / "ds")}"\n'
                   f'[[member]]\nname = "c"\nmodel = "cutie"\ncheckpoint = "{ckpt}"\nimage_size = [480, 600]\n'
                   '[sweep]\nweights = ["1,2,3"]\n')
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "sweep: " in err and "1 problem in the config" in err, err
    assert not (tmp_path / "run" / "stores").exists()
