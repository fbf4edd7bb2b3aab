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
    target = (model.get("net") or model).get("_target_", "")
    return str(target).rsplit(".", 1)[-1]


def load_run(run_dir: Path) -> dict:
    """Settings (task, loss type, λ, β_max) and metrics of one Hydra run folder."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    symm = cfg.get("symmetry") or {}
    loss = _loss_type(cfg)
    row = {
        "run": run_dir.name,
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


def summarise(sweep_dir: Path) -> tuple[str, Path]:
    """Write ``report.csv``, ``report.md`` and ``report_vs_beta.png`` in ``sweep_dir``.

    Returns the Markdown table and the figure's path.
    """
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    tagging = any("test/auc" in run["metrics"] for run in runs)
    kind = TAGGING if tagging else REGRESSION
    columns = ["run", "task", "loss", "weight", "beta_max", "status", *kind["columns"]]
    errors = [f"{c}_err" for c in kind["columns"]]
    rows = [{c: run.get(c, run["metrics"].get(c, "")) for c in columns + errors} for run in runs]
    with open(sweep_dir / "report.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns + errors)
        writer.writeheader()
        writer.writerows(rows)

    def fmt(row, c):
        value, error = row[c], row.get(f"{c}_err", "")
        if not isinstance(value, float):
            return str(value)
        return f"{value:.4g} ± {error:.2g}" if isinstance(error, float) else f"{value:.4g}"

    table = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    table += "".join("| " + " | ".join(fmt(r, c) for c in columns) + " |\n" for r in rows)
    (sweep_dir / "report.md").write_text(f"# Sweep report: {sweep_dir}\n\n{table}")

    prefix, ylabel, logy = kind["curve"]
    many_tasks = len({r["task"] for r in runs}) > 1
    curves = {}
    for run in runs:
        metrics = run["metrics"]
        points = sorted((float(k[len(prefix):]), v, metrics.get(f"{k}_err", float("nan")))
                        for k, v in metrics.items()
                        if k.startswith(prefix) and not k.endswith("_err"))  # fmt: skip
        if points:
            curves[_label(run, many_tasks)] = tuple(map(list, zip(*points)))  # xs, ys, errors
    figure = sweep_dir / "report_vs_beta.png"
    if curves:
        fig = plot_curves(curves, figure, "test boost |β| (random directions)", ylabel,
                          f"{sweep_dir.name}: {ylabel} vs test boost", logy)  # fmt: skip
        plt.close(fig)
    return table, figure
