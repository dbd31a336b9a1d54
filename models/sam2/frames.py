"""Lazy frame source for the SAM2 video predictor.

The package's ``init_state`` decodes, resizes and normalises every frame of a video up front (float32 SxS, 12 MiB
per frame at S=1024), so memory grows with video length. The predictor only ever asks ``state["images"]`` for
``len()`` and ``[i]``, so this sequence decodes one frame when asked, with the package's exact arithmetic
(PIL resize of the RGB frame, ``/ 255.0`` in float64, cast to float32, ``-= mean``, ``/= std``): the logits are
bit-identical to the preloading path (tests/models/sam2/test_frames.py).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from data.dataset import Video

# The package's defaults (sam2.utils.misc.load_video_frames): ImageNet statistics.
IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)


class LazyFrames:
    """``frames[i]`` -> normalised float32 (3, S, S) CPU tensor of video frame ``i`` (horizontally flipped when
    ``hflip``), decoded on demand and never cached: the predictor keeps the features it needs itself."""

    def __init__(self, video: Video, image_size: int, hflip: bool = False,
                 mean=IMG_MEAN, std=IMG_STD):
        self.video = video
        self.image_size = int(image_size)
        self.hflip = bool(hflip)
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.height, self.width = video.size

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, index: int) -> torch.Tensor:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        rgb = self.video.frame(index % len(self))  # DatasetError naming the file if unreadable
        if self.hflip:
            rgb = np.ascontiguousarray(rgb[:, ::-1])
        resized = np.asarray(Image.fromarray(rgb).resize((self.image_size, self.image_size)))
        img = torch.from_numpy(resized / 255.0).permute(2, 0, 1).to(torch.float32)
        img -= self.mean
        img /= self.std
        return img
