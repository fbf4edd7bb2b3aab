"""The symmetry spectrum of a trained model: how much it changes along each Lorentz generator.

For every generator T_a (K_x, K_y, K_z, J_x, J_y, J_z) the mean over the test set of the squared
derivative of the output along the induced input direction, ``‖J_f(x)·(T_a x) − T_a f(x)‖²``
(the second term for four-vector outputs), divided by the variance of the output over the test
set. 0 means exactly invariant (covariant) along that direction; a value of order 1 means an
infinitesimal transformation moves the output by as much as the data themselves do. A model
that learned a truth broken by a spurion along z should show it in the directions that move
p_z (K_z, J_x, J_y) and not in the others.
"""

import logging

import numpy as np
import torch

from seal.evaluation.plots import hep_style, save, subplots, title
from seal.groups import GENERATOR_NAMES, Group, Lorentz
from seal.metrics.bootstrap import count_blocks, spread
from seal.symmetry import DSEAL

log = logging.getLogger(__name__)


def residuals(fn, batches, output: str = "scalar", key: str = "p4", group: Group | None = None):
    """Per example ‖∂_a f − T_a f‖² (n, k) and the outputs (n,) or (n, 4), over ``batches``,
    along the generators of ``group`` (the six of :class:`~seal.groups.Lorentz` by default;
    ``lorentz+energy_scale`` adds the scale, ``S``).

    Where the model's derivative is not finite (pairwise features with a 0/0 derivative at
    i = j, say) the residuals are NaN, and a warning says how many examples and why.
    """
    penalty = DSEAL(output=output, key=key)
    parts, outputs = [], []
    for batch in batches:
        r, y = penalty.per_generator(fn, batch, group or Lorentz())
        parts.append(r.double().cpu())
        outputs.append(y.double().cpu())
    r, y = torch.cat(parts).numpy(), torch.cat(outputs).numpy()
    bad = ~np.isfinite(r).all(axis=1)
    if bad.any():
        log.warning(
            "symmetry spectrum: the derivative of the output along the generators is not finite "
            "for %d of %d test examples (the model's input gradient is NaN or inf there, e.g. "
            "pairwise features at i = j); the spectrum bars are NaN",
            int(bad.sum()),
            len(bad),
        )
    return r, y


def model_and_truth(module, data: dict, truth=None, output="scalar", batch_size=4096) -> tuple:
    """Spectrum metrics of ``module`` on the test split ``data`` (a batch dict), and of the
    ``truth`` (``p4 → target``) as ``truth_spectrum/…`` when given; → (metrics, bars)."""
    device = next(module.parameters()).device
    n = len(data["p4"])
    chunks = [
        {k: v[a : a + batch_size].to(device) for k, v in data.items()}
        for a in range(0, n, batch_size)
    ]
    bars = {"model": spectrum(*residuals(module, chunks, output))}
    metrics = dict(bars["model"])
    if truth is not None:
        bars["truth"] = spectrum(*residuals(lambda b: truth(b["p4"].double()), chunks, output))
        metrics.update(
            {k.replace("spectrum/", "truth_spectrum/"): v for k, v in bars["truth"].items()}
        )
    return metrics, bars


def spectrum(r: np.ndarray, y: np.ndarray, prefix: str = "spectrum/", names=GENERATOR_NAMES):
    """``{prefix}Kx`` … ``{prefix}Jz`` (one per column of ``r``, named by ``names``) = mean
    residual / output variance, with ``_err`` from a bootstrap over the examples (numerator and
    variance resampled together)."""
    if r.shape[1] != len(names):
        raise ValueError(f"spectrum: {r.shape[1]} residual columns but {len(names)} names")
    y = y.reshape(len(y), -1)  # (n, components)
    y = y - y.mean(0)  # the variance does not change; centring keeps E[y²] − E[y]² precise
    blocks = []
    for counts in count_blocks(len(y)):
        n = counts.sum(axis=1, keepdims=True)  # (R, 1)
        mean_sq = (counts @ (y * y).sum(1))[:, None] / n  # (R, 1)
        mean = (counts @ y) / n  # (R, components)
        variance = mean_sq - (mean * mean).sum(1, keepdims=True)
        blocks.append((counts @ r) / n / variance)  # (R, k)
    resampled = np.concatenate(blocks)
    centre = y - y.mean(0)
    value = r.mean(0) / (centre * centre).sum(1).mean()
    out = {}
    for a, name in enumerate(names):
        out[f"{prefix}{name}"] = float(value[a])
        out[f"{prefix}{name}_err"] = spread(resampled[:, a])
    return out


def plot_spectrum(bars: dict, path, title_text: str, run_name: str = ""):
    """Grouped bars per generator (label → metrics from :func:`spectrum`), log scale; the
    generators are those of the first entry's metrics (Kx … Jz, and S for the energy scale)."""
    fig, (ax,) = subplots()
    width = 0.8 / len(bars)
    first = next(iter(bars.values()))
    names = [k.split("/", 1)[1] for k in first if not k.endswith("_err")]
    x = np.arange(len(names))
    with hep_style():
        for i, (label, metrics) in enumerate(bars.items()):
            values = [metrics[f"spectrum/{g}"] for g in names]
            errors = [metrics[f"spectrum/{g}_err"] for g in names]
            ax.bar(
                x + (i - (len(bars) - 1) / 2) * width,
                values,
                width,
                yerr=errors,
                capsize=2,
                label=label,
            )
        ax.set_xticks(x, [f"${g[0]}_{g[1]}$" if len(g) == 2 else f"${g}$" for g in names])
        shown = [metrics[f"spectrum/{g}"] for metrics in bars.values() for g in names]
        if any(np.isfinite(v) and v > 0 for v in shown):  # (all zero: an exactly invariant model)
            ax.set_yscale("log", nonpositive="clip")
        ax.set(ylabel=r"$\langle (\partial_a f)^2 \rangle\,/\,\mathrm{Var}\,f$")
        ax.grid(alpha=0.3, axis="y")
        ax.legend()
        title(ax, title_text, run_name)
    save(fig, path)
    return fig
