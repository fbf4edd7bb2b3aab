"""scripts/bench.py's end-to-end epoch timing, on CPU with the jet fixture."""

import sys
from pathlib import Path

import torch
from conftest import FIXTURE_JETS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from epoch_timing import train_epochs


def test_epoch_timing_runs_a_real_short_training_per_experiment():
    seconds, utilisation = train_epochs("top_gsymm", FIXTURE_JETS, torch.device("cpu"),
                                        bf16=False, epochs=2, batches=2)  # fmt: skip
    assert 0 < seconds < 60 and utilisation is None  # no GPU to sample on CPU
