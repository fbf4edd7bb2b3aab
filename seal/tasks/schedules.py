"""Learning-rate schedules that every task honours (``model/scheduler=…``; none by default)."""

import math

from torch.optim.lr_scheduler import LambdaLR


class WarmupCosine:
    """Linear warm-up, then cosine decay: the schedule long GPU runs of transformers use.

    The factor on the optimiser's learning rate rises linearly from 0 to 1 over
    ``warmup_steps`` optimiser steps, then falls as a half cosine to ``min_factor`` at the last
    step of the run. Stepped after every optimiser step; its position is in the checkpoint.

    Parameters
    ----------
    warmup_steps : int
        Optimiser steps of linear warm-up (0: start at the full learning rate).
    min_factor : float
        The factor at the end of the run, in [0, 1].
    total_steps : int, optional
        Optimiser steps of the whole run; by default the trainer's estimate
        (``trainer.max_steps``, or the epochs times the batches per epoch).
    """

    def __init__(
        self, warmup_steps: int = 0, min_factor: float = 0.0, total_steps: int | None = None
    ):
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(
                "model.scheduler.warmup_steps must be a whole number of steps >= 0; "
                f"got {warmup_steps!r}"
            )
        if not 0.0 <= float(min_factor) <= 1.0:
            raise ValueError(f"model.scheduler.min_factor must be in [0, 1]; got {min_factor!r}")
        if total_steps is not None and (
            isinstance(total_steps, bool)
            or not isinstance(total_steps, int)
            or total_steps <= warmup_steps
        ):
            raise ValueError(
                f"model.scheduler.total_steps must be a whole number of steps above warmup_steps "
                f"({warmup_steps}); got {total_steps!r} (leave it null to use the trainer's length)"
            )
        self.warmup_steps, self.min_factor, self.total_steps = (
            warmup_steps,
            float(min_factor),
            total_steps,
        )

    def factor(self, step: int, total: int) -> float:
        """The learning-rate factor before optimiser step ``step`` (0-based) of ``total``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, total - self.warmup_steps))
        return self.min_factor + (1.0 - self.min_factor) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )

    def build(self, optimizer, trainer_steps: float) -> LambdaLR:
        """The torch scheduler for ``optimizer``; ``trainer_steps``: the trainer's estimate."""
        total = self.total_steps if self.total_steps is not None else trainer_steps
        if not math.isfinite(total):
            raise ValueError(
                "model/scheduler=cosine needs the length of the run: set trainer.max_steps or "
                "trainer.max_epochs, or model.scheduler.total_steps"
            )
        if total <= self.warmup_steps:
            raise ValueError(
                f"model.scheduler.warmup_steps={self.warmup_steps} is not shorter than the run "
                f"({int(total)} optimiser steps): lower it or train longer"
            )
        return LambdaLR(optimizer, lambda step: self.factor(step, int(total)))

    def __repr__(self) -> str:
        return (
            f"WarmupCosine(warmup_steps={self.warmup_steps}, min_factor={self.min_factor}, "
            f"total_steps={self.total_steps})"
        )
