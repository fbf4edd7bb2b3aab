"""``SymmetryLoss``: the symmetry penalty for any model, in plain PyTorch.

    loss_fn = SymmetryLoss("gsymm", group=Boosts(0.5))
    output, penalty = loss_fn.with_output(model, batch)    # shares the task's forward
    loss = task_loss(output, batch["target"]) + lam * penalty
    # or, on its own:  penalty = loss_fn(model, batch)

On the first batch it probes the model (:mod:`seal.symmetry.probe`) and picks the fastest
route that is exact for *that* model (:mod:`seal.symmetry.routes`), logging the route and the
reason in one line. Its forwards never consume the caller's random numbers and never move the
model's buffers: adding ``loss_fn(model, batch)`` with λ = 0 changes nothing about training.

``with_output`` shares the task's forward. With λ = 0 it is bit-identical to a plain forward
with ``fraction = 1`` on every route, and at any fraction on the fused route, with the exact
δSEAL, and on models with batch statistics or written buffers (their forward stays whole). The
one exception: a model with dropout and ``fraction < 1`` under a copies penalty (GSEAL,
finite-difference δSEAL). There the task's forward is split into the penalised rows and the
rest, so that the copies can replay the first part's dropout masks; two forwards draw other
(equally random) masks than one forward over the batch, so the run is statistically the same
but not bit-identical. The callback at λ = 0 never shares the forward and is bit-identical in
every case.
"""

import logging

import torch

from seal.groups import Group, make_group
from seal.symmetry.base import Penalty
from seal.symmetry.batching import (
    as_output,
    at_least_float32,
    batch_device,
    batch_size,
    full_precision,
    head,
    join,
    penalty_rows,
    rows_of,
    stack_copies,
)
from seal.symmetry.dseal import DSEAL, exact_mode
from seal.symmetry.gseal import GSEAL
from seal.symmetry.probe import double_backward_error, nonfinite_derivative, probe
from seal.symmetry.rng import buffer_snapshot, get_rng_state, isolated, rng_device
from seal.symmetry.routes import IMPLEMENTATIONS, RouteError, choose_route

log = logging.getLogger("seal.symmetry")
PENALTIES = {cls.name: cls for cls in (GSEAL, DSEAL)}
# the class names' spelling, accepted beside the config names gsymm/dsymm
ALIASES = {"gseal": "gsymm", "dseal": "dsymm"}


def make_penalty(penalty, **options) -> Penalty:
    """A :class:`Penalty` from an instance or a name (``gsymm``/``gseal``, ``dsymm``/``dseal``)
    and its options."""
    if isinstance(penalty, Penalty):
        if options:
            raise TypeError(f"options {sorted(options)} given beside a built {penalty!r}")
        return penalty
    penalty = ALIASES.get(penalty, penalty)
    if penalty not in PENALTIES:
        raise ValueError(f"unknown symmetry penalty {penalty!r}; choose one of {sorted(PENALTIES)}")
    cls = PENALTIES[penalty]
    try:
        return cls(**options)
    except TypeError as err:  # an option of another penalty, say method= for GSEAL
        raise TypeError(f"penalty {penalty!r} ({cls.__name__}): {err}") from err


def _output_owner(fn) -> str:
    return type(fn).__name__ if isinstance(fn, torch.nn.Module) else getattr(fn, "__name__", "fn")


def _check_grad_mode(model) -> None:
    """A penalty for training must carry gradients: refuse a training-mode model under
    ``torch.no_grad()``/``inference_mode`` (eval mode is how a penalty is measured, and fine)."""
    trainable = isinstance(model, torch.nn.Module) and model.training
    if (
        trainable
        and not torch.is_grad_enabled()
        and any(p.requires_grad for p in model.parameters())
    ):
        raise RuntimeError(
            f"the symmetry penalty of {type(model).__name__} (in training mode) was asked for "
            f"under torch.no_grad() or torch.inference_mode(): it would carry no gradient, and "
            f"training would ignore the symmetry without a word. Compute it with gradients "
            f"enabled, or call model.eval() first to only measure it"
        )


