"""A run killed mid-epoch resumes from its last checkpoint and ends on the same weights."""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from seal.callbacks.monitors import RNGCheckpoint
from seal.data.augment import BoostAugmentation
from seal.data.tensordict import ResumableLoader, TensorDictDataset, collate_dict
from seal.data.toy import ToyDataModule
from seal.models import MLP
from seal.symmetry import SymmetryRegularizer
from seal.tasks import RegressionTask
from seal.testing import quiet_trainer


class Kill(pl.Callback):
    """Simulates a preemption after ``step`` optimizer steps (and their checkpoint)."""

    def __init__(self, step):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise SystemError(f"killed at step {self.step}")


class Batches(pl.Callback):
    """Records the first target of every training batch."""

    def __init__(self):
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append((trainer.current_epoch, batch_idx, float(batch["target"][0])))


def fit(tmp_path, *callbacks, ckpt_path=None, augment=None):
    pl.seed_everything(0)
    data = ToyDataModule(n_train=80, n_val=32, n_test=32, batch_size=16, augment=augment)
    task = RegressionTask(MLP(n_particles=1, width=16, depth=2, dropout=0.2))
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=1)
    regulariser = SymmetryRegularizer("gsymm", weight=0.5, warmup_steps=6, fraction=0.5, seed=4)
    trainer = quiet_trainer(
        max_epochs=3,
        callbacks=[checkpoint, RNGCheckpoint(), regulariser, *callbacks],
        default_root_dir=tmp_path,
        limit_val_batches=1,
        num_sanity_val_steps=0,
    )
    trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    return task, regulariser


@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
@pytest.mark.parametrize(
    ("kill_at", "augment"),
    [(6, None), (7, None), (9, None), (10, None), (7, BoostAugmentation(beta_max=0.3))],
)  # 5 steps per epoch: mid-epoch and around an epoch's end; with random boosts in the loader
def test_killed_run_resumes_to_the_same_final_weights(tmp_path, kill_at, augment):
    straight, batches = Batches(), Batches()
    reference, regulariser = fit(tmp_path / "a", straight, augment=augment)
    with pytest.raises(SystemError, match=f"killed at step {kill_at}"):
        fit(tmp_path / "b", Kill(kill_at), augment=augment)
    resumed, resumed_regulariser = fit(
        tmp_path / "b", batches, ckpt_path=tmp_path / "b/last.ckpt", augment=augment
    )
    assert batches.seen == straight.seen[kill_at:]  # the same batches, in the same order
    assert resumed_regulariser.batches == regulariser.batches == 15  # warm-up schedule continued
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_loader_state_counts_consumed_batches():
    data = {"x": torch.arange(10.0)}
    loader = ResumableLoader(TensorDictDataset(data), 2, seed=1, collate_fn=collate_dict)
    first = [b["x"].tolist() for b in loader]
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    assert state == {"seed": 1, "epoch": 0, "batches": 2}
    fresh = ResumableLoader(loader.dataset, 2, seed=99, collate_fn=collate_dict)
    fresh.load_state_dict(state)
    assert [b["x"].tolist() for b in fresh] == first[2:]
    assert [b["x"].tolist() for b in fresh] == first  # the skip applies once
    fresh.sampler.set_epoch(1)
    assert [b["x"].tolist() for b in fresh] != first  # a new order each epoch


@pytest.mark.parametrize(
    "stop_at, workers",
    [(3, 0), (8, 0), (5, 2)],  # mid-epoch, the epoch boundary (8 batches an epoch), 2 workers
)
def test_a_stopped_top_tagging_run_resumes_on_the_same_jets_to_the_same_weights(
    stop_at, workers, compose_cfg, tmp_path
):
    # the streaming jet loader: the epoch's chunk order and the batches already trained on
    # come back from the checkpoint (it replayed the previous epoch's order, and restarted a
    # stopped epoch from its first batch); dropout 0.1, so the RNG must line up too
    from conftest import TOP_TINY, SignalAt

    from seal.train import run

    common = [
        "+experiment=top_baseline",
        *TOP_TINY,
        "trainer.limit_train_batches=null",
        "trainer.limit_val_batches=null",
        "test=false",
        "trainer.max_epochs=2",
        "ckpt_path=auto",
        f"data.num_workers={workers}",
    ]
    run(compose_cfg(common, tmp_path / "straight"))
    with pytest.raises(SystemExit):
        run(compose_cfg(common, tmp_path / "stopped"), callbacks=[SignalAt(stop_at)])
    run(compose_cfg(common, tmp_path / "stopped"))
    ends = [
        torch.load(tmp_path / run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        for run_dir in ("straight", "stopped")
    ]
    assert ends[0]["global_step"] == ends[1]["global_step"] == 16
    for name, value in ends[0]["state_dict"].items():
        assert torch.equal(value, ends[1]["state_dict"][name]), name
