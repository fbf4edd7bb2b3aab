import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from seal.reports.compare import compare

# the symmetry node of a GSEAL run (λ = 1, β_max = 0.5), as run folders store it
GSEAL_RUN = {
    "penalty": {"_target_": "seal.symmetry.GSEAL"},
    "weight": 1.0,
    "group": {"_target_": "seal.groups.Lorentz", "beta_max": 0.5},
}


def fake_run(
    folder,
    task,
    net,
    metrics,
    symmetry=None,
    n_train=None,
    seed=0,
    test_pt=None,
    overrides=(),
    shifts=None,
):
    (folder / ".hydra").mkdir(parents=True)
    cfg = {
        "task_name": task,
        "seed": seed,
        "symmetry": symmetry,
        "model": {"net": {"_target_": f"seal.models.{net}"}},
        "data": {"test_pt": test_pt, "augment": None, "n_train": n_train},
    }
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    OmegaConf.save(
        OmegaConf.create([f"seed={seed}", *overrides]), folder / ".hydra" / "overrides.yaml"
    )
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if shifts is not None:
        np.savetxt(folder / "output_shift.csv", shifts, header="shift", comments="")


def tagging(auc, rej=10.0, params=1000, step=2.0, err=None):
    metrics = {
        "test/auc": auc,
        "test/rej@0.3": rej,
        "boost/auc@0.5": auc - 0.1,
        "boost/rej@0.3@0.5": rej / 2,
        "boost/auc@0": auc,
        "boost/rej@0.3@0": rej,
        "model/params": params,
        "train/step_ms": step,
    }
    if err is not None:
        metrics.update(
            {f"{k}_err": err for k in list(metrics) if k.startswith(("test/", "boost/"))}
        )
    return metrics


def test_compare_merges_extrapolation_averages_seeds_and_lists_failures(tmp_path):
    top, dimuon = tmp_path / "top", tmp_path / "dimuon"
    fake_run(
        top / "0",
        "top_baseline",
        "ConstituentTransformer",
        tagging(0.9, 40, 5000, 3.0, err=0.0123),
        shifts=np.logspace(-4, -1, 50),
    )
    fake_run(
        top / "1",
        "top_baseline_extrap",
        "ConstituentTransformer",
        tagging(0.8, 12),
        test_pt=[800, None],
    )
    gsymm = GSEAL_RUN
    fake_run(
        top / "2",
        "top_gsymm",
        "ConstituentTransformer",
        tagging(0.88, 30, 5000, 6.0),
        gsymm,
        shifts=np.logspace(-6, -3, 50),
    )
    fake_run(top / "3", "top_invariant", "InvariantNet", None)  # crashed
    for i, (n, seed, auc) in enumerate(
        [(8000, 1, 0.70), (8000, 2, 0.72), (80000, 1, 0.80), (80000, 2, 0.82)]
    ):
        fake_run(dimuon / str(i), "dimuon_general", "MLP", tagging(auc), n_train=n, seed=seed)
        fake_run(
            dimuon / str(i + 10),
            "dimuon_invariant",
            "InvariantNet",
            tagging(0.75),
            n_train=n,
            seed=seed,
        )
    text = compare([top, dimuon], tmp_path / "out")
    top_part = text.split("### top")[1]
    # one run: its bootstrap error; the extrapolation run counted beside the nominal one
    assert (
        "| transformer | none | 1+1 | 0.900 ± 0.012 | 40.0 ± 0.012 | 0.800 ± 0.012 | "
        "20.0 ± 0.012 | 0.800 | 12.0 | 5,000 | 3.00 |"
    ) in top_part
    assert (
        "| transformer | gsymm λ=1 | 1 | 0.880 | 30.0 | 0.780 | 15.0 | – | – | 5,000 | 6.00 |"
        in (top_part)
    )
    assert "1 run(s) did not finish:** top_invariant (3)" in text
    dimuon_part = text.split("### dimuon")[1].split("### top")[0]
    assert "Main table at n_train = 80,000" in dimuon_part
    assert "| MLP | none | 2 | 0.810 ± 0.014 |" in dimuon_part  # mean ± sample std of 0.80, 0.82
    assert "| MLP | none | 0.710 ± 0.014 | 0.810 ± 0.014 |" in dimuon_part
    assert "| invariant | none | 0.750 ± 0 | 0.750 ± 0 |" in dimuon_part
    for name in (
        "compare.md",
        "compare.csv",
        "dimuon_auc_vs_size.png",
        "top_vs_boost.png",
        "top_output_shift.png",
    ):
        assert (tmp_path / "out" / name).exists(), name
    assert "top_output_shift.png" in top_part and "dimuon_output_shift" not in text


