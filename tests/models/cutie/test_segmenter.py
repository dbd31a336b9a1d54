"""Cutie as an inference-stage member: the store holds exactly the runner's logits, and the ensemble's
single-member fusion of that store gives Cutie's own label maps."""
import numpy as np
import pytest
import torch

from data.dataset import VOSDataset
from data.errors import MassegError
from data.labels import read_labels
from data.store import LogitStore
from models.cutie import Prompts, preset
from models.cutie.runner import CutieRunner
from models.cutie.segmenter import CutieSegmenter
from models.stage import run_stage
from pipeline.cli import main
from pipeline.synthetic import make_synthetic_dataset


@pytest.fixture(scope="module")
def setup(tmp_path_factory, small_net):
    tmp = tmp_path_factory.mktemp("cutie_stage")
    ckpt = tmp / "cutie-small-test.pth"
    torch.save(small_net.state_dict(), ckpt)
    root = make_synthetic_dataset(tmp / "ds", n_videos=2, n_frames=4, hw=(72, 104), seed=3)
    return tmp, ckpt, VOSDataset(root, "val")


def _direct(small_net, video, hflip=False):
    f = (lambda a: np.ascontiguousarray(a[:, ::-1])) if hflip else (lambda a: a)
    masks = {t: f(m) for t, m in video.prompt_masks().items()}
    runner = CutieRunner(small_net, preset("mose"))
    return list(runner.iter_video((f(video.frame(i)) for i in range(len(video))),
                                  Prompts(masks, video.first_given)))


@pytest.mark.parametrize("hflip", [False, True])
def test_store_holds_the_runner_logits(setup, small_net, hflip):
    tmp, ckpt, ds = setup
    seg = CutieSegmenter(ckpt, size="small", preset="mose", hflip=hflip, device="cpu")
    store = LogitStore.create(tmp / f"store{int(hflip)}", seg.manifest(), codec="f32")
    run_stage(ds, ds.video_names, store, seg, progress=False, echo=lambda s: None)
    for name in ds.video_names:
        video = ds[name]
        reader = store.reader(name)
        assert reader.recipe["kind"] == "cutie_stride4" and reader.recipe["hflip"] is hflip
        assert reader.recipe["video_hw"] == [72, 104] and reader.recipe["padded_hw"] == [80, 112]
        for want in _direct(small_net, video, hflip):
            got = reader.read(want.index)
            assert got.obj_ids == want.obj_ids
            np.testing.assert_array_equal(got.logits, want.logits)  # NaN rows on the prompt frame too
    assert store.manifest["model"] == "cutie" and store.manifest["flip"] is hflip


def test_single_member_fusion_is_cuties_argmax(setup, small_net):
    from ensemble.config import config_from_stores
    from ensemble.fuse import fuse
    tmp, ckpt, ds = setup
    seg = CutieSegmenter(ckpt, size="small", device="cpu")
    store = LogitStore.create(tmp / "store_id", seg.manifest(), codec="f32")
    run_stage(ds, ds.video_names, store, seg, progress=False, echo=lambda s: None)
    fuse(config_from_stores([store.root]), tmp / "run_id", dataset=ds)
    for name in ds.video_names:
        for want in _direct(small_net, ds[name]):  # the prompt frame too: the given mask
            got = read_labels(tmp / "run_id" / "labels" / name / f"{ds[name].frame_names[want.index]}.png")
            np.testing.assert_array_equal(got, want.labels)


def test_infer_command_runs_cutie(setup, capsys):
    tmp, ckpt, ds = setup
    out = tmp / "cli_store"
    assert main(["infer", "--model", "cutie", "--size", "small", "--root", str(ds.root), "--split", "val",
                 "--out", str(out), "--checkpoint", str(ckpt), "--device", "cpu", "--no-progress"]) == 0
    assert LogitStore.open(out).videos() == ds.video_names
    assert main(["infer", "--model", "cutie", "--size", "base", "--root", str(ds.root), "--split", "val",
                 "--out", str(tmp / "bad"), "--checkpoint", str(ckpt), "--device", "cpu"]) == 2
    assert "does not fit cutie-base" in capsys.readouterr().err


def test_missing_checkpoint(tmp_path):
    with pytest.raises(MassegError, match="nope.pth"):
        CutieSegmenter(tmp_path / "nope.pth")
