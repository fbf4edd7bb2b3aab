"""A run under submitit (what Hydra's submitit launcher does on SLURM), stopped by submitit's
requeue signal, checkpoints its step, is requeued by submitit and finishes bit for bit — on
submitit's local executor, the one submitit provides for testing."""

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

submitit = pytest.importorskip("submitit")
cloudpickle = pytest.importorskip("cloudpickle")

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# the toy: 64 examples in batches of 16, three epochs (12 steps), the CPU of the test machine
TOY = [
    "+experiment=toy_gsymm",
    "data.n_train=64",
    "data.n_val=32",
    "data.n_test=32",
    "data.batch_size=16",
    "trainer.max_epochs=3",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "evaluation.betas=[0.0,0.5]",
    "ckpt_path=auto",
]


class TrainJob:
    """What Hydra's submitit launcher submits: a callable whose ``checkpoint`` resubmits the
    same job (``BaseSubmititLauncher.checkpoint``); here it also sends itself the requeue
    signal at step ``stop_at`` of its first attempt, as SLURM would before the time limit."""

    def __init__(self, out: str, stop_at: int | None):
        self.out, self.stop_at = out, stop_at

    def __call__(self) -> dict:
        import pytorch_lightning as pl
        from hydra import compose, initialize_config_dir
        from omegaconf import open_dict

        from seal.train import run

        stop_at = self.stop_at

        class Requeue(pl.Callback):
            def on_train_batch_end(self, trainer, *args):
                if trainer.global_step == stop_at:
                    os.kill(os.getpid(), signal.SIGUSR2)  # submitit's signal

        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            cfg = compose("train", overrides=TOY)
        with open_dict(cfg):
            cfg.paths.output_dir = self.out
        return run(cfg, callbacks=[Requeue()] if stop_at else [])

    def checkpoint(self) -> "submitit.helpers.DelayedSubmission":
        return submitit.helpers.DelayedSubmission(TrainJob(self.out, None))


def test_submitits_requeue_signal_checkpoints_the_step_and_the_requeued_job_ends_bit_for_bit(
    tmp_path,
):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job class travels whole
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="local")
    executor.update_parameters(timeout_min=10)
    straight = executor.submit(TrainJob(str(tmp_path / "straight"), None)).result()
    job = executor.submit(TrainJob(str(tmp_path / "requeued"), 6))
    finished = job.result()  # the second attempt's: submitit requeued the job once
    log = Path(job.paths.stderr).read_text()
    assert "received SIGUSR2: stopping after this batch" in log
    assert "checkpoint written to" in log and "submitit requeues it" in log
    assert "Requeued job" in Path(job.paths.stdout).read_text() + log
    assert finished["trainer/global_step"] == straight["trainer/global_step"] == 12
    weights = [
        torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=False)
        for name in ("straight", "requeued")
    ]
    for name, value in weights[0]["state_dict"].items():
        assert torch.equal(value, weights[1]["state_dict"][name]), name
    assert finished["test/mse"] == straight["test/mse"]
    record = json.loads((tmp_path / "requeued" / "metrics.json").read_text())
    assert "status" not in record and record["trainer/global_step"] == 12  # complete now
