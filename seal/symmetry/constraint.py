"""Constrained SEAL: a target amount of symmetry instead of a weight λ.

The user names ε, the penalty they will tolerate, in the units of the symmetry spectrum — the
penalty divided by the variance of the model's output over the batch — which mean the same on
every task: ε = 10⁻³ asks that a typical group element (GSEAL) or generator (δSEAL) moves the
output by about 3 % of its spread. The constraint is on that normalised penalty,
g = L_symm / Var(f) ≤ ε, and training minimises the Lagrangian L_task + λ·g — g itself, the
variance with its gradient, so that shrinking the output's spread (a collapse to a constant,
which lowers L_symm but not g) buys nothing. λ is found during training by dual ascent on ln λ
(λ spans decades, so a step is a factor, not an increment), with two additions that keep it
from overshooting, because a network answers a new λ only after tens to hundreds of batches:

    L̂ ← β L̂ + (1 − β) g                                    running estimate (β = smoothing)
    s ← κ s + (1 − κ) (ln L̂_t − ln L̂_{t−1}),  κ = 1 − 2/H     its trend per batch
    e  = ln(L̂ / ε) + H s                                      the error expected H batches on
    ln λ ← ln λ + η clip(e, −1, 1)                            clipped to [λ_min, λ_max]

* **Prediction** (H = ``horizon`` batches): λ grows only while the estimate is not already
  falling fast enough to reach ε within about H batches, and shrinks once it falls faster —
  plain dual ascent (H = 0) keeps raising λ through the network's delay and overshoots by
  decades (on the toy: λ at 10⁴ when 0.3 would have done, and the penalty 5× below ε). While
  the estimate is above ε the prediction may hold λ but never takes it below where it started
  (``initial_weight``): in the first batches the penalty falls because the network learns, and
  following that fall down would cost the run the decades λ must climb back.
* **Anti-wind-up** (``max_share``): λ stops growing while the penalty term λ·L̂ already outweighs
  the task's running loss ``max_share``-fold; past that, the optimiser (Adam normalises the
  gradient) follows the penalty as fast as it can, and a larger λ would only silence the task
  and make the penalty's own descent unstable. Skipped when no task loss is given or it is ≤ 0.

The fixed point is L̂ = ε with L̂ steady. It is a constraint, g ≤ ε: λ ≥ 0 never pushes the
network away from the symmetry, so a task that itself favours it (an exactly invariant truth)
may carry g below ε after λ has let go. With ``per_generator`` (δSEAL along all generators)
there is one multiplier per generator, each driven by its own bar of the spectrum.

A target the data forbid (the truth itself breaks the symmetry by more than ε) holds λ at
``max_weight`` or at the share limit; :meth:`Constraint.summary` and a warning (once λ has been
held there ``patience`` batches with L̂ still above ε) say so, naming the target and the reached
value, instead of λ growing without bound silently. The state (λ, L̂, its trend, the task's
estimate, the step and the hold count) is checkpointed in float64, so a resumed run continues
bit for bit; in DDP each batch's g and task loss are averaged over the ranks before the update,
so λ is the same on every rank.

Plain PyTorch::

    constraint = Constraint(target=1e-3)
    output, penalty = loss_fn.with_output(model, batch)
    g = normalised(penalty, output)                        # penalty / Var(output), differentiable
    task = task_loss(output, y)
    loss = task + (constraint.weights(g) * g).sum()
    constraint.update(g, task)                             # λ for the next batch
"""

import logging
import math

import torch
import torch.distributed as dist

log = logging.getLogger("seal.symmetry")
MET = 1.2  # a target counts as met with the final estimate at most 20 % above it


def output_variance(output: torch.Tensor) -> torch.Tensor:
    """The spread of the output over the batch, Σ_components Var (as the spectrum's), with its
    gradient."""
    y = output.reshape(len(output), -1)
    return (y - y.mean(0)).square().sum(1).mean()


