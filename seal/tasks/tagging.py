"""Binary jet tagging: weighted BCE on one logit per jet; AUC, accuracy and rejections."""

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from seal.evaluation.metrics import tagging_metrics
from seal.tasks.compiled import attach_compiled, net_output


class TaggingTask(pl.LightningModule):
    """Train ``net(batch) → logits (B,)`` against ``batch["target"]`` (1 = top).

    The loss is binary cross-entropy weighted by ``batch["weight"]`` (the training weights that
    flatten the background pT spectrum). Validation and test epochs log ``loss``, ``auc``,
    ``acc`` and ``rej@0.3/0.5/0.8`` (1/ε_B at that ε_S, weighted) under ``val/`` and ``test/``.

    Parameters
    ----------
    net : nn.Module
    lr, weight_decay : Adam settings (SEAL study: lr 5e-4).
    compile : bool or str
        Run ``net`` through ``torch.compile`` (true: inductor, or a backend name).
    """

    def __init__(self, net: nn.Module, lr: float = 5e-4, weight_decay: float = 0.0,
                 compile: bool | str = False):  # fmt: skip
        super().__init__()
        self.net, self.lr, self.weight_decay = net, lr, weight_decay
        self._outputs: list = []
        attach_compiled(self, compile)

    def forward(self, batch: dict) -> torch.Tensor:
        return net_output(self, batch)

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
        self.log(f"{split}/loss", self._loss(logits, batch), prog_bar=split == "val",
                 batch_size=len(logits))  # fmt: skip
        weight = batch.get("weight", torch.ones_like(logits))
        self._outputs.append(torch.stack((logits, batch["target"], weight)).detach().float().cpu())

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def _epoch_metrics(self, split):
        if not self._outputs:
            return
        logits, labels, weights = torch.cat(self._outputs, dim=1).numpy()
        self._outputs.clear()
        if len(np.unique(labels)) == 2:
            metrics = tagging_metrics(labels, logits, weights, prefix=f"{split}/")
            self.log_dict(metrics)

    def on_validation_epoch_end(self):
        self._epoch_metrics("val")

    def on_test_epoch_end(self):
        self._epoch_metrics("test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
