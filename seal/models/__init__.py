"""Neural networks (plain nn.Modules taking the batch dict); they know nothing about symmetry."""

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.hybrid import HybridNet
from seal.models.invariant import InvariantNet, pair_invariants
from seal.models.mlp import MLP
from seal.models.torch_transformer import TorchTransformerTagger
from seal.models.transformer import ConstituentTransformer

__all__ = [
    "FEATURE_NAMES",
    "MLP",
    "ConstituentTransformer",
    "HybridNet",
    "InvariantNet",
    "TorchTransformerTagger",
    "constituent_features",
    "pair_invariants",
]
