"""Summarise a sweep: one table (CSV + Markdown) and one figure of a metric vs test |β|.

Regression sweeps (the toy) show MSE at test |β| = 0, 0.3, 0.6, 0.9; tagging sweeps show AUC
and 1/ε_B at ε_S = 0.3 on the nominal test set, at test |β| = 0.5, and the test pT window (for
the extrapolation variants the test set lies above the training pT cut). A run is any folder
under the sweep that holds ``.hydra/config.yaml``; it counts as finished when it also holds
``metrics.json`` (failed runs are listed as such, not dropped).
"""

import csv
import json
from pathlib import Path

import hydra
import matplotlib.pyplot as plt
import numpy as np
from omegaconf import OmegaConf

from seal.evaluation.plots import plot_curves

TABLE_BETAS = (0.0, 0.3, 0.6, 0.9)
REGRESSION = {
    "columns": ["test/mse", *[f"boost/mse@{b:g}" for b in TABLE_BETAS], "zboost/mse@0.5"],
    "curve": ("boost/mse@", "test MSE", True),
}
TAGGING = {
    "columns": ["test_pt", "test/auc", "test/rej@0.3", "boost/auc@0.5", "boost/rej@0.3@0.5"],
    "curve": ("boost/rej@0.3@", "1/ε_B at ε_S = 0.3", True),
}


def _penalty_name(penalty) -> str:
    """``gsymm``/``dsymm``/...: a penalty name, or the ``name`` of its ``_target_`` class."""
    if not OmegaConf.is_config(penalty):
        return str(penalty)
    target = str(penalty.get("_target_", ""))
    try:
        return str(getattr(hydra.utils.get_class(target), "name", target.rsplit(".", 1)[-1]))
    except (ImportError, ValueError):
        return target.rsplit(".", 1)[-1]


def _loss_type(cfg) -> str:
    if cfg.get("symmetry"):
        return _penalty_name(cfg.symmetry.penalty)
    if cfg.get("data") and cfg.data.get("augment"):
        return "augment"
    return "none"


def _model_name(cfg) -> str:
    """The network's class name (``model.net._target_``, else ``model._target_``)."""
    model = cfg.get("model") or {}
    net = model.get("net") or model
    name = str(net.get("_target_", "")).rsplit(".", 1)[-1]
    if net.get("beam_reference") or net.get("time_reference"):  # LLoCa broken by references
        name += "+references"
    return name


# overrides already shown in their own columns (task, weight, beta_max) or grouped over (seed)
SHOWN = {"experiment", "symmetry.weight", "symmetry.group.beta_max", "seed"}


def _overrides(run_dir: Path) -> dict:
    """The run's command-line overrides (``.hydra/overrides.yaml``) as key → value strings."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    listed = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # keep ${…} as text
    pairs = (str(o).split("=", 1) for o in listed if "=" in str(o))
    return {k.lstrip("+~"): v.replace(" ", "") for k, v in pairs}


def load_run(run_dir: Path) -> dict:
    """Settings (task, loss type, λ, β_max) and metrics of one Hydra run folder."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    symm = cfg.get("symmetry") or {}
    loss = _loss_type(cfg)
    row = {
        "run": run_dir.name,
        "path": str(run_dir),
        "task": str(cfg.get("task_name", "")),
        "loss": loss,
        "weight": symm.get("weight", "") if symm else "",
        "beta_max": OmegaConf.select(symm, "group.beta_max", default="") if loss == "gsymm" else "",
        "status": "finished" if (run_dir / "metrics.json").exists() else "failed",
        "model": _model_name(cfg),
        "n_train": cfg.data.get("n_train") or "",
        "seed": cfg.get("seed", ""),
    }
    if loss == "augment":
        row["beta_max"] = cfg.data.augment.get("beta_max", "")
    row["overrides"] = _overrides(run_dir)
    row["seed"] = row["overrides"].get("seed", row["seed"])
    if cfg.data.get("test_pt") is not None:
        row["test_pt"] = "–".join("" if v is None else f"{v:g}" for v in cfg.data.test_pt)
    metrics = (
        json.loads((run_dir / "metrics.json").read_text()) if row["status"] == "finished" else {}
    )
    return {**row, "metrics": metrics}


