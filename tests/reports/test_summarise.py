"""scripts/results/summarise.py on fake result folders: the tables docs/results.md quotes."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from test_compare import fake_run, tagging

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "results" / "summarise.py"
LLOCA = {"_target_": "seal.symmetry.GSEAL"}


def predictions(folder: Path, n_background: int) -> None:
    """predictions.csv with ``n_background`` background and as many signal jets."""
    labels = np.r_[np.zeros(n_background), np.ones(n_background)]
    rows = np.c_[np.arange(len(labels)), labels, np.ones_like(labels), labels, labels]
    np.savetxt(folder / "predictions.csv", rows, delimiter=",", header="a,b,c,d,e", comments="")


def make_results(root: Path) -> None:
    gseal = {"weight": 1.0, "penalty": LLOCA, "group": {"beta_max": 0.5}}
    for seed, (auc, rej) in enumerate([(0.90, 40.0), (0.92, 60.0)]):
        run = root / "table" / f"plain{seed}"
        fake_run(run, "top_baseline", "ConstituentTransformer", tagging(auc, rej), seed=seed)
        predictions(run, 800)
    run = root / "table" / "gseal"
    metrics = {**tagging(0.91, 50.0, err=0.01), "boost/auc@0.9": 0.88, "boost/rej@0.3@0.9": 30.0}
    fake_run(run, "top_gsymm", "ConstituentTransformer", metrics, symmetry=gseal)
    predictions(run, 500)
    for seed, auc in enumerate([0.80, 0.84]):
        run = root / "extrap" / f"plain{seed}"
        fake_run(
            run,
            "top_baseline",
            "ConstituentTransformer",
            tagging(auc, 10.0 + seed),
            seed=seed,
            test_pt=[800, None],
        )
        predictions(run, 400)
    for seed, size in enumerate([1000, 3000]):
        fake_run(
            root / "efficiency" / f"plain{size}",
            "top_baseline",
            "ConstituentTransformer",
            tagging(0.80 + size / 1e5),
            seed=seed,
            overrides=[f"data.train_jets={size}"],
        )


def test_summarise_tabulates_every_stage_with_one_rule_for_errors(tmp_path):
    make_results(tmp_path / "root")
    out = tmp_path / "out"
    text = subprocess.run(
        [sys.executable, str(SCRIPT), "--root", str(tmp_path / "root"), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # two seeds: mean ± sample std (0.91 ± 0.01414, 50 ± 14.1); passing background 800/40, 800/60
    assert "| transformer | 2 | 0.910 ± 0.014 | 50.0 ± 14.1 | 17 |" in text
    # one run: its value ± bootstrap error, marked ᵇ; passing background 500 / 50
    assert "| transformer gsymm λ=1 | 1 | 0.910 ± 0.010ᵇ | 50.0 ± 0.0ᵇ | 10 |" in text
    assert "| transformer | 2 | 0.820 ± 0.028 | 10.5 ± 0.7 |" in text  # extrapolation
    # data efficiency: single seeds show the value alone; the table's runs are the 8 000-jet point
    assert "| transformer | 0.810 | 0.830 | 0.910 ± 0.014 | 1/1/2 |" in text
    for name in ("top_table.csv", "top_extrap.csv", "top_efficiency.csv", "top_vs_boost.png"):
        assert (out / name).exists(), name
