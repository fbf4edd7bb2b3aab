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
