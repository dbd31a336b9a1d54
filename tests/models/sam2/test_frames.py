"""The lazy frame source gives the package loader's tensors bit for bit, and names the file of a bad frame."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from data.dataset import VOSDataset
from data.errors import DatasetError
from models.sam2.frames import LazyFrames

from tests.helpers.golden import frames_range, link_video


@pytest.fixture(scope="module")
def libby_root(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("frames_root")
    link_video(root, "libby", clips / "davis2016", frames_range(3), ["00000"])
    return root


@pytest.mark.parametrize("size", [512, 256])
def test_lazy_frames_equal_package_loader(libby_root, size):
    from sam2.utils.misc import load_video_frames_from_jpg_images

    images, h, w = load_video_frames_from_jpg_images(str(libby_root / "JPEGImages" / "libby"), size,
                                                     offload_video_to_cpu=True, compute_device=torch.device("cpu"))
    lazy = LazyFrames(VOSDataset(libby_root)["libby"], size)
    assert len(lazy) == len(images) == 3 and (lazy.height, lazy.width) == (h, w)
    for i in range(3):
        x = lazy[i]
        assert x.dtype == torch.float32 and x.shape == (3, size, size)
        assert x.numpy().tobytes() == images[i].numpy().tobytes()


def test_flipped_frames_equal_package_loader_on_mirrored_files(libby_root, tmp_path):
    """hflip = the package loader reading mirrored frames (written losslessly as PNG bytes under .jpg names,
    which PIL opens by content)."""
    from sam2.utils.misc import load_video_frames_from_jpg_images

    video = VOSDataset(libby_root)["libby"]
    mirrored = tmp_path / "mirrored"
    mirrored.mkdir()
    for i in range(len(video)):
        Image.fromarray(np.ascontiguousarray(video.frame(i)[:, ::-1])).save(mirrored / f"{i:05d}.jpg", format="PNG")
    images, _, _ = load_video_frames_from_jpg_images(str(mirrored), 512, offload_video_to_cpu=True,
                                                     compute_device=torch.device("cpu"))
    lazy = LazyFrames(video, 512, hflip=True)
    for i in range(len(video)):
        assert lazy[i].numpy().tobytes() == images[i].numpy().tobytes()
    assert lazy[0].numpy().tobytes() != LazyFrames(video, 512)[0].numpy().tobytes()


def test_unreadable_frame_names_the_file(libby_root, tmp_path):
    root = tmp_path / "root"
    link_video(root, "libby", libby_root, ["00000", "00001"], ["00000"])
    bad = root / "JPEGImages" / "libby" / "00002.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    lazy = LazyFrames(VOSDataset(root)["libby"], 256)
    lazy[1]
    with pytest.raises(DatasetError, match="00002.jpg"):
        lazy[2]
    with pytest.raises(IndexError):
        lazy[3]
