"""Constrained SEAL: a target amount of symmetry instead of a weight λ.

The user names ε, the penalty they will tolerate, in the units of the symmetry spectrum — the
penalty divided by the variance of the model's output over the batch — which mean the same on
every task: ε = 10⁻³ asks that a typical group element (GSEAL) or generator (δSEAL) moves the
output by about 3 % of its spread. The constraint is on that normalised penalty,
g = L_symm / Var(f) ≤ ε, and training minimises the Lagrangian L_task + λ·g — g itself, the
variance with its gradient, so that shrinking the output's spread (a collapse to a constant,
which lowers L_symm but not g) buys nothing. λ is found during training by dual ascent on a
running estimate L̂ of g:

    L̂ ← β L̂ + (1 − β) · g                              (running estimate, β = ``smoothing``)
    λ ← clip(λ · exp(η · clip(ln(L̂ / ε), −1, 1)), λ_min, λ_max)

— projected dual ascent on ln λ (λ spans decades, so a step is a factor, not an increment; the
clip bounds one step to a factor e^η). λ grows while the penalty is above the target and
shrinks while it is below; its fixed point is L̂ = ε. With ``per_generator`` (δSEAL along all
generators) there is one multiplier per generator, each driven by its own bar of the spectrum.

A target the data forbid (the truth itself breaks the symmetry by more than ε) drives λ to
``max_weight``; it stays there, and :meth:`Constraint.summary` and a warning (once λ has sat at
the cap for ``patience`` batches with L̂ still above ε) say so, naming the target and the
reached value, instead of λ growing without bound. The state (λ, L̂, the step and the
cap's count) is checkpointed, λ and L̂ in float64, so a resumed run continues bit for bit; in
DDP each batch's g is averaged over the ranks before the update, so λ is the same on every
rank.

Plain PyTorch::

    constraint = Constraint(target=1e-3)
    output, penalty = loss_fn.with_output(model, batch)
    g = normalised(penalty, output)                        # penalty / Var(output), differentiable
    loss = task_loss(output, y) + (constraint.weights(g) * g).sum()
    constraint.update(g)                                   # λ for the next batch
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
        Batches at the cap with the estimate above the target before the warning.
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

    def update(self, normalised_penalty: torch.Tensor) -> torch.Tensor:
        """One dual step from this batch's g = penalty / Var(f) (one value or one per
        generator; :func:`normalised`); returns the new λ. Averaged over DDP ranks first."""
        if self.weight is None:
            self.bind()
        values = normalised_penalty.detach().double().reshape(-1)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            values = values.clone()
            dist.all_reduce(values)
            values = values / dist.get_world_size()
        values = values.cpu()
        if not torch.isfinite(values).all():
            raise FloatingPointError(
                f"symmetry.constraint: the penalty over the output's variance {values.tolist()} "
                f"is not finite at step {self.steps}; λ cannot follow a NaN (a constant output "
                f"has no variance to normalise by)"
            )
        beta = self.smoothing
        self.estimate = values if not self.steps else beta * self.estimate + (1 - beta) * values
        ratio = torch.log(self.estimate.clamp_min(1e-300) / self.target).clamp(-1.0, 1.0)
        self.weight = (self.weight * torch.exp(self.rate * ratio)).clamp(
            self.min_weight, self.max_weight
        )
        self.steps += 1
        self._warn_if_unreachable()
        return self.weight

    def unmet(self) -> list[int]:
        """Indices of the multipliers at their cap with the estimate still above the target."""
        if self.weight is None or not self.steps:
            return []
        capped = (self.weight >= self.max_weight) & (self.estimate > self.target)
        return [int(i) for i in torch.nonzero(capped).reshape(-1)]

    def _warn_if_unreachable(self) -> None:
        unmet = self.unmet()
        self.capped = self.capped + 1 if unmet else 0
        if self.capped >= self.patience and not self.warned:
            self.warned = True
            log.warning(
                "symmetry.constraint: the target %g cannot be met%s: λ reached its cap %g and "
                "the penalty is still %s (spectrum units); the data may break the symmetry by "
                "more — raise the target, or the cap (symmetry.constraint.max_weight)",
                self.target,
                "" if self.names == ("",) else f" along {[self.names[i] for i in unmet]}",
                self.max_weight,
                ", ".join(f"{float(self.estimate[i]):.3g}" for i in unmet),
            )

    def summary(self) -> dict:
        """``constraint/…`` metrics: the target, the final λ and estimate (per generator when
        per generator), ``constraint/met`` (1 if every estimate ends within 20 % above the
        target or below it, else 0) and ``constraint/capped`` (1 if a λ ends at its cap with
        its estimate above the target: the data may forbid it)."""
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
            "steps": self.steps,
            "warned": self.warned,
            "capped": self.capped,
        }

    def load_state_dict(self, state: dict) -> None:
        self.names = tuple(state["names"])
        self.weight, self.estimate = state["weight"].clone(), state["estimate"].clone()
        self.steps, self.warned, self.capped = state["steps"], state["warned"], state["capped"]
