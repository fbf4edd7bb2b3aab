"""``SymmetryRegularizer``: the only Lightning glue of the symmetry package.

A Lightning callback cannot change the loss from ``on_before_backward`` and a second backward in
``on_after_backward`` desynchronises DDP replicas, so the callback wraps ``training_step`` *on
the module instance* in ``setup("fit")``, adds ``λ · penalty`` to the loss the step returns, and
removes the wrapper in ``teardown``. The module's class is never touched and the task code never
mentions symmetry. The module's ``forward(batch)`` must return the model output that the penalty
compares (``(B,)``/``(B, 1)`` invariant or ``(B, 4)`` four-vector).
"""

import contextlib
import functools

import pytorch_lightning as pl
import torch

from seal.groups import Group, make_group
from seal.symmetry.penalties import (
    PENALTIES,
    batch_device,
    batch_size,
    check_options,
    dseal,
    dseal_fd_pairs,
    gseal,
    gseal_pairs,
    refuse_batch_coupling,
)

_VALIDATION_SEED_OFFSET = 7_919  # validation draws its own fixed group elements every epoch


class SymmetryRegularizer(pl.Callback):
    """Add ``λ · L_symm`` to the training loss of any LightningModule.

    Parameters
    ----------
    penalty : {"gsymm", "dsymm"}
        Group form (GSEAL) or infinitesimal form (δSEAL).
    group : str or Group
        A :class:`seal.groups.Group` or one of ``lorentz``, ``boosts``, ``rotations``,
        ``zboost_zrotation`` (built with ``beta_max`` and ``magnitude``).
    weight : float
        λ ≥ 0. With λ = 0 the penalty is still computed (without gradients) and logged, so an
        unregularised run shows how far from symmetric it is.
    beta_max, magnitude : float, str
        Velocity-ball radius and |β| law of the sampled boosts (GSEAL only).
    output : {"scalar", "vector"}
        Invariant model output or four-vector output transforming as Λ.
    method, eps : str, float
        δSEAL derivative: ``exact`` (double backward) or ``finite_difference`` with step ``eps``.
    stochastic : bool
        δSEAL along one random unit combination of the generators per example (× k, unbiased).
    fraction : float
        Penalise the first ``ceil(fraction · B)`` examples of each training batch only.
    implementation : {"fused", "separate"}
        ``fused`` (GSEAL and finite-difference δSEAL): the transformed copies join the task's own
        forward — one forward over ``[x ; g·x]``, dropout masks paired. ``separate``: extra
        forwards of their own (needed for models with BatchNorm or that bypass ``forward``).
    warmup_steps : int
        λ rises linearly from 0 over this many training batches (0: constant λ).
    key, extra_keys : str, sequence of str
        Batch entries the group acts on (``extra_keys`` when present).
    seed : int, optional
        Seed of the group-element RNG (rank r uses ``seed + r``); default ``torch.initial_seed()``.
        Its state is checkpointed, so a resumed run draws the same elements.
    """

    def __init__(
        self,
        penalty: str = "gsymm",
        group: str | Group = "lorentz",
        weight: float = 1.0,
        beta_max: float = 0.5,
        magnitude: str = "uniform",
        output: str = "scalar",
        method: str = "exact",
        eps: float = 1e-3,
        stochastic: bool = False,
        fraction: float = 1.0,
        implementation: str = "fused",
        warmup_steps: int = 0,
        key: str = "p4",
        extra_keys=("jet_p4",),
        seed: int | None = None,
    ):
        if penalty not in PENALTIES:
            raise ValueError(
                f"unknown symmetry penalty {penalty!r}; choose one of {sorted(PENALTIES)}"
            )
        check_options(output, method, implementation, fraction, eps)
        if not weight >= 0:
            raise ValueError(f"symmetry weight λ must be >= 0; got {weight}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0; got {warmup_steps}")
        self.penalty = penalty
        self.group = group if isinstance(group, Group) else make_group(group, beta_max, magnitude)
        self.weight = float(weight)
        self.warmup_steps = int(warmup_steps)
        self.seed = seed
        self.fraction = float(fraction)
        common = dict(output=output, key=key, extra_keys=tuple(extra_keys))
        if penalty == "gsymm":
            self._fn = functools.partial(gseal, **common, implementation=implementation)
            self._pairs = functools.partial(gseal_pairs, group=self.group, **common)
        else:
            self._fn = functools.partial(
                dseal, **common, method=method, eps=eps, stochastic=stochastic,
                implementation=implementation,
            )  # fmt: skip
            self._pairs = functools.partial(
                dseal_fd_pairs, group=self.group, **common, eps=eps, stochastic=stochastic
            )
        # GSEAL and finite differences join the task's forward; the exact δSEAL cannot
        self.fused = implementation == "fused" and (penalty == "gsymm" or method != "exact")
        self.batches = 0  # training batches regularised so far: drives the warm-up
        self._generator = torch.Generator()
        self._val_generator = torch.Generator()
        self._restored_generator = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(penalty=self.penalty, group=repr(self.group))

    def current_weight(self) -> float:
        """λ for the next training batch (after the linear warm-up)."""
        if self.warmup_steps == 0:
            return self.weight
        return self.weight * min(1.0, self.batches / self.warmup_steps)

    def compute_penalty(
        self, pl_module, batch: dict, generator, captured=None, fraction: float = 1.0
    ) -> torch.Tensor:
        """The unweighted penalty of ``pl_module`` on ``batch`` (a scalar tensor).

        Taken from ``captured`` when the task's forward already computed it (fused).
        """
        if captured and "penalty" in captured:
            return captured["penalty"]
        return self._fn(pl_module, batch, self.group, generator=generator, fraction=fraction)

    # -- Lightning hooks -------------------------------------------------------------------
    def setup(self, trainer, pl_module, stage: str) -> None:
        base = self.seed if self.seed is not None else torch.initial_seed()
        self._val_seed = (base + _VALIDATION_SEED_OFFSET) % 2**63
        if stage != "fit":
            return
        if self.fused:
            refuse_batch_coupling(pl_module, training=True)
        if not pl_module.automatic_optimization:
            raise RuntimeError(
                f"SymmetryRegularizer adds its penalty to the loss returned by training_step, but "
                f"{type(pl_module).__name__} uses manual optimisation (automatic_optimization="
                f"False); add seal.symmetry.penalties.{self._fn.func.__name__}(...) to your loss "
                f"yourself instead"
            )
        if not self._restored_generator:
            self._generator.manual_seed((base + trainer.global_rank) % 2**63)
        self._wrap(trainer, pl_module)

    def teardown(self, trainer, pl_module, stage: str) -> None:
        if stage == "fit":
            self._unwrap(pl_module)

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._unwrap(pl_module)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._val_generator.manual_seed(self._val_seed)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        # validation runs under inference_mode: leave it and clone the inference tensors so
        # the exact δSEAL can build its derivative graph
        with torch.inference_mode(False), torch.no_grad():
            batch = {k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()}
            value = self.compute_penalty(pl_module, batch, self._val_generator)
        pl_module.log("val/symm_loss", value, on_epoch=True, batch_size=batch_size(batch))

    def state_dict(self) -> dict:
        return {"batches": self.batches, "generator": self._generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.batches = int(state_dict["batches"])
        self._generator.set_state(state_dict["generator"])
        self._restored_generator = True

    # -- the wrapper -----------------------------------------------------------------------
    def _regularise(self, pl_module, batch, output, captured):
        if output is None:  # the step asked Lightning to skip this batch
            return output
        loss = output["loss"] if isinstance(output, dict) else output
        weight = self.current_weight()
        if weight == 0.0:
            with torch.no_grad():
                penalty = self.compute_penalty(pl_module, batch, self._generator, captured)
            total = loss
        else:
            penalty = self.compute_penalty(
                pl_module, batch, self._generator, captured, self.fraction
            )
            total = loss + weight * penalty
        self.batches += 1
        self.last_terms = {"task": loss.detach(), "symmetry": (weight * penalty).detach()}
        size = batch_size(batch)
        pl_module.log("train/symm_loss", penalty.detach(), prog_bar=True, batch_size=size)
        pl_module.log("train/symm_weight", weight, on_step=True, on_epoch=False, batch_size=size)
        return {**output, "loss": total} if isinstance(output, dict) else total

    def _wrap(self, trainer, pl_module) -> None:
        inner = pl_module.training_step
        inner_is_instance_attr = "training_step" in vars(pl_module)

        @functools.wraps(inner)
        def training_step(*args, **kwargs):
            batch = args[0] if args else kwargs["batch"]
            with self._join_forward(pl_module, batch) as captured:
                out = training_step.seal_inner(*args, **kwargs)
            return self._regularise(pl_module, batch, out, captured)

        training_step.seal_owner = self
        training_step.seal_inner = inner
        training_step.seal_inner_is_instance_attr = inner_is_instance_attr
        pl_module.training_step = training_step

    @contextlib.contextmanager
    def _join_forward(self, pl_module, batch):
        """Join the penalty's transformed copies to the task's first ``pl_module(batch)``.

        A forward pre-hook swaps ``batch`` for ``[batch ; copies]`` (dropout paired); the
        forward hook hands the task the output on the original rows and keeps the penalty in
        ``captured["penalty"]``. With λ = 0 the task's forward is left alone.
        """
        captured = {}
        if not self.fused or self.current_weight() == 0.0:
            yield captured
            return
        pairing = contextlib.ExitStack()

        def before(module, args, kwargs):
            if "pairs" in captured or (args[0] if args else kwargs.get("batch")) is not batch:
                return None
            pairs = self._pairs(batch, generator=self._generator, fraction=self.fraction)
            captured["pairs"], captured["size"] = pairs, batch_size(batch)
            joined = pairs.join(batch)
            pairing.enter_context(pairs.pairing(captured["size"], batch_device(batch)))
            if args:
                return (joined, *args[1:]), kwargs
            return args, {**kwargs, "batch": joined}

        def after(module, args, kwargs, output):
            if "pairs" not in captured or "penalty" in captured:
                return None
            pairing.close()
            output, captured["penalty"] = captured["pairs"].split(output, captured["size"])
            return output

        handles = (
            pl_module.register_forward_pre_hook(before, with_kwargs=True),
            pl_module.register_forward_hook(after, with_kwargs=True),
        )
        try:
            yield captured
        finally:
            pairing.close()
            for handle in handles:
                handle.remove()

    def _unwrap(self, pl_module) -> None:
        """Remove this callback's wrapper, wherever it sits in a chain of wrappers."""
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
