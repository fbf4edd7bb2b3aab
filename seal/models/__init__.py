"""Neural networks (plain nn.Modules taking the batch dict); they know nothing about symmetry."""

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.mlp import MLP
from seal.models.transformer import ConstituentTransformer

__all__ = ["FEATURE_NAMES", "MLP", "ConstituentTransformer", "constituent_features"]
