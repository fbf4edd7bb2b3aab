"""Every experiment config composes and trains one step in-process (discovered, not listed)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CONFIG_DIR,
    DIMUON_TINY,
    EXTRAP_TINY,
    HYBRID_TINY,
    INVARIANT_TINY,
    TINY,
    TOP_DATA_TINY,
)
from sklearn.metrics import roc_auc_score

from seal.train import run

EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


def test_experiments_are_discovered():
    assert {"toy_baseline", "toy_gsymm", "toy_dsymm", "toy_augment"} <= set(EXPERIMENTS)


# each top backbone shrunk for one step on the fixture (the paths under model.net.backbone)
BACKBONE_TINY = {
    "transformer": ["model.net.backbone.dim=16", "model.net.backbone.ff_dim=16"],
    "torch_transformer": ["model.net.backbone.dim=16", "model.net.backbone.ff_dim=16"],
    "invariant": [
        f"model.net.backbone.{k}" for k in ("hidden=8", "latent_dim=8", "max_particles=6")
    ],
    "lgatr": [
        "model.net.backbone.blocks=1",
        "model.net.backbone.hidden_mv=4",
        "model.net.backbone.hidden_s=8",
    ],
    "lgatr_slim": [
        "model.net.backbone.blocks=1",
        "model.net.backbone.hidden_v=4",
        "model.net.backbone.hidden_s=8",
    ],
    "pelican": ["model.net.backbone.blocks=1", "model.net.backbone.hidden=4"],
    "part": [
        "model.net.backbone.heads=1",
        "model.net.backbone.layers=1",
        "model.net.backbone.embed_dims=[16]",
        "model.net.backbone.pair_dims=[8]",
    ],
    "particlenet": [
        "model.net.backbone.convs=[[4,[8,8]],[4,[16,16]]]",
        "model.net.backbone.fcs=[[16,0.1]]",
    ],
}
# and each treatment's own networks
TREATMENT_TINY = {
    "hybrid": [
        "model.net.hybrid.latent_dim=8",
        *[
            f"model.net.hybrid.invariant.{k}"
            for k in ("hidden=8", "latent_dim=8", "max_particles=6")
        ],
    ],
    **{
        t: ["model.net.canonicalise.hidden=8"]
        for t in ("lloca", "lloca_refs", "lloca_refs_gsymm", "lloca_refs_dsymm")
    },
}


def top_tiny(backbone: str, treatment: str) -> list[str]:
    """Overrides that make +experiment=top with this pair one cheap step on the fixture."""
    return [*TOP_DATA_TINY, *BACKBONE_TINY[backbone], *TREATMENT_TINY.get(treatment, [])]


def tiny_overrides(experiment: str, extrap: bool = False) -> list[str]:
    if experiment.startswith("toy_"):
        return TINY
    if experiment.startswith("top"):
        cfg_dir = CONFIG_DIR / "experiment"
        text = (cfg_dir / f"{experiment}.yaml").read_text()
        backbone = (
            text.split("override /model/backbone: ")[1].split()[0]
            if "override /model/backbone: " in text
            else "transformer"
        )
        treatment = text.split("override /treatment: ")[1].split()[0]
        return top_tiny(backbone, treatment) + (EXTRAP_TINY if extrap else [])
    if experiment.startswith("dimuon_"):
        lgatr = ["model.net.blocks=1", "model.net.hidden_mv=4", "model.net.hidden_s=8"]
        lloca = ["model.net.hidden=8", "model.net.backbone.dim=16", "model.net.backbone.ff_dim=16"]
        tiny = {"invariant": INVARIANT_TINY, "hybrid": HYBRID_TINY, "lgatr": lgatr, "lloca": lloca}
        model = tiny.get(experiment[len("dimuon_") :], [])
        return DIMUON_TINY + model
    raise AssertionError(f"no tiny overrides for {experiment}: add its workload here")


# the stock-PyTorch tagger runs with every top_* experiment that trains the transformer
STOCK = [
    e
    for e in EXPERIMENTS
    if e.startswith("top_") and e.split("_")[1] in ("baseline", "gsymm", "dsymm", "augment")
]
STOCK_TINY = ["model/backbone=torch_transformer"]
EXTRAP = ["+extrap=pt800"]  # the pT-extrapolation overlay, on every top experiment
CASES = [(e, []) for e in EXPERIMENTS] + [(e, STOCK_TINY) for e in STOCK]
CASES += [(e, EXTRAP) for e in EXPERIMENTS if e.startswith("top_")]


def check_predictions(path, test_auc):
    """One row per test jet, each once; sklearn's weighted AUC on the file is test/auc."""
    rows = np.loadtxt(path, delimiter=",", skiprows=1)
    header = path.read_text().splitlines()[0]
    assert header == "index,label,weight,score,score_boost@0.5"
    index, label, weight, score = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    assert len(np.unique(index)) == len(index) and ((score >= 0) & (score <= 1)).all()
    assert roc_auc_score(label, score, sample_weight=weight) == pytest.approx(test_auc, abs=1e-6)


