"""Two-process CPU DDP tagging run for test_ddp_metrics.py: `python ddp_metrics_job.py OUT`.

Run as a script because Lightning's DDP launcher re-executes the command for rank 1. Writes
per rank the logged validation/test metrics and the group-element RNG state at the end, the
final weights, the last checkpoint and (rank 0) the post-training evaluation's files.
"""

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from seal.data.jet_datamodule import JetDataModule
from seal.evaluation.tagging import TaggingEvaluation
from seal.models import TorchTransformerTagger
from seal.symmetry import SymmetryRegularizer
from seal.tasks import TaggingTask
from seal.testing import quiet_trainer

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "fixture_jets.h5"


def datamodule():
    return JetDataModule(FIXTURE, n_constituents=32, batch_size=16, chunk_rows=32)


def model():
    return TorchTransformerTagger(dim=16, depth=1, heads=2, ff_dim=16, dropout=0.1)


class Record(pl.Callback):
    def __init__(self, folder: Path, regulariser):
        self.folder, self.regulariser = folder, regulariser

    def on_train_end(self, trainer, pl_module):
        state = self.regulariser._generator.get_state()
        torch.save(state, self.folder / f"generator_rank{trainer.global_rank}.pt")
        if trainer.is_global_zero:
            torch.save(pl_module.state_dict(), self.folder / "weights.pt")


def dump(trainer, folder: Path, name: str) -> None:
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(name)}
    (folder / f"{name}_rank{trainer.global_rank}.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    pl.seed_everything(0, verbose=False)
    task, data = TaggingTask(model()), datamodule()
    regulariser = SymmetryRegularizer("gsymm", weight=1.0, seed=1)
    trainer = quiet_trainer(
        max_epochs=1,
        limit_train_batches=3,
        devices=2,
        strategy="ddp",
        num_sanity_val_steps=0,
        callbacks=[
            regulariser,
            Record(out, regulariser),
            ModelCheckpoint(dirpath=out, save_last=True, save_top_k=0),
        ],
    )
    trainer.fit(task, datamodule=data)
    dump(trainer, out, "val")
    trainer.test(task, datamodule=data)
    dump(trainer, out, "test")
    if trainer.is_global_zero:  # as seal.train.run does after training
        TaggingEvaluation(betas=[0.0, 0.5], pt_bins=[400, 600, 800])(task, data, out)
    # an undestroyed gloo group aborts the interpreter at exit now and then
    # ("terminate called without an active exception", return code -6)
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
