"""A preempted run keeps its work and says so.

Clusters stop jobs with SIGTERM (preemption, ``scancel``, the time limit) and, when asked
(``#SBATCH --signal=USR1@120``), with SIGUSR1 shortly before the limit. Lightning turns SIGTERM
into a :class:`~pytorch_lightning.utilities.exceptions.SIGTERMException` — a ``SystemExit`` with
code 0 — after the current batch; left alone the run would end without a checkpoint at that
step, without ``metrics.json`` and with the exit code of a success.

:class:`Preemption` (added to every training run by :func:`seal.train.run`) makes SIGUSR1 stop
the run the same way (unless Lightning's own SLURM auto-requeue has claimed it), and when the
stop comes it writes ``last.ckpt`` at the current step into the run's checkpoint folder —
the checkpoint ``ckpt_path=auto`` resumes, every rank taking part as in any save. The training
script then marks ``metrics.json`` incomplete and exits with 128 + the signal's number (143 for
SIGTERM, 138 for SIGUSR1), so a scheduler sees a job that did not finish.

Under DDP the ranks agree on the stop at the end of each batch (one all-reduce of the signal
caught, MAX): a signal that reaches one rank, or the ranks at different moments, stops every
rank after the same batch. (Lightning's own SIGTERM handler broadcasts from inside the
handler; a rank signalled twice — by the scheduler and by Lightning's launcher forwarding it —
then paired that broadcast with another collective and the job hung.)

Under submitit (Hydra's ``launcher=slurm``, or its local executor) submitit holds SIGUSR2, the
signal it asks SLURM to send before the time limit and on preemption: the stop is the same —
``last.ckpt`` at that step, ``metrics.json`` incomplete — and then submitit's own handler
requeues the job (the launcher resubmits the same overrides; ``ckpt_path=auto`` resumes).
"""

import logging
import signal
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger("seal.train")


