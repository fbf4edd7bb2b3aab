"""One run per folder: a lock file in the run folder while a run trains there.

Two runs in one folder (a repeated command, two jobs given one ``hydra.run.dir``) would mix
their checkpoints and CSV rows, and ``ckpt_path=auto`` could resume the other run's
checkpoint. :func:`run_lock` creates ``<folder>/.seal.lock`` atomically (``O_EXCL``) holding the
PID, host, start time and SLURM job id of the run, and removes it when the run ends, however
it ends (a signal's ``SystemExit`` included). A second run into the folder is refused at once,
naming the first. A lock left by a run that died without removing it (SIGKILL, a node lost) is
taken over with a warning when that is certain: its PID is dead on this host, or it carries this
job's own SLURM job id (a requeued job, possibly on another node). Only the first process of a
multi-process (DDP) run takes the lock; the ranks it launches run in the folder it holds.
"""

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger("seal.train")
LOCK = ".seal.lock"


class FolderInUseError(RuntimeError):
    """Another run is training in this folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _launched_rank() -> bool:
    """A process a multi-process run launched (Lightning sets these for ranks > 0)."""
    return any(os.environ.get(k, "0") != "0" for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


# what a run writes in its folder that is its own and must not mix with another run's: its
# folders, metrics.json, and the evaluation's tables and figures (by suffix); anything else in
# the folder (a data file, the user's notes) stays where it is
RUN_OUTPUTS = ("checkpoints", "csv", "tensorboard", "wandb", "metrics.json")
RUN_FILE_SUFFIXES = (".csv", ".png", ".pdf", ".json")


def set_aside_previous(folder: Path) -> Path | None:
    """A fresh run (nothing to resume) into a folder a previous run wrote: that run's outputs
    (checkpoints, logs, metrics, tables and figures) move to ``previous/<its time>/`` with a
    warning, so that nothing mixes with the new run's and nothing is lost; other files (the
    log the new run has opened, a data file) stay. Returns where they went."""
    if _launched_rank():
        return None  # the first process has done it before launching this one
    folder = Path(folder)
    if not folder.is_dir() or not any((folder / name).exists() for name in RUN_OUTPUTS):
        return None
    found = [
        p
        for p in folder.iterdir()
        if p.name in RUN_OUTPUTS or (p.is_file() and p.suffix in RUN_FILE_SUFFIXES)
    ]
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(max(p.stat().st_mtime for p in found)))
    target = folder / "previous" / stamp
    suffix = 1
    while target.exists():
        target, suffix = folder / "previous" / f"{stamp}-{suffix}", suffix + 1
    target.mkdir(parents=True)
    for path in found:
        path.rename(target / path.name)
    log.warning(
        "%s held a previous run's outputs (%s); this run starts fresh, so they were moved to "
        "%s (ckpt_path=auto resumes a run instead)",
        folder,
        ", ".join(sorted(p.name for p in found)),
        target,
    )
    return target


def _describe(holder: dict) -> str:
    started = holder.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    job = f", SLURM job {holder['slurm_job']}" if holder.get("slurm_job") else ""
    return f"PID {holder.get('pid')} on {holder.get('host')}, started {when}{job}"


def _stale(holder: dict) -> str | None:
    """Why a lock's run is certainly gone, or None."""
    job = os.environ.get("SLURM_JOB_ID")
    if job and holder.get("slurm_job") == job:
        return "it is this SLURM job's own (a requeued job)"
    if holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", -1))):
        return "its process no longer exists on this host"
    return None


@contextlib.contextmanager
def run_lock(folder: Path):
    """Hold ``folder``'s lock for the duration of the ``with`` block; see the module."""
    if _launched_rank():
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    me = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "slurm_job": os.environ.get("SLURM_JOB_ID"),
    }
    for _ in range(2):
        try:
            handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                holder = json.loads(path.read_text())
            except (OSError, ValueError):
                holder = {}
            why = _stale(holder) if holder else "it cannot be read"
            if why is None:
                raise FolderInUseError(
                    f"{folder} is in use by another run ({_describe(holder)}): two runs in one "
                    f"folder mix their checkpoints and logs. Give this one another folder "
                    f"(hydra.run.dir=…), or, if that run is gone, delete {path}"
                ) from None
            log.warning("taking over the lock %s (%s): %s", path, _describe(holder), why)
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(handle, "w") as out:
            json.dump(me, out)
        break
    else:
        raise FolderInUseError(f"could not take the lock {path}: another run keeps taking it")
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text()).get("pid") == me["pid"]:
                path.unlink()
