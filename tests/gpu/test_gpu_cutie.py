"""Cutie on CUDA: fp32 (TF32 off) reproduces the official golden within its own tolerances, and AMP (fp16
autocast) agrees with fp32 within the bounds justified in tests/gpu/agreement.py, on the golden's clip and on
a real shared clip. Weights: the shared cutie-small/base recipes (sha256-checked)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cutie import CutieNetwork, CutieSettings, InferenceCore

from .agreement import cutie_agreement

pytestmark = pytest.mark.gpu


def _network(size, state_dict, device):
    net = CutieNetwork(size)
    net.load_state_dict(state_dict(size), strict=True)
    return net.to(device).eval()


def _protocol(net, settings: CutieSettings, frames, first_mask, objects):
    """The golden README's frame protocol on ``net``'s device; prob (T, K+1, H, W), logits, half-precision seen."""
    core = InferenceCore(net, settings)
    seen = set()
    hook = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).register_forward_hook(
        lambda m, i, o: seen.add(o.dtype))
    probs, logits = [], []
    try:
        T = len(frames)
        for t in range(T):
            image = torch.from_numpy(np.ascontiguousarray(frames[t])).permute(2, 0, 1).float() / 255
            if t == 0:
                r = core.step(image, torch.from_numpy(first_mask).long(), objects, end=False)
            else:
                r = core.step(image, end=(t == T - 1))
            probs.append(r.prob.float().cpu().numpy())
            logits.append(r.logits.float().cpu().numpy())
    finally:
        hook.remove()
    return np.stack(probs), np.stack(logits), seen


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", ["A_small_mose_default", "D_base_mose_default"])
def test_fp32_matches_golden_and_amp_agrees(cuda, cutie_golden, cutie_golden_dir, cutie_state_dict, name):
    _, check, variants = cutie_golden
    variant = variants[name]
    settings = {k: v for k, v in variant["settings"].items() if k != "save_aux"}
    video = np.load(cutie_golden_dir / "video.npz")
    y0, y1, x0, x1 = variant["crop"]
    frames = video["frames"][: variant["T"], y0:y1, x0:x1]
    first = video["first_mask"][y0:y1, x0:x1]
    net = _network(variant["model"], cutie_state_dict, cuda)
    golden = np.load(cutie_golden_dir / f"{name}.npz")

    prob32, logits32, seen32 = _protocol(net, CutieSettings.from_dict(settings), frames, first, [1, 2])
    assert seen32 == {torch.float32}
    tol = check.TOL
    d_prob = np.abs(prob32.astype(np.float64) - golden["prob"]).max()
    mismatch = (prob32.argmax(1) != golden["mask"]).mean()
    print(f"cutie {name} CUDA fp32 vs golden: max|d prob| {d_prob:.2e}, argmax mismatch {mismatch:.2e}")
    assert d_prob <= tol["prob"] and mismatch <= tol["argmax_mismatch_frac"], (d_prob, mismatch)

    amp = CutieSettings.from_dict(dict(settings, amp=True, amp_dtype="float16"))
    prob16, logits16, seen16 = _protocol(net, amp, frames, first, [1, 2])
    assert torch.float16 in seen16, f"AMP must run the convolutions in fp16 (saw {seen16})"
    assert logits16.dtype == np.float32 and np.isnan(logits16[0]).all() and np.isfinite(logits16[1:]).all()
    report = cutie_agreement(golden["prob"], prob16)
    print(report.line(f"cutie {name} AMP vs fp32 golden"))
    assert report.ok, report.line(name)


@pytest.mark.timeout(300)
def test_amp_agrees_with_fp32_on_a_real_clip(cuda, cutie_state_dict, clip_root):
    """libby (854x480, 12 frames, 1 object), MOSE preset (480p), cutie-small: AMP vs CUDA fp32."""
    from data.dataset import VOSDataset
    from models.cutie import preset
    video = VOSDataset(clip_root)["libby"]
    frames = [video.frame(i) for i in range(len(video))]
    first = video.prompt_masks()[0]
    net = _network("small", cutie_state_dict, cuda)
    base = preset("mose")
    prob32, _, _ = _protocol(net, base, frames, first, [1])
    prob16, _, seen = _protocol(net, base.replace(amp=True), frames, first, [1])
    assert torch.float16 in seen
    report = cutie_agreement(prob32, prob16)
    print(report.line("cutie-small AMP vs fp32 (libby)"))
    assert report.ok, report.line("libby")
