"""Hard Lorentz-invariant tagger: an edge network whose only inputs are Minkowski products."""

import itertools

import torch
from torch import nn

from seal.groups.minkowski import METRIC
from seal.models.sizes import preset

# seal's own network (no paper): published is its width matched to the SEAL study's tagger
SIZES = {
    "cpu": dict(hidden=64, latent_dim=64, depth=2),
    "published": dict(hidden=256, latent_dim=256, depth=3),
}


def signed_log(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) · log(1 + |x|)``: compresses GeV² products spanning many decades, keeps sign."""
    return torch.sign(x) * torch.log1p(x.abs())


def pair_invariants(p4: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The invariant inputs of every pair (i, j) of valid constituents.

    Parameters
    ----------
    p4 : Tensor, shape (B, N, 4)
        Four-momenta (E, px, py, pz) in GeV, zero-padded.
    mask : Tensor, shape (B, N), bool

    Returns
    -------
    Tensor, shape (B, N, N, 4)
        ``signed_log`` of p_i·p_j, p_i·P, p_j·P and P² in GeV², with P the sum of the valid
        constituents (the diagonal i = j carries the masses m_i²). Padded pairs are 0.
    """
    metric = METRIC.to(p4)
    p = p4 * mask.unsqueeze(-1)  # (B, N, 4)
    total = p.sum(1)  # (B, 4)
    pp = torch.einsum("bni,ij,bmj->bnm", p, metric, p)  # (B, N, N): p_i·p_j
    pP = torch.einsum("bni,ij,bj->bn", p, metric, total)  # (B, N): p_i·P
    PP = torch.einsum("bi,ij,bj->b", total, metric, total)  # (B,): P²
    n = p.shape[1]
    pairs = torch.stack(
        (
            pp,
            pP[:, :, None].expand(-1, -1, n),
            pP[:, None, :].expand(-1, n, -1),
            PP[:, None, None].expand(-1, n, n),
        ),
        dim=-1,
    )  # (B, N, N, 4)
    pair_mask = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1)  # (B, N, N, 1)
    return torch.where(pair_mask, signed_log(pairs), torch.zeros_like(pairs))


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.GELU()]
    return nn.Sequential(*layers)


class InvariantNet(nn.Module):
    """Exactly Lorentz-invariant (and permutation-invariant) tagger.

    Pairs (i, j) of the first ``max_particles`` constituent slots are embedded from their
    invariants (:func:`pair_invariants`) by an edge MLP, averaged over j for each i, passed
    through a node MLP, and averaged over i into a latent vector; a head maps it to one logit.
    Slots are truncated in storage order (never re-sorted by pT, which is frame-dependent), so
    the network is invariant also when jets are longer than ``max_particles``.

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: hidden 64, latent 64, depth 2; ``published`` (seal's own network, so: the SEAL
        study's tagger width): 256, 256, 3. Each of the next three overrides it.
    hidden : int
        Width of the edge and node MLPs.
    latent_dim : int
        Size of the pooled representation (``encode``).
    depth : int
        Hidden layers of the edge MLP (≥ 1).
    max_particles : int
        Constituent slots used (pairs cost O(N²)).

    Notes
    -----
    ``forward(batch)`` reads ``p4`` (B, N, 4) and ``mask`` (B, N) and returns logits (B,).
    """

    exact_symmetry = "InvariantNet reads only Minkowski products p_i·p_j: Lorentz-invariant"

    def __init__(
        self,
        hidden: int | None = None,
        latent_dim: int | None = None,
        depth: int | None = None,
        max_particles: int = 32,
        size: str = "cpu",
    ):
        super().__init__()
        o = preset(SIZES, size, "InvariantNet", hidden=hidden, latent_dim=latent_dim, depth=depth)
        hidden, latent_dim, depth = o["hidden"], o["latent_dim"], o["depth"]
        if depth < 1 or max_particles < 1:
            raise ValueError(f"need depth ≥ 1 and max_particles ≥ 1; got {depth}, {max_particles}")
        self.edge = _mlp([4] + [hidden] * depth)
        self.node = _mlp([hidden, hidden, latent_dim])
        self.head = nn.Sequential(
            nn.Linear(latent_dim, latent_dim), nn.GELU(), nn.Linear(latent_dim, 1)
        )
        self.latent_dim, self.max_particles = latent_dim, max_particles

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, latent_dim) invariant representation of each example."""
        p4, mask = batch["p4"][:, : self.max_particles], batch["mask"][:, : self.max_particles]
        pair_mask = (mask[:, :, None] & mask[:, None, :]).unsqueeze(-1).to(p4.dtype)  # (B,N,N,1)
        edges = self.edge(pair_invariants(p4, mask)) * pair_mask  # (B, N, N, H)
        nodes = edges.sum(2) / pair_mask.sum(2).clamp_min(1.0)  # (B, N, H): mean over partners
        weights = mask.unsqueeze(-1).to(p4.dtype)  # (B, N, 1)
        return (self.node(nodes) * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, L)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch)).squeeze(-1)
