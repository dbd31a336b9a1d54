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
    assert "member[1].model: unknown model 'xmem' (known models: cutie, sam2)" in text
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
    names = sorted(p.name for p in (REPO / "configs").glob("*.toml"))
    assert {"mose_masseg.toml", "mose_fast.toml", "mose_val_sweep.toml", "demo.toml"} <= set(names)
    for name in names:
        exp = load_experiment(REPO / "configs" / name, check_files=False)
        assert exp.member_runs()
    masseg = load_experiment(REPO / "configs" / "mose_masseg.toml", check_files=False)
    assert [r.store_name for r in masseg.member_runs()] == ["sam2l-s1024", "sam2l-s1280", "cutie_b-s480"]
    assert masseg.members[0].options["mem_scale"] == 15.0
