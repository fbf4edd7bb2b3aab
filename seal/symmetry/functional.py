"""One-call forms of the penalties: ``gseal(fn, batch, group)`` and ``dseal(fn, batch, group)``.

Each builds a :class:`~seal.symmetry.loss.SymmetryLoss` for the call, so it probes ``fn`` and
takes the same exact route as the callback would; keep a ``SymmetryLoss`` to probe only once.
"""

import torch

from seal.groups import Group
from seal.symmetry.dseal import DSEAL
from seal.symmetry.gseal import GSEAL
from seal.symmetry.loss import SymmetryLoss


def _from_global_rng(generator):
    """``generator``, or one seeded from the global RNG (which then advances, as torch.rand)."""
    if generator is not None:
        return generator
    return torch.Generator().manual_seed(int(torch.randint(2**62, ())))


def gseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    implementation: str = "auto",
    weighted: bool = False,
) -> torch.Tensor:
    """Group-form SEAL ``mean_b ‖f(g_b·x_b) − ρ(g_b) f(x_b)‖²`` of ``fn`` on ``batch``.

    ``batch[key]`` is ``(B, N, 4)`` or ``(B, 4)`` (``batch["mask"]`` respected); one element
    per example is drawn from ``group`` with ``generator``. See :class:`SymmetryLoss` for
    ``fraction``, ``implementation`` and ``weighted``.
    ``generator`` None: drawn from the global RNG.
    """
    penalty, generator = GSEAL(output, key, extra_keys), _from_global_rng(generator)
    return SymmetryLoss(penalty, group, fraction, implementation, weighted, generator)(fn, batch)


def dseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    method: str = "exact",
    eps: float = 1e-3,
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    stochastic: bool = False,
    implementation: str = "auto",
    reduction: str = "sum",
    weighted: bool = False,
) -> torch.Tensor:
    """Infinitesimal SEAL ``mean_b Σ_a ‖J_f(x_b)·(T_a x_b) − T_a f(x_b)‖²`` (see :class:`DSEAL`)."""
    penalty = DSEAL(output, method, eps, stochastic, reduction, key, extra_keys)
    generator = _from_global_rng(generator) if stochastic else generator
    return SymmetryLoss(penalty, group, fraction, implementation, weighted, generator)(fn, batch)
