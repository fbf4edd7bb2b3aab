"""Regression LightningModule: MSE between the model output and ``batch["target"]``."""

import pytorch_lightning as pl
import torch
from torch import nn

from seal.tasks.compiled import attach_compiled, net_output


class RegressionTask(pl.LightningModule):
    """Fit ``net(batch)`` to ``batch["target"]`` ((B,) or (B, 4)) with a (weighted) MSE.

    Parameters
    ----------
    net : nn.Module
        Maps the batch dict to predictions shaped like the target.
    lr, weight_decay : float
        Adam settings.
    compile : bool or str
        Run ``net`` through ``torch.compile`` (true: inductor, or a backend name).
    """

    def __init__(self, net: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                 compile: bool | str = False):  # fmt: skip
        super().__init__()
        self.net = net
        self.lr, self.weight_decay = lr, weight_decay
        attach_compiled(self, compile)

    def forward(self, batch: dict) -> torch.Tensor:
        return net_output(self, batch)

    def _loss(self, batch: dict, split: str) -> torch.Tensor:
        pred, target = self(batch), batch["target"]
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} != target {tuple(target.shape)}"
            )
        err = (pred - target).square().reshape(len(target), -1).sum(-1)  # (B,)
        weight = batch.get("weight")
        loss = err.mean() if weight is None else (weight * err).sum() / weight.sum()
        self.log(f"{split}/loss", loss, prog_bar=split != "test", batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._loss(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._loss(batch, "test")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
