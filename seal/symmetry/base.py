"""The penalty interface: a config object that says what to compare and how to score it.

A :class:`Penalty` never runs the model itself when it can avoid it. It returns
:class:`Copies` — transformed copies of the first rows of a batch and a ``score`` that turns
the model's outputs on them into one penalty value per example — and the
:class:`~seal.symmetry.loss.SymmetryLoss` decides how the copies are evaluated (one forward
joined with the originals, or forwards that replay one RNG state), from what it found the
model to be. A penalty that needs derivatives of the model (exact δSEAL) implements
``values`` instead and is told whether to take every direction from one backward or one per
generator (``separate``). The contract, with a worked example: ``docs/design.md``, Penalties.

To add a penalty: subclass :class:`Penalty`, implement ``copies`` (or set ``uses_copies =
False`` and implement ``values``), give it a ``name``, and point a config's
``symmetry.penalty._target_`` at it. Nothing else changes.
"""

import torch

from seal.groups import Group
from seal.symmetry.batching import check_output_kind, four_vector_keys


class Copies:
    """Transformed copies of the first ``rows`` examples of a batch and how to score them.

    ``copies``: list of dicts holding the transformed four-vector entries (``rows`` each).
    ``score(base, outs)``: the model output on the original rows (``(rows,)`` or
    ``(rows, 4)``; ``None`` unless ``needs_base``) and on each copy → per-example penalty
    ``(rows,)``.
    """

    def __init__(self, copies: list, rows: int, score, needs_base: bool = True):
        self.copies, self.rows, self.score, self.needs_base = copies, rows, score, needs_base


class Penalty:
    """Base class of the symmetry penalties.

    Parameters
    ----------
    output : {"scalar", "vector"}
        The model output is invariant (ρ = 1) or a four-vector transforming as Λ.
    key, extra_keys : str, sequence of str
        The four-vector batch entries the group acts on: ``key`` must be present, the
        ``extra_keys`` (default ``jet_p4``) are transformed when present.
    """

    name = "penalty"
    uses_copies = True

    def __init__(self, output: str = "scalar", key: str = "p4", extra_keys=("jet_p4",)):
        check_output_kind(output)
        self.output, self.key, self.extra_keys = output, key, tuple(extra_keys)

    def keys(self, batch: dict) -> list[str]:
        """The four-vector entries of ``batch`` this penalty transforms (checked finite)."""
        return four_vector_keys(batch, self.key, self.extra_keys)

    def check_precision(self, device: torch.device) -> None:
        """Raise if the penalty cannot be computed under the current autocast state."""

    def copies(self, batch: dict, group: Group, generator) -> Copies:
        """Copies of every row of ``batch`` (the caller passes the rows to penalise)."""
        raise NotImplementedError

    def values(
        self, fn, batch: dict, group: Group, generator, separate: bool = False, replay=lambda: None
    ) -> torch.Tensor:
        """Per-example penalty ``(B,)`` computed from ``fn`` directly (``uses_copies=False``).

        Parameters
        ----------
        fn : callable
            The model: batch dict → output ``(B,)`` or ``(B, 4)``.
        batch : dict
            The rows to penalise.
        group : Group
            The group whose generators or elements the penalty uses.
        generator : torch.Generator
            The only source of random numbers the penalty may draw from.
        separate : bool
            True on the loss's replay route: one forward and backward per generator (the
            straightforward reference). False: every direction from one forward and one double
            backward of the batch sum (the loss passes False only where examples do not
            interact, so the batch sum separates them).
        replay : callable
            Call before *every* forward of ``fn``: it restores the RNG state of the task's
            forward (so dropout draws the same masks) and resets written buffers.

        Returns
        -------
        torch.Tensor
            ``(B,)`` per-example penalty, differentiable in the model's parameters.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"
