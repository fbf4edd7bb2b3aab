"""Lightning callbacks that measure: training step time, and the hybrid's mixing weight."""

import time

import numpy as np
import pytorch_lightning as pl
import torch


class StepTimer(pl.Callback):
    """Log ``train/step_ms``: mean wall time of a training step (forward, every loss term,
    backward, optimiser) over the epoch, skipping the first ``skip`` steps of the run (warm-up)
    unless nothing else is left.
    On CUDA the device is synchronised around each step so the time is the kernels' time."""

    def __init__(self, skip: int = 5):
        self.skip, self._start, self._times = skip, 0.0, []

    def _sync(self, pl_module):
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._sync(pl_module)
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._sync(pl_module)
        self._times.append((trainer.global_step, time.perf_counter() - self._start))

    def on_train_epoch_end(self, trainer, pl_module):
        warm = [t for step, t in self._times if step > self.skip] or [t for _, t in self._times]
        if warm:
            pl_module.log("train/step_ms", 1e3 * float(np.mean(warm)))
        self._times.clear()


class MixingMonitor(pl.Callback):
    """For a model whose ``net`` has ``mixing(batch) → (B, 2)`` (:class:`seal.models.HybridNet`):
    log ``val/w_inv``, the mean weight on the invariant subnet over the validation set."""

    def __init__(self):
        self._sum, self._count = 0.0, 0

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        net = getattr(pl_module, "net", None)
        if hasattr(net, "mixing"):
            w_inv = net.mixing(batch)[:, 0]
            self._sum += float(w_inv.sum())
            self._count += len(w_inv)

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._count:
            pl_module.log("val/w_inv", self._sum / self._count)
        self._sum, self._count = 0.0, 0
