"""Figures shared by the run evaluation and the sweep report (matplotlib, Agg backend)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def plot_curves(curves: dict, path, xlabel: str, ylabel: str, title: str = "", logy: bool = True,
                marker: str | None = "o"):  # fmt: skip
    """One line per entry of ``curves`` (label → (xs, ys)); saves a PNG at ``path``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker=marker, markersize=3, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=7 if len(curves) > 6 else 9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return fig
