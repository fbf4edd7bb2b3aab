"""Regression LightningModule: MSE between the model output and ``batch["target"]``."""

import numpy as np
import torch

from seal.evaluation.bootstrap import mean_error
from seal.tasks.base import NetTask


class RegressionTask(NetTask):
    """Fit ``net(batch)`` to ``batch["target"]`` ((B,) or (B, 4)) with a (weighted) MSE.

    ``net(batch)`` predicts; see :class:`~seal.tasks.base.NetTask` for ``optimizer`` and
    ``compile`` (default Adam, lr 1e-3). The test epoch also logs ``test/mse`` over the whole
    test split with its bootstrap error ``test/mse_err``.
    """

    def __init__(self, net, optimizer=None, compile: bool | str = False):
        super().__init__(net, optimizer, compile)
        self._test_errors: list = []

    def _loss(self, batch: dict, split: str) -> torch.Tensor:
        pred, target = self(batch), batch["target"]
        if pred.shape != target.shape:
            raise ValueError(
                f"prediction shape {tuple(pred.shape)} != target {tuple(target.shape)}"
            )
        err = (pred - target).square().reshape(len(target), -1).sum(-1)  # (B,)
        weight = batch.get("weight")
        loss = err.mean() if weight is None else (weight * err).sum() / weight.sum()
        if split == "test":
            ones = torch.ones_like(err)
            self._test_errors.append(torch.stack((err, ones if weight is None else weight)))
        self.log(f"{split}/loss", loss, prog_bar=split != "test", batch_size=len(target))
        return loss

    def training_step(self, batch, batch_idx):
        return self._loss(batch, "train")

    def validation_step(self, batch, batch_idx):
        return self._loss(batch, "val")

    def test_step(self, batch, batch_idx):
        return self._loss(batch, "test")

    def on_test_epoch_end(self):
        if not self._test_errors:
            return
        err, weight = torch.cat(self._test_errors, dim=1).detach().double().cpu().numpy()
        self._test_errors.clear()
        mse = float(np.sum(weight * err) / np.sum(weight))
        self.log_dict({"test/mse": mse, "test/mse_err": mean_error(err, weight)})