class Preemption(pl.Callback):
    """A checkpoint at the step a SIGTERM (or SIGUSR1) stopped the run; see the module."""

    def __init__(self):
        self.signal: signal.Signals | None = None  # what stopped the run
        self.stopped: dict | None = None  # {"signal", "step", "checkpoint"} once it has
        self.requeue = None  # submitit's requeue handler, when its signal stopped the run
        self._previous: dict = {}
        self._pending, self._ranks, self._connector = 0, False, None

    # -- the signals: a stop at the end of the batch, the same on every rank -----------------
    def on_train_start(self, trainer, pl_module) -> None:
        # after Lightning's own handlers (registered once on_fit_start has run): its SLURM
        # requeue keeps SIGUSR1, and its teardown restores what was there before either
        self.signal, self.stopped, self.requeue, self._pending = None, None, None, 0
        self._connector = trainer._signal_connector  # Lightning's stop flag lives there
        # under DDP the ranks agree on the stop at the end of a batch (one all-reduce): a signal
        # reaches the ranks at different moments, and Lightning's own SIGTERM handler runs a
        # broadcast inside the handler, which then pairs with another collective and hangs
        self._ranks = trainer.world_size > 1 and dist.is_available() and dist.is_initialized()
        for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            current = signal.getsignal(signum)
            requeue = current if submitit_requeue(current) else None
            others = []  # handlers Lightning composed with its own SIGTERM one: kept
            if signum == signal.SIGTERM:
                handlers = getattr(current, "signal_handlers", [current])
                notifier = self._connector._sigterm_notifier_fn
                others = [h for h in handlers if callable(h) and h != notifier]
            elif requeue is None and current not in (None, signal.SIG_DFL):
                log.info("%s already has a handler (%r): left to it", signum.name, current)
                continue
            elif requeue is None and signum != signal.SIGUSR1:
                continue  # SIGUSR2 is seal's only under submitit

            def stop(signum, frame, requeue=requeue, others=tuple(others)):
                for handler in others:
                    handler(signum, frame)
                self.requeue = self.requeue or requeue
                log.warning("received %s: stopping after this batch", signal.Signals(signum).name)
                if self._ranks:
                    self._pending = max(self._pending, int(signum))
                else:
                    self.signal = signal.Signals(signum)
                    self._connector.received_sigterm = True  # Lightning stops after the batch

            try:
                self._previous[signum] = (signal.signal(signum, stop), stop)
            except ValueError:  # not the main thread: signals cannot be caught here
                pass

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._ranks:
            return
        caught = torch.tensor([self._pending], device=pl_module.device)
        dist.all_reduce(caught, op=dist.ReduceOp.MAX)
        if caught.item():  # every rank stops after this batch, the same signal named
            self.signal = signal.Signals(int(caught.item()))
            self._connector.received_sigterm = True

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._give_back()

    def _give_back(self) -> None:
        """The handlers as they were before this callback's, where its own is still installed
        (after a finished fit Lightning has already restored its originals: left as they are)."""
        for signum, (previous, ours) in self._previous.items():
            if signal.getsignal(signum) is ours:
                signal.signal(signum, previous)
        self._previous = {}

    # -- the stop -------------------------------------------------------------------------------
    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._give_back()  # Lightning calls no teardown hook after an exception
        if not isinstance(exception, SIGTERMException) or self.stopped is not None:
            return
        caught = self.signal or signal.SIGTERM
        callback = trainer.checkpoint_callback
        folder = Path(callback.dirpath) if callback is not None and callback.dirpath else None
        folder = folder or Path(trainer.default_root_dir) / "checkpoints"
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path)
        self.stopped = {"signal": caught.name, "step": trainer.global_step, "checkpoint": str(path)}
        log.warning(
            "%s at step %d: checkpoint written to %s; the run is incomplete — run the same "
            "command with ckpt_path=auto to finish it",
            caught.name,
            trainer.global_step,
            path,
        )

    @property
    def exit_code(self) -> int:
        """128 + the signal's number, the shell's convention for a job a signal ended."""
        return 128 + int(signal.Signals[self.stopped["signal"]] if self.stopped else signal.SIGTERM)


def submitit_requeue(handler) -> bool:
    """Whether ``handler`` is submitit's checkpoint-and-requeue (a job submitted through
    submitit, e.g. Hydra's submitit launcher: it holds SIGUSR2 on SLURM and locally)."""
    owner = getattr(handler, "__self__", None)
    return getattr(handler, "__name__", "") == "checkpoint_and_try_requeue" and type(
        owner
    ).__module__.startswith("submitit")


class LastCheckpoint(ModelCheckpoint):
    """``last.ckpt``, the checkpoint ``ckpt_path=auto`` resumes, written at the end of every
    epoch (after its validation, where there is one) and, with ``every_n_train_steps``, every
    that many optimiser steps too — whatever a monitored metric did. (Lightning's
    ``save_last`` beside a monitor rewrites ``last.ckpt`` only when the monitor improves, so a
    run resumed from it repeated every epoch since the last improvement.)"""

    def __init__(self, dirpath, every_n_train_steps: int | None = None):
        if every_n_train_steps is not None and (
            isinstance(every_n_train_steps, bool)
            or not isinstance(every_n_train_steps, int)
            or every_n_train_steps < 1
        ):
            raise ValueError(
                f"callbacks.last_checkpoint.every_n_train_steps must be a whole number ≥ 1 (or "
                f"null: at epoch ends only); got {every_n_train_steps!r}"
            )
        super().__init__(
            dirpath=dirpath,
            filename=self.CHECKPOINT_NAME_LAST,
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
        )
        self.step_interval = every_n_train_steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step = trainer.global_step
        if (
            self.step_interval
            and step % self.step_interval == 0
            and step != self._last_global_step_saved
        ):
            self._save_none_monitor_checkpoint(trainer, self._monitor_candidates(trainer))
