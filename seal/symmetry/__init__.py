"""Symmetry-encouraging losses: pure penalty functions and the Lightning callback."""

from seal.symmetry.callback import SymmetryRegularizer
from seal.symmetry.penalties import PENALTIES, dseal, gseal

__all__ = ["PENALTIES", "SymmetryRegularizer", "dseal", "gseal"]