@pytest.mark.parametrize(
    ("experiment", "model"),
    CASES,
    ids=[e + "".join(f"+{m[0].strip('+')}" for _ in m[:1]) for e, m in CASES],
)
def test_experiment_runs_one_step(experiment, model, compose_cfg, tmp_path):
    if "lgatr" in experiment:
        pytest.importorskip("lgatr", reason="the optional extra seal-hep[lgatr] is not installed")
    if "lloca" in experiment or "pelican" in experiment:
        pytest.importorskip("lloca", reason="the optional extra seal-hep[lloca] is not installed")
    extrap = model == EXTRAP
    cfg = compose_cfg([f"+experiment={experiment}", *tiny_overrides(experiment, extrap), *model])
    name = "top_transformer_none" if experiment == "top" else experiment  # top: named by its pair
    assert cfg.task_name + cfg.name_suffix == name + ("_extrap" if extrap else "")
    if extrap:  # the overlay's windows, made tiny for the fixture's 400–800 GeV
        assert list(cfg.data.test_pt) == [600, None] and list(cfg.data.train_pt) == [None, 600]
    metrics = run(cfg)
    assert metrics["trainer/global_step"] >= 1
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test/loss"] == metrics["test/loss"] and math.isfinite(metrics["test/loss"])
    assert Path(metrics["best_checkpoint"]).exists()
    if experiment.startswith("toy_"):
        assert math.isfinite(metrics["boost/mse@0.5"]) and math.isfinite(metrics["zboost/mse@0.5"])
        errors = ["test/mse_err", "boost/mse@0.5_err", "zboost/mse@0.5_err"]
        assert (tmp_path / "robustness.csv").exists() and (tmp_path / "robustness.png").exists()
    else:
        assert 0 <= metrics["test/auc"] <= 1 and 0 <= metrics["boost/auc@0.5"] <= 1
        errors = ["test/auc_err", "test/acc_err", "boost/auc@0.5_err", "boost/rej@0.3@0.5_err"]
        errors += [f"test/rej@{e}_err" for e in (0.3, 0.5, 0.8)]
        names = ["roc", "boost_scan", "output_shift", "pt_bins"]
        if "hybrid" in experiment:
            names.append("mixing")
            assert 0 < metrics["mixing/w_inv_mean"] < 1 and 0 < metrics["val/w_inv"] < 1
        if experiment == "top_lloca_beam":  # how much the tagger leans on its references
            names.append("reference_shift")
            shift, error = metrics["references/shift_mean"], metrics["references/shift_mean_err"]
            assert 0 < shift < 1 and error > 0
        for name in names:
            assert (tmp_path / f"{name}.csv").exists() and (tmp_path / f"{name}.png").exists()
        check_predictions(tmp_path / "predictions.csv", saved["test/auc"])
    spectrum_errors = [saved[f"spectrum/{g}_err"] for g in ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz")]
    assert (tmp_path / "spectrum.png").exists() and min(spectrum_errors) >= 0  # 0: invariant
    for key in errors:  # every compared number comes with its bootstrap error
        assert saved[key] > 0, key  # (inf where the tiny test split cannot fix a rejection)
    assert metrics["train/step_ms"] > 0 and metrics["model/params"] > 0
    if cfg.symmetry is not None:
        assert metrics["train/symm_loss"] >= 0 and metrics["val/symm_loss"] >= 0
    else:
        assert "train/symm_loss" not in metrics
