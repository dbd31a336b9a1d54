"""The one adaptation the official trainer needs to run on a machine without CUDA (tests, the CPU demo).

``training.trainer.Trainer.train_epoch`` updates a ``MemMeter`` after every step, and ``MemMeter.update`` calls
``torch.cuda.reset_peak_memory_stats()``, which raises on a CPU-only torch. Its ``val_epoch`` already guards the
same call with ``torch.cuda.is_available()``; :func:`apply` gives ``train_epoch`` the same guard by handing the
trainer module a meter that records 0 GB when CUDA is absent. Nothing changes where CUDA is present.
"""
from __future__ import annotations

import torch


def apply() -> None:
    if torch.cuda.is_available():
        return
    import training.trainer as official
    from training.utils.train_utils import MemMeter

    if getattr(official.MemMeter, "_masseg_cpu", False):
        return

    class CpuMemMeter(MemMeter):
        _masseg_cpu = True

        def update(self, n=1, reset_peak_usage=True):
            self.val = 0
            self.sum += self.val * n
            self.count += n
            self.avg = self.sum / self.count
            self.peak = max(self.peak, self.val)

    official.MemMeter = CpuMemMeter
