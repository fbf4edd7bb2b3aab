"""``SymmetryRegularizer``: a thin Lightning scheduler over :class:`SymmetryLoss`.

A Lightning callback cannot change the loss from ``on_before_backward`` and a second backward in
``on_after_backward`` desynchronises DDP replicas, so the callback wraps ``training_step`` *on
the module instance* in ``setup("fit")`` and adds ``λ · penalty`` to the loss the step returns.
Two forward hooks on the module instance (registered once, removed in ``teardown``) let the
penalty share the task's own ``module(batch)`` call on the route the loss chose. The callback
keeps only the schedule (λ, warm-up), the group-element RNG and this wiring; what is compared
and how lives in the penalty and the loss.
"""

import functools
import logging
import random
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist

from seal.groups import Group
from seal.symmetry.batching import batch_size
from seal.symmetry.constraint import Constraint, normalised
from seal.symmetry.dseal import DSEAL
from seal.symmetry.loss import SymmetryLoss

log = logging.getLogger(__name__)
_VALIDATION_SEED_OFFSET = 7_919  # validation draws its own fixed group elements every epoch


class SymmetryRegularizer(pl.Callback):
    """Add ``λ · L_symm`` to the training loss of any LightningModule.

    Parameters
    ----------
    penalty : Penalty or {"gsymm", "dsymm"}
        :class:`~seal.symmetry.GSEAL` / :class:`~seal.symmetry.DSEAL` (config objects) or a
        name; ``options`` (``output``, ``method``, ``eps``, ``stochastic``, ``reduction``,
        ``key``, ``extra_keys``) go to a named penalty.
    group : Group or str
        A :class:`seal.groups.Group` or a name built with ``beta_max`` and ``magnitude``.
    weight : float, optional
        λ ≥ 0 (1 if neither it nor ``constraint`` is given). With λ = 0 the penalty is still
        computed (without gradients, from forwards of its own) and logged; training is
        bit-for-bit that without the callback.
    constraint : dict or Constraint, optional
        Instead of a fixed λ, a target amount of symmetry (``{"target": ε, ...}``, the options
        of :class:`~seal.symmetry.constraint.Constraint`): λ found by dual ascent during
        training, one per generator with ``per_generator`` (δSEAL along every generator).
        The task's ``training_step`` must call ``module(batch)`` (the penalty is normalised by
        the variance of that output).
    fraction, implementation, weighted
        See :class:`~seal.symmetry.loss.SymmetryLoss`.
    warmup_steps : int
        λ rises linearly from 0 over this many training batches (0: constant λ).
    seed : int, optional
        Seed of the group-element RNG (rank r uses ``seed + r``); default ``torch.initial_seed()``.
        Its state is checkpointed, so a resumed run draws the same elements.
    """

    def __init__(
        self,
        penalty="gsymm",
        group: str | Group = "lorentz",
        weight: float | None = None,
        beta_max: float = 0.5,
        magnitude: str = "uniform",
        fraction: float = 1.0,
        implementation: str = "auto",
        weighted: bool = False,
        warmup_steps: int = 0,
        seed: int | None = None,
        constraint: dict | Constraint | None = None,
        **options,
    ):
        if constraint is not None and weight is not None:
            raise ValueError(
                f"symmetry.weight={weight} and symmetry.constraint.target: give one — a fixed λ, "
                f"or a target whose λ is found during training (symmetry.weight=null)"
            )
        weight = 1.0 if weight is None and constraint is None else weight
        if constraint is None and not (isinstance(weight, (int, float)) and weight >= 0):
            raise ValueError(f"symmetry weight λ must be >= 0; got {weight}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; got {warmup_steps}")
        self._generator, self._val_generator = torch.Generator(), torch.Generator()
        self.loss = SymmetryLoss(
            penalty,
            group,
            fraction,
            implementation,
            weighted,
            self._generator,
            beta_max,
            magnitude,
            **options,
        )
        self.penalty, self.group = self.loss.penalty, self.loss.group
        # validation: the whole batch, group elements of its own (the same every epoch)
        self.val_loss = SymmetryLoss(
            self.penalty, self.group, weighted=weighted, generator=self._val_generator
        )
        self.warmup_steps, self.seed = int(warmup_steps), seed
        self.weight = None if weight is None else float(weight)
        self.constraint = self._make_constraint(constraint)
        self.history: list = []  # constrained: (batch, λ…, estimate…) per training batch
        self.batches = 0  # training batches regularised so far: drives the warm-up
        self._restored_generator = False
        self._handles, self._step, self._busy = (), None, False
        self._output = self._recording = None

    @property
    def state_key(self) -> str:
        return self._generate_state_key(penalty=self.penalty.name, group=repr(self.group))

    def _make_constraint(self, constraint) -> Constraint | None:
        if constraint is None:
            return None
        if not isinstance(constraint, Constraint):
            try:
                constraint = Constraint(**dict(constraint))
            except TypeError as error:  # an unknown option
                raise TypeError(f"symmetry.constraint: {error}") from None
        names = ("",)
        if constraint.per_generator:
            if not isinstance(self.penalty, DSEAL) or self.penalty.stochastic:
                raise ValueError(
                    f"symmetry.constraint.per_generator=true needs δSEAL along every generator "
                    f"(symmetry=dsymm, symmetry.penalty.stochastic=false); this run's penalty is "
                    f"{type(self.penalty).__name__}"
                    f"{' (stochastic)' if isinstance(self.penalty, DSEAL) else ''}: use one "
                    f"multiplier (per_generator=false)"
                )
            self.penalty.per_generator_values = True
            names = self.group.generator_names
        return constraint.bind(names)

    def current_weight(self):
        """λ for the next training batch (after the linear warm-up): a float, or with a
        constraint the multipliers as a float64 tensor (one, or one per generator)."""
        weight = self.constraint.weight if self.constraint is not None else self.weight
        return weight * self.ramp() if self.warmup_steps else weight

    def ramp(self) -> float:
        """The warm-up's factor on λ for the next batch: 0 → 1 over ``warmup_steps``."""
        return min(1.0, self.batches / self.warmup_steps) if self.warmup_steps else 1.0

    def summary(self) -> dict:
        """``constraint/…`` metrics for ``metrics.json`` (none without a constraint)."""
        return {} if self.constraint is None else self.constraint.summary()

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        base = self.seed if self.seed is not None else torch.initial_seed()
        self._val_seed = (base + _VALIDATION_SEED_OFFSET) % 2**63
        if stage != "fit":
            return
        if not pl_module.automatic_optimization:
            raise RuntimeError(
                f"SymmetryRegularizer adds its penalty to the loss returned by training_step, but "
                f"{type(pl_module).__name__} uses manual optimisation (automatic_optimization="
                f"False); add seal.symmetry.SymmetryLoss(...)(model, batch) to your loss yourself"
            )
        self._rank, self._world = trainer.global_rank, trainer.world_size
        if not self._restored_generator:
            self._generator.manual_seed((base + trainer.global_rank) % 2**63)
        self._wrap(pl_module)

    def on_fit_start(self, trainer, pl_module) -> None:
        """Probe the model on the first training batch before the sanity check and the first
        step, so that a route this model cannot take (``implementation=fused`` on dropout, exact
        δSEAL through batch statistics) is refused before any work. Every RNG is restored
        afterwards: training draws what it would have drawn without this probe."""
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "train_dataloader"):
            return
        cuda = [pl_module.device] if pl_module.device.type == "cuda" else []
        states = random.getstate(), np.random.get_state()  # noqa: NPY002 (the global one)
        try:
            with torch.random.fork_rng(devices=cuda):
                loader = datamodule.train_dataloader()
                batch = next(iter(loader), None)
                del loader
                if batch is None:
                    return
                batch = pl_module.transfer_batch_to_device(batch, pl_module.device, 0)
                training = pl_module.training
                pl_module.train()
                try:
                    self.loss.prepare(pl_module, batch)
                finally:
                    pl_module.train(training)
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])  # noqa: NPY002

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._unwrap(pl_module)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._unwrap(pl_module)

    def on_fit_end(self, trainer, pl_module) -> None:
        """Constrained: λ(t) and the running estimate per training batch → ``constraint.csv``
        in the run folder (the training script draws it as ``constraint.png``)."""
        if self.constraint is None or not trainer.is_global_zero or not self.history:
            return
        names = [f"/{n}" if n else "" for n in self.constraint.names]
        header = ["batch", *(f"weight{n}" for n in names), *(f"estimate{n}" for n in names)]
        lines = [",".join(header)] + [",".join(f"{v:.17g}" for v in row) for row in self.history]
        path = Path(trainer.default_root_dir) / "constraint.csv"
        path.write_text("\n".join(lines) + "\n")

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._val_generator.manual_seed(self._val_seed)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        # validation runs under inference_mode: leave it and clone the inference tensors so
        # the exact δSEAL can build its derivative graph
        with torch.inference_mode(False), torch.no_grad():
            batch = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            value = self.val_loss(pl_module, batch, measure=True).sum()  # (per generator: k)
        pl_module.log("val/symm_loss", value, on_epoch=True, batch_size=batch_size(batch))

    def state_dict(self) -> dict:
        """The warm-up count and every rank's group-element RNG state (gathered: checkpoints
        are written by rank 0, and each rank must resume its own stream)."""
        state = self._generator.get_state()
        states = [state]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, state)
        state = {"batches": self.batches, "generator": states[0], "generators": states}
        if self.constraint is not None:
            state["constraint"] = self.constraint.state_dict()
            state["history"] = list(self.history)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches = int(state_dict["batches"])
        if (self.constraint is None) != ("constraint" not in state_dict):
            raise ValueError(
                "the checkpoint was trained "
                f"{'with' if 'constraint' in state_dict else 'without'} symmetry.constraint and "
                f"this run is configured {'with' if self.constraint is not None else 'without'} "
                "it; resume with the run's own symmetry settings"
            )
        if self.constraint is not None:
            self.constraint.load_state_dict(state_dict["constraint"])
            self.history = list(state_dict["history"])
        states = state_dict.get("generators", [state_dict["generator"]])
        rank, world = getattr(self, "_rank", 0), getattr(self, "_world", 1)
        if len(states) == world:
            self._generator.set_state(states[rank])
            self._restored_generator = True
        else:  # another number of ranks: fresh per-rank streams (seed + rank), said so
            log.warning(
                "the checkpoint holds group-element RNG states of %d ranks, this run has %d: "
                "each rank keeps its fresh seed + rank stream",
                len(states),
                world,
            )

    # -- the wrapper -----------------------------------------------------------------------
    def _regularise(self, pl_module, batch, output, step):
        if output is None:  # the step asked Lightning to skip this batch
            return output
        loss = output["loss"] if isinstance(output, dict) else output
        weight = self.current_weight()
        if self.constraint is not None:
            penalty = step.penalty if step is not None else self.loss(pl_module, batch)
            g = normalised(penalty, self._task_output())
            total = loss + (self.constraint.weights(g) * self.ramp() * g).sum()
            self._dual_step(g, loss)
        elif weight == 0.0:
            with torch.no_grad():
                penalty = self.loss(pl_module, batch, measure=True)
            total = loss
        else:
            # the task never called module(batch): the penalty runs forwards of its own
            penalty = step.penalty if step is not None else self.loss(pl_module, batch)
            total = loss + weight * penalty
        self.batches += 1
        symmetry = total - loss if self.constraint is not None else weight * penalty
        self.last_terms = {"task": loss.detach(), "symmetry": symmetry.detach()}
        size = batch_size(batch)
        pl_module.log("train/symm_loss", penalty.detach().sum(), prog_bar=True, batch_size=size)
        self._log_weight(pl_module, weight, size)
        return {**output, "loss": total} if isinstance(output, dict) else total

    def _log_weight(self, pl_module, weight, size: int) -> None:
        """``train/symm_weight`` (and ``train/symm_weight/<generator>`` per generator)."""
        if not torch.is_tensor(weight):
            pl_module.log(
                "train/symm_weight", weight, on_step=True, on_epoch=False, batch_size=size
            )
            return
        names = self.constraint.names
        for name, value in zip(names, weight.tolist()):
            key = f"train/symm_weight/{name}" if name else "train/symm_weight"
            pl_module.log(key, value, on_step=True, on_epoch=False, batch_size=size)
        if names != ("",):
            total = float(weight.sum())
            pl_module.log("train/symm_weight", total, on_step=True, on_epoch=False, batch_size=size)

    def _task_output(self) -> torch.Tensor:
        if self._output is None:
            raise RuntimeError(
                "symmetry.constraint normalises the penalty by the variance of the task's "
                "output, but this training_step never called module(batch) on its batch; call "
                "it, or train with a fixed symmetry.weight"
            )
        return self._output

    def _dual_step(self, g, task_loss) -> None:
        """The multipliers' update from this batch's g (frozen during the warm-up)."""
        if self.batches < self.warmup_steps:
            return
        self.constraint.update(g, task_loss.detach())
        self.history.append(
            (self.batches, *self.constraint.weight.tolist(), *self.constraint.estimate.tolist())
        )

    def _record_output(self, module, args, kwargs, output):
        """The task's output on the step's batch (the first forward of that many rows, with its
        graph: the constrained g differentiates the variance too)."""
        if self._output is None and self._recording is not None and torch.is_tensor(output):
            if len(output) == self._recording and output.requires_grad:
                self._output = output

    def _before_forward(self, module, args, kwargs):
        """The task's first ``module(batch)`` of a regularised step runs on the shared inputs.

        Only a plain call on the step's batch with gradients on is shared; otherwise (a
        no-grad call, extra arguments) the penalty later runs forwards of its own.
        """
        active = self._step
        if self._busy or active is None or active["step"] is not None:
            return None
        plain_call = len(args) + len(kwargs) == 1 and (not kwargs or "batch" in kwargs)
        if not plain_call or not torch.is_grad_enabled():
            return None
        if (args[0] if args else kwargs["batch"]) is not active["batch"]:
            return None
        step = active["step"] = self.loss.begin(module, active["batch"])
        if args:
            return (step.inputs, *args[1:]), kwargs
        return args, {**kwargs, "batch": step.inputs}

    def _after_forward(self, module, args, kwargs, output):
        active = self._step
        if self._busy or active is None or active["step"] is None or active["done"]:
            return None
        if (args[0] if args else kwargs.get("batch")) is not active["step"].inputs:
            return None  # another forward (say, a second regulariser's copies)
        active["done"], self._busy = True, True
        try:
            return active["step"].finish(output)
        finally:
            self._busy = False

    def _wrap(self, pl_module) -> None:
        inner = pl_module.training_step
        inner_is_instance_attr = "training_step" in vars(pl_module)

        @functools.wraps(inner)
        def training_step(*args, **kwargs):
            batch = args[0] if args else kwargs["batch"]
            self.loss.prepare(pl_module, batch)  # the first batch probes the model once
            if self.constraint is not None or self.current_weight() > 0.0:
                self._step = {"batch": batch, "step": None, "done": False}
            if self.constraint is not None:  # the task's output: g divides by its variance
                self._recording = batch_size(batch)
            try:
                out = training_step.seal_inner(*args, **kwargs)
                step = self._step["step"] if self._step and self._step["done"] else None
            finally:
                self._step, self._recording = None, None
            try:
                return self._regularise(pl_module, batch, out, step)
            finally:
                self._output = None  # no step's graph held until the next one

        training_step.seal_owner = self
        training_step.seal_inner = inner
        training_step.seal_inner_is_instance_attr = inner_is_instance_attr
        pl_module.training_step = training_step
        self._handles = (
            pl_module.register_forward_pre_hook(self._before_forward, with_kwargs=True),
            pl_module.register_forward_hook(self._after_forward, with_kwargs=True),
        )
        if self.constraint is not None:  # after _after_forward: a fused output is cut by then
            self._handles += (
                pl_module.register_forward_hook(self._record_output, with_kwargs=True),
            )

    def _unwrap(self, pl_module) -> None:
        """Remove this callback's hooks and wrapper, wherever it sits in a chain of wrappers."""
        for handle in self._handles:
            handle.remove()
        self._handles = ()
        parent, node = None, vars(pl_module).get("training_step")
        while node is not None and hasattr(node, "seal_owner"):
            if node.seal_owner is self:
                if parent is not None:
                    parent.seal_inner = node.seal_inner
                    parent.seal_inner_is_instance_attr = node.seal_inner_is_instance_attr
                elif node.seal_inner_is_instance_attr:
                    pl_module.training_step = node.seal_inner
                else:
                    del pl_module.training_step
                return
            parent, node = node, node.seal_inner
