"""Minkowski space: metric, inner product and invariant mass.

Four-vectors are ``(E, px, py, pz)`` on the last axis, metric ``diag(+1, -1, -1, -1)``, in GeV.
"""

import torch

METRIC = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
"""(4, 4) float64 Minkowski metric η = diag(+1, −1, −1, −1)."""

_SIGNS = (1.0, -1.0, -1.0, -1.0)


def inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Minkowski product ``a·b = a⁰b⁰ − a⃗·b⃗``.

    Parameters
    ----------
    a, b : Tensor, shape (..., 4)
        Four-vectors (E, px, py, pz); leading axes broadcast.

    Returns
    -------
    Tensor, shape (...)
        The product, in the units of ``a`` times the units of ``b`` (GeV²).
    """
    signs = a.new_tensor(_SIGNS)
    return (a * b * signs).sum(-1)


def mass2(p: torch.Tensor) -> torch.Tensor:
    """Invariant mass squared ``p·p = E² − |p⃗|²``: (..., 4) → (...)."""
    return inner(p, p)
