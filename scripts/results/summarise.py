"""Summaries of the results studies (docs/results.md): CSVs, figures and Markdown tables.

    python scripts/results/summarise.py [--root outputs/results] [--out docs/figures/results]

Reads the sweeps that `scripts/results/top.sh`, `scripts/results/precision.sh` and the toy
commands of docs/results.md write under ROOT (any that are missing are skipped) and writes into
OUT:

* ``top_table.csv``, ``top_vs_boost.png``, ``top_output_shift.png`` — every model at every test
  boost, mean ± std over seeds, with how many background jets pass at ε_S = 0.3;
* ``top_large_test.csv`` — the strongest taggers' best checkpoints tested again on 40 000 jets
  (``scripts/evaluate.py`` into ROOT/large_test), so that 1/ε_B rests on ≥ 200 background jets;
* ``top_extrap.csv``, ``top_extrap.png`` — AUC and 1/ε_B above the training pT range;
* ``top_efficiency.csv``, ``top_auc_vs_size.png`` — test AUC against the number of training jets;
* ``top_precision.csv``, ``top_accuracy_vs_precision.png``,
  ``top_accuracy_vs_detector_precision.png`` — the precision study
  (``scripts/results/precision.sh``): rejection and its relative systematic uncertainties;
* ``top_precision_cost.csv`` — the systematic evaluation's time over the fit time, timed again
  on finished runs (``precision.sh cost``, ROOT/precision_cost);
* ``top_energy_scale.csv``, ``top_energy_scale.png`` — SEAL along the energy scale against λ
  (``top_energy_scale5.*``: the same runs evaluated again at ±5 %, ROOT/escale5);
* ``toy_covariant.csv``, ``toy_covariant_vs_boost.png`` — the covariant toy, MSE against boost;
* ``toy_constraint.csv``, ``toy_constraint.png`` — constrained SEAL on the toy (ROOT/toy_constraint:
  plain, the map's best λ cells and the targets), MSE ratios to plain, the reached penalty and λ;
  ``top_constraint.csv`` — constrained SEAL on the top table's budget (ROOT/constraint_*) beside
  the table's hand-tuned rows (read from OUT/top_table.csv);
* ``dimuon_compare.md/csv``, ``dimuon_auc_vs_size.png``, ``dimuon_vs_boost.png``,
  ``dimuon_output_shift.png`` — the dimuon learning curves (``scripts/compare.py``'s report of
  ROOT/dimuon_curve).

It prints the Markdown tables that docs/results.md quotes.
"""

import argparse
import csv
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from seal.evaluation.plots import (
    hep_style,
    plot_curves,
    plot_panels,
    save,
    subplots,
    tex,
    title,
)
from seal.reports.compare import boost_figure, compare, model_label, shift_figure, variant
from seal.reports.runs import find_runs
from seal.reports.tables import Style, estimate, fixed, markdown, values, write_csv

SHOWN = (0.5, 0.7, 0.9)  # the covariant toy's boosts in the table (the figure has all)
TABLE_RUN_JETS = 8000  # training jets of the table runs: 0.16 × 50 000 (configs/data/top_window)

# cells of mean ± spread over seeds (a single seed: its value alone)
SEEDS_ONLY = Style(fixed(3), fixed(3), bootstrap=False)
MSE = Style(fixed(1, "e"), fixed(1, "e"), bootstrap=False)


