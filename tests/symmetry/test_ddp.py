import subprocess
import sys
from pathlib import Path

import pytest
import torch

JOB = Path(__file__).with_name("ddp_job.py")


@pytest.mark.parametrize("penalty", ["gsymm", "dsymm"])
def test_two_process_ddp_keeps_replicas_identical(tmp_path, penalty):
    # ranks draw different group elements (seed + rank) and different data shards; the
    # all-reduced gradients must keep their weights identical
    result = subprocess.run(
        [sys.executable, str(JOB), str(tmp_path), penalty],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-3000:])
    start, rank0, rank1 = (
        torch.load(tmp_path / f) for f in ("start_rank0.pt", "end_rank0.pt", "end_rank1.pt")
    )
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
        assert not torch.equal(value, start[name]), name


def test_a_constrained_lambda_is_the_same_on_both_ranks_at_every_step(tmp_path):
    # each rank's own shard gives another penalty; the update averages them over the ranks
    result = subprocess.run(
        [sys.executable, str(JOB), str(tmp_path), "gsymm", "constraint"],
        cwd=tmp_path,  # the trainer's root folder: constraint.csv goes there
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (result.stdout[-1500:], result.stderr[-3000:])
    rank0, rank1 = (torch.load(tmp_path / f"lambda_rank{r}.pt") for r in (0, 1))
    assert len(rank0) == len(rank1) == 5
    for step, (a, b) in enumerate(zip(rank0, rank1)):
        assert torch.equal(a, b), (step, a, b)
    assert len({float(w[0]) for w in rank0}) == 5  # λ moved at every step
    weights = [torch.load(tmp_path / f"end_rank{r}.pt") for r in (0, 1)]
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
