"""scripts/bench.py's end-to-end epoch timing, on CPU with the jet fixture."""

import sys
from pathlib import Path

import torch
from conftest import FIXTURE_JETS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from epoch_timing import train_epochs


def test_epoch_timing_runs_a_real_short_training_per_experiment():
    seconds, utilisation = train_epochs(
        "top_gsymm", FIXTURE_JETS, torch.device("cpu"), bf16=False, epochs=2, batches=2
    )
    assert 0 < seconds < 60 and utilisation is None  # no GPU to sample on CPU


def test_model_costs_cover_every_top_experiment_as_configured(capsys):
    import bench

    bench.bench_models(torch.device("cpu"), rounds=1, batch_size=8)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| top_")]
    table = {row.split(" | ")[0][2:]: row.split(" | ") for row in rows}
    assert set(table) == set(bench.MODEL_EXPERIMENTS)  # the extras come with dev
    assert table["top_baseline"][-1].startswith("1.00×")
    assert table["top_pelican"][2] == "32" and table["top_lloca"][2] == "80"
    assert table["top_gsymm"][3] == table["top_baseline"][3] == "71,809"  # same network
