"""The streaming jet loader under two-process DDP (gloo, CPU): both ranks step equally, every
training jet comes once per epoch, and a run stopped by SIGTERM resumes on the same jets to
the same weights."""

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from seal.data.jet_datamodule import JetDataModule

JOB = Path(__file__).with_name("ddp_jets_job.py")
FIXTURE = Path(__file__).with_name("fixture_jets.h5")


def ddp_run(out: Path, stop_at: int | None = None, ranks="0,1") -> subprocess.CompletedProcess:
    args = [sys.executable, str(JOB), str(out)] + ([str(stop_at), ranks] if stop_at else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=600)


def batches(out: Path, rank: int) -> list[dict]:
    lines = (out / f"batches_rank{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> Path:
    """An uninterrupted two-process run (2 epochs, 4 batches of 32 a rank an epoch)."""
    out = tmp_path_factory.mktemp("ddp") / "straight"
    done = ddp_run(out)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_both_ranks_step_equally_and_every_training_jet_comes_once_an_epoch(straight_run):
    out = straight_run
    module = JetDataModule(FIXTURE, split=(0.8, 0.1, 0.1))
    module.setup()
    training = np.flatnonzero(module.selected["train"]).tolist()
    straight = [batches(out, rank) for rank in (0, 1)]
    assert len(straight[0]) == len(straight[1]) == 8  # both ranks step equally: 2 epochs × 4
    for epoch in (0, 1):
        seen = Counter(
            row for rank in straight for b in rank if b["epoch"] == epoch for row in b["rows"]
        )
        assert sorted(seen) == training and set(seen.values()) == {1}  # every jet once


@pytest.mark.parametrize(
    "stop_at, ranks",
    [(5, "0,1"), (6, "1"), pytest.param(4, "0,1", marks=pytest.mark.slow)],
    ids=["mid-epoch", "one-rank-signalled", "epoch-boundary"],
)
def test_a_stopped_ddp_run_resumes_on_the_same_jets_to_the_same_weights(
    straight_run, tmp_path, stop_at, ranks
):  # 4 batches a rank an epoch: step 5 and 6 are mid-epoch, step 4 the epoch boundary; a
    # signal for rank 1 alone stops both ranks at the same step too (they agree on the stop)
    stopped = ddp_run(tmp_path / "stopped", stop_at, ranks)
    assert stopped.returncode == 143, stopped.stderr[-3000:]  # 128 + SIGTERM, on the launcher
    record = json.loads((tmp_path / "stopped" / "metrics.json").read_text())
    assert record["status"] == "incomplete" and record["step"] == stop_at
    resumed = ddp_run(tmp_path / "stopped")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for rank in (0, 1):
        # the same jets at every step, the stopped run's and the resumed run's together
        assert batches(tmp_path / "stopped", rank) == batches(straight_run, rank)
    ends = [
        torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)
        for folder in (straight_run, tmp_path / "stopped")
    ]
    assert ends[0]["global_step"] == ends[1]["global_step"] == 8
    for name, value in ends[0]["state_dict"].items():
        assert torch.equal(value, ends[1]["state_dict"][name]), name
