"""Figures shared by the run evaluation and the sweep report (matplotlib, Agg backend)."""

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(curves: dict, path, xlabel: str, ylabel: str, title: str = "", logy: bool = True,
                marker: str | None = "o", line: bool = True):  # fmt: skip
    """One line per entry of ``curves`` (label → (xs, ys) or (xs, ys, yerr[, xerr])), error
    bars where given (``line=False``: points only, for binned values); saves a PNG at ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys, *errors) in curves.items():
        yerr, xerr = [*errors, None, None][:2]
        if yerr is not None:  # an infinite error (a rejection the test set cannot fix): no bar
            yerr = np.where(np.isfinite(np.asarray(yerr, dtype=float)), yerr, np.nan)
        ax.errorbar(xs, ys, yerr=yerr, xerr=xerr, marker=marker, markersize=3, capsize=2,
                    linestyle="-" if line else "none", label=label)  # fmt: skip
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=7 if len(curves) > 6 else 9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig
