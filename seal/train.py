"""``run(cfg)``: seed → instantiate → fit → test → evaluate → ``metrics.json``; returns metrics."""

import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities.exceptions import SIGTERMException

from seal.callbacks.preemption import Preemption
from seal.checkpoints import AtomicCheckpointIO, check_free_space, is_intact, newest_intact
from seal.config_checks import check_config
from seal.models.compose import check_treatment
from seal.runlock import run_lock, set_aside_previous
from seal.symmetry.callback import SymmetryRegularizer

log = logging.getLogger(__name__)
# Lightning internals on torch 2.13, nothing a user can act on
warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated")


def instantiate_entries(node, group: str) -> list:
    """Build every entry of a ``name → {_target_: ...}`` config dict, strictly.

    An entry without ``_target_`` is an error naming it (a silently skipped callback or logger
    is a run that does not do what its config says). ``None`` entries are switched off.
    """
    if node is None:
        return []
    if not isinstance(node, DictConfig):
        raise TypeError(f"`{group}` must map names to configs with a _target_; got {node!r}")
    objects = []
    for name, entry in node.items():
        if entry is None:
            continue
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            raise ValueError(
                f"{group}.{name} has no _target_: every {group} entry must name the class to "
                f"build, e.g. `_target_: pytorch_lightning.callbacks.ModelCheckpoint`; got {entry}"
            )
        objects.append(hydra.utils.instantiate(entry))
    return objects


def _wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


def instantiate_loggers(node) -> list:
    """Loggers; a wandb logger without credentials runs offline (never waits on the network)."""
    if node is not None and "wandb" in node and node.wandb is not None:
        if not _wandb_has_credentials() and not node.wandb.get("offline", False):
            log.info("no wandb API key configured: logging offline (sync later with `wandb sync`)")
            node = node.copy()
            node.wandb.offline = True
    return instantiate_entries(node, "logger")


def _finish_wandb(loggers) -> None:
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish()  # one wandb run per job, also inside a multirun


def _plot_constraint(callback, out: Path, name: str, rank_zero: bool) -> None:
    """constraint.png beside the callback's constraint.csv (a constrained run only)."""
    table = out / "constraint.csv"
    if callback.constraint is None or not rank_zero or not table.exists():
        return
    import matplotlib.pyplot as plt

    from seal.evaluation.plots import plot_constraint

    plt.close(plot_constraint(table, out / "constraint.png", callback.constraint.target, name))


def scalars(metrics) -> dict:
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def gpu_for_job(trainer_cfg, job_num: int | None, n_jobs: int, n_gpus: int):
    """In a parallel sweep on a multi-GPU node, job n of a one-GPU config trains on GPU
    n mod (number of GPUs); otherwise ``trainer_cfg`` is returned unchanged."""
    one_gpu = trainer_cfg.get("accelerator") == "gpu" and trainer_cfg.get("devices") in (1, "1")
    if not one_gpu or job_num is None or n_jobs < 2 or n_gpus < 2:
        return trainer_cfg
    return OmegaConf.merge(trainer_cfg, {"devices": [job_num % n_gpus]})


