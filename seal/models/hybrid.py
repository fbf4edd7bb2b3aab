"""Dual-subnet "approximate invariance" model (Nabat et al., Phys. Rev. D 111, 072002).

An invariant subnet and an unconstrained subnet each map the batch to a latent vector; a small
weight network reads a conditioning variable (default: the leading object's pT) and outputs
softmax weights that mix the two latents; a head classifies the mixture. The weight on the
invariant latent, ``w_inv``, is how much symmetry the model chose for that example.
"""

import torch
from torch import nn

_TINY = 1e-12


def _pt(p4: torch.Tensor) -> torch.Tensor:
    """(..., 4) → transverse momentum (...) in GeV."""
    return torch.sqrt((p4[..., 1].square() + p4[..., 2].square()).clamp_min(_TINY))


CONDITIONS = {
    # leading-object pT: the largest constituent pT of the example (the leading muon, ...)
    "leading_pt": lambda b: torch.where(b["mask"], _pt(b["p4"]), 0.0).amax(1),
    # pT of the whole system (the jet, the dimuon pair)
    "system_pt": lambda b: _pt((b["p4"] * b["mask"].unsqueeze(-1)).sum(1)),
}


def _latent_dim(net: nn.Module) -> int:
    dim = getattr(net, "latent_dim" if hasattr(net, "encode") else "out_dim", None)
    if dim is None or dim < 2:
        raise TypeError(
            f"{type(net).__name__} cannot be a hybrid subnet: it needs `encode(batch)` "
            "and `latent_dim`, or a vector output `out_dim`"
        )
    return dim


def _encode(net: nn.Module, batch: dict) -> torch.Tensor:
    return net.encode(batch) if hasattr(net, "encode") else net(batch)


class HybridNet(nn.Module):
    """Mix an invariant and a general subnet with condition-dependent softmax weights.

    Parameters
    ----------
    invariant, general : nn.Module
        Subnets mapping the batch to (B, L_inv) and (B, L_gen): either through ``encode`` (with a
        ``latent_dim`` attribute) or through ``forward`` with a vector ``out_dim``.
    latent_dim : int
        Both latents are projected to this size before mixing.
    condition : str
        The weight network's input (GeV): one of :data:`CONDITIONS`, or the name of a ``(B,)``
        batch entry; fed as ``log(x / condition_scale)``.
    condition_scale : float
        GeV; centres the conditioning input.
    weight_hidden : int
        Hidden width of the weight network.
    """

    def __init__(
        self,
        invariant: nn.Module,
        general: nn.Module,
        latent_dim: int = 64,
        condition: str = "leading_pt",
        condition_scale: float = 100.0,
        weight_hidden: int = 16,
    ):
        super().__init__()
        self.invariant, self.general = invariant, general
        self.project_inv = nn.Linear(_latent_dim(invariant), latent_dim)
        self.project_gen = nn.Linear(_latent_dim(general), latent_dim)
        self.weight_net = nn.Sequential(
            nn.Linear(1, weight_hidden), nn.GELU(), nn.Linear(weight_hidden, 2)
        )
        self.head = nn.Sequential(
            nn.GELU(), nn.Linear(latent_dim, latent_dim), nn.GELU(), nn.Linear(latent_dim, 1)
        )
        self.condition, self.condition_scale = condition, condition_scale

    def condition_value(self, batch: dict) -> torch.Tensor:
        """(B,) the conditioning variable in GeV."""
        if self.condition in CONDITIONS:
            return CONDITIONS[self.condition](batch)
        if self.condition not in batch:
            raise KeyError(
                f"hybrid condition {self.condition!r} is neither a built-in "
                f"({sorted(CONDITIONS)}) nor a batch entry ({sorted(batch)})"
            )
        return batch[self.condition]

    def mixing(self, batch: dict) -> torch.Tensor:
        """(B, 2) softmax weights (invariant, general); rows sum to one."""
        c = torch.log(self.condition_value(batch).clamp_min(_TINY) / self.condition_scale)
        return torch.softmax(self.weight_net(c.unsqueeze(-1)), dim=-1)

    def forward(self, batch: dict) -> torch.Tensor:
        z_inv = self.project_inv(_encode(self.invariant, batch))  # (B, L)
        z_gen = self.project_gen(_encode(self.general, batch))  # (B, L)
        w = self.mixing(batch)  # (B, 2)
        return self.head(w[:, :1] * z_inv + w[:, 1:] * z_gen).squeeze(-1)
