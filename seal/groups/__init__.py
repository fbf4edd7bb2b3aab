"""Lorentz-group machinery and the energy scale, in pure torch (imports nothing else from seal)."""

from seal.groups.lorentz import (
    boost_matrix,
    check_four_vectors,
    generators,
    rotation_matrix,
    transform,
    transform_batch,
)
from seal.groups.minkowski import METRIC, inner, mass2
from seal.groups.nuisance import EnergyScale, ProductGroup
from seal.groups.subgroups import (
    GENERATOR_NAMES,
    GROUPS,
    Boosts,
    Group,
    Lorentz,
    Rotations,
    ZBoostZRotation,
    make_group,
)

__all__ = [
    "GENERATOR_NAMES",
    "GROUPS",
    "METRIC",
    "Boosts",
    "EnergyScale",
    "Group",
    "Lorentz",
    "ProductGroup",
    "Rotations",
    "ZBoostZRotation",
    "boost_matrix",
    "check_four_vectors",
    "generators",
    "inner",
    "make_group",
    "mass2",
    "rotation_matrix",
    "transform",
    "transform_batch",
]
