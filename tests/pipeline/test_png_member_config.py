"""An experiment config's PNG member (`[fusion.members.<name>] png = ...`): checked with the rest of the config
before any work, and fused by `masseg run` next to the models' stores (no inference for it)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from data.labels import DAVIS_PALETTE, read_labels, write_labels
from pipeline.config import ConfigError, load_experiment
from pipeline.run import run_experiment
from tests.ensemble.helpers import sam2_recipe, write_store

H, W, T = 16, 24, 4

CONFIG = """
[run]
out = "{out}"
device = "cpu"
[data]
root = "{root}"
protocol = "none"
[[member]]
name = "sam2t"
model = "sam2"
variant = "sam2.1_hiera_t"
checkpoint = "{ckpt}"
image_size = [128]
[fusion]
mode = "majority"
[fusion.members.sam2t]
weight = 1.0
[fusion.members.xmem]
{png_table}
"""


def _material(tmp_path):
    rng = np.random.default_rng(0)
    gt = [rng.integers(0, 3, (H, W)).astype(np.uint8) for _ in range(T)]
    gt[0][:2, :2] = 1   # both objects on the first frame
    gt[0][-2:, -2:] = 2
    root = tmp_path / "data"
    for t in range(T):
        p = root / "JPEGImages" / "v" / f"{t:05d}.jpg"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H), (100, 100, 100)).save(p)
    write_labels(root / "Annotations" / "v" / "00000.png", gt[0], DAVIS_PALETTE)
    xmem = tmp_path / "xmem"
    for t in range(T):
        write_labels(xmem / "v" / f"{t:05d}.png", gt[t], DAVIS_PALETTE)
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"not loaded: only the fuse stage runs")
    return root, xmem, ckpt, gt


def _config(tmp_path, png_table, material):
    root, xmem, ckpt, _ = material
    path = tmp_path / "exp.toml"
    path.write_text(CONFIG.format(out=tmp_path / "run", root=root, ckpt=ckpt,
                                  png_table=png_table.format(xmem=xmem)))
    return path


def test_run_fuses_a_png_member_next_to_a_store(tmp_path):
    material = _material(tmp_path)
    root, xmem, ckpt, gt = material
    cfg = _config(tmp_path, 'png = "{xmem}"\nweight = 2.0\nconfidence = 0.9', material)
    # the model member's store, as its inference stage would have left it: everything background
    frames = {f"{t:05d}": ([1, 2], np.full((2, 8, 8), -5.0, np.float32)) for t in range(T)}
    write_store(tmp_path / "run" / "stores" / "sam2t-s128", "sam2",
                {"v": {"frame_names": list(frames), "video_hw": [H, W], "recipe": sam2_recipe([H, W]),
                       "frames": frames}})
    exp = load_experiment(cfg)
    assert exp.fusion["members"]["xmem"]["confidence"] == 0.9
    run_experiment(cfg, echo=lambda s: None, stages=("fuse",))
    # majority: the PNG member (weight 2) outvotes the store (weight 1) everywhere
    for t in range(T):
        assert np.array_equal(read_labels(tmp_path / "run" / "labels" / "v" / f"{t:05d}.png"), gt[t])
    # a rerun skips the finished fusion; once the tool's PNGs change, the fusion is redone from them
    said = []
    run_experiment(cfg, echo=said.append, stages=("fuse",))
    assert "[fuse] complete, skipped" in said
    new = np.zeros((H, W), np.uint8)
    new[3:9, 4:12] = 2
    write_labels(xmem / "v" / "00002.png", new, DAVIS_PALETTE)
    said.clear()
    run_experiment(cfg, echo=said.append, stages=("fuse",))
    assert "[fuse] complete, skipped" not in said
    assert np.array_equal(read_labels(tmp_path / "run" / "labels" / "v" / "00002.png"), new)
    import tomllib
    fused = tomllib.loads((tmp_path / "run" / "fusion.toml").read_text())
    png = [m for m in fused["members"] if m["name"] == "xmem"][0]
    assert png["confidence"] == 0.9 and png["weight"] == 2.0 and png["png"].endswith("xmem")


@pytest.mark.parametrize("table,needle", [
    ('png = "nowhere"', "fusion.members.xmem.png: folder 'nowhere' not found"),
    ('png = "{xmem}"\nconfidence = 0.3', "fusion.members.xmem.confidence: confidence must be in (0.5, 1]"),
    ('png = "{xmem}"\nscale = 2.0', "fusion.members.xmem.scale: unknown key"),
    ('weight = 1.0', "fusion.members.xmem: no member of that name"),
])
def test_png_member_config_problems_are_found_up_front(tmp_path, table, needle):
    cfg = _config(tmp_path, table, _material(tmp_path))
    with pytest.raises(ConfigError) as exc:
        load_experiment(cfg)
    assert needle in str(exc.value)


def test_png_member_may_not_reuse_a_model_name(tmp_path):
    material = _material(tmp_path)
    cfg = _config(tmp_path, 'png = "{xmem}"', material)
    cfg.write_text(cfg.read_text().replace("[fusion.members.sam2t]\nweight = 1.0\n", "")
                   .replace("[fusion.members.xmem]", "[fusion.members.sam2t]"))
    with pytest.raises(ConfigError, match="is a \\[\\[member\\]\\] \\(a model\\)"):
        load_experiment(cfg)


def test_a_sweep_result_keeps_the_png_member_a_png_member(tmp_path):
    """[fusion] best (a sweep's best.toml) is matched by name; the PNG member stays a PNG member, with the
    sweep's weight and its confidence."""
    from ensemble.config import FusionConfig
    from pipeline.run import RunFolder, fusion_config
    material = _material(tmp_path)
    cfg = _config(tmp_path, 'png = "{xmem}"\nconfidence = 0.7', material)
    exp = load_experiment(cfg)
    folder = RunFolder(tmp_path / "run")
    base = fusion_config(exp, folder)
    assert [m.kind for m in base.members] == ["store", "png"]
    best = tmp_path / "best.toml"
    base.with_settings(mode="soft", weights={"sam2t-s128": 0.25, "xmem": 0.75}).save(best)
    tuned = fusion_config(exp, folder, best)
    png = tuned.member("xmem")
    assert png.is_png and png.confidence == 0.7 and png.weight == 0.75 and tuned.mode == "soft"
    assert png.store.resolve() == material[1].resolve()
    # a best.toml in which that name is a store is refused
    FusionConfig.from_dict({"members": [{"store": str(tmp_path / "a"), "name": "sam2t-s128"},
                                        {"store": str(tmp_path / "b"), "name": "xmem"}]}).save(best)
    from data.errors import MassegError
    with pytest.raises(MassegError, match="not of the kind"):
        fusion_config(exp, folder, best)
