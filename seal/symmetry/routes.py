"""Which way a penalty is evaluated on a given model, and why.

Routes, fastest first:

* ``fused`` — the transformed copies join the originals in **one** forward (``[x ; g·x]``).
  Exact only for a model that is deterministic in training, whose examples do not interact and
  whose forward writes no buffers. Exact δSEAL: every generator direction from one double
  backward (examples must not interact).
* ``replay`` — every compared input gets a forward of its own, all from one RNG state, so every
  dropout mask (module, functional, inside attention) is the same; batch statistics are those
  of each compared batch; buffers written there are scratch copies. Exact δSEAL: one forward
  and backward per generator when asked for (``implementation=separate``).

A model whose randomness cannot be replayed is refused, and so is exact δSEAL on a model whose
examples interact (one backward of the batch sum would mix them); the error names the module.
"""

from seal.symmetry.probe import Traits

IMPLEMENTATIONS = ("auto", "fused", "separate")


class RouteError(ValueError):
    """No route is exact for this model and penalty; the message names the module and the
    option that works."""


def choose_route(traits: Traits, penalty, implementation: str) -> tuple[str, str]:
    """(route, reason) for ``penalty`` on a model with ``traits``; raises :class:`RouteError`."""
    what = f"{type(penalty).__name__}"
    if traits.unreplayable:
        raise RouteError(
            f"{traits.unreplayable} gives different outputs from the same torch RNG state in "
            f"training, so no {what} route can tell its randomness from symmetry breaking; draw "
            f"its random numbers from torch's global RNG, or switch them off in training"
        )
    exact_dseal = not penalty.uses_copies
    if exact_dseal and traits.coupled:
        raise RouteError(
            f"{traits.coupled} makes each example's output depend on the other examples of the "
            f"batch (batch statistics), so exact δSEAL's one backward of the batch sum would mix "
            f"examples; use symmetry.penalty.method=finite_difference (exact per example there), "
            f"or a per-example normalisation (LayerNorm)"
        )
    blockers = _fused_blockers(traits)
    if exact_dseal:
        if implementation == "separate":
            return (
                "replay",
                "implementation=separate: one forward and double backward per generator",
            )
        rng = (
            f"; {traits.stochastic} is random, the RNG state is replayed"
            if traits.stochastic
            else ""
        )
        return "fused", f"all generator directions from one double backward{rng}"
    if implementation == "fused" and blockers:
        raise RouteError(
            f"implementation=fused runs originals and transformed copies in one forward, which is "
            f"not exact here: {blockers[0]}; use symmetry.implementation=auto (it picks replay)"
        )
    if implementation == "separate":
        return "replay", "implementation=separate: one forward per compared input, RNG replayed"
    if blockers:
        return "replay", f"{blockers[0]}: compared inputs get their own forwards from one RNG state"
    return "fused", "deterministic, examples independent: one forward over [x ; g·x]"


def _fused_blockers(traits: Traits) -> list[str]:
    blockers = []
    if traits.stochastic:
        blockers.append(f"{traits.stochastic} is random in training (dropout)")
    if traits.coupled:
        blockers.append(f"{traits.coupled} couples the examples of a batch (batch statistics)")
    if traits.mutated_buffers:
        names = ", ".join(traits.mutated_buffers[:3])
        blockers.append(f"a training forward writes the buffers {names}")
    if not traits.coupling_known:
        blockers.append("a one-example batch cannot show whether examples interact")
    return blockers
