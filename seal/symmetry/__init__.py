"""Symmetry-encouraging losses: penalties (config objects), the plain-PyTorch ``SymmetryLoss``
that evaluates them exactly on any model, and the Lightning callback that schedules it."""

from seal.symmetry.base import Copies, Penalty
from seal.symmetry.dseal import DSEAL
from seal.symmetry.functional import dseal, gseal
from seal.symmetry.gseal import GSEAL
from seal.symmetry.loss import PENALTIES, SymmetryLoss
from seal.symmetry.routes import RouteError

__all__ = [
    "DSEAL",
    "GSEAL",
    "PENALTIES",
    "Copies",
    "Penalty",
    "RouteError",
    "SymmetryLoss",
    "SymmetryRegularizer",
    "dseal",
    "gseal",
]


def __getattr__(name):
    # the Lightning callback loads Lightning only when asked for (the plain API needs none)
    if name == "SymmetryRegularizer":
        from seal.symmetry.callback import SymmetryRegularizer

        return SymmetryRegularizer
    raise AttributeError(f"module 'seal.symmetry' has no attribute {name!r}")
