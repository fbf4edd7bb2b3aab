"""Binary jet tagging: weighted BCE on one logit per jet; AUC, accuracy and rejections."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from seal.metrics.bootstrap import tagging_errors
from seal.metrics.tagging import SIGNAL_EFFICIENCIES, classes, tagging_metrics
from seal.tasks.base import NetTask


class TaggingTask(NetTask):
    """Train ``net(batch) → logits (B,)`` against ``batch["target"]`` (1 = top).

    The loss is binary cross-entropy weighted by ``batch["weight"]`` (the training weights that
    flatten the background pT spectrum). Validation and test epochs log ``loss``, ``auc``,
    ``acc`` and ``rej@0.3/0.5/0.8`` (1/ε_B at that ε_S, weighted) under ``val/`` and ``test/``.

    See :class:`~seal.tasks.base.NetTask` for ``optimizer`` (default Adam, lr 5e-4 as in the
    SEAL study) and ``compile``.
    """

    default_lr = 5e-4
    validation_metrics = ("loss", "auc", "acc", *(f"rej@{e}" for e in SIGNAL_EFFICIENCIES))

    def __init__(self, net: nn.Module, optimizer=None, compile: bool | str = False, scheduler=None):
        super().__init__(net, optimizer, compile, scheduler)
        self._outputs: list = []

    def _loss(self, logits, batch):
        weight = batch.get("weight")
        loss = F.binary_cross_entropy_with_logits(logits, batch["target"], reduction="none")
        return loss.mean() if weight is None else (weight * loss).sum() / weight.sum()

    def training_step(self, batch, batch_idx):
        loss = self._loss(self(batch), batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["target"]))
        return loss

    def _eval_step(self, batch, split):
        logits = self(batch)
        weight = batch.get("weight", torch.ones_like(logits))
        self._outputs.append(torch.stack((logits, batch["target"], weight)).detach().float().cpu())

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def _epoch_metrics(self, split):
        """Loss and metrics over the whole split: every rank's outputs gathered first."""
        local = torch.cat(self._outputs, dim=1) if self._outputs else torch.zeros(3, 0)
        self._outputs.clear()
        outputs = self.gather_columns(local)
        if outputs.shape[1] == 0:
            return
        logits, labels, weights = outputs.double()
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
        metrics = {f"{split}/loss": float((weights * loss).sum() / weights.sum())}
        logits, labels, weights = outputs.numpy()
        if len(np.unique(classes(labels))) == 2:
            metrics.update(tagging_metrics(labels, logits, weights, prefix=f"{split}/"))
            if split == "test":  # the numbers a user compares: with their bootstrap errors
                metrics.update(tagging_errors(labels, logits, weights, prefix="test/"))
        # the same values on every rank (computed from the gathered split): no reduction
        self.log(f"{split}/loss", metrics.pop(f"{split}/loss"), prog_bar=split == "val")
        self.log_dict(metrics)

    def on_validation_epoch_end(self):
        self._epoch_metrics("val")

    def on_test_epoch_end(self):
        self._epoch_metrics("test")
