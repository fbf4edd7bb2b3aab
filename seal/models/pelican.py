"""PELICAN (permutation-equivariant, Lorentz-invariant aggregator network; ``pelican-lite``,
installed with ``pip install 'seal-hep[lloca]'``) wrapped to the batch contract."""

import torch
from torch import nn

from seal.models.sizes import preset

# published: a GPU size of PELICAN's order (5 blocks × 78 channels, 0.49 M parameters here);
# pelican-lite ships no top-tagging configuration
SIZES = {"cpu": dict(blocks=2, hidden=16), "published": dict(blocks=5, hidden=78)}

INSTALL_HINT = (
    "model/backbone=pelican needs the `pelican-lite` package, which comes with the optional extra: "
    "pip install 'seal-hep[lloca]'  (or: pip install pelican-lite)"
)

# one rank-2 input channel (the pair products p_i·p_j), nothing per particle, one scalar out
RANKS = dict(
    in_channels_rank2=1, in_channels_rank1=0, in_channels_rank0=0, out_rank=0, out_channels=1
)


def _import_pelican():
    try:
        from pelican import PELICAN
        from pelican.utils import get_batch_from_ptr, get_edge_index_from_ptr
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return PELICAN, get_batch_from_ptr, get_edge_index_from_ptr


class PelicanTagger(nn.Module):
    """Pairwise Minkowski products ``p_i·p_j`` (self-pairs give the masses) → PELICAN's
    equivariant 2→2 blocks → 2→0 aggregation → one logit. Exactly Lorentz-invariant: the
    products are its only input.

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: 2 blocks of 16 edge channels; ``published``: 5 blocks of 78 (0.49 M parameters),
        a GPU size of PELICAN's order.
    blocks, hidden
        PELICAN blocks and edge channels (each overrides the preset).
    dropout : float, optional
        Dropout in PELICAN's feed-forward layers.
    scale : float
        GeV; products are taken of ``p / scale`` and fed as ``sign·log(1 + |x|)``.
    """

    def __init__(
        self,
        blocks: int | None = None,
        hidden: int | None = None,
        dropout: float | None = None,
        scale: float = 100.0,
        size: str = "cpu",
    ):
        super().__init__()
        o = preset(SIZES, size, "PelicanTagger", blocks=blocks, hidden=hidden)
        blocks, hidden = o["blocks"], o["hidden"]
        pelican, *_ = _import_pelican()
        self.net = pelican(**RANKS, num_blocks=blocks, hidden_channels=hidden, dropout_prob=dropout)
        self.scale = scale
        self.exact_symmetry = "PELICAN reads only the products p_i·p_j: Lorentz-invariant"

    def forward(self, batch: dict) -> torch.Tensor:
        _, batch_from_ptr, edge_index_from_ptr = _import_pelican()
        p4, mask = batch["p4"], batch["mask"]
        counts = mask.sum(1)
        if bool((counts == 0).any()):
            raise ValueError("PelicanTagger: a jet without constituents has no pairs")
        ptr = torch.cat((counts.new_zeros(1), counts.cumsum(0)))  # (B+1,)
        nodes = p4[mask].double() / self.scale  # (P, 4), jet by jet; float64: collinear
        edges = edge_index_from_ptr(ptr, nodes.shape, remove_self_loops=False)  # pairs cancel
        metric = nodes.new_tensor([1.0, -1.0, -1.0, -1.0])
        dots = (nodes[edges[0]] * nodes[edges[1]] * metric).sum(-1, keepdim=True)  # (E, 1)
        inputs = (torch.sign(dots) * torch.log1p(dots.abs())).to(p4.dtype)
        out = self.net(edges, batch_from_ptr(ptr), in_rank2=inputs, num_graphs=len(counts))
        return out.squeeze(-1)  # (B,)