class SymmetryLoss:
    """Unweighted symmetry penalty of a model on a batch (scalar tensor with gradients).

    Parameters
    ----------
    penalty : Penalty or {"gsymm", "dsymm"}
        :class:`~seal.symmetry.GSEAL`, :class:`~seal.symmetry.DSEAL` or a name; ``options``
        (``output``, ``method``, ``eps``, ``stochastic``, ``reduction``, ``key``...) go to it.
    group : Group or str
        A :class:`seal.groups.Group`, or a name built with ``beta_max`` and ``magnitude``.
    fraction : float
        Penalise the first ``ceil(fraction · B)`` examples of each batch.
    implementation : {"auto", "fused", "separate"}
        ``auto`` takes the fastest exact route; ``fused`` insists on one joined forward (an
        error names the module that makes it inexact); ``separate`` is the straightforward
        reference (one forward per compared input, one backward per generator).
    weighted : bool
        Weight each example's penalty by ``batch["weight"]`` (normalised by the weight sum).
    generator : torch.Generator, optional
        RNG of the group elements and random directions; by default one of its own seeded
        from ``torch.initial_seed()`` — never the global RNG, whose stream is the task's.
    """

    def __init__(
        self,
        penalty="gsymm",
        group: Group | str = "lorentz",
        fraction: float = 1.0,
        implementation: str = "auto",
        weighted: bool = False,
        generator: torch.Generator | None = None,
        beta_max: float = 0.5,
        magnitude: str = "uniform",
        **options,
    ):
        self.penalty = make_penalty(penalty, **options)
        self.group = group if isinstance(group, Group) else make_group(group, beta_max, magnitude)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction of the batch must be in (0, 1]; got {fraction}")
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"unknown penalty implementation {implementation!r}; choose one of "
                f"{IMPLEMENTATIONS}"
            )
        self.fraction, self.implementation = float(fraction), implementation
        if generator is None:
            generator = torch.Generator().manual_seed(torch.initial_seed() % 2**63)
        self.weighted, self.generator = bool(weighted), generator
        self.traits = self.route = self.reason = None
        self.routes: dict = {}  # model.training → (traits, route, reason): probed once per mode

    # -- route -----------------------------------------------------------------------------
    def prepare(self, model, batch: dict) -> str:
        """Probe ``model`` on ``batch`` once per mode (training or eval: dropout and batch
        statistics differ between them) and choose the route; returns it."""
        mode = getattr(model, "training", None)
        known = self.routes.get(mode)
        if known is not None and (known[0].coupling_known or batch_size(batch) < 2):
            self.traits, self.route, self.reason = known
            return self.route
        keys = self.penalty.keys(batch)  # checked once: present, floating, finite, masked
        if self.weighted and "weight" not in batch:
            raise KeyError(
                f"weighted=True weights by batch['weight'], but the batch has only {sorted(batch)}"
            )
        try:
            traits = probe(model, batch, keys)
        except Exception as err:
            raise TypeError(
                f"{_output_owner(model)} could not be run on the batch dict {sorted(batch)} "
                f"({type(err).__name__}: {err}); the symmetry penalty needs forward(batch) → "
                f"(B,), (B, 1) or (B, 4)"
            ) from err
        device = rng_device(model, batch)
        with torch.no_grad(), isolated(model, traits.mutated_buffers, device):
            y = model(head(batch, traits.rows))
            as_output(y, self.penalty.output, traits.rows, _output_owner(model))
        if not torch.isfinite(y).all():
            raise ValueError(
                f"{_output_owner(model)} gives a non-finite output (NaN or inf) on the first "
                f"batch's rows, whose four-momenta are finite: {int((~torch.isfinite(y)).sum())} "
                f"of {y.numel()} values; the symmetry penalty of a NaN is NaN — check the "
                f"model's features (a log or division of zero on padded particles?)"
            )
        route, reason = choose_route(traits, self.penalty, self.implementation)
        if getattr(self.penalty, "method", None) == "exact":
            self._check_derivatives(model, head(batch, traits.rows), keys, traits, device, mode)
        self.traits, self.route, self.reason = self.routes[mode] = traits, route, reason
        log.info(
            "%s on %s%s: route %s (%s)",
            type(self.penalty).__name__,
            _output_owner(model),
            {None: "", True: " in training", False: " in eval mode"}[mode],
            self.route,
            self.reason,
        )
        return self.route

    def _check_derivatives(self, model, rows: dict, keys, traits, device, mode) -> None:
        """Refuse exact δSEAL where its input derivative is not finite or, in training, where
        torch has no second derivative for an operation of the model (on the probe's rows)."""
        with isolated(model, traits.mutated_buffers, device):
            where = nonfinite_derivative(model, rows, keys)
        if where is not None:
            raise RouteError(
                f"exact δSEAL differentiates the output with respect to the four-momenta, and "
                f"that derivative is not finite here: it turns NaN or inf in {where} (on the "
                f"first batch, though the output is finite); use "
                f"symmetry.penalty.method=finite_difference (method='finite_difference'), "
                f"which needs no derivative of the model"
            )
        if not mode:  # eval: nothing differentiates the input derivative again
            return
        with isolated(model, traits.mutated_buffers, device), exact_mode():
            torch_says = double_backward_error(model, rows, keys)
        if torch_says is not None:
            raise RouteError(
                f"exact δSEAL needs a second derivative (of the input derivative, with "
                f"respect to the parameters), and torch has none for an operation of "
                f"{_output_owner(model)}: {torch_says}; use "
                f"symmetry.penalty.method=finite_difference, which needs no derivative"
            )

    # -- evaluation ------------------------------------------------------------------------
    def __call__(self, model, batch: dict, *, measure: bool = False) -> torch.Tensor:
        """The penalty from forwards of its own (they leave the caller's RNG and buffers).

        ``measure=True``: only its value is wanted (a λ = 0 run logs it), so a training-mode
        model under ``torch.no_grad()`` is fine; otherwise that is refused, since a penalty
        without gradients would leave training blind to the symmetry.
        """
        if not measure:
            _check_grad_mode(model)
        self.prepare(model, batch)
        self.penalty.check_precision(batch_device(batch))
        sub = head(batch, self.rows(batch_size(batch)))
        return self._reduce(self._standalone(model, sub), sub)

    def rows(self, size: int) -> int:
        """Rows penalised in a batch of ``size``: ⌈fraction·B⌉, and at least two where the
        examples interact (batch statistics of one row do not exist)."""
        rows = penalty_rows(size, self.fraction)
        coupled = self.traits is not None and self.traits.coupled
        return min(size, 2) if coupled and rows < 2 else rows

    def with_output(self, model, batch: dict) -> tuple:
        """``(model(batch), penalty)`` sharing the task's forward where the route allows (with
        λ = 0 bit-identical to ``model(batch)`` except with dropout and ``fraction < 1``: see the
        module docstring)."""
        step = self.begin(model, batch)
        output = step.finish(model(step.inputs))
        return output, step.penalty

    def begin(self, model, batch: dict) -> "SharedForward":
        """Start a forward shared by the task and the penalty: call the model on
        ``.inputs``, hand its output to ``.finish`` (which returns the task's output), then
        read ``.penalty``."""
        _check_grad_mode(model)
        self.prepare(model, batch)
        self.penalty.check_precision(batch_device(batch))
        return SharedForward(self, model, batch)

    def _reduce(self, values: torch.Tensor, sub: dict) -> torch.Tensor:
        """Mean of the per-example penalties over the batch, or their ``weight``-weighted
        mean: a scalar, or one value per generator for per-generator values (B, k)."""
        if not self.weighted:
            return values.mean(0)
        if "weight" not in sub:
            raise KeyError(f"weighted=True needs batch['weight']; the batch has {sorted(sub)}")
        weight = sub["weight"].to(values.dtype).reshape(-1, *[1] * (values.dim() - 1))
        return (weight * values).sum(0) / weight.sum()

    def _score(self, copies, base, outs, model) -> torch.Tensor:
        owner, rows = _output_owner(model), copies.rows
        outs = [at_least_float32(as_output(o, self.penalty.output, rows, owner)) for o in outs]
        if base is not None:
            base = at_least_float32(as_output(base, self.penalty.output, rows, owner))
        with full_precision(outs[0].device):
            return copies.score(base, outs)

    def _standalone(self, model, sub: dict, copies=None) -> torch.Tensor:
        """Per-example penalties on ``sub`` from forwards of its own, on the chosen route
        (``copies``: already drawn for ``sub``)."""
        device = rng_device(model, sub)
        with isolated(model, self.traits.mutated_buffers, device) as replay:
            if not self.penalty.uses_copies:
                separate = self.route == "replay"
                return self.penalty.values(model, sub, self.group, self.generator, separate, replay)
            if copies is None:
                copies = self.penalty.copies(sub, self.group, self.generator)
            if self.route == "fused":  # (no buffers written, nothing random: no replay)
                originals = sub if copies.needs_base else None
                return self._fused(model, copies, originals, sub)
            outs = []
            for copy in copies.copies:
                replay()
                outs.append(model({**sub, **copy}))
            base = None
            if copies.needs_base:
                replay()
                base = model(sub)
            return self._score(copies, base, outs, model)

    def _fused(self, model, copies, originals: dict | None, sub: dict) -> torch.Tensor:
        """One forward over ``[originals ; copies]`` (originals may be left out)."""
        rows = copies.rows
        if originals is not None:
            parts = list(model(join(originals, copies.copies, rows)).split(rows))
            return self._score(copies, parts[0], parts[1:], model)
        parts = list(model(stack_copies(sub, copies.copies)).split(rows))
        return self._score(copies, None, parts, model)


