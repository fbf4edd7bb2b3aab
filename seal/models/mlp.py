"""Fully connected network on the flattened four-momenta (the SEAL toy model)."""

import torch
from torch import nn

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units on ``batch[key]`` flattened.

    Parameters
    ----------
    n_particles : int
        N, the number of four-vectors per example; the input has 4N features.
    out_dim : int
        1 → output shape (B,) (an invariant scalar); 4 → (B, 4) (a four-vector).
    width, depth, activation, dropout
        Hidden size, number of hidden layers, nonlinearity (``gelu``, ``relu``, ``silu``,
        ``tanh``) and dropout probability after each hidden layer.
    key : str
        Batch entry holding the ``(B, N, 4)`` four-momenta.
    scale : float
        The four-momenta are divided by this (GeV) before the first layer.
    """

    def __init__(
        self,
        n_particles: int = 1,
        out_dim: int = 1,
        width: int = 300,
        depth: int = 3,
        activation: str = "gelu",
        dropout: float = 0.0,
        key: str = "p4",
        scale: float = 1.0,
    ):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}"
            )
        for name, value, least in (
            ("n_particles", n_particles, 1),
            ("out_dim", out_dim, 1),
            ("width", width, 1),
            ("depth", depth, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"model.net.{name} must be a whole number ≥ {least}; got {value!r}"
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.net.dropout must be in [0, 1); got {dropout!r}")
        layers, size = [], 4 * n_particles
        for _ in range(depth):
            layers += [nn.Linear(size, width), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        layers.append(nn.Linear(size, out_dim))
        self.net = nn.Sequential(*layers)
        self.n_particles, self.out_dim, self.key, self.scale = n_particles, out_dim, key, scale

    def forward(self, batch: dict) -> torch.Tensor:
        p4 = batch[self.key]
        if p4.shape[-2:] != (self.n_particles, 4):
            raise ValueError(
                f"MLP built for {self.n_particles} four-vectors per example; "
                f"batch[{self.key!r}] has shape {tuple(p4.shape)}"
            )
        out = self.net(p4.flatten(1) / self.scale)  # (B, N, 4) -> (B, 4N) -> (B, out_dim)
        return out.squeeze(-1) if self.out_dim == 1 else out
