"""Tagging metrics: weighted ROC, AUC, accuracy and background rejection 1/ε_B at fixed ε_S."""

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

SIGNAL_EFFICIENCIES = (0.3, 0.5, 0.8)


def classes(labels) -> np.ndarray:
    """Signal (True) or background per jet: label > 0.5 (soft labels, ``data.labels=soft``,
    count by the class they lean to; 0/1 labels are unchanged)."""
    return np.asarray(labels) > 0.5


def roc(labels, scores, weights=None):
    """Weighted ROC: (ε_B, ε_S) arrays, every threshold kept (no points dropped)."""
    eps_b, eps_s, _ = roc_curve(
        classes(labels), scores, sample_weight=weights, drop_intermediate=False
    )
    return eps_b, eps_s


def background_efficiency_at(eps_b, eps_s, target: float) -> float:
    """ε_B at signal efficiency ``target``, linear along the ROC segment that crosses it.

    Where several points share one ε_S (background-only steps), the segment into a new ε_S
    starts from the last point of the previous ε_S and ends at the first point of the new one.
    """
    values = np.unique(eps_s)
    if target in values:
        return float(eps_b[eps_s == target].min())
    k = np.searchsorted(values, target)
    if k == 0 or k == len(values):
        raise ValueError(f"ε_S = {target} is outside the ROC curve's range")
    s0, s1 = values[k - 1], values[k]
    b0, b1 = eps_b[eps_s == s0].max(), eps_b[eps_s == s1].min()
    return float(b0 + (b1 - b0) * (target - s0) / (s1 - s0))


def tagging_metrics(labels, scores, weights=None, prefix: str = "") -> dict:
    """AUC, accuracy (score > 0 for logits), and ``rej@ε`` = 1/ε_B for ε_S in 0.3, 0.5, 0.8.

    Rejection is ``inf`` where the interpolated ε_B is 0 (no background passes).
    """
    labels, scores = classes(labels), np.asarray(scores, dtype=np.float64)
    if len(np.unique(labels)) < 2:
        raise ValueError("tagging metrics need both signal and background jets")
    eps_b, eps_s = roc(labels, scores, weights)
    out = {
        f"{prefix}auc": float(roc_auc_score(labels, scores, sample_weight=weights)),
        f"{prefix}acc": float(((scores > 0) == labels).mean()),
    }
    for eff in SIGNAL_EFFICIENCIES:
        background = background_efficiency_at(eps_b, eps_s, eff)
        out[f"{prefix}rej@{eff}"] = 1.0 / background if background > 0 else float("inf")
    return out
