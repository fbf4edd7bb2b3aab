import pytest
import torch
from torch import nn

from seal.models.transformer import EncoderBlock


class TinyAttentionNet(nn.Module):
    """LayerNorm + masked attention + dropout on raw four-momenta; (B,) or (B, out_dim) out."""

    def __init__(self, out_dim: int = 1, dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.block = EncoderBlock(dim, heads=2, ff_dim=32, dropout=dropout)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, batch):
        x = self.block(self.embed(batch["p4"] / 50.0), batch["mask"])  # (B, N, D)
        w = batch["mask"].unsqueeze(-1).to(x.dtype)
        out = self.head((x * w).sum(1) / w.sum(1))  # (B, out_dim)
        return out.squeeze(-1) if out.shape[-1] == 1 else out


@pytest.fixture
def tiny_attention():
    return TinyAttentionNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
