"""Compare models side by side across sweeps: one Markdown table per workload, and figures.

Rows are (model, variant, every override that varies across the workload's runs): the network
(MLP, transformer, invariant, hybrid, L-GATr, LLoCa, PELICAN), the symmetry treatment (none,
augment, gsymm, dsymm with λ), and e.g. ``data.truth`` when a sweep ran over it. Columns: AUC
and 1/ε_B at ε_S = 0.3 on the nominal test set and with every test event boosted by |β| = 0.5,
the same above the pT cut (from the ``+extrap=pt800`` runs), parameter count and training step time.

A row of one run shows ``value ± bootstrap error`` (over test events); runs that differ only in
``seed`` are merged into ``mean ± standard deviation`` over seeds, with the number of seeds in
the ``seeds`` column. Where the training-set size varies (the dimuon learning curve), the main
table uses the largest size and a second table plus ``<workload>_auc_vs_size.png`` show AUC
against size. Figures: ``<workload>_vs_boost.png`` (AUC and rejection vs the test boost, error
bars) and ``<workload>_output_shift.png`` (the per-jet output shifts of every row, overlaid);
where runs have systematic uncertainties (``syst/*``), an accuracy-vs-precision table and
``<workload>_accuracy_vs_precision.png`` (1/ε_B against its total relative uncertainty).
"""

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from seal.evaluation.plots import plot_curves, plot_panels, plot_shift_histograms
from seal.reports.runs import find_runs, varying
from seal.reports.tables import Style, estimate, markdown, seed_count, values, write_records

MODEL_NAMES = {
    "MLP": "MLP",
    "ConstituentTransformer": "transformer",
    "TorchTransformerTagger": "torch transformer",
    "InvariantNet": "invariant",
    "HybridNet": "hybrid",
    "LGATrTagger": "L-GATr",
    "LLoCaTagger": "LLoCa",
    "LLoCaTagger+references": "LLoCa + references",
    "PelicanTagger": "PELICAN",
    "ParTTagger": "ParT",
    "ParticleNetTagger": "ParticleNet",
    "LGATrSlimTagger": "L-GATr-slim",
    "LGATrSlimTagger+references": "L-GATr-slim + references",
}


def model_label(name: str) -> str:
    """A run's model name for tables: ``LLoCaTagger+references[ParTTagger]`` → ``LLoCa +
    references (ParT)``; names not listed in :data:`MODEL_NAMES` stay as they are."""
    wrapper, _, inner = name.partition("[")
    label = MODEL_NAMES.get(wrapper, wrapper)
    return f"{label} ({MODEL_NAMES.get(inner[:-1], inner[:-1])})" if inner else label


NOMINAL = {
    "AUC": "test/auc",
    "1/ε_B@0.3": "test/rej@0.3",
    "AUC β=0.5": "boost/auc@0.5",
    "1/ε_B@0.3 β=0.5": "boost/rej@0.3@0.5",
}
EXTRAP = {"AUC > pT cut": "test/auc", "1/ε_B@0.3 > pT cut": "test/rej@0.3"}
# settings with columns of their own, or handled apart (training size, the extrapolation windows)
NOT_VARIANTS = {"model", "data.n_train", "data.train_pt", "data.val_pt", "data.test_pt"}


def variant(run: dict, show_beta: bool) -> str:
    if run["loss"] in ("gsymm", "dsymm"):
        if run.get("target", "") != "":  # constrained: the target, λ was found in training
            text = f"{run['loss']} ε={float(run['target']):g}"
        else:
            text = f"{run['loss']} λ={float(run['weight']):g}"
        if show_beta and run["beta_max"] != "":
            text += f" β_max={float(run['beta_max']):g}"
        return text
    return run["loss"]


