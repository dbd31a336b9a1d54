"""Import cost of the inference path: importing Cutie (package, runner, stage member) must not pull in
torchvision, or the torch._dynamo / sympy stack torchvision imports (about 1 s and ~150 MB per process).
Checked in a fresh interpreter, also after building the network and running two frames."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
HEAVY = ("torchvision", "torch._dynamo", "sympy", "triton")

_PROBE = """
import json, sys
import models.cutie, models.cutie.runner, models.cutie.segmenter, models.members.cutie
after_import = [m for m in {heavy} if m in sys.modules]
import torch
from models.cutie import CutieSettings, InferenceCore, build_cutie
torch.manual_seed(0)
core = InferenceCore(build_cutie("small", device="cpu"), CutieSettings())
mask = torch.zeros(32, 48, dtype=torch.long)
mask[4:20, 6:30] = 1
core.step(torch.rand(3, 32, 48), mask)
core.step(torch.rand(3, 32, 48), end=True)
print(json.dumps({{"after_import": after_import, "after_run": [m for m in {heavy} if m in sys.modules]}}))
"""


def test_inference_path_does_not_import_torchvision():
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=list(HEAVY))], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found == {"after_import": [], "after_run": []}


@pytest.mark.parametrize("hw", [(96, 160), (160, 96), (481, 855), (64, 64), (40, 30)])
def test_loader_resize_equals_torchvision(hw):
    """Our spelled-out loader resize is torchvision's Resize([size]) (images bilinear+antialias, masks PIL nearest)."""
    tf = pytest.importorskip("torchvision.transforms.functional")
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    from models.cutie.runner import loader_resize, loader_resize_mask, loader_size

    rs = np.random.RandomState(0)
    image = torch.from_numpy(rs.rand(3, *hw).astype(np.float32))
    mask = rs.randint(0, 4, hw).astype(np.int64)
    size = min(hw) if min(hw) <= 48 else 48  # equal size: both return the input unchanged
    ref = tf.resize(image, [size], interpolation=InterpolationMode.BILINEAR, antialias=True)
    assert loader_size(hw, size) == tuple(ref.shape[-2:])
    assert torch.equal(loader_resize(image, size), ref)
    ref_mask = np.asarray(tf.resize(Image.fromarray(mask.astype(np.uint8)), [size], interpolation=InterpolationMode.NEAREST))
    np.testing.assert_array_equal(loader_resize_mask(mask, size), ref_mask.astype(np.int64))
