"""Regression LightningModule: MSE between the model output and ``batch["target"]``."""

import torch

from seal.tasks.base import NetTask


class RegressionTask(NetTask):
    """Fit ``net(batch)`` to ``batch["target"]`` ((B,) or (B, 4)) with a (weighted) MSE.

    ``net(batch)`` predicts; see :class:`~seal.tasks.base.NetTask` for ``optimizer`` and
    ``compile`` (default Adam, lr 1e-3).
    """

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
