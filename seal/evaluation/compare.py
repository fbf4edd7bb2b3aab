"""Compare models side by side across sweeps: one Markdown table per workload, and figures.

Rows are (model, variant): the network (MLP, transformer, invariant, hybrid, L-GATr) and the
symmetry treatment (none, augment, gsymm, dsymm with λ). Columns: AUC and 1/ε_B at ε_S = 0.3 on
the nominal test set and with every test event boosted by |β| = 0.5, the same above the pT cut
(from the ``*_extrap`` runs), parameter count and training step time. Runs that differ only in
seed are averaged (mean ± standard deviation). Where the training-set size varies (the dimuon
learning curve), the main table uses the largest size and a second table plus
``auc_vs_size.png`` show AUC against size.
"""

import csv
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from seal.evaluation.plots import plot_curves
from seal.evaluation.report import find_runs

MODEL_NAMES = {
    "MLP": "MLP",
    "ConstituentTransformer": "transformer",
    "InvariantNet": "invariant",
    "HybridNet": "hybrid",
    "LGATrTagger": "L-GATr",
}
NOMINAL = {
    "AUC": "test/auc",
    "1/ε_B@0.3": "test/rej@0.3",
    "AUC β=0.5": "boost/auc@0.5",
    "1/ε_B@0.3 β=0.5": "boost/rej@0.3@0.5",
}
EXTRAP = {"AUC > pT cut": "test/auc", "1/ε_B@0.3 > pT cut": "test/rej@0.3"}


def _variant(run: dict) -> str:
    if run["loss"] in ("gsymm", "dsymm"):
        return f"{run['loss']} λ={float(run['weight']):g}"
    return run["loss"]


def _stat(values: list[float]) -> str:
    """One number (3 significant digits; AUC-like values in [0, 1] to 3 decimals), or mean ± std."""

    def fmt(x):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        return f"{x:.3f}" if abs(x) < 1 else f"{x:#.3g}"

    if not values:
        return "–"
    if len(values) == 1:
        return fmt(values[0])
    return f"{fmt(float(np.mean(values)))} ± {fmt(float(np.std(values, ddof=1)))}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def _group(runs):
    groups = defaultdict(list)
    for run in runs:
        groups[(MODEL_NAMES.get(run["model"], run["model"]), _variant(run))].append(run)
    return groups


def _values(runs, key):
    return [float(r["metrics"][key]) for r in runs if key in r["metrics"]]


def _workload_report(name: str, runs: list[dict], out: Path) -> tuple[str, list[dict]]:
    nominal = [r for r in runs if "test_pt" not in r]
    extrap = [r for r in runs if "test_pt" in r]
    sizes = sorted({int(r["n_train"]) for r in nominal if r["n_train"] != ""})
    if len(sizes) > 1:  # learning curve: the main table at the largest training set
        main = [r for r in nominal if r["n_train"] != "" and int(r["n_train"]) == sizes[-1]]
    else:
        main = nominal
    header = ["model", "variant", "runs", *NOMINAL, *EXTRAP, "params", "step [ms]"]
    rows, records = [], []
    groups, extrap_groups = _group(main), _group(extrap)
    for key in sorted(set(groups) | set(extrap_groups)):
        g, e = groups.get(key, []), extrap_groups.get(key, [])
        params = _values(g or e, "model/params")
        cells = [_stat(_values(g, m)) for m in NOMINAL.values()]
        cells += [_stat(_values(e, m)) for m in EXTRAP.values()]
        rows.append(
            [
                *key,
                f"{len(g)}+{len(e)}" if e else str(len(g)),
                *cells,
                f"{int(params[0]):,}" if params else "–",
                _stat(_values(g or e, "train/step_ms")),
            ]
        )
        records.append(dict(zip(header, rows[-1])))
    text = f"### {name}\n\n"
    if len(sizes) > 1:
        text += f"Main table at n_train = {sizes[-1]:,}; mean ± std over seeds.\n\n"
    text += _table(header, rows)
    if len(sizes) > 1:
        text += "\n" + _learning_curve(name, nominal, sizes, out)
    text += "\n" + _boost_figure(name, groups, out)
    return text, records


def _learning_curve(name, runs, sizes, out):
    by_size = defaultdict(lambda: defaultdict(list))
    for key, group in _group(runs).items():
        for run in group:
            if "test/auc" in run["metrics"]:
                by_size[key][int(run["n_train"])].append(float(run["metrics"]["test/auc"]))
    rows = [[*key, *(_stat(by_size[key].get(s, [])) for s in sizes)] for key in sorted(by_size)]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in sorted(by_size):
        xs = [s for s in sizes if by_size[key].get(s)]
        means = [np.mean(by_size[key][s]) for s in xs]
        stds = [np.std(by_size[key][s], ddof=1) if len(by_size[key][s]) > 1 else 0 for s in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=" ".join(key))
    ax.set(xscale="log", xlabel="training events", ylabel="test AUC", title=f"{name}: AUC vs size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / f"{name}_auc_vs_size.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    header = ["model", "variant", *(f"AUC n={s:,}" for s in sizes)]
    return f"AUC vs training size (mean ± std over seeds), figure `{path.name}`:\n\n" + _table(
        header, rows
    )


def _boost_figure(name, groups, out):
    curves = {}
    for key, group in sorted(groups.items()):
        betas = sorted(
            {
                float(k.split("@")[-1])
                for r in group
                for k in r["metrics"]
                if k.startswith("boost/rej@0.3@") and not k.endswith("_err")
            }
        )
        if betas:
            ys = [np.mean(_values(group, f"boost/rej@0.3@{b:g}")) for b in betas]
            curves[" ".join(key)] = (betas, ys)
    if not curves:
        return ""
    path = out / f"{name}_rej_vs_boost.png"
    fig = plot_curves(
        curves,
        path,
        "test boost |β| (random directions)",
        "1/ε_B at ε_S = 0.3",
        f"{name}: rejection vs boost of the test events",
    )
    plt.close(fig)
    return f"Rejection vs test boost: `{path.name}`.\n"


def compare(sweep_dirs: list[Path], out: Path) -> str:
    """Write ``compare.md``, ``compare.csv`` and the figures into ``out``; return the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [run for d in sweep_dirs for run in find_runs(Path(d))]
    finished = [r for r in runs if r["status"] == "finished"]
    text, records = "# Model comparison\n\n", []
    for workload in sorted({r["task"].split("_")[0] for r in finished}):
        part, rows = _workload_report(
            workload, [r for r in finished if r["task"].split("_")[0] == workload], out
        )
        text += part + "\n"
        records += [{"workload": workload, **row} for row in rows]
    failed = [r for r in runs if r["status"] != "finished"]
    if failed:
        text += (
            f"**{len(failed)} run(s) did not finish:** "
            + ", ".join(f"{r['task']} ({r['run']})" for r in failed)
            + "\n"
        )
    (out / "compare.md").write_text(text)
    if records:
        with open(out / "compare.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(records[0]))
            writer.writeheader()
            writer.writerows(records)
    return text