def _parallel_job() -> tuple[int | None, int]:
    """(job number, parallel jobs) of this Hydra multirun job; (None, 1) outside one."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None, 1
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return None, 1
    n_jobs = OmegaConf.select(hydra_cfg, "launcher.n_jobs", default=1)
    return hydra_cfg.job.num, int(n_jobs) if n_jobs and n_jobs > 0 else os.cpu_count() or 1


def resolve_ckpt_path(cfg: DictConfig) -> str | None:
    """``ckpt_path: auto`` → this run's ``last.ckpt`` (a requeued job resumes), or the newest
    intact checkpoint beside it when ``last.ckpt`` is damaged, else start fresh (said in the
    log); any other value is passed to Lightning as it is."""
    value = cfg.get("ckpt_path")
    if value != "auto":
        if value is not None and value not in LIGHTNING_CKPT_NAMES:
            _check_ckpt_path(Path(value))
        return value
    folder = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    folder = Path(folder or Path(cfg.paths.output_dir) / "checkpoints")
    chosen = newest_intact(folder)
    if chosen is not None:
        log.info("ckpt_path=auto: resuming from %s", chosen)
        return str(chosen)
    log.info("ckpt_path=auto: no intact checkpoint in %s yet, starting from scratch", folder)
    return None


LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")  # Lightning's own ckpt_path words


def _check_ckpt_path(path: Path) -> None:
    """``ckpt_path=…``: a file that is a whole Lightning checkpoint, said before any work."""
    if not path.is_file():
        raise FileNotFoundError(
            f"ckpt_path={path}: no such file; give a run's checkpoints/last.ckpt (or "
            f"ckpt_path=auto: this run's own, when it has one)"
        )
    problem = is_intact(path)
    if problem is not None:
        raise ValueError(f"ckpt_path={path} is not a whole Lightning checkpoint: {problem}")


def _check_resume(cfg: DictConfig, module, ckpt_path: str | None, loggers) -> None:
    """Before training resumes from ``ckpt_path`` (read once): under ``ckpt_path=auto`` it must
    be this run's, its weights must fit the network, and the CSV logs forget the steps after it."""
    if not ckpt_path or ckpt_path in LIGHTNING_CKPT_NAMES:
        return
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False, mmap=True)
    if cfg.get("ckpt_path") == "auto":
        _check_same_run(cfg, ckpt_path, state)
    _check_weights_fit(module, ckpt_path, state)
    _forget_rows_after(state["global_step"], loggers)


def _check_weights_fit(module, ckpt_path: str, state: dict) -> None:
    """The checkpoint's weights fit this run's network (another architecture is named here,
    before training, instead of inside Lightning's restore)."""
    weights = state.get("state_dict", {})
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shapes = sorted(k for k in set(own) & set(weights) if own[k].shape != weights[k].shape)
    if missing or extra or shapes:
        details = "; ".join(
            f"{what} {keys[:3]}{' …' if len(keys) > 3 else ''}"
            for what, keys in (
                ("missing", missing),
                ("unexpected", extra),
                ("other shapes", shapes),
            )
            if keys
        )
        raise ValueError(
            f"ckpt_path={ckpt_path} holds another network than this run's {type(module).__name__} "
            f"({details}): resume with the model settings it was trained with"
        )


RUN_PARTS = ("model", "data", "symmetry", "seed")  # what makes a run this run


def run_fingerprint(cfg: DictConfig) -> dict:
    """A hash of each part of the config that makes the run (network, data, penalty, seed) —
    not the budget (a requeued or extended run may train longer) nor the paths."""
    parts = {}
    for key in RUN_PARTS:
        value = cfg.get(key)
        value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        text = json.dumps(value, sort_keys=True, default=str)
        parts[key] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return parts


class RunFingerprint(pl.Callback):
    """Stores :func:`run_fingerprint` in every checkpoint (``checkpoint["seal_run"]``)."""

    def __init__(self, fingerprint: dict):
        self.fingerprint = fingerprint

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["seal_run"] = dict(self.fingerprint)


def _check_same_run(cfg: DictConfig, path: str, state: dict) -> None:
    """``ckpt_path=auto`` resumes only a checkpoint of this run: one whose network, data,
    penalty and seed match the config (another run that used the folder before is refused)."""
    stored = state.get("seal_run")
    if stored is None:
        log.warning(
            "ckpt_path=auto: %s does not say which run wrote it (an older checkpoint)", path
        )
        return
    differ = [k for k, v in run_fingerprint(cfg).items() if stored.get(k) != v]
    if differ:
        raise ValueError(
            f"ckpt_path=auto found {path}, written by another run in this folder: its "
            f"{', '.join(differ)} differ from this config. Give this run another folder "
            f"(hydra.run.dir=…), or resume that checkpoint on purpose with ckpt_path={path}"
        )


