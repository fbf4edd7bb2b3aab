"""Every experiment config composes and trains one step in-process (discovered, not listed)."""

import json
import math
from pathlib import Path

import pytest
from conftest import CONFIG_DIR, TINY

from seal.train import run

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def test_experiments_are_discovered():
    assert {"toy_baseline", "toy_gsymm", "toy_dsymm", "toy_augment"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_runs_one_step(experiment, compose_cfg, tmp_path):
    cfg = compose_cfg([f"+experiment={experiment}", *TINY])
    assert cfg.task_name == experiment
    metrics = run(cfg)
    assert metrics["trainer/global_step"] == 1
    assert math.isfinite(metrics["boost/mse@0.5"]) and math.isfinite(metrics["zboost/mse@0.5"])
    assert json.loads((tmp_path / "metrics.json").read_text())["test/loss"] == metrics["test/loss"]
    assert (tmp_path / "robustness.csv").exists() and (tmp_path / "robustness.png").exists()
    assert Path(metrics["best_checkpoint"]).exists()
    if cfg.symmetry is not None:
        assert metrics["train/symm_loss"] >= 0 and metrics["val/symm_loss"] >= 0
    else:
        assert "train/symm_loss" not in metrics
