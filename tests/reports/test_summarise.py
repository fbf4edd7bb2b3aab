"""scripts/results/summarise.py on fake result folders: the tables docs/results.md quotes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from test_compare import fake_run, tagging

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "results" / "summarise.py"
LLOCA = {"_target_": "seal.symmetry.GSEAL"}


def summarise(root: Path, out: Path) -> str:
    """What ``scripts/results/summarise.py --root ROOT --out OUT`` prints."""
    command = [sys.executable, str(SCRIPT), "--root", str(root), "--out", str(out)]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


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
    text = summarise(tmp_path / "root", out)
    # two seeds: mean ± sample std (0.91 ± 0.01414, 50 ± 14.1); passing background 800/40, 800/60
    assert "| transformer | 2 | 0.910 ± 0.014 | 50.0 ± 14.1 | 17 |" in text
    # one run: its value ± bootstrap error, marked ᵇ; passing background 500 / 50
    assert "| transformer gsymm λ=1 | 1 | 0.910 ± 0.010ᵇ | 50.0 ± 0.0ᵇ | 10 |" in text
    assert "| transformer | 2 | 0.820 ± 0.028 | 10.5 ± 0.7 |" in text  # extrapolation
    # data efficiency: single seeds show the value alone; the table's runs are the 8 000-jet point
    assert "| transformer | 0.810 | 0.830 | 0.910 ± 0.014 | 1/1/2 |" in text
    for name in ("top_table.csv", "top_extrap.csv", "top_efficiency.csv", "top_vs_boost.png"):
        assert (out / name).exists(), name


def composed_run(folder: Path, compose_cfg, overrides, metrics, seed=0) -> None:
    """A run folder whose config is what ``train.py`` would save for these overrides."""
    from omegaconf import OmegaConf

    cfg = compose_cfg([*overrides, f"seed={seed}"])
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"seed={seed}", *overrides]), folder / ".hydra" / "overrides.yaml"
    )
    (folder / "metrics.json").write_text(json.dumps(metrics))
    predictions(folder, 400)


def test_the_part_block_and_the_dial_are_tabulated_from_composed_runs(tmp_path, compose_cfg):
    root, out = tmp_path / "root", tmp_path / "out"
    part = ["+experiment=top", "model/backbone=part"]

    def metrics(auc, shift=None):
        found = {**tagging(auc, 40.0), "boost/auc@0.9": auc - 0.2, "boost/rej@0.3@0.9": 20.0}
        return found if shift is None else {**found, "references/shift_mean": shift}

    for seed in (0, 1):
        composed_run(
            root / "part" / f"none{seed}",
            compose_cfg,
            [*part, "treatment=none"],
            metrics(0.90 + seed / 100),
            seed,
        )
        composed_run(
            root / "part" / f"refs{seed}",
            compose_cfg,
            [*part, "treatment=lloca_refs"],
            metrics(0.93, 0.05 + seed / 100),
            seed,
        )
        composed_run(
            root / "dial" / f"ten{seed}",
            compose_cfg,
            [*part, "treatment=lloca_refs_gsymm", "symmetry.weight=10"],
            metrics(0.92, 0.01),
            seed,
        )
    composed_run(
        root / "part" / "lloca", compose_cfg, [*part, "treatment=lloca"], metrics(0.91, None)
    )
    composed_run(
        root / "part" / "one",
        compose_cfg,
        [*part, "treatment=lloca_refs_gsymm"],
        metrics(0.925, 0.03),
    )
    composed_run(
        root / "slim" / "slim",
        compose_cfg,
        ["+experiment=top", "model/backbone=lgatr_slim"],
        metrics(0.89),
    )
    text = summarise(root, out)
    assert "| ParT | 2 | 0.905 ± 0.007 | 40.0 ± 0.0 |" in text
    assert "| LLoCa + references (ParT) gsymm λ=1 | 1 |" in text and "| L-GATr-slim | 1 |" in text
    assert (
        "| λ = 0 (LLoCa + references) | 2 | 0.930 ± 0.000 | 40.0 ± 0.0 | 0.730 ± 0.000 | "
        "0.0550 ± 0.0071 |" in text
    )
    assert "| λ = 1 | 1 |" in text and "| λ = 10 | 2 |" in text and "| exact (LLoCa) | 1 |" in text
    for name in ("top_part_table.csv", "top_part.png", "top_dial.csv", "top_dial.png"):
        assert (out / name).exists(), name


def test_the_precision_study_is_tabulated_against_precision_and_against_lambda(
    tmp_path, compose_cfg
):
    root, out = tmp_path / "root", tmp_path / "out"
    detector = ["data=top_detector"]

    def metrics(rej, total, scale):
        found = tagging(0.9, rej)
        for eff in ("0.5", "0.3"):
            found[f"test/rej@{eff}"] = rej
            found[f"syst/total/rej@{eff}"] = total
            found[f"syst/detector/rej@{eff}"] = 0.6 * total
            found[f"syst/modelling/rej@{eff}"] = 0.8 * total
            found[f"syst/energy_scale/rej@{eff}"] = scale
            found[f"syst/total/rej@{eff}_err"] = 0.5 * total
        found["syst/energy_scale/auc"] = scale / 100
        return {**found, "syst/seconds": 10.0, "time/fit_s": 250.0 if rej == 50.0 else 100.0}

    for seed in (0, 1):
        composed_run(
            root / "precision_table" / f"plain{seed}",
            compose_cfg,
            ["+experiment=top_baseline", *detector],
            metrics(40.0 + 10 * seed, 0.10 + 0.02 * seed, 0.05),
            seed,
        )
        for lam, scale in ((1, 0.03), (10, 0.01 + 0.002 * seed)):
            composed_run(
                root / "precision_escale" / f"{lam}_{seed}",
                compose_cfg,
                [
                    "+experiment=top",
                    "treatment=gsymm",
                    "symmetry/group=energy_scale",
                    f"symmetry.weight={lam}",
                    *detector,
                ],
                metrics(30.0, 0.08, scale),
                seed,
            )
    composed_run(
        root / "precision_table" / "augment",
        compose_cfg,
        ["+experiment=top_augment", *detector],
        metrics(35.0, 0.09, 0.02),
    )
    composed_run(  # the plain run evaluated again at ±5 % (scripts/evaluate.py --out ROOT/escale5)
        root / "escale5" / "plain",
        compose_cfg,
        ["+experiment=top_baseline", *detector],
        metrics(40.0, 0.3, 0.2),
    )
    composed_run(
        root / "precision_table_eq" / "lgatr",
        compose_cfg,
        ["+experiment=top_lgatr", *detector],
        metrics(80.0, 0.2, 0.1),
    )
    composed_run(  # its systematics timed again (precision.sh cost → ROOT/precision_cost)
        root / "precision_cost" / "lgatr",
        compose_cfg,
        ["+experiment=top_lgatr", *detector],
        {**metrics(80.0, 0.2, 0.1), "syst/seconds": 30.0},
    )
    text = summarise(root, out)
    cost = text[text.index("## the systematic evaluation's cost") : text.index("## SEAL along")]
    assert "| L-GATr | 1 | 0.30 |" in cost and "transformer" not in cost  # 30 s / 100 s
    precision = text[text.index("## accuracy vs precision") : text.index("## the systematic")]
    # two seeds: mean ± std (45 ± 7.1; total 0.11 ± 0.014, detector 0.066 ± 0.008, modelling ×0.8)
    assert "| transformer | 2 | 0.900 ± 0.000 | 45.0 ± 7.1 | 0.110 ± 0.014 | 0.066 ± 0.008 |" in (
        precision
    )
    assert (
        "| L-GATr | 1 | 0.900 | 80.0 | 0.200 ± 0.100ᵇ | 0.120 | 0.160 | 0.100 | 80.0 |" in precision
    )
    # detector and modelling @0.3, the total's own bootstrap error, then the systematics' time
    # share: 10 s / 100 s and / 250 s
    assert "| 0.066 ± 0.008 | 0.088 ± 0.011 | 0.055 | 0.07 |" in precision
    assert "gsymm" not in precision  # the energy-scale runs have their own table
    scale = text[text.index("## SEAL along") :]
    assert (
        "| λ = 0 (plain) | 2 | 0.900 ± 0.000 | 0.00050 ± 0.00000 | 45.0 ± 7.1 | 0.0500 ±" in scale
    )
    assert (
        "| λ = 10 | 2 | 0.900 ± 0.000 | 0.00011 ± 0.00001 | 30.0 ± 0.0 | 0.0110 ± 0.0014 |" in scale
    )
    assert "| λ = 1 | 2 |" in scale and "| transformer augment (Lorentz) | 1 |" in scale
    assert "| λ = 0 (plain) | 1 | 0.900 | 0.00200 | 40.0 | 0.2000 |" in text[text.index("±5 %") :]
    for name in (
        "top_precision.csv",
        "top_accuracy_vs_precision.png",
        "top_accuracy_vs_detector_precision.png",
        "top_energy_scale.csv",
        "top_energy_scale.png",
        "top_energy_scale5.csv",
        "top_precision_cost.csv",
    ):
        assert (out / name).exists(), name
