"""MASSeg augmentation as the official trainer's transforms.

The official MOSE fine-tune YAML (``sam2.1_hiera_b+_MOSE_finetune.yaml``) already applies, in this order: a
horizontal flip and a random affine shared by all frames of a sample, the square resize to the input size, a
colour jitter shared by all frames, a grayscale shared by all frames, a colour jitter drawn per frame, then
tensor conversion and normalisation. MASSeg adds frame-inconsistent grayscale (single frames lose their colour,
so the memory cannot lean on colour alone) and a zoom range (multi-scale: the affine's scale, the same for every
frame of a sample). :func:`transforms_config` writes that list as hydra ``_target_`` dicts of the official
``training.dataset.transforms`` classes, so the trainer instantiates exactly what it would from the YAML; the
only class of ours is :class:`RandomAffineP`, used when the affine should apply to a share of samples only
(the official one always applies, and is used whenever ``affine_p`` is 1).
"""
from __future__ import annotations

import random
from typing import Sequence

import numpy as np

from data.errors import MassegError

T = "training.dataset.transforms."

# MASSeg augmentation settings. Official values where the official YAML has the transform; p = probability.
DEFAULTS: dict = {
    "hflip_p": 0.5,              # horizontal flip, whole sample
    "affine_p": 1.0,             # share of samples given the random affine (1: always, as the official YAML)
    "degrees": 25.0,             # rotation range +-degrees
    "shear": 20.0,               # shear range +-shear
    "scale": [0.8, 1.2],         # multi-scale zoom range, the same for all frames ([] : no zoom, official)
    "global_brightness": 0.1,    # colour jitter shared by all frames
    "global_contrast": 0.03,
    "global_saturation": 0.03,
    "global_gray_p": 0.05,       # grayscale of the whole sample
    "frame_brightness": 0.1,     # colour jitter drawn for each frame
    "frame_contrast": 0.05,
    "frame_saturation": 0.05,
    "frame_gray_p": 0.05,        # grayscale of single frames (MASSeg)
}
# the settings under which transforms_config gives exactly the official YAML's list (no MASSeg additions)
OFFICIAL = {"scale": [], "frame_gray_p": 0.0}
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class AugmentError(MassegError):
    """An augmentation setting is unknown or out of range."""


def _scalar(v, key):
    # scalars only: hydra hands lists over as ListConfig, which the official transforms would not treat as ranges
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
        raise AugmentError(f"augmentation setting {key} must be a number >= 0")
    return float(v)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check(aug: dict | None) -> dict:
    """DEFAULTS overlaid with ``aug``, every value checked (unknown keys are errors)."""
    out = dict(DEFAULTS)
    for k, v in (aug or {}).items():
        if k not in DEFAULTS:
            raise AugmentError(f"unknown augmentation setting {k!r} (known: {', '.join(DEFAULTS)})")
        if k.endswith("_p"):
            if not _num(v) or not 0 <= v <= 1:
                raise AugmentError(f"augmentation setting {k} must be a probability in [0, 1]")
            out[k] = float(v)
        elif k == "scale":
            if v in ([], None):
                out[k] = []
            elif (isinstance(v, (list, tuple)) and len(v) == 2 and all(_num(x) for x in v)
                  and 0 < v[0] <= v[1]):
                out[k] = [float(v[0]), float(v[1])]
            else:
                raise AugmentError("augmentation setting scale must be [low, high] with 0 < low <= high, or []")
        else:
            out[k] = _scalar(v, k)
    return out


def transforms_config(aug: dict | None, image_size: int) -> list[dict]:
    """Hydra ``_target_`` dicts of the train transforms, in the official YAML's order (MASSeg's additions in place).

    ``transforms_config(OFFICIAL, size)`` is the official MOSE fine-tune list itself (entry for entry)."""
    a = check(aug)
    if not isinstance(image_size, int) or image_size <= 0:
        raise AugmentError("image_size must be a positive integer")
    out: list[dict] = [{"_target_": T + "RandomHorizontalFlip", "consistent_transform": True, "p": a["hflip_p"]}]
    if a["affine_p"] > 0:
        affine = {"_target_": T + "RandomAffine", "degrees": a["degrees"], "shear": a["shear"],
                  "image_interpolation": "bilinear", "consistent_transform": True}
        if a["scale"]:
            affine["scale"] = list(a["scale"])
        if a["affine_p"] < 1:
            affine.update({"_target_": f"{__name__}.RandomAffineP", "p": a["affine_p"]})
        out.append(affine)
    out += [
        {"_target_": T + "RandomResizeAPI", "sizes": image_size, "square": True, "consistent_transform": True},
        {"_target_": T + "ColorJitter", "consistent_transform": True, "brightness": a["global_brightness"],
         "contrast": a["global_contrast"], "saturation": a["global_saturation"], "hue": None},
        {"_target_": T + "RandomGrayscale", "p": a["global_gray_p"], "consistent_transform": True},
        {"_target_": T + "ColorJitter", "consistent_transform": False, "brightness": a["frame_brightness"],
         "contrast": a["frame_contrast"], "saturation": a["frame_saturation"], "hue": None},
    ]
    if a["frame_gray_p"] > 0:  # MASSeg's; left out at 0 so that OFFICIAL draws the official random numbers
        out.append({"_target_": T + "RandomGrayscale", "p": a["frame_gray_p"], "consistent_transform": False})
    out += [
        {"_target_": T + "ToTensorAPI"},
        {"_target_": T + "NormalizeAPI", "mean": list(MEAN), "std": list(STD)},
    ]
    return out


