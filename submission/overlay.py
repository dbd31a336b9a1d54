"""Overlays: label maps blended over their frames in the palette's colours, with object outlines, per frame and as
an MP4 per video -- what a person looks at to judge a segmentation (``masseg overlay``, the HTML report).

MP4s are encoded in-process with PyAV (FFmpeg's libraries, libx264 included in its wheels): no ffmpeg binary to
find on PATH and no pipe to a subprocess; frames go from numpy arrays straight to the encoder.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from data.atomic import atomic_path, atomic_write_bytes
from data.errors import MassegError
from data.labels import DAVIS_PALETTE, read_labels

DEFAULT_ALPHA = 0.5


def palette_colours(palette: bytes | None) -> np.ndarray:
    """(256, 3) uint8 colours of a 768-byte palette (DAVIS when None)."""
    pal = np.frombuffer((palette or DAVIS_PALETTE)[:768].ljust(768, b"\0"), np.uint8)
    return pal.reshape(256, 3)


def outline(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Pixels next to a pixel of another id (both sides of every boundary), grown to ``width`` pixels."""
    edge = np.zeros(labels.shape, bool)
    dy = labels[1:] != labels[:-1]
    edge[1:] |= dy
    edge[:-1] |= dy
    dx = labels[:, 1:] != labels[:, :-1]
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    for _ in range(max(1, width) - 1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def blend(image: np.ndarray, labels: np.ndarray, palette: bytes | None = None, alpha: float = DEFAULT_ALPHA,
          outlines: bool = True) -> np.ndarray:
    """RGB uint8 (H, W, 3): each object's pixels tinted with its palette colour (``alpha``), its outline solid."""
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} and labels {labels.shape[1]}x{labels.shape[0]} "
                         "differ in size")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    colours = palette_colours(palette)
    out = image[..., :3].astype(np.float32)
    fg = labels > 0
    tint = colours[labels].astype(np.float32)
    out[fg] = (1 - alpha) * out[fg] + alpha * tint[fg]
    if outlines:
        width = max(1, round(min(labels.shape) / 240))
        edge = outline(labels, width)
        # an edge pixel takes the colour of the object it belongs to; background pixels next to an object
        # stay (mostly) the image so the boundary reads as a line, not a halo
        on_obj = edge & fg
        out[on_obj] = tint[on_obj]
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def encode_image(rgb: np.ndarray, fmt: str = "JPEG", quality: int = 90) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, quality=quality) if fmt == "JPEG" else \
        Image.fromarray(rgb).save(buf, format=fmt)
    return buf.getvalue()


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 24.0, crf: int = 23) -> int:
    """Encode RGB frames as an H.264 MP4 (yuv420p, plays in browsers); odd sizes are padded to even. Atomic.
    Returns the number of frames written."""
    import av
    from fractions import Fraction
    path = Path(path)
    n = 0
    with atomic_path(path) as tmp:
        container = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream = None
            for rgb in frames:
                rgb = np.asarray(rgb, np.uint8)
                h, w = rgb.shape[:2]
                if h % 2 or w % 2:
                    rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
                if stream is None:
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
                    stream.width, stream.height = rgb.shape[1], rgb.shape[0]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": "veryfast"}
                    # deterministic output: no encoder threads racing, no wall-clock metadata
                    stream.codec_context.thread_count = 1
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                for packet in stream.encode(frame):
                    container.mux(packet)
                n += 1
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
        finally:
            container.close()
        if n == 0:
            raise MassegError("no frame to encode", path, "check that the label folder holds this video's frames")
    return n


def label_frames(labels_dir: Path, video: str, frame_names: Sequence[str]) -> list[str]:
    """The frames of ``video`` that have a label PNG (all-frame or sparse predictions), in video order."""
    folder = labels_dir / video
    have = {p.stem for p in folder.glob("*.png")} if folder.is_dir() else set()
    return [f for f in frame_names if f in have]


def overlay_video(video, labels_dir: Path, out_dir: Path, alpha: float = DEFAULT_ALPHA, images: bool = True,
                  mp4: bool = False, fps: float = 24.0, on_frame=None) -> dict:
    """Overlays of one ``data.dataset.Video`` with the label PNGs in ``labels_dir/<video>/``: JPEGs in
    ``out_dir/<video>/`` and/or ``out_dir/<video>.mp4``. Returns counts for the summary line."""
    names = label_frames(labels_dir, video.name, video.frame_names)
    if not names:
        raise MassegError(f"no label PNG of video {video.name!r}", labels_dir / video.name,
                          "pass the folder holding <video>/<frame>.png (or a run folder with labels/)")
    index = {n: i for i, n in enumerate(video.frame_names)}

    def frames():
        for name in names:
            labels, palette = read_labels(labels_dir / video.name / f"{name}.png", with_palette=True)
            img = video.frame(index[name])
            if labels.shape != img.shape[:2]:
                raise MassegError(f"label map is {labels.shape[1]}x{labels.shape[0]} but the frame is "
                                  f"{img.shape[1]}x{img.shape[0]}", labels_dir / video.name / f"{name}.png",
                                  "labels must have the frame size (as in a submission)")
            rgb = blend(img, labels, palette, alpha)
            if images:
                atomic_write_bytes(out_dir / video.name / f"{name}.jpg", encode_image(rgb))
            if on_frame:
                on_frame()
            yield rgb

    if mp4:
        write_mp4(out_dir / f"{video.name}.mp4", frames(), fps=fps)
    else:
        for _ in frames():
            pass
    return {"video": video.name, "frames": len(names), "mp4": mp4}
