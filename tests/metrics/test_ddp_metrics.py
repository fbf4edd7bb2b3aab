"""Under DDP the numbers are those of the whole split: metrics gathered over ranks, the
evaluation sees every test jet once, each rank resumes its own group-element stream."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seal.metrics.tagging import tagging_metrics
from seal.symmetry import SymmetryRegularizer
from seal.tasks import TaggingTask

JOB = Path(__file__).with_name("ddp_metrics_job.py")
sys.path.insert(0, str(JOB.parent))
from ddp_metrics_job import datamodule, model  # noqa: E402


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    result = subprocess.run(
        [sys.executable, str(JOB), str(out)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def one_process_metrics(out: Path, split: str) -> dict:
    task = TaggingTask(model())
    task.load_state_dict(torch.load(out / "weights.pt"))
    task.eval()
    data = datamodule()
    data.setup("fit")
    loader = data.val_dataloader() if split == "val" else data.test_dataloader()
    with torch.no_grad():
        rows = [(task(b), b["target"], b["weight"]) for b in loader]
    logits, labels, weights = (torch.cat(x).numpy() for x in zip(*rows))
    return tagging_metrics(labels, logits, weights, prefix=f"{split}/")


@pytest.mark.parametrize("split", ["val", "test"])
def test_metrics_cover_the_whole_split_on_every_rank(job, split):
    expected = one_process_metrics(job, split)
    for rank in (0, 1):
        logged = json.loads((job / f"{split}_rank{rank}.json").read_text())
        for key, value in expected.items():
            assert logged[key] == pytest.approx(value, rel=1e-6, abs=1e-6), (rank, key)


def test_the_evaluation_sees_every_test_jet_once(job):
    data = datamodule()
    data.setup("test")
    rows = np.loadtxt(job / "predictions.csv", delimiter=",", skiprows=1)
    assert sorted(rows[:, 0].astype(int)) == np.flatnonzero(data.selected["test"]).tolist()


def test_each_rank_resumes_its_own_group_element_stream(job):
    saved = torch.load(job / "last.ckpt", weights_only=False)["callbacks"]
    (state,) = [v for k, v in saved.items() if k.startswith("SymmetryRegularizer")]
    ranks = [torch.load(job / f"generator_rank{r}.pt") for r in (0, 1)]
    assert len(state["generators"]) == 2 and not torch.equal(ranks[0], ranks[1])
    for rank in (0, 1):
        assert torch.equal(state["generators"][rank], ranks[rank])
        resumed = SymmetryRegularizer("gsymm", seed=1)
        resumed._rank, resumed._world = rank, 2  # as setup() leaves them before the restore
        resumed.load_state_dict(state)
        assert torch.equal(resumed._generator.get_state(), ranks[rank])