def train_transforms_config(aug: dict | None, image_size: int) -> list[dict]:
    """The YAML's ``vos.train_transforms`` value: one ComposeAPI over :func:`transforms_config`."""
    return [{"_target_": T + "ComposeAPI", "transforms": transforms_config(aug, image_size)}]


def build_transforms(aug: dict | None, image_size: int, tensors: bool = True):
    """Instantiate the transforms (hydra, as the trainer does) into one ComposeAPI.

    ``tensors=False`` stops before ToTensor/Normalize: PIL frames come out (for previews and tests).
    """
    from hydra.utils import instantiate

    cfg = transforms_config(aug, image_size)
    if not tensors:
        cfg = cfg[:-2]
    return instantiate({"_target_": T + "ComposeAPI", "transforms": cfg})


def _affine_base():
    from training.dataset.transforms import RandomAffine
    return RandomAffine


class RandomAffineP:
    """The official RandomAffine, applied to a share ``p`` of the samples (same parameters for all frames)."""

    def __init__(self, p: float, **kwargs):
        self.p = p
        self.affine = _affine_base()(**kwargs)

    def __call__(self, datapoint, **kwargs):
        if random.random() >= self.p:
            return datapoint
        return self.affine(datapoint, **kwargs)


def make_datapoint(frames: Sequence, labels: Sequence[np.ndarray]):
    """A training VideoDatapoint from RGB frames (PIL or uint8 arrays) and id maps, as the official VOS dataset
    builds it: one uint8 mask per object present anywhere in the sample, on every frame."""
    import torch
    from PIL import Image
    from training.utils.data_utils import Frame, Object, VideoDatapoint

    ids = sorted({int(i) for lab in labels for i in np.unique(lab) if i != 0})
    out = []
    for t, (img, lab) in enumerate(zip(frames, labels)):
        img = img if isinstance(img, Image.Image) else Image.fromarray(np.asarray(img, np.uint8))
        objs = [Object(object_id=o, frame_index=t, segment=torch.from_numpy(np.asarray(lab) == o).to(torch.uint8))
                for o in ids]
        out.append(Frame(data=img, objects=objs))
    w, h = out[0].data.size
    return VideoDatapoint(frames=out, video_id=0, size=(h, w))


def augment_sample(frames: Sequence, labels: Sequence[np.ndarray], aug: dict | None, image_size: int,
                   seed: int | None = None, transforms=None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Augment one sample; returns (RGB uint8 frames, id maps) at ``image_size``. ``seed`` makes it reproducible
    (python's and torch's RNGs are seeded, as the trainer's workers are, and restored afterwards)."""
    import torch

    tf = transforms if transforms is not None else build_transforms(aug, image_size, tensors=False)
    dp = make_datapoint(frames, labels)
    if seed is not None:
        py_state, torch_state = random.getstate(), torch.get_rng_state()
        random.seed(seed)
        torch.manual_seed(seed)
    try:
        dp = tf(dp)
    finally:
        if seed is not None:
            random.setstate(py_state)
            torch.set_rng_state(torch_state)
    imgs, labs = [], []
    for fr in dp.frames:
        img = np.asarray(fr.data.convert("RGB")) if hasattr(fr.data, "convert") else \
            (fr.data.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        lab = np.zeros(img.shape[:2], np.uint8)
        for obj in fr.objects:
            if obj.segment is not None:
                lab[obj.segment.numpy().astype(bool)] = obj.object_id
        imgs.append(img)
        labs.append(lab)
    return imgs, labs


def overlay(img: np.ndarray, lab: np.ndarray, palette: bytes, alpha: float = 0.5) -> np.ndarray:
    """Frame with each object's mask tinted in its palette colour and outlined."""
    from scipy import ndimage

    pal = np.frombuffer(palette, np.uint8).reshape(-1, 3)
    out = img.astype(np.float32)
    for o in np.unique(lab):
        if o == 0:
            continue
        m = lab == o
        out[m] = (1 - alpha) * out[m] + alpha * pal[o]
        edge = m & ~ndimage.binary_erosion(m)
        out[edge] = pal[o]
    return out.round().clip(0, 255).astype(np.uint8)


def preview_grid(frames: Sequence, labels: Sequence[np.ndarray], aug: dict | None, image_size: int, seed: int,
                 palette: bytes, samples: int = 2):
    """PIL image: the original frames (resized, first row) and ``samples`` augmented draws, masks overlaid."""
    from PIL import Image

    tf = build_transforms(aug, image_size, tensors=False)
    plain = build_transforms({"hflip_p": 0.0, "affine_p": 0.0, "global_gray_p": 0.0, "frame_gray_p": 0.0,
                              "global_brightness": 0.0, "global_contrast": 0.0, "global_saturation": 0.0,
                              "frame_brightness": 0.0, "frame_contrast": 0.0, "frame_saturation": 0.0},
                             image_size, tensors=False)
    rows = [augment_sample(frames, labels, None, image_size, seed, transforms=plain)]
    rows += [augment_sample(frames, labels, aug, image_size, seed + k, transforms=tf) for k in range(samples)]
    n, pad = len(frames), 4
    grid = Image.new("RGB", (n * (image_size + pad) + pad, len(rows) * (image_size + pad) + pad), (255, 255, 255))
    for r, (imgs, labs) in enumerate(rows):
        for c, (img, lab) in enumerate(zip(imgs, labs)):
            grid.paste(Image.fromarray(overlay(img, lab, palette)),
                       (pad + c * (image_size + pad), pad + r * (image_size + pad)))
    return grid
