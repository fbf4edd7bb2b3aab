"""``NetTask``: what every task shares — the network, its optimiser and ``model.compile``."""

import functools

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn


def default_optimizer(lr: float):
    """``Adam(lr)`` as a factory of parameters (what ``optimizer=None`` means)."""
    return functools.partial(torch.optim.Adam, lr=lr)


class NetTask(pl.LightningModule):
    """A LightningModule around ``net(batch)``.

    Parameters
    ----------
    net : nn.Module
        Maps the batch dict to the task's output.
    optimizer : callable, optional
        ``params → torch.optim.Optimizer``, e.g. the Hydra node
        ``{_target_: torch.optim.AdamW, _partial_: true, lr: 1e-3}``; default Adam.
    scheduler : object with ``build(optimizer, trainer_steps)``, optional
        A learning-rate schedule stepped after every optimiser step, e.g.
        :class:`~seal.tasks.schedules.WarmupCosine` (``model/scheduler=cosine``); default none.
    compile : bool or str
        Run ``net`` through ``torch.compile`` (true: inductor, or a backend name). The compiled
        module stays out of the module tree (checkpoints hold ``net.*`` only); callers that need
        eager execution (a double backward) use ``torch.compiler.set_stance("force_eager")``.
    """

    default_lr = 1e-3

    # what its validation epochs log, after "val/" (a checkpoint's monitor is checked
    # against these before training)
    validation_metrics: tuple[str, ...] = ("loss",)

    def __init__(self, net: nn.Module, optimizer=None, compile: bool | str = False, scheduler=None):
        super().__init__()
        self.net, self.scheduler = net, scheduler
        self.optimizer = optimizer if optimizer is not None else default_optimizer(self.default_lr)
        if scheduler is not None and not callable(getattr(scheduler, "build", None)):
            raise TypeError(
                f"scheduler must have build(optimizer, trainer_steps), e.g. "
                f"seal.tasks.schedules.WarmupCosine; got {scheduler!r}"
            )
        if not callable(self.optimizer):
            raise TypeError(
                f"optimizer must build an optimiser from parameters (a Hydra node with "
                f"_partial_: true); got {self.optimizer!r}"
            )
        compiled = None
        if compile not in (False, None):
            backend = "inductor" if compile is True else str(compile)
            compiled = torch.compile(net, backend=backend)
        self.__dict__["_compiled"] = compiled  # not a submodule: no duplicate state-dict keys

    def forward(self, batch: dict) -> torch.Tensor:
        compiled = self.__dict__["_compiled"]
        return self.net(batch) if compiled is None else compiled(batch)

    def gather_columns(self, columns: torch.Tensor) -> torch.Tensor:
        """(k, n) per-example columns of this rank → (k, N) over every rank (rank order), so
        epoch metrics are computed once over the whole split, as in one process."""
        if self._trainer is None or self.trainer.world_size == 1:
            return columns
        columns = columns.to(self.device)
        sizes = self.all_gather(torch.tensor(columns.shape[1], device=self.device)).flatten()
        padded = F.pad(columns, (0, int(sizes.max()) - columns.shape[1]))
        gathered = self.all_gather(padded)  # (world, k, longest)
        return torch.cat([g[:, : int(n)] for g, n in zip(gathered, sizes)], dim=1).cpu()

    def configure_optimizers(self):
        optimizer = self.optimizer(self.parameters())
        if self.scheduler is None:
            return optimizer
        schedule = self.scheduler.build(optimizer, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
