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


LOSS_OPTIONS = ("fraction", "implementation", "weighted")  # the rest go to the penalty


def _value(penalty_class, fn, batch: dict, group: Group, generator, options: dict):
    """The penalty of ``fn`` on ``batch``: ``options`` split between the penalty and the loss."""
    loss_options = {k: options.pop(k) for k in LOSS_OPTIONS if k in options}
    measure = bool(options.pop("measure", False))
    loss = SymmetryLoss(penalty_class(**options), group, generator=generator, **loss_options)
    return loss(fn, batch, measure=measure)


def gseal(fn, batch: dict, group: Group, generator=None, **options) -> torch.Tensor:
    """Group-form SEAL ``mean_b ‖f(g_b·x_b) − ρ(g_b) f(x_b)‖²`` of ``fn`` on ``batch``.

    Parameters
    ----------
    fn : callable
        The model: batch dict → ``(B,)`` or ``(B, 4)``.
    batch : dict
        ``batch[key]`` is ``(B, N, 4)`` or ``(B, 4)``; ``batch["mask"]`` is respected.
    group : Group
        One element per example is drawn from it.
    generator : torch.Generator, optional
        The source of the group elements; None: one seeded from the global RNG.
    **options
        ``output``, ``key``, ``extra_keys`` of :class:`GSEAL`; ``fraction``, ``implementation``,
        ``weighted`` of :class:`SymmetryLoss`; ``measure=True``: the value only (allowed under
        ``torch.no_grad()`` on a model in training mode).
    """
    return _value(GSEAL, fn, batch, group, _from_global_rng(generator), options)


def dseal(fn, batch: dict, group: Group, generator=None, **options) -> torch.Tensor:
    """Infinitesimal SEAL ``mean_b Σ_a ‖J_f(x_b)·(T_a x_b) − T_a f(x_b)‖²`` of ``fn``.

    Parameters
    ----------
    fn, batch, group
        As for :func:`gseal`; the group's generators give the directions.
    generator : torch.Generator, optional
        The source of the random directions of ``stochastic=True``; None: one seeded from the
        global RNG.
    **options
        ``output``, ``method``, ``eps``, ``stochastic``, ``reduction``, ``key``, ``extra_keys``
        of :class:`DSEAL`; ``fraction``, ``implementation``, ``weighted`` of
        :class:`SymmetryLoss`; ``measure`` as for :func:`gseal`.
    """
    if options.get("stochastic"):
        generator = _from_global_rng(generator)
    return _value(DSEAL, fn, batch, group, generator, options)
