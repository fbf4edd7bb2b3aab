"""Figures shared by the run evaluation and the sweep reports: HEP style (mplhep's ATLAS style),
error bars wherever a value has an error, and the run's name in every title."""

import contextlib
import logging
import math
import textwrap

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mplhep
from matplotlib.ticker import NullFormatter

STYLE = mplhep.style.ATLAS
logging.getLogger("matplotlib").setLevel(logging.WARNING)  # font substitutions: not news


@contextlib.contextmanager
def hep_style():
    """The HEP style for the figures made inside (the caller's own rcParams are left alone)."""
    with plt.style.context(STYLE):
        yield


def subplots(ncols: int = 1, width: float = 6.4, height: float = 4.8):
    with hep_style():
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def tex(text: str) -> str:
    """Efficiencies and β_max as math text (the HEP font has no sub-scripted glyphs)."""
    for plain, math_text in (
        ("ε_S", r"$\varepsilon_S$"),
        ("ε_B", r"$\varepsilon_B$"),
        ("β_max", r"$\beta_\mathrm{max}$"),
    ):
        text = text.replace(plain, math_text)
    return text


def title(ax, text: str, run_name: str = "", width: int = 75) -> None:
    """``text``, with the run it belongs to on the line(s) above (small, left-aligned)."""
    # the run name is shown as typed: a "$" (an ${…} override) must not start math text
    head = textwrap.fill(run_name, width).replace("$", r"\$") + "\n" if run_name else ""
    ax.set_title(head + tex(text), fontsize=10, loc="left")


def save(fig, path) -> None:
    with hep_style():
        fig.tight_layout()
        fig.savefig(path, dpi=110)


MARKERS = ("o", "s", "^", "D", "v")


def _errorbars(ax, curves: dict, marker, line: bool) -> None:
    colours = len(plt.rcParams["axes.prop_cycle"].by_key().get("color", [None]))
    for i, (label, (xs, ys, *errors)) in enumerate(curves.items()):
        style = ("-", "--", ":")[i // colours % 3] if line else "none"  # colours repeat: dashes
        marker_i = marker  # colours repeat on a points-only plot: the next marker
        if marker in MARKERS and i >= colours:
            marker_i = MARKERS[(MARKERS.index(marker) + i // colours) % len(MARKERS)]
        yerr, xerr = [*errors, None, None][:2]
        if yerr is not None:  # an infinite error (a rejection the test set cannot fix): no bar
            yerr = np.asarray(yerr, dtype=float)
            yerr = np.where(np.isfinite(yerr), yerr, np.nan)
        ax.errorbar(
            xs,
            ys,
            yerr=yerr,
            xerr=xerr,
            marker=marker_i,
            markersize=4,
            capsize=2,
            linestyle=style,
            label=tex(label),
        )


def plot_curves(
    curves: dict,
    path,
    xlabel: str,
    ylabel: str,
    title_text: str = "",
    logy: bool = True,
    marker: str | None = "o",
    line: bool = True,
    run_name: str = "",
    logx: bool = False,
):
    """One line per entry of ``curves`` (label → (xs, ys) or (xs, ys, yerr[, xerr])), error
    bars where given (``line=False``: points only, for binned values); saves a PNG at ``path``."""
    return plot_panels(
        [(curves, ylabel, logy)], path, xlabel, title_text, marker, line, run_name, logx
    )


def plot_panels(
    panels: list,
    path,
    xlabel: str,
    title_text: str = "",
    marker="o",
    line: bool = True,
    run_name: str = "",
    logx: bool = False,
):
    """Side-by-side panels sharing the x axis, each ``(curves, ylabel, logy)`` as in
    :func:`plot_curves`; the title goes over the first panel."""
    fig, axes = subplots(len(panels))
    with hep_style():
        for i, (ax, (curves, ylabel, logy)) in enumerate(zip(axes, panels)):
            _errorbars(ax, curves, marker, line)
            ax.set(xlabel=tex(xlabel), ylabel=tex(ylabel))
            if logy:
                ax.set_yscale("log")
            if logx:
                ax.set_xscale("log")
                xs = sorted({float(x) for xs, *_ in curves.values() for x in xs})
                # few points within two decades: label them (log minor labels overlap)
                if xs and xs[-1] < 100 * xs[0] and len(xs) <= 6:
                    ax.set_xticks(xs, [f"{x:,g}" for x in xs])
                    ax.xaxis.set_minor_formatter(NullFormatter())
            if marker is not None:  # HEP style has no x margin: end points would sit on the frame
                ax.margins(x=0.04)
            ax.grid(alpha=0.3)
            if len(curves) > 1:
                ax.legend(fontsize=8 if len(curves) > 5 else 10)
            if i == 0:
                title(ax, title_text, run_name, width=75 * len(panels))
    save(fig, path)
    return fig


def log_bins(values: list[np.ndarray], per_decade: int = 8, top: float = 1.0) -> np.ndarray:
    """Logarithmic bin edges from the smallest positive value's decade up to ``top``."""
    positive = np.concatenate([v[v > 0] for v in values] or [np.zeros(0)])
    low = math.floor(math.log10(positive.min())) if len(positive) else -6
    low = min(max(low, -12), math.floor(math.log10(top)) - 1)
    decades = math.ceil(math.log10(top)) - low
    return np.logspace(low, low + decades, decades * per_decade + 1)


def plot_shift_histograms(shifts: dict, path, xlabel: str, title_text: str, run_name: str = ""):
    """Log-binned histograms of per-jet output shifts, one outline per variant (label → array);
    jets whose shift is exactly 0 cannot sit on a log axis: their count is in the legend."""
    edges = log_bins(list(shifts.values()))
    fig, (ax,) = subplots()
    with hep_style():
        for label, shift in shifts.items():
            zeros = int((shift <= 0).sum())
            median = float(np.median(shift)) if len(shift) else float("nan")
            text = f"{label}: median {median:.2g}" + (
                f", {zeros} at 0 (not drawn)" if zeros else ""
            )
            ax.hist(shift[shift > 0], bins=edges, histtype="step", linewidth=1.5, label=text)
        ax.set(xscale="log", xlabel=xlabel, ylabel="jets per bin")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
        title(ax, title_text, run_name)
    save(fig, path)
    return fig


def plot_constraint(csv_path, path, target: float, run_name: str = ""):
    """A constrained run's multipliers λ(t) and running estimates L̂(t) against the training
    batch (``constraint.csv`` of :class:`~seal.symmetry.SymmetryRegularizer`), the target as a
    level line."""
    table = np.genfromtxt(csv_path, delimiter=",", names=True, deletechars="")
    names = [n for n in table.dtype.names if n.startswith("weight")]
    batch = table["batch"]
    panels = []
    for prefix, ylabel in (("weight", "multiplier λ"), ("estimate", "penalty / Var(f)  (L̂)")):
        curves = {}
        for name in names:
            suffix = name[len("weight") :]
            curves[suffix.lstrip("/") or prefix] = (batch, table[prefix + suffix])
        panels.append((curves, ylabel, True))
    ends = [batch.min(), batch.max()]
    panels[1][0]["target ε"] = (ends, [target, target])  # a level line across the run
    return plot_panels(panels, path, "training batch", "constrained SEAL", None, run_name=run_name)