def finished(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [r for r in find_runs(path) if r["status"] == "finished"]


def label(run: dict) -> str:
    model = model_label(run["model"])
    name = variant(run, show_beta=False)
    return {"none": model, "": model}.get(name, f"{model} {name}")


def passing_background(run: dict) -> float:
    """Background test jets above the ε_S = 0.3 threshold: N_background / (1/ε_B)."""
    rows = np.loadtxt(Path(run["path"]) / "predictions.csv", delimiter=",", skiprows=1)
    n_background = int((rows[:, 1] == 0).sum())
    return n_background / float(run["metrics"]["test/rej@0.3"])


# the rows of every table in this order (a label starting with an entry takes its place; the
# longest such entry wins); anything else follows in the order it ran
ROWS = (
    "transformer",
    "transformer gsymm",
    "transformer dsymm",
    "transformer augment",
    "invariant",
    "hybrid",
    "LLoCa",
    "LLoCa + references",
    "L-GATr",
    "PELICAN",
    "ParT",
    "ParT gsymm",
    "ParT dsymm",
    "ParT augment",
    "LLoCa (ParT)",
    "LLoCa + references (ParT)",
    "L-GATr-slim",
    "L-GATr-slim + references",
)


def row_order(name: str) -> int:
    matches = [row for row in ROWS if name == row or name.startswith(row + " ")]
    return ROWS.index(max(matches, key=len)) if matches else len(ROWS)


def grouped(runs: list[dict]) -> dict[str, list[dict]]:
    """Runs by table row, in the order of ROWS."""
    groups = defaultdict(list)
    for run in runs:
        groups[label(run)].append(run)
    return dict(sorted(groups.items(), key=lambda kv: row_order(kv[0])))


# a table column: (header, metric key, digits); "passing": passing_background(), "params": the
# network's parameter count (the same for every seed), "syst_share": the systematic evaluation's
# time over the training time (both under the same load)
Column = tuple[str, str, int]
NOMINAL: list[Column] = [
    ("AUC", "test/auc", 3),
    ("1/ε_B@0.3", "test/rej@0.3", 1),
    ("passing bkg", "passing", 0),
]


def model_table(groups: dict[str, list[dict]], columns: list[Column], path: Path) -> str:
    """One row per model (name, seeds, the columns); written to ``path`` as CSV, returned as
    Markdown."""

    def value(group: list[dict], key: str, digits: int) -> str:
        if key == "passing":
            return f"{np.mean([passing_background(r) for r in group]):.0f}"
        if key == "params":
            return f"{int(values(group, 'model/params')[0]):,}"
        if key.endswith("_err"):  # a run's own bootstrap error: the mean over the seeds
            found = values(group, key)
            return f"{np.mean(found):.{digits}f}" if found else "–"
        if key == "syst_share":
            shares = [
                r["metrics"]["syst/seconds"] / r["metrics"]["time/fit_s"]
                for r in group
                if "syst/seconds" in r["metrics"] and "time/fit_s" in r["metrics"]
            ]
            return f"{np.mean(shares):.2f}" if shares else "–"
        return Style(fixed(digits), fixed(digits), bootstrap_mark="ᵇ").cell(group, key)

    header = ["model", "seeds", *(c[0] for c in columns)]
    rows = [
        [name, str(len(group)), *(value(group, key, d) for _, key, d in columns)]
        for name, group in groups.items()
    ]
    write_csv(path, header, rows)
    return markdown(header, rows)


BOOSTED: list[Column] = [
    (f"{name} β={b}", f"boost/{key}@{b}", d)
    for b in ("0.5", "0.9")
    for name, key, d in (("AUC", "auc", 3), ("1/ε_B", "rej@0.3", 1))
]
PARAMS: list[Column] = [("params", "params", 0)]


def top_table(runs: list[dict], out: Path) -> str:
    # no step times: the runs shared the cores; bench.py --only models measures them side by side
    return model_table(grouped(runs), NOMINAL + BOOSTED + PARAMS, out / "top_table.csv")


def part_block(runs: list[dict], out: Path) -> str:
    """ParT under every treatment and L-GATr-slim: the §3 columns, and a dot plot."""
    groups = grouped(runs)
    panels = [("test/auc", "AUC"), ("test/rej@0.3", "1/ε_B at ε_S = 0.3")]
    panels.append(("boost/auc@0.9", "AUC at |β| = 0.9"))
    text = "ParT under each treatment (32 constituents): mean ± seed spread, each seed a dot"
    parts = {name: group for name, group in groups.items() if "ParT" in name}
    plt.close(dot_plot(parts, panels, out / "top_part.png", text))
    return model_table(groups, NOMINAL + BOOSTED + PARAMS, out / "top_part_table.csv")


def dial(runs: list[dict], out: Path) -> str:
    """LLoCa + references + GSEAL against λ, between λ = 0 (LLoCa + references, free) and the
    exact LLoCa: AUC, 1/ε_B@0.3, AUC at |β| = 0.9 and the output change without references."""
    free = [
        r for r in runs if r["model"].startswith("LLoCaTagger+references") and r["loss"] == "none"
    ]
    exact = [
        r for r in runs if r["model"].startswith("LLoCaTagger[") or r["model"] == "LLoCaTagger"
    ]
    soft = defaultdict(list)
    for run in runs:
        if run["model"].startswith("LLoCaTagger+references") and run["loss"] == "gsymm":
            soft[float(run["weight"])].append(run)
    columns = [
        *NOMINAL[:2],
        ("AUC β=0.9", "boost/auc@0.9", 3),
        ("reference shift", "references/shift_mean", 4),
    ]
    groups = {"λ = 0 (LLoCa + references)": free}
    groups |= {f"λ = {lam:g}": soft[lam] for lam in sorted(soft)}
    groups["exact (LLoCa)"] = exact
    groups = {name: group for name, group in groups.items() if group}
    lams = sorted(soft)
    panels = []
    for header, key, _ in columns:
        points = [estimate(soft[lam], key, bootstrap=False) for lam in lams]
        curves = {"+ GSEAL": (lams, [m for m, _ in points], [e for _, e in points])}
        for name, group in (("λ = 0", free), ("exact", exact)):
            if group and lams and key in group[0]["metrics"]:
                mean, error = estimate(group, key, bootstrap=False)
                curves[name] = ([lams[0], lams[-1]], [mean, mean], [error, error])
        panels.append((curves, header, False))
    if lams:
        heading = "LLoCa-ParT + references + GSEAL: the dial (mean ± seed spread)"
        plt.close(plot_panels(panels, out / "top_dial.png", "λ", heading, logx=True))
    return model_table(groups, columns, out / "top_dial.csv")


EFFICIENCIES = ("0.5", "0.3")  # ε_S of the precision study's rejections


def accuracy_vs_precision(runs: list[dict], out: Path) -> str:
    """Accuracy against precision on the detector set: per model the AUC, 1/ε_B at ε_S = 0.5
    and 0.3 and the relative systematic uncertainty of each (total, detector, modelling; mean
    ± seed spread; "stat.": a run's own bootstrap error of the total, averaged over the seeds),
    and figures of the rejection against the total and the detector uncertainty (log axes)."""
    groups = grouped(runs)
    columns: list[Column] = [("AUC", "test/auc", 3)]
    for eff in EFFICIENCIES:
        columns += [
            (f"1/ε_B@{eff}", f"test/rej@{eff}", 1),
            *(
                (f"{group} @{eff}", f"syst/{group}/rej@{eff}", 3)
                for group in ("total", "detector", "modelling")
            ),
            (f"total @{eff}, stat.", f"syst/total/rej@{eff}_err", 3),
        ]
    columns.append(("syst. time / fit time", "syst_share", 2))
    for uncertainty, figure in (("total", "precision"), ("detector", "detector_precision")):
        panels = []
        for eff in EFFICIENCIES:
            curves = {}
            for name, group in groups.items():
                x, dx = estimate(group, f"syst/{uncertainty}/rej@{eff}", bootstrap=False)
                y, dy = estimate(group, f"test/rej@{eff}", bootstrap=False)
                curves[name] = ([x], [y], [dy], [dx])
            panels.append((curves, f"1/ε_B at ε_S = {eff}", True))
        heading = "accuracy vs precision, detector-level top jets (mean ± seed spread)"
        xlabel = f"{uncertainty} relative systematic uncertainty of 1/ε_B"
        path = out / f"top_accuracy_vs_{figure}.png"
        # log x: the strongest taggers lie a decade to the right
        plt.close(plot_panels(panels, path, xlabel, heading, line=False, logx=True))
    return model_table(groups, columns, out / "top_precision.csv")


def energy_scale(runs: list[dict], out: Path, name: str, scale: str) -> str:
    """GSEAL along the energy scale against λ, beside the plain transformer (λ = 0) and its
    Lorentz treatments on the same set: the energy-scale uncertainty (the larger of the
    ``scale`` shifts up and down) of the AUC — resolved by the correlated bootstrap at ±1 %
    where the rejection's is not — and of 1/ε_B, the detector group, and what the penalty costs
    in AUC and rejection. Writes ``<name>.csv`` and ``<name>.png``."""
    soft, others = defaultdict(list), defaultdict(list)
    for run in runs:
        if run["overrides"].get("symmetry/group") == "energy_scale":
            soft[float(run["weight"])].append(run)
        else:
            others[label(run)].append(run)
    plain = others.pop("transformer", [])
    lams = sorted(soft)
    columns: list[Column] = [
        ("AUC", "test/auc", 3),
        ("energy scale, AUC", "syst/energy_scale/auc", 5),
    ]
    for eff in EFFICIENCIES:
        columns += [
            (f"1/ε_B@{eff}", f"test/rej@{eff}", 1),
            (f"energy scale @{eff}", f"syst/energy_scale/rej@{eff}", 4),
        ]
    columns.append(("detector @0.5", "syst/detector/rej@0.5", 3))
    plain_row = {"λ = 0 (plain)": plain}
    lorentz = {f"{row} (Lorentz)": group for row, group in sorted(others.items())}
    groups = plain_row | {f"λ = {lam:g}": soft[lam] for lam in lams} | lorentz
    groups = {row: group for row, group in groups.items() if group}
    references = {row: group for row, group in (plain_row | lorentz).items() if group}
    panels = []
    for header, key, _ in columns[:4]:  # AUC and 1/ε_B@0.5, each with its energy-scale shift
        points = [estimate(soft[lam], key, bootstrap=False) for lam in lams]
        curves = {"GSEAL, energy scale": (lams, [m for m, _ in points], [e for _, e in points])}
        for row, group in references.items():  # flat lines across the λ range
            if lams and key in group[0]["metrics"]:
                mean, error = estimate(group, key, bootstrap=False)
                curves[row] = ([lams[0], lams[-1]], [mean, mean], [error, error])
        panels.append((curves, header, False))
    if lams:
        heading = (
            f"SEAL along the energy scale (s within ×/÷ 1.05), evaluated at {scale}: "
            f"mean ± seed spread"
        )
        plt.close(plot_panels(panels, out / f"{name}.png", "λ", heading, logx=True))
    return model_table(groups, columns, out / f"{name}.csv")


def top_extrap(runs: list[dict], out: Path) -> str:
    groups = grouped(runs)
    columns = [
        ("AUC > 800 GeV", "test/auc", 3),
        ("1/ε_B@0.3 > 800 GeV", "test/rej@0.3", 1),
        ("passing bkg", "passing", 0),
        ("AUC β=0.5 > 800 GeV", "boost/auc@0.5", 3),
    ]
    text = model_table(groups, columns, out / "top_extrap.csv")
    panels = [
        ("test/auc", "AUC, jets ≥ 800 GeV"),
        ("test/rej@0.3", "1/ε_B at ε_S = 0.3, ≥ 800 GeV"),
        ("boost/auc@0.5", "AUC at |β| = 0.5, ≥ 800 GeV"),
    ]
    title_text = "pT extrapolation: trained < 800 GeV (mean ± std over seeds; ◦ one seed)"
    plt.close(dot_plot(groups, panels, out / "top_extrap.png", title_text))
    return text


def table_and_figure(path: Path, header, rows, curves, figure: Path, labels, options) -> str:
    """Write the table as CSV and its curves as a figure; return the table as Markdown."""
    write_csv(path, header, rows)
    plt.close(plot_curves(curves, figure, *labels, **options))
    return markdown(header, rows)


def dot_plot(groups: dict[str, list[dict]], panels: list[tuple[str, str]], path: Path, text: str):
    """One row per model, one panel per metric: mean ± seed spread, and every seed as a dot."""
    fig, axes = subplots(len(panels), width=4.6, height=0.45 * len(groups) + 1.6)
    names = list(groups)[::-1]  # the table's first row on top
    with hep_style():
        for ax, (key, xlabel) in zip(axes, panels):
            for y, name in enumerate(names):
                found = values(groups[name], key)
                mean, std = estimate(groups[name], key, bootstrap=False)
                ax.errorbar(
                    mean, y, xerr=std if np.isfinite(std) else None, fmt="o", color="C0", capsize=3
                )
                ax.plot(found, [y] * len(found), "o", mfc="none", color="C1", markersize=4)
            ax.set_yticks(
                range(len(names)), names if ax is axes[0] else [""] * len(names), fontsize=10
            )
            ax.minorticks_off()
            ax.tick_params(axis="x", labelsize=10)
            ax.set_ylim(-0.7, len(names) - 0.3)
            ax.set_xlabel(tex(xlabel), fontsize=10)
            ax.grid(alpha=0.3, axis="x")
        title(axes[0], text)
    save(fig, path)
    return fig


def top_large_test(runs: list[dict], out: Path) -> str:
    jets = len((Path(runs[0]["path"]) / "predictions.csv").read_text().splitlines()) - 1
    columns = [(f"AUC, {jets:,} test jets", "test/auc", 3), *NOMINAL[1:]]
    return model_table(grouped(runs), columns, out / "top_large_test.csv")


def top_efficiency(table: list[dict], runs: list[dict], out: Path) -> str:
    by = defaultdict(lambda: defaultdict(list))
    for run in runs:
        by[label(run)][int(run["overrides"]["data.train_jets"])].append(run)
    for run in table:  # the table's runs are the full-size point
        if label(run) in by:
            by[label(run)][TABLE_RUN_JETS].append(run)
    sizes = sorted({s for curve in by.values() for s in curve})
    header = ["model", *(f"AUC, {s:,} jets" for s in sizes), "seeds"]
    rows, curves = [], {}
    for name, curve in sorted(by.items()):
        rows.append(
            [
                name,
                *(SEEDS_ONLY.cell(curve.get(s, []), "test/auc") for s in sizes),
                "/".join(str(len(curve.get(s, []))) for s in sizes),
            ]
        )
        points = [(s, *estimate(curve[s], "test/auc", False)) for s in sizes if curve.get(s)]
        curves[name] = tuple(map(list, zip(*points)))
    what = "top tagging: AUC vs training-set size (mean ± std over seeds)"
    labels = ("training jets", "test AUC", what)
    figure = curves, out / "top_auc_vs_size.png", labels, dict(logy=False, logx=True)
    return table_and_figure(out / "top_efficiency.csv", header, rows, *figure)


def toy_covariant(runs: list[dict], out: Path) -> str:
    groups = grouped(runs)
    betas = sorted(
        {
            float(k.split("@")[1])
            for r in runs
            for k in r["metrics"]
            if k.startswith("boost/mse@") and not k.endswith("_err")
        }
    )
    header = ["model", "seeds", "test MSE", *(f"MSE β={b:g}" for b in betas if b in SHOWN)]
    rows, curves = [], {}
    for name, group in sorted(groups.items()):
        shown = [MSE.cell(group, f"boost/mse@{b:g}") for b in betas if b in SHOWN]
        rows.append([name, str(len(group)), MSE.cell(group, "test/mse"), *shown])
        points = [estimate(group, f"boost/mse@{b:g}", False) for b in betas]
        curves[name] = (betas, [p[0] for p in points], [p[1] for p in points])
    labels = (
        "boost |β| of every test event",
        "test MSE",
        "covariant toy: MSE vs boost (mean ± std, seeds)",
    )
    figure = curves, out / "toy_covariant_vs_boost.png", labels, {}
    return table_and_figure(out / "toy_covariant.csv", header, rows, *figure)


def constrained_label(run: dict) -> str:
    """ "dsymm λ=1", "gsymm ε=0.0001" or "plain" (the toy has one network)."""
    return "plain" if run["loss"] == "none" else variant(run, show_beta=False)


def reached(group: list[dict]) -> str:
    """The final running estimate over the target, mean ± std over seeds ("–" unconstrained)."""
    ratios = [
        r["metrics"]["constraint/reached"] / r["metrics"]["constraint/target"]
        for r in group
        if "constraint/reached" in r["metrics"]
    ]
    if not ratios:
        return "–"
    return (
        f"{np.mean(ratios):.2f} ± {np.std(ratios, ddof=1):.2f}"
        if len(ratios) > 1
        else f"{ratios[0]:.2f}"
    )


def final_weights(group: list[dict]) -> str:
    """The λ each seed ended with (constrained), or "–"."""
    found = [
        r["metrics"]["constraint/weight"] for r in group if "constraint/weight" in r["metrics"]
    ]
    return " / ".join(f"{w:.2g}" for w in found) if found else "–"


def spectrum_sum(run: dict) -> float:
    """The six Lorentz bars of the symmetry spectrum, summed."""
    names = ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz")
    return sum(run["metrics"][f"spectrum/{n}"] for n in names)


def toy_constraint(runs: list[dict], out: Path) -> str:
    """Constrained GSEAL/δSEAL on the toy's exact truth against plain training and the λ map's
    best cells (δSEAL λ = 1, GSEAL λ = 10 at β_max = 0.5): test MSE and MSE at |β| = 0.5 over
    the plain mean (mean ± std over seeds), the spectrum's sum, the final estimate over ε and
    the λ each seed found; a figure of λ(t) and the estimate over ε for every constrained run."""
    groups = defaultdict(list)
    for run in runs:
        groups[constrained_label(run)].append(run)
    plain = groups.pop("plain")
    base = {k: np.mean([r["metrics"][k] for r in plain]) for k in ("test/mse", "boost/mse@0.5")}

    def ratio(group, key):
        values = [r["metrics"][key] / base[key] for r in group]
        return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"

    def order(name):  # fixed λ first, then the targets from loose to tight
        loss, setting = name.split(" ", 1)
        return (loss, setting[0] == "ε", -float(setting.split("=")[1]))

    header = [
        "setting",
        "seeds",
        "MSE ÷ plain",
        "MSE β=0.5 ÷ plain",
        "spectrum Σ",
        "reached ÷ ε",
        "λ found (per seed)",
    ]
    rows = [
        [
            "plain",
            str(len(plain)),
            "1",
            "1",
            f"{np.mean([spectrum_sum(r) for r in plain]):.2g}",
            "–",
            "–",
        ]
    ]
    for name in sorted(groups, key=order):
        group = groups[name]
        rows.append(
            [
                name,
                str(len(group)),
                ratio(group, "test/mse"),
                ratio(group, "boost/mse@0.5"),
                f"{np.mean([spectrum_sum(r) for r in group]):.2g}",
                reached(group),
                final_weights(group),
            ]
        )
    write_csv(out / "toy_constraint.csv", header, rows)
    fig, axes = subplots(2)
    for name in sorted(groups, key=order):
        for i, run in enumerate(groups[name]):
            path = Path(run["path"]) / "constraint.csv"
            if not path.exists():
                continue
            history = np.genfromtxt(path, delimiter=",", names=True)
            target = run["metrics"]["constraint/target"]
            style = dict(color=f"C{sorted(groups, key=order).index(name) % 10}", lw=1, alpha=0.8)
            axes[0].plot(
                history["batch"], history["weight"], label=name if not i else None, **style
            )
            axes[1].plot(history["batch"], history["estimate"] / target, **style)
    axes[0].set(yscale="log", xlabel="training batch", ylabel="λ")
    axes[1].set(yscale="log", xlabel="training batch", ylabel="running estimate ÷ ε")
    axes[1].axhline(1.0, color="k", ls="--", lw=1)
    axes[0].legend(fontsize="small")
    title(axes[0], "constrained SEAL on the toy (exact truth): each seed a line")
    save(fig, out / "toy_constraint.png")
    plt.close(fig)
    return markdown(header, rows)


def top_constraint(runs: list[dict], out: Path) -> str:
    """Constrained GSEAL/δSEAL on the top table's budget beside the table's hand-tuned rows
    (read from OUT/top_table.csv: their runs are the table's): AUC, 1/ε_B@0.3, AUC at
    |β| = 0.9, the spectrum's sum, the final estimate over ε and the λ found."""
    groups = defaultdict(list)
    for run in runs:
        groups[label(run)].append(run)
    header = [
        "model",
        "seeds",
        "AUC",
        "1/ε_B@0.3",
        "AUC β=0.9",
        "spectrum Σ",
        "reached ÷ ε",
        "λ found (per seed)",
    ]
    rows = []
    table = out / "top_table.csv"
    if table.exists():
        with table.open() as handle:
            for row in csv.DictReader(handle):
                if row["model"] in (
                    "transformer",
                    "transformer gsymm λ=1",
                    "transformer dsymm λ=0.01",
                ):
                    rows.append(
                        [
                            row["model"],
                            row["seeds"],
                            row["AUC"],
                            row["1/ε_B@0.3"],
                            row["AUC β=0.9"],
                            "–",
                            "–",
                            "–",
                        ]
                    )
    for name, group in sorted(groups.items()):
        cell = Style(fixed(3), fixed(3)).cell
        rows.append(
            [
                name,
                str(len(group)),
                cell(group, "test/auc"),
                Style(fixed(1), fixed(1)).cell(group, "test/rej@0.3"),
                cell(group, "boost/auc@0.9"),
                f"{np.mean([spectrum_sum(r) for r in group]):.2g}",
                reached(group),
                final_weights(group),
            ]
        )
    write_csv(out / "top_constraint.csv", header, rows)
    return markdown(header, rows)


def dimuon(folder: Path, out: Path) -> str:
    """compare.py's report of the dimuon sweep, under names that say which study it is."""
    with tempfile.TemporaryDirectory() as tmp:
        text = compare([folder], Path(tmp))
        figures = ("dimuon_auc_vs_size.png", "dimuon_vs_boost.png", "dimuon_output_shift.png")
        for name in ("compare.md", "compare.csv", *figures):
            shutil.copy(Path(tmp) / name, out / name.replace("compare", "dimuon_compare"))
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path("outputs/results"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures/results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def stage(prefix: str) -> list[dict]:  # a stage may be split over folders (table_seed2…)
        return [r for d in sorted(args.root.glob(prefix + "*")) for r in finished(d)]

    table = stage("table") + stage("alternatives") + stage("equivariant")
    if table:  # compare.py's figures (its table's step times would be from shared cores)
        groups = {(name,): runs for name, runs in grouped(table).items()}  # one curve per row
        boost_figure("top", groups, args.out)
        shift_figure("top", groups, args.out)
        print("## top tagging\n\n" + top_table(table, args.out) + "\n")
    block = stage("part") + stage("slim")
    if block:
        print("## ParT and L-GATr-slim\n\n" + part_block(block, args.out) + "\n")
    dialled = stage("part") + stage("dial")
    if stage("dial"):
        print("## the exact-to-free dial\n\n" + dial(dialled, args.out) + "\n")
    precision = stage("precision_table") + stage("precision_backbones")
    if precision:
        text = accuracy_vs_precision(precision, args.out)
        print("## accuracy vs precision\n\n" + text + "\n")
    if stage("precision_cost"):  # the systematics timed again (precision.sh cost)
        groups = grouped(stage("precision_cost"))
        share = [("syst. time / fit time", "syst_share", 2)]
        text = model_table(groups, share, args.out / "top_precision_cost.csv")
        print("## the systematic evaluation's cost, timed again\n\n" + text + "\n")
    if stage("precision_escale"):  # beside the transformer's rows of the table
        rows = [r for r in stage("precision_table") if label(r).startswith("transformer")]
        text = energy_scale(rows + stage("precision_escale"), args.out, "top_energy_scale", "±1 %")
        print("## SEAL along the energy scale\n\n" + text + "\n")
    if stage("escale5"):  # the same runs evaluated again at ±5 % (scripts/evaluate.py)
        text = energy_scale(stage("escale5"), args.out, "top_energy_scale5", "±5 %")
        print("## SEAL along the energy scale, evaluated at ±5 %\n\n" + text + "\n")
    large = stage("large_test")
    if large:
        print("## top tagging, larger test set\n\n" + top_large_test(large, args.out) + "\n")
    extrap = stage("extrap")
    if extrap:
        print("## pT extrapolation\n\n" + top_extrap(extrap, args.out) + "\n")
    efficiency = stage("efficiency")
    if efficiency:
        print("## data efficiency\n\n" + top_efficiency(table, efficiency, args.out) + "\n")
    toy = stage("toy_covariant")
    if toy:
        print("## covariant toy\n\n" + toy_covariant(toy, args.out) + "\n")
    if stage("toy_constraint"):
        print(
            "## constrained SEAL, toy\n\n"
            + toy_constraint(stage("toy_constraint"), args.out)
            + "\n"
        )
    if stage("constraint_"):
        text = top_constraint(stage("constraint_"), args.out)
        print("## constrained SEAL, top tagging\n\n" + text + "\n")
    if (args.root / "dimuon_curve").is_dir():
        print("## dimuon\n\n" + dimuon(args.root / "dimuon_curve", args.out))


if __name__ == "__main__":
    main()