def find_runs(sweep_dir: Path) -> list[dict]:
    runs = [load_run(p.parent.parent) for p in sorted(sweep_dir.rglob(".hydra/config.yaml"))]
    if not runs:
        raise FileNotFoundError(
            f"no Hydra runs (folders with .hydra/config.yaml) under {sweep_dir}"
        )
    return sorted(runs, key=lambda r: (r["task"], r["loss"], str(r["weight"]), str(r["beta_max"])))


def _label(run: dict, many_tasks: bool) -> str:
    parts = [run["task"]] if many_tasks else []
    parts.append(run["loss"])
    if run["weight"] != "":
        parts.append(f"λ={run['weight']:g}")
    if run["beta_max"] != "":
        parts.append(f"β_max={run['beta_max']:g}")
    return ", ".join(parts)


def _varying(runs: list[dict]) -> list[str]:
    """Overrides whose value differs between runs (and are not shown otherwise)."""
    keys = sorted({k for run in runs for k in run["overrides"]} - SHOWN)
    return [k for k in keys if len({run["overrides"].get(k, "") for run in runs}) > 1]


def _seed_groups(runs: list[dict], keys: list[str]) -> list[list[dict]]:
    """Runs that differ only in ``seed`` (and the run folder), in order of first appearance."""
    groups: dict = {}
    for run in runs:
        groups.setdefault(tuple(str(run[k]) for k in keys), []).append(run)
    return list(groups.values())


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _runs(group: list[dict]) -> str:
    """``n seeds``, or ``n runs, m seeds`` where runs repeat a seed."""
    seeds = len({str(r["seed"]) for r in group})
    return f"{seeds} seeds" if seeds == len(group) else f"{len(group)} runs, {seeds} seeds"


def _cell(values: list, errors: list, runs: str = "") -> str:
    """One run: ``value ± bootstrap error``; several seeds: ``mean ± std (n seeds)``."""
    numbers = [v for v in values if isinstance(v, (int, float))]
    if not numbers:  # a setting (the test pT window) or nothing (a failed run)
        return _text(values[0]) if values else ""
    values = numbers
    if len(values) == 1:
        error = errors[0] if errors and isinstance(errors[0], float) else None
        return f"{values[0]:.4g}" + (f" ± {error:.2g}" if error is not None else "")
    return f"{np.mean(values):.4g} ± {np.std(values, ddof=1):.2g} ({runs})"


def summarise(sweep_dir: Path) -> tuple[str, Path]:
    """Write ``report.csv``, ``report.md`` and ``report_vs_beta.png`` in ``sweep_dir``.

    ``report.csv`` has one row per run; ``report.md`` one row per setting, runs that differ
    only in ``seed`` merged into mean ± standard deviation over seeds, and a column for every
    override that varies across the sweep. Returns the Markdown table and the figure's path.
    """
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    varying = _varying(runs)
    for run in runs:
        run.update({k: run["overrides"].get(k, "") for k in varying})
    kind = TAGGING if any("test/auc" in run["metrics"] for run in runs) else REGRESSION
    settings = ["task", "loss", "weight", "beta_max", *varying, "status"]
    errors = [f"{c}_err" for c in kind["columns"]]
    with open(sweep_dir / "report.csv", "w", newline="") as f:
        fields = ["run", *settings, "seed", *kind["columns"], *errors]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**run, **run["metrics"]} for run in runs)
    groups = _seed_groups(runs, [k for k in settings if k not in kind["columns"]])
    seeds = any(len(g) > 1 for g in groups)
    columns = ["run", *settings, *(["seeds"] if seeds else []), *kind["columns"]]
    table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    for group in groups:
        cells = [",".join(r["run"] for r in group)]
        cells += [_text(group[0][k]) for k in settings]
        cells += [str(len({str(r["seed"]) for r in group}))] if seeds else []
        cells += [
            _cell(
                [r.get(c, r["metrics"].get(c, "")) for r in group],
                [r["metrics"].get(f"{c}_err", "") for r in group],
                _runs(group),
            )
            for c in kind["columns"]
        ]
        table += "| " + " | ".join(cells) + " |\n"
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
        ys = np.array([[r["metrics"].get(f"{prefix}{b:g}", np.nan) for b in betas] for r in group])
        if len(group) > 1:  # the spread over seeds
            spread = ys.std(axis=0, ddof=1)
        else:  # one run: its bootstrap errors
            spread = [metrics.get(f"{prefix}{b:g}_err", np.nan) for b in betas]
        label = _label(group[0], many_tasks) + (f" ({_runs(group)})" if len(group) > 1 else "")
        curves[label] = (betas, list(ys.mean(axis=0)), list(spread))
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
