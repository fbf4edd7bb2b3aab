"""Regression LightningModule: MSE between the model output and ``batch["target"]``."""

import numpy as np
import torch

from seal.metrics.bootstrap import mean_error
from seal.tasks.base import NetTask


class RegressionTask(NetTask):
    """Fit ``net(batch)`` to ``batch["target"]`` ((B,) or (B, 4)) with a (weighted) MSE.

    ``net(batch)`` predicts; see :class:`~seal.tasks.base.NetTask` for ``optimizer``,
    ``scheduler`` and ``compile`` (default Adam, lr 1e-3). Validation and test losses are
    computed once over the whole split (every rank's examples gathered); the test epoch also logs
    ``test/mse`` with its bootstrap error ``test/mse_err``.
    """

    def __init__(self, net, optimizer=None, compile: bool | str = False, scheduler=None):
        super().__init__(net, optimizer, compile, scheduler)
        self._errors: list = []

    def _loss(self, batch: dict, split: str) -> torch.Tensor:
        pred, target = self(batch), batch["target"]
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} != target {tuple(target.shape)}"
            )
        err = (pred - target).square().reshape(len(target), -1).sum(-1)  # (B,)
        weight = batch.get("weight")
        loss = err.mean() if weight is None else (weight * err).sum() / weight.sum()
        if split == "train":
            self.log("train/loss", loss, prog_bar=True, batch_size=len(target))
        else:
            weight = torch.ones_like(err) if weight is None else weight
            self._errors.append(torch.stack((err, weight)).detach().double().cpu())
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._loss(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._loss(batch, "test")

    def _epoch_loss(self, split: str) -> None:
        local = (
            torch.cat(self._errors, dim=1)
            if self._errors
            else torch.zeros(2, 0, dtype=torch.float64)
        )
        self._errors.clear()
        err, weight = self.gather_columns(local).numpy()
        if len(err) == 0:
            return
        mse = float(np.sum(weight * err) / np.sum(weight))
        self.log(f"{split}/loss", mse, prog_bar=split == "val")
        if split == "test":
            self.log_dict({"test/mse": mse, "test/mse_err": mean_error(err, weight)})

    def on_validation_epoch_end(self):
        self._epoch_loss("val")

    def on_test_epoch_end(self):
        self._epoch_loss("test")
