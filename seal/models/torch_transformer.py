"""A tagger built from stock PyTorch layers: ``nn.TransformerEncoder`` over constituents.

This is what a physicist who has never heard of seal writes (the SEAL authors' own tagger uses
``nn.TransformerEncoderLayer``): its attention dropout is a function call inside
``nn.MultiheadAttention``, which the symmetry penalty must not mistake for symmetry breaking.
"""

import torch
from torch import nn

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.sizes import preset
from seal.models.transformer import SIZES


class TorchTransformerTagger(nn.Module):
    """7 constituent features → linear embedding → ``nn.TransformerEncoder`` → masked mean →
    MLP → one logit.

    Parameters
    ----------
    size : "cpu" | "published"
        The presets of :class:`~seal.models.ConstituentTransformer` (cpu 64/2/4/128).
    dim, depth, heads, ff_dim, dropout
        Width, number of ``nn.TransformerEncoderLayer``s, heads, feed-forward width, dropout
        (attention, feed-forward and residual, as in the stock layer).
    norm_first : bool
        Pre-norm layers (the stock default is post-norm).
    use_jet_p4 : bool
        As for :class:`~seal.models.ConstituentTransformer`, whose batch contract (``p4``,
        ``mask`` in; one logit per jet out) and features this tagger shares.
    """

    def __init__(
        self,
        dim: int | None = None,
        depth: int | None = None,
        heads: int | None = None,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        norm_first: bool = False,
        use_jet_p4: bool = False,
        size: str = "cpu",
    ):
        super().__init__()
        o = preset(
            SIZES, size, "TorchTransformerTagger", dim=dim, depth=depth, heads=heads, ff_dim=ff_dim
        )
        dim, depth, heads, ff_dim = o["dim"], o["depth"], o["heads"], o["ff_dim"]
        self.embed = nn.Linear(len(FEATURE_NAMES), dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.use_jet_p4, self.latent_dim = use_jet_p4, dim

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, dim) masked mean of the encoder's outputs."""
        mask = batch["mask"]
        jet_p4 = batch["jet_p4"] if self.use_jet_p4 else None
        x = self.embed(constituent_features(batch["p4"], mask, jet_p4))  # (B, N, D)
        x = self.encoder(x, src_key_padding_mask=~mask)  # True marks padding there
        weights = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
        return (x * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch)).squeeze(-1)
