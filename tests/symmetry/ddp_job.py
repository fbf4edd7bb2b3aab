"""Two-process CPU DDP run for test_ddp.py: `python ddp_job.py OUT_DIR PENALTY [constraint]`
(constraint: λ found by dual ascent, its value after every step saved per rank).

Run as a script because Lightning's DDP launcher re-executes the command for rank 1.
"""

import sys
from pathlib import Path

import pytorch_lightning as pl
import torch

from seal.data.tensordict import loader
from seal.data.toy import make_toy
from seal.models import MLP
from seal.symmetry import SymmetryRegularizer
from seal.tasks import RegressionTask
from seal.tasks.base import default_optimizer
from seal.testing import quiet_trainer


class SaveWeights(pl.Callback):
    def __init__(self, folder: Path, regulariser=None):
        self.folder, self.regulariser, self.lambdas = folder, regulariser, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.regulariser is not None and self.regulariser.constraint is not None:
            self.lambdas.append(self.regulariser.constraint.weight.clone())

    def on_train_start(self, trainer, pl_module):
        self._save(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module):
        self._save(trainer, pl_module, "end")

    def _save(self, trainer, pl_module, when):
        weights = {n: p.detach().clone() for n, p in pl_module.named_parameters()}
        torch.save(weights, self.folder / f"{when}_rank{trainer.global_rank}.pt")
        if when == "end" and self.lambdas:
            torch.save(self.lambdas, self.folder / f"lambda_rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    out, penalty = Path(sys.argv[1]), sys.argv[2]
    constrained = sys.argv[3:] == ["constraint"]
    pl.seed_everything(0, verbose=False)
    if constrained:  # λ moves fast (up to e^0.3 a step), the penalty near the target (no clip)
        regulariser = SymmetryRegularizer(penalty, seed=1, constraint={"target": 2.0, "rate": 0.3})
    else:
        regulariser = SymmetryRegularizer(penalty, weight=5.0, seed=1)
    module = RegressionTask(MLP(n_particles=1, width=16), optimizer=default_optimizer(1e-2))
    trainer = quiet_trainer(
        max_steps=5 if constrained else 3,
        devices=2,
        strategy="ddp",
        enable_checkpointing=False,
        callbacks=[regulariser, SaveWeights(out, regulariser)],
        limit_val_batches=0,
    )
    trainer.fit(module, loader(make_toy(96, seed=1), batch_size=16))
    assert "training_step" not in vars(module)
    # an undestroyed gloo group aborts the interpreter at exit now and then
    # ("terminate called without an active exception", return code -6)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
