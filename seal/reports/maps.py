"""Where a symmetry loss helps and where it hurts: test error over a λ × β_max grid, relative to
plain training on the same truth, nominal and on boosted inputs, with the spread over seeds.

``scripts/symmetry_map.py`` runs it on sweep folders; each run is read by
:func:`seal.reports.runs.find_runs`, so any Hydra multirun over ``symmetry.weight``,
``symmetry.group.beta_max``, ``data.truth`` and ``seed`` can be mapped.
"""

from collections import defaultdict
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from seal.evaluation.plots import hep_style, save, subplots, tex, title


def _truth(run: dict) -> str:
    return run["overrides"].get("data.truth", "exact")


def _mean(values: list) -> tuple[float, float, int]:
    values = [v for v in values if np.isfinite(v)]
    if not values:
        return np.nan, np.nan, 0
    spread = float(np.std(values, ddof=1)) if len(values) > 1 else np.nan
    return float(np.mean(values)), spread, len(values)


def ratios(runs: list[dict], metric: str) -> list[dict]:
    """Rows (truth, loss, λ, β_max, ratio, spread, seeds): ``metric`` of each setting divided by
    the mean of the plain runs on the same truth; ratio and spread over the setting's seeds."""
    baseline = defaultdict(list)
    for run in runs:
        if run["loss"] == "none" and metric in run["metrics"]:
            baseline[_truth(run)].append(float(run["metrics"][metric]))
    groups = defaultdict(list)
    for run in runs:
        # constrained runs (λ found in training, weight "") are not cells of the λ map
        if run["loss"] in ("gsymm", "dsymm") and run["weight"] != "" and metric in run["metrics"]:
            beta = run["beta_max"] if run["loss"] == "gsymm" else ""
            groups[(_truth(run), run["loss"], float(run["weight"]), beta)].append(run)
    rows = []
    for (truth, loss, weight, beta), group in sorted(groups.items(), key=str):
        if not baseline.get(truth):
            continue
        base = float(np.mean(baseline[truth]))
        mean, spread, n = _mean([float(r["metrics"][metric]) / base for r in group])
        rows.append(
            {
                "truth": truth,
                "loss": loss,
                "lambda": weight,
                "beta_max": beta,
                "metric": metric,
                "ratio": mean,
                "spread": spread,
                "seeds": n,
                "baseline": base,
                "baseline_seeds": len(baseline[truth]),
            }
        )
    return rows


def plot_map(rows: list[dict], truth: str, metrics: list[tuple[str, str]], path: Path):
    """One heat map of GSEAL's ratio per metric (λ down, β_max across, ratio ± seed spread in
    each cell; below 1 = better than plain training), and δSEAL's ratio vs λ beside them."""
    gseal = [r for r in rows if r["truth"] == truth and r["loss"] == "gsymm"]
    lambdas = sorted({r["lambda"] for r in gseal})
    betas = sorted({float(r["beta_max"]) for r in gseal})
    fig, axes = subplots(len(metrics) + 1, width=5.2, height=4.6)
    norm = LogNorm(vmin=0.1, vmax=10.0)
    with hep_style():
        for ax, (metric, label) in zip(axes, metrics):
            grid = np.full((len(lambdas), len(betas)), np.nan)
            for r in gseal:
                if r["metric"] == metric:
                    i, j = lambdas.index(r["lambda"]), betas.index(float(r["beta_max"]))
                    grid[i, j] = r["ratio"]
                    spread = "" if np.isnan(r["spread"]) else f"\n±{r['spread']:.2f}"
                    ax.text(j, i, f"{r['ratio']:.2f}{spread}", ha="center", va="center", fontsize=8)
            image = ax.imshow(
                np.clip(grid, 0.1, 10.0), cmap="RdBu_r", norm=norm, origin="lower", aspect="auto"
            )
            ax.set_xticks(range(len(betas)), [f"{b:g}" for b in betas])
            ax.set_yticks(range(len(lambdas)), [f"{w:g}" for w in lambdas])
            ax.set(xlabel=tex("training β_max"), ylabel="λ")
            title(ax, f"GSEAL: {label} ÷ plain")
            fig.colorbar(image, ax=ax, label="test MSE ratio to plain")
        ax = axes[-1]
        for metric, label in metrics:
            line = sorted(
                (r["lambda"], r["ratio"], r["spread"])
                for r in rows
                if r["truth"] == truth and r["loss"] == "dsymm" and r["metric"] == metric
            )
            if line:
                xs, ys, es = zip(*line)
                ax.errorbar(xs, ys, yerr=np.nan_to_num(es), marker="o", capsize=2, label=label)
        ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ax.set(xscale="log", yscale="log", xlabel="λ", ylabel="test MSE ratio to plain")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9)
        title(ax, "δSEAL ÷ plain")
    fig.suptitle(
        f"toy, {truth} truth: where the symmetry loss helps (< 1) and hurts (> 1)", fontsize=12
    )
    save(fig, path)
    plt.close(fig)
    return path
