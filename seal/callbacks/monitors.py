"""Lightning callbacks that watch training: step time, a non-finite loss, the hybrid's mixing."""

import random
import time

import numpy as np
import pytorch_lightning as pl
import torch


class StepTimer(pl.Callback):
    """Log ``train/step_ms``: mean wall time of a training step (forward, every loss term,
    backward, optimiser) over the epoch, skipping the first ``skip`` steps of the run (warm-up)
    unless nothing else is left.

    On CPU every step is timed. On CUDA the device must be synchronised around a timed step, so
    only every ``cuda_every``-th step is timed (the sampled mean estimates the same quantity
    without stalling the GPU pipeline on every step).
    """

    def __init__(self, skip: int = 5, cuda_every: int = 20):
        self.skip, self.cuda_every, self._start, self._times = skip, cuda_every, None, []

    def _sampled(self, trainer, pl_module) -> bool:
        cuda = pl_module.device.type == "cuda"
        if cuda and trainer.global_step % self.cuda_every:
            return False
        if cuda:
            torch.cuda.synchronize(pl_module.device)
        return True

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._start = time.perf_counter() if self._sampled(trainer, pl_module) else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._start is not None:
            if pl_module.device.type == "cuda":
                torch.cuda.synchronize(pl_module.device)
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


class NonFiniteLossError(FloatingPointError):
    """Training stopped on a NaN/inf loss; the message names the step, batch and term."""


class NonFiniteGuard(pl.Callback):
    """Stop before a NaN/inf loss reaches the weights, saying where it came from.

    Checked in ``on_before_backward`` (one scalar sync per step), so the optimiser never steps on
    it and the checkpoints on disk are the last good ones. The message names the global step,
    epoch and batch, which term is non-finite (``task``, or ``symmetry`` from a
    :class:`~seal.symmetry.SymmetryRegularizer`, which records both), whether the batch itself
    holds non-finite inputs, and the last checkpoint to resume from.
    """

    def __init__(self):
        self._batch, self._batch_idx = None, -1

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._batch, self._batch_idx = batch, batch_idx

    def on_before_backward(self, trainer, pl_module, loss):
        if bool(torch.isfinite(loss)):
            return
        terms = next((c.last_terms for c in trainer.callbacks if hasattr(c, "last_terms")), None)
        if terms is None:
            culprit = f"the task term is {float(loss.detach())}"
        else:
            bad = {k: float(v) for k, v in terms.items() if not bool(torch.isfinite(v))}
            culprit = " and ".join(f"the {k} term is {v}" for k, v in bad.items()) or "?"
        inputs = [
            k
            for k, v in (self._batch or {}).items()
            if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()
        ]
        where = f"; the batch has non-finite {', '.join(inputs)}" if inputs else ""
        checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none saved yet"
        raise NonFiniteLossError(
            f"non-finite training loss at global step {trainer.global_step} (epoch "
            f"{trainer.current_epoch}, batch {self._batch_idx}): {culprit}{where}. Stopped before "
            f"the optimiser step; last good checkpoint: {checkpoint}"
        )


class RNGCheckpoint(pl.Callback):
    """Saves the global RNG states (torch CPU and CUDA, numpy, Python) in every checkpoint and
    restores them on resume, so dropout and loader-side augmentation after a mid-epoch resume
    draw what the uninterrupted run drew (with :class:`seal.data.tensordict.ResumableLoader`,
    whose own generator keeps ``iter()`` off the global RNG)."""

    def state_dict(self) -> dict:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
        kind, keys, pos, has_gauss, gauss = np.random.get_state()  # noqa: NPY002 - the legacy global one
        numpy = (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)
        return {
            "torch": torch.get_rng_state(),
            "cuda": cuda,
            "numpy": numpy,
            "python": random.getstate(),
        }  # tensors and tuples: loads with weights_only

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        kind, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))  # noqa: NPY002
        random.setstate(state_dict["python"])
