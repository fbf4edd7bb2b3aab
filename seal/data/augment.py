"""Data augmentation with random group elements: the natural alternative to SEAL."""

import torch

from seal.groups import Group, make_group, transform_batch


class BoostAugmentation:
    """Transform every training batch by one random group element per example.

    Parameters
    ----------
    group, beta_max, magnitude
        As for :class:`seal.symmetry.SymmetryRegularizer` (same sampler, so augmentation and
        GSEAL see the same transformations).
    output : {"scalar", "vector"}
        ``scalar``: the target is assumed invariant and kept; ``vector``: a (B, 4) target is
        transformed as ``Λ target``.
    keys : sequence of str
        Four-vector entries to transform when present.
    """

    def __init__(
        self,
        group: str | Group = "lorentz",
        beta_max=0.5,
        magnitude="uniform",
        output="scalar",
        keys=("p4", "jet_p4"),
    ):
        self.group = group if isinstance(group, Group) else make_group(group, beta_max, magnitude)
        if output not in ("scalar", "vector"):
            raise ValueError(f"unknown output kind {output!r}; choose 'scalar' or 'vector'")
        self.output, self.keys = output, tuple(keys)

    def __call__(self, batch: dict) -> dict:
        size = len(batch["p4"])
        lam = self.group.sample(size, device=batch["p4"].device)  # (B, 4, 4) float64
        out = transform_batch(batch, lam, [k for k in self.keys if k in batch])
        if self.output == "vector":
            target = batch["target"]
            out["target"] = torch.einsum("bij,bj->bi", lam.to(target.dtype), target)
        return out
