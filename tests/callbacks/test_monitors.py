"""A NaN/inf loss stops training with a message naming step, batch and term; checkpoints stay."""

import math

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from seal.callbacks.monitors import NonFiniteGuard, NonFiniteLossError
from seal.data.toy import ToyDataModule
from seal.models import MLP
from seal.symmetry import Penalty, SymmetryRegularizer
from seal.tasks import RegressionTask
from seal.testing import quiet_trainer


class InjectNaN(pl.Callback):
    """Put a NaN into the first momentum of the batch at one global step."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            batch["p4"][0, 0, 0] = math.nan


def fit(tmp_path, *callbacks):
    pl.seed_everything(0)
    data = ToyDataModule(n_train=64, n_val=32, n_test=32, batch_size=16)  # 4 steps per epoch
    task = RegressionTask(MLP(n_particles=1, width=16, depth=2))
    trainer = quiet_trainer(
        max_epochs=3,
        callbacks=[ModelCheckpoint(dirpath=tmp_path, save_last=True), NonFiniteGuard(), *callbacks],
        default_root_dir=tmp_path,
    )
    trainer.fit(task, datamodule=data)
    return task


def test_nan_in_a_batch_stops_with_step_batch_and_term_and_keeps_the_last_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLossError) as caught:
        fit(tmp_path, InjectNaN(step=5))
    message = str(caught.value)
    assert message.startswith(
        "non-finite training loss at global step 5 (epoch 1, batch 1): the task term is nan; "
        "the batch has non-finite p4. Stopped before the optimiser step; last good checkpoint: "
    )
    assert message.endswith("last.ckpt")
    state = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert state["global_step"] == 4  # the end of epoch 0, before the bad batch
    assert all(torch.isfinite(v).all() for v in state["state_dict"].values())


class InfOnThirdBatch(Penalty):
    """A penalty of its own (no callback edit needed): inf on the third training batch."""

    name = "inf_on_third"
    uses_copies = False

    def values(self, fn, batch, group, generator, separate=False, replay=None):
        y = fn(batch)
        return torch.full_like(y, math.inf if self.regulariser.batches == 2 else 0.0)


def test_a_non_finite_symmetry_term_is_named(tmp_path):
    penalty = InfOnThirdBatch()
    regulariser = penalty.regulariser = SymmetryRegularizer(penalty, weight=1.0)
    with pytest.raises(
        NonFiniteLossError,
        match=r"global step 2 \(epoch 0, batch 2\): the "
        r"symmetry term is inf\. Stopped.*none saved yet",
    ):
        fit(tmp_path, regulariser)