class SharedForward:
    """One training step's forward shared by the task and the penalty (see
    :meth:`SymmetryLoss.begin`)."""

    def __init__(self, loss: SymmetryLoss, model, batch: dict):
        self.loss, self.model, self.batch = loss, model, batch
        self.size = batch_size(batch)
        self.rows = loss.rows(self.size)
        self.sub = head(batch, self.rows)
        self.penalty = self.copies = None
        self.inputs = batch
        traits = loss.traits
        # the task's forward stays whole where splitting it would change batch statistics or
        # update written buffers twice
        whole = bool(traits.coupled or not traits.coupling_known or traits.mutated_buffers)
        if loss.penalty.uses_copies:  # (exact δSEAL: its own forward after the task's)
            self.copies = loss.penalty.copies(self.sub, loss.group, loss.generator)
        # the task's forward starts here: its RNG state and the buffers it will read
        self.device = rng_device(model, batch)
        self.state = get_rng_state(self.device)
        self.buffers = buffer_snapshot(model, traits.mutated_buffers)
        if self.copies is None:
            return
        if loss.route == "fused":
            self.inputs = join(batch, self.copies.copies, self.rows)
        elif not whole and self.rows < self.size:
            self.inputs = self.sub  # the task's first rows; the rest in finish()
        self.shares = loss.route == "fused" or not whole or self.rows == self.size

    def finish(self, output: torch.Tensor) -> torch.Tensor:
        """The task's output on ``batch`` (computing the penalty on the way)."""
        loss, size, rows = self.loss, self.size, self.rows
        if self.copies is None:
            self.penalty = loss._reduce(loss._standalone(self.model, self.sub), self.sub)
            return output
        if loss.route == "fused":
            parts = list(output[size:].split(rows))
            base = output[:rows] if self.copies.needs_base else None
            self.penalty = loss._reduce(loss._score(self.copies, base, parts, self.model), self.sub)
            return output[:size]
        if not self.shares:  # the first rows need a forward of their own (batch statistics)
            values = loss._standalone(self.model, self.sub, self.copies)
            self.penalty = loss._reduce(values, self.sub)
            return output
        base = output[:rows]
        names = loss.traits.mutated_buffers
        with isolated(self.model, names, self.device, self.state, self.buffers) as replay:
            outs = []
            for copy in self.copies.copies:
                replay()
                outs.append(self.model({**self.sub, **copy}))
        self.penalty = loss._reduce(loss._score(self.copies, base, outs, self.model), self.sub)
        if self.inputs is self.sub and rows < size:
            rest = self.model(rows_of(self.batch, rows))
            return torch.cat([output, rest])
        return output
