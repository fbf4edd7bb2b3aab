"""GSEAL, the group form: ``‖f(g_b·x_b) − ρ(g_b) f(x_b)‖²`` with one sampled g per example."""

import torch

from seal.groups import Group, transform
from seal.symmetry.base import Copies, Penalty
from seal.symmetry.batching import full_precision


def transform_entry(batch: dict, key: str, lam: torch.Tensor) -> torch.Tensor:
    """``batch[key]`` with one group element per example applied (padding respected)."""
    return transform(batch[key], lam, batch.get("mask") if batch[key].dim() == 3 else None)


class GSEAL(Penalty):
    """Group-form SEAL: per example ``‖f(g·x) − ρ(g) f(x)‖²`` (ρ = 1 or Λ).

    The group elements are drawn by the caller's group and generator; see :class:`Penalty`
    for ``output``, ``key`` and ``extra_keys``.
    """

    name = "gsymm"

    def copies(self, batch: dict, group: Group, generator) -> Copies:
        keys = self.keys(batch)
        x = batch[self.key]
        lam = group.sample(x.shape[0], generator=generator, device=x.device)  # (B, 4, 4) f64
        with full_precision(x.device):
            copy = {k: transform_entry(batch, k, lam) for k in keys}
        vector = self.output == "vector"

        def score(y, outs):
            (y_g,) = outs
            if vector:
                y = torch.einsum("bij,bj->bi", lam.to(y.dtype), y)  # ρ(g) f(x)
                return (y_g - y).square().sum(-1)
            return (y_g - y).square()

        return Copies([copy], x.shape[0], score)