def number(x: float) -> str:
    """3 significant digits; thousands with separators."""
    if not np.isfinite(x):
        return str(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3f}" if abs(x) < 1 else f"{x:#.3g}"


STYLE = Style(value=number)  # one run: value ± bootstrap error; several: mean ± std


class _Rows:
    """Groups a workload's runs into table rows: (model, variant, varying overrides...)."""

    def __init__(self, runs: list[dict]):
        self.keys = [k for k in varying(runs) if k not in NOT_VARIANTS]
        betas = {str(r["beta_max"]) for r in runs if r["loss"] == "gsymm"}
        self.show_beta = len(betas) > 1

    def key(self, run: dict) -> tuple:
        model = model_label(run["model"])
        overrides = tuple(run["overrides"].get(k, "") for k in self.keys)
        return (model, variant(run, self.show_beta), *overrides)

    def group(self, runs: list[dict]) -> dict:
        groups = defaultdict(list)
        for run in runs:
            groups[self.key(run)].append(run)
        return groups

    @staticmethod
    def label(key: tuple) -> str:  # a figure's legend: "hybrid", not "hybrid none"
        return " ".join(str(k) for k in key if k not in ("", "none"))


def _workload_report(name: str, runs: list[dict], out: Path) -> tuple[str, list[dict]]:
    nominal = [r for r in runs if "test_pt" not in r]
    extrap = [r for r in runs if "test_pt" in r]
    sizes = sorted({int(r["n_train"]) for r in nominal if r["n_train"] != ""})
    if len(sizes) > 1:  # learning curve: the main table at the largest training set
        main = [r for r in nominal if r["n_train"] != "" and int(r["n_train"]) == sizes[-1]]
    else:
        main = nominal
    rows_of = _Rows(runs)
    header = ["model", "variant", *rows_of.keys, "seeds", *NOMINAL, *EXTRAP, "params", "step [ms]"]
    rows, records = [], []
    groups, extrap_groups = rows_of.group(main), rows_of.group(extrap)
    for key in sorted(set(groups) | set(extrap_groups)):
        g, e = groups.get(key, []), extrap_groups.get(key, [])
        params = values(g or e, "model/params")
        seeds = f"{seed_count(g)}+{seed_count(e)}" if e else str(seed_count(g))
        cells = [STYLE.cell(g, m) for m in NOMINAL.values()] + [
            STYLE.cell(e, m) for m in EXTRAP.values()
        ]
        rows.append(
            [
                *key,
                seeds,
                *cells,
                f"{int(params[0]):,}" if params else "–",
                STYLE.cell(g or e, "train/step_ms"),
            ]
        )
        records.append(dict(zip(header, rows[-1])))
    text = f"### {name}\n\n"
    text += (
        "One run: value ± bootstrap error over test events; several seeds: mean ± standard "
        "deviation over seeds."
    )
    if extrap:
        text += " `seeds` counts nominal + extrapolation runs."
    if len(sizes) > 1:
        text += f" Main table at n_train = {sizes[-1]:,}."
    text += "\n\n" + markdown(header, rows) + "\n"
    if len(sizes) > 1:
        text += "\n" + _learning_curve(name, rows_of, nominal, sizes, out)
    text += "\n" + boost_figure(name, groups, out)
    text += shift_figure(name, groups, out)
    text += precision_report(name, rows_of, groups, out)
    return text, records


def _learning_curve(name, rows_of, runs, sizes, out):
    by_size = defaultdict(lambda: defaultdict(list))
    for key, group in rows_of.group(runs).items():
        for run in group:
            by_size[key][int(run["n_train"])].append(run)
    rows = [
        [*key, *(STYLE.cell(by_size[key].get(s, []), "test/auc") for s in sizes)]
        for key in sorted(by_size)
    ]
    curves = {}
    for key in sorted(by_size):
        xs = [s for s in sizes if values(by_size[key].get(s, []), "test/auc")]
        points = [estimate(by_size[key][s], "test/auc") for s in xs]
        curves[_Rows.label(key)] = (xs, [p[0] for p in points], [p[1] for p in points])
    path = out / f"{name}_auc_vs_size.png"
    fig = plot_curves(
        curves,
        path,
        "training events",
        "test AUC",
        f"{name}: AUC vs training-set size (error: spread over seeds)",
        logy=False,
        logx=True,
    )
    plt.close(fig)
    header = ["model", "variant", *rows_of.keys, *(f"AUC n={s:,}" for s in sizes)]
    return (
        f"AUC vs training size (mean ± std over seeds), figure `{path.name}`:\n\n"
        + markdown(header, rows)
        + "\n"
    )


def boost_figure(name, groups, out):
    panels = {"auc": {}, "rej@0.3": {}}
    for key, group in sorted(groups.items()):
        prefix = "boost/auc@"
        betas = sorted(
            {
                float(k[len(prefix) :])
                for r in group
                for k in r["metrics"]
                if k.startswith(prefix) and not k.endswith("_err")
            }
        )
        if not betas:
            continue
        for metric, curves in panels.items():
            points = [estimate(group, f"boost/{metric}@{b:g}") for b in betas]
            curves[_Rows.label(key)] = (betas, [p[0] for p in points], [p[1] for p in points])
    if not panels["auc"]:
        return ""
    path = out / f"{name}_vs_boost.png"
    what = f"{name}: tagging vs boost (errors: seed spread, or bootstrap for one run)"
    fig = plot_panels(
        [(panels["auc"], "AUC", False), (panels["rej@0.3"], "1/ε_B at ε_S = 0.3", True)],
        path,
        "boost |β| of every test event (random directions)",
        what,
    )
    plt.close(fig)
    return f"AUC and rejection vs test boost: `{path.name}`.\n"


def shift_figure(name, groups, out):
    shifts = {}
    for key, group in sorted(groups.items()):
        files = [Path(r["path"]) / "output_shift.csv" for r in group]
        arrays = [np.loadtxt(f, delimiter=",", skiprows=1, ndmin=1) for f in files if f.exists()]
        if arrays:
            shifts[_Rows.label(key)] = np.concatenate(arrays)
    if not shifts:
        return ""
    path = out / f"{name}_output_shift.png"
    fig = plot_shift_histograms(
        shifts,
        path,
        "|σ(f(Λx)) − σ(f(x))| per test event",
        f"{name}: output shift under a boost (seeds pooled)",
    )
    plt.close(fig)
    return f"Output shifts under a boost, every row overlaid: `{path.name}`.\n"


PRECISION = (0.5, 0.3)  # ε_S of the accuracy-vs-precision table and figure


def precision_report(name, rows_of, groups, out) -> str:
    """Accuracy against precision: per row 1/ε_B and its total relative systematic
    uncertainty (``syst/total/rej@ε``) at ε_S = 0.5 and 0.3, a table and
    ``<workload>_accuracy_vs_precision.png`` (one point ± errors per row)."""
    shown = {k: g for k, g in sorted(groups.items()) if values(g, "syst/total/rej@0.5")}
    if not shown:
        return ""
    header = ["model", "variant", *rows_of.keys, "seeds"]
    for eff in PRECISION:
        header += [f"1/ε_B@{eff}", f"syst. total @{eff} [%]", f"syst. detector @{eff} [%]"]
    rows, panels = [], []
    percent = Style(value=lambda x: f"{100 * x:.2f}", error=lambda x: f"{100 * x:.2f}")
    for key, group in shown.items():
        row = [*key, str(seed_count(group))]
        for eff in PRECISION:
            row += [
                STYLE.cell(group, f"test/rej@{eff}"),
                percent.cell(group, f"syst/total/rej@{eff}"),
                percent.cell(group, f"syst/detector/rej@{eff}"),
            ]
        rows.append(row)
    for eff in PRECISION:
        curves = {}
        for key, group in shown.items():
            (x, dx), (y, dy) = (
                estimate(group, f"syst/total/rej@{eff}"),
                estimate(group, f"test/rej@{eff}"),
            )
            dx = 100 * dx if np.isfinite(dx) else np.nan  # not determined: no bar
            curves[_Rows.label(key)] = ([100 * x], [y], [dy], [dx])
        panels.append((curves, f"1/ε_B at ε_S = {eff}", True))
    path = out / f"{name}_accuracy_vs_precision.png"
    fig = plot_panels(
        panels,
        path,
        "total relative systematic uncertainty of 1/ε_B [%]",
        f"{name}: accuracy vs precision (errors: seed spread, or bootstrap for one run)",
        line=False,
    )
    plt.close(fig)
    return (
        f"\nAccuracy vs precision (relative systematic uncertainties of 1/ε_B, the detector "
        f"variations of `evaluation.systematics`), figure `{path.name}`:\n\n"
        + markdown(header, rows)
        + "\n"
    )


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
        write_records(out / "compare.csv", records)
    return text