def run_name(cfg: DictConfig) -> str:
    """The task and the command-line overrides that make this run: the first line of every
    figure title, so a figure pasted into a talk still says where it came from."""
    from hydra.core.hydra_config import HydraConfig

    overrides = []
    if HydraConfig.initialized():
        skip = ("experiment=", "extrap=", "hydra.", "hydra/", "paths.", "data.path=")
        overrides = [
            o for o in HydraConfig.get().overrides.task if not o.lstrip("+~").startswith(skip)
        ]
    task = str(cfg.get("task_name", "")) + str(cfg.get("name_suffix") or "")
    name = " ".join([task, *overrides]).strip()
    return name if len(name) <= 200 else name[:199] + "…"


def _forget_rows_after(step: int, loggers) -> None:
    """A resumed run logs again every step after its checkpoint (at ``step``): drop the earlier
    run's rows of those steps from the CSV logs, so each step appears once."""
    for logger in loggers:
        if hasattr(logger, "drop_rows_from"):
            dropped = logger.drop_rows_from(step)
            if dropped:
                log.info(
                    "resuming at step %d: dropped %d rows of later steps from %s",
                    step,
                    dropped,
                    logger.log_dir,
                )


def _checkpoint_plugins(trainer_cfg) -> dict:
    """Atomic checkpoint writes unless the trainer config brings plugins of its own."""
    return {} if trainer_cfg.get("plugins") else {"plugins": [AtomicCheckpointIO()]}


def _stopped(preemption: Preemption, out: Path, trainer) -> None:
    """A signal stopped training: ``metrics.json`` says the run is incomplete (what stopped it,
    the step, the checkpoint to resume), then the process exits with 128 + the signal."""
    stopped = preemption.stopped or {"signal": "SIGTERM", "step": trainer.global_step}
    if trainer.is_global_zero:
        record = {
            "status": "incomplete",
            **stopped,
            "resume": "the same command with ckpt_path=auto",
        }
        if preemption.requeue is not None:
            record["resume"] = "requeued by submitit (ckpt_path=auto resumes the checkpoint)"
        (out / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True))
        log.error(
            "training stopped by %s at step %d: metrics.json marks the run incomplete; %s",
            stopped["signal"],
            stopped["step"],
            "submitit requeues it"
            if preemption.requeue is not None
            else f"exit code {preemption.exit_code}",
        )
    if preemption.requeue is not None:  # submitit: checkpoint the submission, requeue, exit
        preemption.requeue(int(preemption.signal), None)
    raise SystemExit(preemption.exit_code)


def run(cfg: DictConfig, callbacks=()) -> dict:
    """Train and evaluate one configuration; returns (and writes) its metrics. ``callbacks``:
    Lightning callbacks added to the configured ones (instrumentation: timers, counters)."""
    check_config(cfg)  # wrong keys and types, each named, before anything is built
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with run_lock(out):  # one run per folder: a second is refused here, naming the first
        return _train(cfg, callbacks, out)


TRAIN_METRICS = ("loss", "symm_loss", "symm_weight", "step_ms")  # per generator: symm_weight/J


def _check_monitors(cfg: DictConfig, module) -> None:
    """A callback's ``monitor`` (checkpointing, early stopping) in seal's ``train/`` or ``val/``
    namespace must be a metric the run logs: Lightning finds out only after the first
    validation. Other names (a metric a callback of your own logs) pass unchecked."""
    val = (*getattr(module, "validation_metrics", ("loss",)), "symm_loss", "w_inv")
    known = [f"train/{m}" for m in TRAIN_METRICS] + [f"val/{m}" for m in val]
    for name, entry in (cfg.get("callbacks") or {}).items():
        monitor = entry.get("monitor") if isinstance(entry, DictConfig) else None
        if monitor is None:
            continue
        monitor = str(monitor)
        ours = monitor.startswith(("train", "val", "test"))  # val/auc, but also val_loss
        ok = not ours or monitor in known or monitor.startswith("train/symm_weight/")
        if not ok:
            raise ValueError(
                f"callbacks.{name}.monitor={monitor!r} is not a metric this run logs before "
                f"it ends; it logs {known} (test/ metrics only after training) — e.g. "
                f"callbacks.{name}.monitor=val/loss"
            )