def normalised(penalty: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """The penalty (one value or one per generator) over the output's variance on the batch:
    the constrained quantity g, differentiable in both."""
    variance = output_variance(output.to(penalty.dtype))
    return penalty / variance.clamp_min(torch.finfo(penalty.dtype).tiny)


def _finite_positive(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"symmetry.constraint.{name} must be a number; got {value!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"symmetry.constraint.{name} must be finite and > 0; got {value!r}")
    return value


class Constraint:
    """Find λ so that the normalised symmetry penalty reaches ``target``.

    Parameters
    ----------
    target : float
        ε > 0: the penalty over the output's variance to reach (spectrum units).
    per_generator : bool
        One multiplier per generator (δSEAL along every generator: its per-generator penalties,
        the spectrum's bars, each held to ``target``).
    rate : float
        η, the step of ln λ per training batch at most (a factor e^η).
    smoothing : float
        β in [0, 1) of the running estimate L̂ (0: this batch's value alone).
    initial_weight, min_weight, max_weight : float
        λ's start and bounds (0 < min ≤ initial ≤ max).
    patience : int
        Batches held (at the cap or the share limit) with the estimate above the target before
        the warning.
    horizon : float
        H, in batches: λ grows only while the estimate is not on course to reach the target
        within about H batches (0: plain dual ascent, which overshoots).
    max_share : float
        λ stops growing while λ·L̂ exceeds this many times the task's running loss.
    """

    def __init__(
        self,
        target: float,
        per_generator: bool = False,
        rate: float = 0.05,
        smoothing: float = 0.9,
        initial_weight: float = 1e-2,
        min_weight: float = 1e-6,
        max_weight: float = 1e4,
        patience: int = 100,
        horizon: float = 100.0,
        max_share: float = 3.0,
    ):
        self.target = _finite_positive("target", target)
        self.rate = _finite_positive("rate", rate)
        if not (isinstance(smoothing, (int, float)) and 0.0 <= smoothing < 1.0):
            raise ValueError(f"symmetry.constraint.smoothing must be in [0, 1); got {smoothing!r}")
        bounds = [
            _finite_positive(n, v)
            for n, v in (
                ("min_weight", min_weight),
                ("initial_weight", initial_weight),
                ("max_weight", max_weight),
            )
        ]
        if not bounds[0] <= bounds[1] <= bounds[2]:
            raise ValueError(
                f"symmetry.constraint needs min_weight ≤ initial_weight ≤ max_weight; got "
                f"{bounds[0]:g}, {bounds[1]:g}, {bounds[2]:g}"
            )
        self.min_weight, self.initial_weight, self.max_weight = bounds
        if not (isinstance(patience, int) and patience >= 1):
            raise ValueError(
                f"symmetry.constraint.patience must be an integer ≥ 1; got {patience!r}"
            )
        self.patience = patience
        if not (
            isinstance(horizon, (int, float))
            and not isinstance(horizon, bool)
            and math.isfinite(horizon)
            and (horizon == 0 or horizon >= 2)
        ):
            raise ValueError(
                f"symmetry.constraint.horizon must be 0 (no prediction) or a number of batches "
                f"≥ 2; got {horizon!r}"
            )
        self.horizon = float(horizon)
        self.max_share = _finite_positive("max_share", max_share)
        self.per_generator, self.smoothing = bool(per_generator), float(smoothing)
        self.names: tuple[str, ...] = ("",)  # set by bind(): the generators' names
        self.weight = self.estimate = None  # float64 (k,) once bound
        self.steps, self.warned, self.capped = 0, False, 0

    def bind(self, names=("",)) -> "Constraint":
        """Fix the number of multipliers (one, or one per generator name) and start them."""
        self.names = tuple(names) if self.per_generator else ("",)
        k = len(self.names)
        self.weight = torch.full((k,), self.initial_weight, dtype=torch.float64)
        self.estimate = torch.full((k,), math.nan, dtype=torch.float64)
        self.slope = torch.zeros((k,), dtype=torch.float64)
        self.task = math.nan  # the task loss's running estimate
        self.held = torch.zeros((k,), dtype=torch.bool)  # growth stopped by the cap or share
        self.steps, self.warned, self.capped = 0, False, 0
        return self

    def weights(self, penalty: torch.Tensor) -> torch.Tensor:
        """λ as a tensor to multiply ``penalty`` (one value or one per generator) with."""
        if self.weight is None:
            self.bind()
        if penalty.numel() != len(self.weight):
            raise ValueError(
                f"the constraint holds {len(self.weight)} multiplier(s) but the penalty has "
                f"{penalty.numel()} value(s)"
            )
        return self.weight.to(device=penalty.device, dtype=penalty.dtype)

    def update(self, normalised_penalty: torch.Tensor, task_loss=None) -> torch.Tensor:
        """One dual step from this batch's g = penalty / Var(f) (one value or one per
        generator; :func:`normalised`) and, for the anti-wind-up, the task's loss on the batch;
        returns the new λ. Both are averaged over DDP ranks first."""
        if self.weight is None:
            self.bind()
        values = normalised_penalty.detach().double().reshape(-1)
        task = (
            None if task_loss is None else torch.as_tensor(task_loss, dtype=torch.float64).detach()
        )
        if task is not None:
            values = torch.cat([values, task.reshape(1).to(values.device)])
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            values = values.clone()
            dist.all_reduce(values)
            values = values / dist.get_world_size()
        values = values.cpu()
        if task is not None:
            values, task = values[:-1], float(values[-1])
        if not torch.isfinite(values).all():
            raise FloatingPointError(
                f"symmetry.constraint: the penalty over the output's variance {values.tolist()} "
                f"is not finite at step {self.steps}; λ cannot follow a NaN (a constant output "
                f"has no variance to normalise by)"
            )
        beta, tiny = self.smoothing, 1e-300
        previous = self.estimate
        self.estimate = values if not self.steps else beta * self.estimate + (1 - beta) * values
        if self.steps and self.horizon:
            change = torch.log(self.estimate.clamp_min(tiny) / previous.clamp_min(tiny))
            keep = 1.0 - 2.0 / self.horizon
            self.slope = change if self.steps == 1 else keep * self.slope + (1 - keep) * change
        error = torch.log(self.estimate.clamp_min(tiny) / self.target) + self.horizon * self.slope
        step = self.rate * error.clamp(-1.0, 1.0)
        limit = torch.full_like(self.weight, self.max_weight)
        if task is not None and math.isfinite(task):
            self.task = task if math.isnan(self.task) else beta * self.task + (1 - beta) * task
            if self.task > 0:  # λ·L̂ ≤ max_share · L̂_task
                share_limit = self.max_share * self.task / self.estimate.clamp_min(tiny)
                limit = torch.minimum(limit, share_limit.clamp_min(self.min_weight))
        grown = self.weight * torch.exp(step)
        # above the target the prediction may hold λ but not take it below where it started:
        # early in training the penalty falls because the network learns, not because of λ
        floor = torch.clamp(self.weight, max=self.initial_weight)
        grown = torch.where(self.estimate > self.target, torch.maximum(grown, floor), grown)
        self.held = (step > 0) & (grown >= limit)
        # growth stops at the limit (a λ already above a fallen share limit is not pushed down)
        grown = torch.where(self.held, torch.maximum(self.weight, limit), grown)
        self.weight = grown.clamp(self.min_weight, self.max_weight)
        self.steps += 1
        self._warn_if_unreachable()
        return self.weight

    def unmet(self) -> list[int]:
        """Indices of the multipliers held (at the cap or the share limit) with the estimate
        still above the target."""
        if self.weight is None or not self.steps:
            return []
        held = (self.held | (self.weight >= self.max_weight)) & (self.estimate > self.target)
        return [int(i) for i in torch.nonzero(held).reshape(-1)]

    def _warn_if_unreachable(self) -> None:
        unmet = self.unmet()
        self.capped = self.capped + 1 if unmet else 0
        if self.capped >= self.patience and not self.warned:
            self.warned = True
            at_cap = bool((self.weight[unmet] >= self.max_weight).all())
            held_by = (
                f"λ reached its cap {self.max_weight:g}"
                if at_cap
                else f"λ stopped growing at {self.weight[unmet].max().item():.3g}, where the "
                f"penalty term outweighs the task's loss {self.max_share:g}-fold"
            )
            log.warning(
                "symmetry.constraint: the target %g cannot be met%s: %s and the penalty is still "
                "%s (spectrum units); the data may break the symmetry by more — raise the target "
                "(or symmetry.constraint.%s)",
                self.target,
                "" if self.names == ("",) else f" along {[self.names[i] for i in unmet]}",
                held_by,
                ", ".join(f"{float(self.estimate[i]):.3g}" for i in unmet),
                "max_weight" if at_cap else "max_share",
            )

    def summary(self) -> dict:
        """``constraint/…`` metrics: the target, the final λ and estimate (per generator when
        per generator), ``constraint/met`` (1 if every estimate ends within 20 % above the
        target or below it, else 0) and ``constraint/capped`` (1 if a λ ends held — at its cap
        or the share limit — with its estimate above the target: the data may forbid it)."""
        if self.weight is None:
            return {}
        met = bool(self.steps) and bool((self.estimate <= MET * self.target).all())
        out = {
            "constraint/target": self.target,
            "constraint/met": float(met),
            "constraint/capped": float(bool(self.unmet())),
        }
        for i, name in enumerate(self.names):
            suffix = f"/{name}" if name else ""
            out[f"constraint/weight{suffix}"] = float(self.weight[i])
            out[f"constraint/reached{suffix}"] = float(self.estimate[i])
        return out

    def state_dict(self) -> dict:
        return {
            "names": list(self.names),
            "weight": self.weight,
            "estimate": self.estimate,
            "slope": self.slope,
            "task": self.task,
            "held": self.held,
            "steps": self.steps,
            "warned": self.warned,
            "capped": self.capped,
        }

    def load_state_dict(self, state: dict) -> None:
        self.names = tuple(state["names"])
        self.weight, self.estimate = state["weight"].clone(), state["estimate"].clone()
        self.slope, self.held = state["slope"].clone(), state["held"].clone()
        self.task = state["task"]
        self.steps, self.warned, self.capped = state["steps"], state["warned"], state["capped"]