def test_compare_shows_a_column_for_each_varying_override_and_groups_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    gsymm = GSEAL_RUN
    for i, (truth, seed, auc) in enumerate(
        [("exact", 1, 0.90), ("exact", 2, 0.92), ("exact", 3, 0.94), ("spurion", 1, 0.80)]
    ):
        fake_run(
            sweep / str(i),
            "top_gsymm",
            "ConstituentTransformer",
            tagging(auc, err=0.01),
            gsymm,
            seed=seed,
            overrides=[f"data.truth={truth}"],
        )
    text = compare([sweep], tmp_path / "out")
    assert "| model | variant | data.truth | seeds | AUC |" in text
    # the two truths are two rows, not four runs averaged into one
    assert "| transformer | gsymm λ=1 | exact | 3 | 0.920 ± 0.02 |" in text
    assert "| transformer | gsymm λ=1 | spurion | 1 | 0.800 ± 0.01 |" in text


def test_a_constrained_run_is_named_by_its_target_beside_a_fixed_weight(tmp_path):
    """λ of a constrained run is found in training (symmetry.weight is null): its row names the
    target ε, and the λ map leaves it out instead of failing on the missing λ."""
    from seal.reports.maps import ratios
    from seal.reports.runs import find_runs
    from seal.reports.sweep import _label

    constrained = {**GSEAL_RUN, "weight": None, "constraint": {"target": 0.003}}
    sweep = tmp_path / "sweep"
    for i, (symmetry, auc) in enumerate([(GSEAL_RUN, 0.90), (constrained, 0.92)]):
        fake_run(sweep / str(i), "top_gsymm", "ConstituentTransformer", tagging(auc), symmetry)
    text = compare([sweep], tmp_path / "out")
    assert "| transformer | gsymm λ=1 |" in text and "| transformer | gsymm ε=0.003 |" in text
    runs = find_runs(sweep)
    assert sorted(_label(r, False) for r in runs) == [
        "gsymm, ε=0.003, β_max=0.5",
        "gsymm, λ=1, β_max=0.5",
    ]
    fake_run(sweep / "2", "top_baseline", "ConstituentTransformer", tagging(0.8))
    rows = ratios(find_runs(sweep), "test/auc")
    assert [(r["lambda"], r["ratio"]) for r in rows] == [(1.0, pytest.approx(0.9 / 0.8))]


@pytest.mark.parametrize(
    ("overrides", "name", "label"),
    [
        (["+experiment=top_baseline"], "ConstituentTransformer", "transformer"),
        (["+experiment=top_lloca_beam"], "LLoCaTagger+references", "LLoCa + references"),
        (["+experiment=top_hybrid"], "HybridNet", "hybrid"),
        (["+experiment=top_lgatr"], "LGATrTagger", "L-GATr"),
        (["+experiment=top", "model/backbone=part"], "ParTTagger", "ParT"),
        (
            ["+experiment=top", "model/backbone=part", "treatment=lloca_refs_gsymm"],
            "LLoCaTagger+references[ParTTagger]",
            "LLoCa + references (ParT)",
        ),
        (
            [
                "+experiment=top",
                "model/backbone=lgatr_slim",
                "model.net.backbone.time_reference=true",
            ],
            "LGATrSlimTagger+references",
            "L-GATr-slim + references",
        ),
    ],
)
def test_composed_runs_are_named_by_their_pair(overrides, name, label, compose_cfg, tmp_path):
    """Backbone × treatment runs keep the names the earlier model configs gave (so results tables
    group them the same way); other backbones are named inside their wrapper."""
    from seal.reports.compare import model_label
    from seal.reports.runs import load_run

    cfg = compose_cfg(overrides)
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(cfg, tmp_path / ".hydra" / "config.yaml")
    run = load_run(tmp_path)
    assert run["model"] == name and model_label(run["model"]) == label


def test_accuracy_against_precision_is_a_table_and_a_figure(tmp_path):
    def with_syst(auc, rej, total, seed):
        metrics = tagging(auc, rej=rej)
        for eff in (0.5, 0.3):
            metrics[f"test/rej@{eff}"] = rej
            metrics[f"test/rej@{eff}_err"] = 1.0
            metrics[f"syst/total/rej@{eff}"] = total
            metrics[f"syst/total/rej@{eff}_err"] = 0.002
            metrics[f"syst/detector/rej@{eff}"] = total
            metrics[f"syst/detector/rej@{eff}_err"] = 0.002
        return metrics

    sweep = tmp_path / "sweep"
    for i, (net, rej, total) in enumerate(
        [
            ("ConstituentTransformer", 50.0, 0.04),
            ("ConstituentTransformer", 54.0, 0.06),
            ("LGATrTagger", 80.0, 0.10),
        ]
    ):
        seed = i if net == "ConstituentTransformer" else 0
        fake_run(sweep / str(i), "top_x", net, with_syst(0.9, rej, total, seed), seed=seed)
    fake_run(sweep / "old", "top_x", "InvariantNet", tagging(0.8))  # no systematics: no row
    text = compare([sweep], tmp_path / "out")
    table = text[text.index("Accuracy vs precision") :]
    assert "| transformer | none | 2 | 52.0 ± 2.8 | 5.00 ± 1.41 |" in table  # mean ± std over seeds
    assert "| L-GATr | none | 1 | 80.0 ± 1 | 10.00 ± 0.20 |" in table  # one run: bootstrap
    assert "invariant" not in table
    assert (tmp_path / "out" / "top_accuracy_vs_precision.png").exists()
