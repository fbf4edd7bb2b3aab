"""Transformer encoder over jet constituents (features computed from ``p4`` in ``forward``)."""

import torch
import torch.nn.functional as F
from torch import nn

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.sizes import preset

# published: the SEAL study's tagger; cpu: the size the top_* experiments train on two cores
SIZES = {
    "cpu": dict(dim=64, depth=2, heads=4, ff_dim=128),
    "published": dict(dim=256, depth=3, heads=4, ff_dim=256),
}


class EncoderBlock(nn.Module):
    """Pre-norm block: ``x + Attn(LN(x))``, then ``x + FF(LN(x))``, with dropout.

    Attention is :func:`torch.nn.functional.scaled_dot_product_attention`, so the fused kernels
    run unless a caller (a double backward) selects the math backend.
    """

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"width {dim} is not divisible by the number of heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Linear(ff_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, N, D); mask: (B, N) bool, True for real constituents."""
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # 3 × (B, H, N, D/H)
        keys = mask[:, None, None, :]
        attn = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keys, dropout_p=self.dropout if self.training else 0.0
        )  # (B, H, N, D/H); keys masked, padded queries are ignored downstream
        x = x + self.drop(self.proj(attn.transpose(1, 2).reshape(b, n, d)))
        return x + self.drop(self.ff(self.norm2(x)))


class ConstituentTransformer(nn.Module):
    """Jet tagger: 7 features → linear embedding → L blocks → masked mean → MLP → one logit.

    Parameters
    ----------
    size : "cpu" | "published"
        Preset of the four widths: ``cpu`` 64/2/4/128 (0.07 M parameters), ``published`` the
        SEAL study's 256/3/4/256.
    dim, depth, heads, ff_dim, dropout
        Width, number of encoder blocks, attention heads, feed-forward width (each overrides
        the preset), dropout.
    use_jet_p4 : bool
        Take the jet axis from ``batch["jet_p4"]`` instead of the constituent sum.

    Notes
    -----
    ``forward(batch)`` reads ``p4`` (B, N, 4) and ``mask`` (B, N) and returns logits (B,).
    """

    def __init__(
        self,
        dim: int | None = None,
        depth: int | None = None,
        heads: int | None = None,
        ff_dim: int | None = None,
        dropout: float = 0.1,
        use_jet_p4: bool = False,
        size: str = "published",
    ):
        super().__init__()
        o = preset(
            SIZES, size, "ConstituentTransformer", dim=dim, depth=depth, heads=heads, ff_dim=ff_dim
        )
        dim, depth, heads, ff_dim = o["dim"], o["depth"], o["heads"], o["ff_dim"]
        self.embed = nn.Linear(len(FEATURE_NAMES), dim)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, ff_dim, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, 1))
        self.use_jet_p4, self.latent_dim = use_jet_p4, dim

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, dim) masked mean of the normalised constituent embeddings."""
        mask = batch["mask"]
        jet_p4 = batch["jet_p4"] if self.use_jet_p4 else None
        x = self.embed(constituent_features(batch["p4"], mask, jet_p4))  # (B, N, D)
        for block in self.blocks:
            x = block(x, mask)
        weights = mask.unsqueeze(-1).to(x.dtype)  # (B, N, 1)
        return (self.norm(x) * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch)).squeeze(-1)
