"""Test helpers that ship with the package: on-shell momenta and invariance assertions.

Tolerances are for float64; compare in float64 whenever a check is about symmetry.
"""

import torch

from seal.groups import Group, transform_batch

ATOL = 1e-9
RTOL = 1e-9


def random_on_shell(
    batch_size: int,
    n_particles: int,
    seed: int = 0,
    max_momentum: float = 100.0,
    masses: tuple[float, float] = (0.1, 5.0),
    pad: bool = True,
    dtype=torch.float64,
) -> dict:
    """A batch of massive on-shell particles (E = √(m² + |p⃗|²) > |p⃗|), zero-padded.

    Returns ``{"p4": (B, N, 4), "mask": (B, N), "jet_p4": (B, 4)}``; with ``pad`` the
    example ``b`` keeps ``max(1, N − b % N)`` particles, so padding and full rows both occur.
    Momenta components are uniform in ±``max_momentum`` GeV, masses uniform in ``masses``.
    """
    gen = torch.Generator().manual_seed(seed)
    p = (
        2 * torch.rand(batch_size, n_particles, 3, generator=gen, dtype=torch.float64) - 1
    ) * max_momentum
    m = masses[0] + (masses[1] - masses[0]) * torch.rand(
        batch_size, n_particles, 1, generator=gen, dtype=torch.float64
    )
    energy = torch.sqrt(m.square() + p.square().sum(-1, keepdim=True))
    p4 = torch.cat((energy, p), dim=-1)  # (B, N, 4)
    keep = torch.full((batch_size,), n_particles)
    if pad:
        keep = (n_particles - torch.arange(batch_size) % n_particles).clamp_min(1)
    mask = torch.arange(n_particles) < keep[:, None]  # (B, N)
    p4 = torch.where(mask.unsqueeze(-1), p4, 0.0)
    return {"p4": p4.to(dtype), "mask": mask, "jet_p4": p4.sum(1).to(dtype)}


def assert_equivariant(
    fn,
    batch: dict,
    group: Group,
    covariant: bool = False,
    keys=("p4", "jet_p4"),
    n_samples: int = 3,
    atol: float = ATOL,
    rtol: float = RTOL,
    seed: int = 0,
) -> None:
    """Assert ``fn(g·x) == fn(x)`` (or ``Λ(g) fn(x)`` for a (B, 4) output when ``covariant``)
    for ``n_samples`` draws of one group element per example, transforming ``keys``."""
    gen = torch.Generator().manual_seed(seed)
    reference = fn(batch)
    for _ in range(n_samples):
        lam = group.sample(len(reference), generator=gen, device=reference.device)
        moved = fn(transform_batch(batch, lam, [k for k in keys if k in batch]))
        expected = reference
        if covariant:
            expected = torch.einsum("bij,bj->bi", lam.to(reference.dtype), reference)
        torch.testing.assert_close(moved, expected, atol=atol, rtol=rtol)


def assert_invariant(fn, batch: dict, group: Group, **options) -> None:
    """:func:`assert_equivariant` for an invariant output (options: keys, n_samples, atol, …)."""
    assert_equivariant(fn, batch, group, covariant=False, **options)


def assert_covariant(fn, batch: dict, group: Group, **options) -> None:
    """:func:`assert_equivariant` for a four-vector output that should transform as Λ."""
    assert_equivariant(fn, batch, group, covariant=True, **options)


def quiet_trainer(**options):
    """A Lightning ``Trainer`` for tests: CPU, no logger, progress bar or model summary.

    Parameters
    ----------
    **options
        Any other ``pl.Trainer`` argument (``max_steps``, ``callbacks``, ``precision``, …); these
        override the defaults above too.
    """
    import pytorch_lightning as pl  # only here: the plain-PyTorch helpers need no Lightning

    defaults = dict(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    return pl.Trainer(**{**defaults, **options})