def _train(cfg: DictConfig, callbacks, out: Path) -> dict:
    pl.seed_everything(cfg.seed, workers=True)
    # everything that can reject the config is built before any training starts
    evaluation = hydra.utils.instantiate(cfg.evaluation) if cfg.get("evaluation") else None
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model)
    if isinstance(getattr(module, "net", None), torch.nn.Module):  # a backbone × treatment pair
        check_treatment(module.net, cfg.get("symmetry"), cfg.data.get("augment"))
    split = getattr(datamodule, "split", None)
    if cfg.get("test", True) and split is not None and len(split) == 3 and not split[2]:
        raise ValueError(
            f"data.split={list(split)} leaves no test data, but the run tests its model when "
            f"training ends: give the test split a share (e.g. data.split=[0.8,0.1,0.1]) or "
            f"set test=false"
        )
    pair = cfg.get("pair") or {}
    trained = f"{pair.get('backbone')}/{pair.get('treatment')}"
    if pair.get("named") and pair.named != trained:
        log.warning(
            "%s stands for %s, but this run trains %s (an override of model/backbone or "
            "treatment); its outputs go under %s all the same: start from +experiment=top to "
            "name a run by its pair",
            cfg.task_name,
            pair.named,
            trained,
            cfg.task_name,
        )
    _check_monitors(cfg, module)
    # weights and the optimiser's two moments (Adam), plus the loops' and callbacks' state
    weights = sum(p.numel() * p.element_size() for p in module.parameters())
    check_free_space(out, 3 * weights + 2**20)
    preemption = Preemption()  # SIGTERM / SIGUSR1: a checkpoint at that step, a failing exit
    callbacks = [
        *instantiate_entries(cfg.get("callbacks"), "callbacks"),
        *callbacks,
        preemption,
        RunFingerprint(run_fingerprint(cfg)),  # ckpt_path=auto resumes only this run's
    ]
    if cfg.get("symmetry") is not None:
        callbacks.append(hydra.utils.instantiate(cfg.symmetry))
    ckpt_path = resolve_ckpt_path(cfg)
    if ckpt_path is None:  # a fresh run: a previous run's outputs here are moved aside
        set_aside_previous(out)
    loggers = instantiate_loggers(cfg.get("logger"))
    trainer_cfg = gpu_for_job(cfg.trainer, *_parallel_job(), torch.cuda.device_count())
    trainer = hydra.utils.instantiate(
        trainer_cfg,
        callbacks=callbacks,
        logger=loggers or False,
        **_checkpoint_plugins(trainer_cfg),
    )
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    try:
        start = time.perf_counter()
        _check_resume(cfg, module, ckpt_path, loggers)
        try:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
        except SIGTERMException:
            _stopped(preemption, out, trainer)
        metrics = scalars(trainer.callback_metrics)
        metrics["time/fit_s"] = time.perf_counter() - start
        for callback in callbacks:  # a constrained λ: its target, final value, met or not
            if isinstance(callback, SymmetryRegularizer):
                metrics.update(callback.summary())
                _plot_constraint(callback, out, run_name(cfg), trainer.is_global_zero)
        if cfg.get("test", True) and trainer.state.status == "finished":
            best = getattr(trainer.checkpoint_callback, "best_model_path", "")
            trainer.test(module, datamodule=datamodule, ckpt_path="best" if best else None)
            metrics.update(scalars(trainer.callback_metrics))
            if best:
                metrics["best_checkpoint"] = best
        if evaluation is not None and trainer.is_global_zero:
            start = time.perf_counter()
            metrics.update(
                evaluation(
                    module, datamodule, out, loggers, trainer.global_step, run_name=run_name(cfg)
                )
            )
            metrics["time/evaluation_s"] = time.perf_counter() - start
            log.info(
                "post-training evaluation: %.1f s (%.0f %% of the %.1f s of fit)",
                metrics["time/evaluation_s"],
                100 * metrics["time/evaluation_s"] / max(metrics["time/fit_s"], 1e-9),
                metrics["time/fit_s"],
            )
        metrics["trainer/global_step"] = trainer.global_step
        metrics["model/params"] = sum(p.numel() for p in module.parameters())
        if trainer.is_global_zero:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            log.info("metrics written to %s", out / "metrics.json")
    finally:
        _finish_wandb(loggers)
    return metrics
