"""SAM2 on CUDA: the bf16 autocast path agrees with the fp32 golden (official flow on CPU), and the compiled
``vos_optimized`` predictor agrees with eager, within the bounds justified in tests/gpu/agreement.py.

Weights: the shared sam2.1-tiny recipe (sha256-checked); clip: libby, 12 frames, image size 512 (the golden's)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data.dataset import VOSDataset
from models.sam2 import Sam2Segmenter

from .agreement import sam2_agreement
from .conftest import SAM2_CONFIG

pytestmark = pytest.mark.gpu


def run_sam2(weights, root, video: str, device, vos_optimized: bool = False):
    """(logits (T, N, 128, 128) float32, scores (T, N), segmenter) of one stage run over ``video``."""
    seg = Sam2Segmenter(weights, config=SAM2_CONFIG, image_size=512, device=device, vos_optimized=vos_optimized)
    dtypes = set()
    hook = None
    if not vos_optimized:   # no Python hooks inside fullgraph-compiled modules
        linear = next(m for m in seg.predictor.image_encoder.modules() if isinstance(m, torch.nn.Linear))
        hook = linear.register_forward_hook(lambda m, i, o: dtypes.add(o.dtype))
    try:
        frames = list(seg.run_video(VOSDataset(root)[video]))
    finally:
        if hook is not None:
            hook.remove()
    assert all(f.logits.dtype == np.float32 for f in frames), "stored logits must stay float32"
    return np.stack([f.logits for f in frames]), np.stack([f.scores for f in frames]), seg, dtypes


@pytest.mark.timeout(300)
def test_bf16_autocast_agrees_with_fp32_golden(cuda, sam2_weights, clip_root, sam2_golden, sam2_golden_dir):
    logits, scores, seg, dtypes = run_sam2(sam2_weights, clip_root, "libby", cuda)
    assert seg.settings()["dtype"] == "bfloat16" and torch.bfloat16 in dtypes, \
        f"the CUDA path must run under bf16 autocast (image-encoder linear output dtypes: {dtypes})"
    g = sam2_golden.load(sam2_golden_dir / "outputs" / "default" / "libby.npz")
    report = sam2_agreement(g["lowres_logits"], logits, g["object_score_logits"], scores)
    print(report.line("sam2 bf16 vs fp32 golden (libby)"))
    assert report.ok, report.line("sam2 bf16 vs fp32 golden")


@pytest.mark.timeout(600)
def test_vos_optimized_compiled_agrees_with_eager(cuda, sam2_weights, clip_root):
    """torch.compile (mode max-autotune, as the package sets it): the first run compiles (minutes)."""
    eager, eager_scores, _, _ = run_sam2(sam2_weights, clip_root, "libby", cuda)
    compiled, compiled_scores, seg, _ = run_sam2(sam2_weights, clip_root, "libby", cuda, vos_optimized=True)
    assert type(seg.predictor).__name__ == "SAM2VideoPredictorVOS"
    report = sam2_agreement(eager, compiled, eager_scores, compiled_scores)
    print(report.line("sam2 vos_optimized (compiled) vs eager, bf16 (libby)"))
    assert report.ok, report.line("compiled vs eager")
    # a second video through the same compiled predictor (2 objects, other shapes of the memory bank)
    e2, es2, _, _ = run_sam2(sam2_weights, clip_root, "bmx-trees", cuda)
    out = list(seg.run_video(VOSDataset(clip_root)["bmx-trees"]))
    c2, cs2 = np.stack([f.logits for f in out]), np.stack([f.scores for f in out])
    report = sam2_agreement(e2, c2, es2, cs2)
    print(report.line("sam2 vos_optimized (compiled) vs eager, bf16 (bmx-trees, 2 objects)"))
    assert report.ok, report.line("compiled vs eager, bmx-trees")
