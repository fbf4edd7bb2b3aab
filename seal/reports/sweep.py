"""Summarise a sweep: one table (CSV + Markdown) and one figure of a metric vs test |β|.

Regression sweeps (the toy) show MSE at test |β| = 0, 0.3, 0.6, 0.9; tagging sweeps show AUC
and 1/ε_B at ε_S = 0.3 on the nominal test set, at test |β| = 0.5, and the test pT window (for
the extrapolation variants the test set lies above the training pT cut). A run is any folder
under the sweep that holds ``.hydra/config.yaml``; it counts as finished when it also holds
``metrics.json`` (failed runs are listed as such, not dropped).
"""

from pathlib import Path

import matplotlib.pyplot as plt

from seal.evaluation.plots import plot_curves
from seal.reports.runs import find_runs, varying
from seal.reports.tables import Style, estimate, markdown, seed_count, seed_note, write_csv

TABLE_BETAS = (0.0, 0.3, 0.6, 0.9)
REGRESSION = {
    "columns": ["test/mse", *[f"boost/mse@{b:g}" for b in TABLE_BETAS], "zboost/mse@0.5"],
    "curve": ("boost/mse@", "test MSE", True),
}
TAGGING = {
    "columns": ["test_pt", "test/auc", "test/rej@0.3", "boost/auc@0.5", "boost/rej@0.3@0.5"],
    "curve": ("boost/rej@0.3@", "1/ε_B at ε_S = 0.3", True),
}


def _label(run: dict, many_tasks: bool) -> str:
    parts = [run["task"]] if many_tasks else []
    parts.append(run["loss"])
    if run["weight"] != "":
        parts.append(f"λ={run['weight']:g}")
    if run.get("target", "") != "":
        parts.append(f"ε={run['target']:g}")
    if run["beta_max"] != "":
        parts.append(f"β_max={run['beta_max']:g}")
    return ", ".join(parts)


def _seed_groups(runs: list[dict], keys: list[str]) -> list[list[dict]]:
    """Runs that differ only in ``seed`` (and the run folder), in order of first appearance."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(tuple(str(run[k]) for k in keys), []).append(run)
    return list(groups.values())


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


STYLE = Style(missing="", note_seeds=True)  # 4 significant digits, errors to 2


def summarise(sweep_dir: Path) -> tuple[str, Path]:
    """Write ``report.csv``, ``report.md`` and ``report_vs_beta.png`` in ``sweep_dir``.

    ``report.csv`` has one row per run; ``report.md`` one row per setting, runs that differ
    only in ``seed`` merged into mean ± standard deviation over seeds, and a column for every
    override that varies across the sweep. Returns the Markdown table and the figure's path.
    """
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    keys = varying(runs)
    for run in runs:
        run.update({k: run["overrides"].get(k, "") for k in keys})
    kind = TAGGING if any("test/auc" in run["metrics"] for run in runs) else REGRESSION
    settings = ["task", "loss", "weight", "beta_max", *keys, "status"]
    errors = [f"{c}_err" for c in kind["columns"]]
    fields = ["run", *settings, "seed", *kind["columns"], *errors]
    per_run = [{**run, **run["metrics"]} for run in runs]
    write_csv(sweep_dir / "report.csv", fields, [[r.get(f, "") for f in fields] for r in per_run])
    groups = _seed_groups(runs, [k for k in settings if k not in kind["columns"]])
    seeds = any(len(g) > 1 for g in groups)
    header = ["run", *settings, *(["seeds"] if seeds else []), *kind["columns"]]
    rows = []
    for group in groups:
        cells = [",".join(r["run"] for r in group)]
        cells += [_text(group[0][k]) for k in settings]
        cells += [str(seed_count(group))] if seeds else []
        # a setting shown among the metrics (the test pT window) is text, the rest are cells
        cells += [
            _text(group[0][c]) if c in group[0] else STYLE.cell(group, c) for c in kind["columns"]
        ]
        rows.append(cells)
    table = markdown(header, rows) + "\n"
    (sweep_dir / "report.md").write_text(f"# Sweep report: {sweep_dir}\n\n{table}")
    return table, _figure(sweep_dir, groups, kind)


def _figure(sweep_dir: Path, groups: list, kind: dict) -> Path:
    """The metric vs test |β|, one curve per setting (seeds averaged, their spread as bars)."""
    prefix, ylabel, logy = kind["curve"]
    many_tasks = len({g[0]["task"] for g in groups}) > 1
    curves = {}
    for group in groups:
        metrics = group[0]["metrics"]
        betas = sorted(
            float(k[len(prefix) :])
            for k in metrics
            if k.startswith(prefix) and not k.endswith("_err")
        )
        if not betas:
            continue
        points = [estimate(group, f"{prefix}{b:g}") for b in betas]  # seed spread or bootstrap
        label = _label(group[0], many_tasks) + (f" ({seed_note(group)})" if len(group) > 1 else "")
        curves[label] = (betas, [p[0] for p in points], [p[1] for p in points])
    figure = sweep_dir / "report_vs_beta.png"
    if curves:
        fig = plot_curves(
            curves,
            figure,
            "test boost |β| (random directions)",
            ylabel,
            f"{sweep_dir.name}: {ylabel} vs test boost",
            logy,
        )
        plt.close(fig)
    return figure
