"""The report's pictures: per-object J curves, member-disagreement heat maps, overlay tiles. Matplotlib without
pyplot (Agg canvas per figure: no global state, no display needed)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

TILE_WIDTH = 288
FUSION_STYLE = {"color": "black", "linewidth": 2.2}
MEMBER_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def j_curves(video: str, curves: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]], fusion: str,
             label: str = "J") -> bytes:
    """One panel per object: J (%) per scored frame, one line per member, the fusion in bold black."""
    objs = sorted(curves)
    fig = figure(7.5, 0.4 + 1.7 * len(objs))
    for k, o in enumerate(objs):
        ax = fig.add_subplot(len(objs), 1, k + 1)
        members = [n for n in curves[o] if n != fusion]
        for i, n in enumerate(members):
            x, y = curves[o][n]
            ax.plot(x, 100 * y, color=MEMBER_COLOURS[i % len(MEMBER_COLOURS)], linewidth=1.3, label=n)
        if fusion in curves[o]:
            x, y = curves[o][fusion]
            ax.plot(x, 100 * y, label=fusion, **FUSION_STYLE)
        ax.set_ylim(-2, 102)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_ylabel(f"object {o}\n{label} (%)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if k == 0:
            ax.set_title(f"{video}: {label} per frame and object (%)", fontsize=10)
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        if k == len(objs) - 1:
            ax.set_xlabel("frame", fontsize=9)
    return png_bytes(fig)


def disagreement_map(video: str, background: np.ndarray, heat: np.ndarray, members: list[str]) -> bytes:
    """Share of frames (%) where the members' labels differ, per pixel, over the video's first frame in grey."""
    h, w = heat.shape
    if w > 480:   # the figure is ~5 inches at 100 dpi: more pixels only cost drawing time
        size = (480, max(1, round(h * 480 / w)))
        heat = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(size, Image.BILINEAR))
        background = np.asarray(Image.fromarray(background).resize(size, Image.BILINEAR))
    fig = figure(5.2, 0.9 + 4.2 * h / max(w, 1))
    ax = fig.add_subplot(1, 1, 1)
    grey = np.asarray(Image.fromarray(background).convert("L"), np.float32) / 255.0
    ax.imshow(grey, cmap="gray", vmin=0, vmax=1)
    masked = np.ma.masked_where(heat <= 0, 100 * heat)
    im = ax.imshow(masked, cmap="inferno", vmin=0, vmax=100, alpha=0.85)
    ax.set_axis_off()
    ax.set_title(f"{video}: members disagree (% of frames)\n{' vs '.join(members)}", fontsize=9)
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.ax.tick_params(labelsize=8)
    cb.set_label("% of frames", fontsize=8)
    return png_bytes(fig)


def shrink(image: np.ndarray, labels: np.ndarray | None, width: int = TILE_WIDTH):
    """Frame (bilinear) and label map (nearest) at ``width`` pixels wide: overlays are blended at the size they
    are shown, which keeps outlines one pixel thin and costs a fraction of a full-resolution blend."""
    h, w = image.shape[:2]
    size = (width, max(1, round(h * width / w)))
    img = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR if w > width else Image.NEAREST))
    lab = None if labels is None else np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST))
    return img, lab


def tile(rgb: np.ndarray, width: int = TILE_WIDTH) -> bytes:
    """A JPEG thumbnail of an overlay, ``width`` pixels wide (small frames enlarged without smoothing)."""
    im = Image.fromarray(rgb)
    if im.width != width:
        im = im.resize((width, max(1, round(im.height * width / im.width))),
                       Image.BILINEAR if im.width > width else Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue()
