"""Lorentz-group machinery in pure torch (imports nothing else from seal)."""

from seal.groups.lorentz import (
    boost_matrix,
    check_four_vectors,
    generators,
    rotation_matrix,
    transform,
    transform_batch,
)
from seal.groups.minkowski import METRIC, inner, mass2
from seal.groups.subgroups import (
    GROUPS,
    Boosts,
    Group,
    Lorentz,
    Rotations,
    ZBoostZRotation,
    make_group,
)

__all__ = [
    "GROUPS",
    "METRIC",
    "Boosts",
    "Group",
    "Lorentz",
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
