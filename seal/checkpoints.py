"""Checkpoints that survive a full disk or a kill mid-write, and the resume choice built on them.

* :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  flushes it to disk and renames it over the old one: a failed write leaves the previous
  checkpoint whole. (Lightning's writer copies from a temporary location that may be on another
  file system; a full disk during that copy truncates ``last.ckpt``.)
* :func:`newest_intact` picks the checkpoint a requeued job resumes from: ``last.ckpt`` when it
  is whole, else the newest whole ``*.ckpt`` beside it, naming each file it skipped.
"""

import errno
import logging
import os
import shutil
from pathlib import Path

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from seal.files import zip_problem

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Temporary file + fsync + rename, on local paths; other paths go to Lightning's writer."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as file:
                torch.save(checkpoint, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            kept = f"the previous {path.name} is intact" if path.exists() else "nothing was written"
            raise OSError(
                errno.ENOSPC,
                f"no space left on the device of {path.parent} to write the checkpoint "
                f"{path.name} ({free_mib(path.parent):.0f} MiB free); {kept} — free space there "
                f"and run the same command with ckpt_path=auto",
            ) from error
        finally:
            temporary.unlink(missing_ok=True)


def free_mib(folder: Path) -> float:
    return shutil.disk_usage(folder).free / 2**20


def check_free_space(folder: Path, checkpoint_bytes: int, copies: int = 3) -> None:
    """Refuse to start a run whose folder cannot hold ``copies`` checkpoints (last.ckpt, the
    best one and the temporary file of a write in progress) of ``checkpoint_bytes`` each."""
    needed = copies * checkpoint_bytes / 2**20
    free = free_mib(folder)
    if free < needed:
        raise OSError(
            errno.ENOSPC,
            f"the output folder {folder} has {free:.0f} MiB free; this run's checkpoints need "
            f"about {needed:.0f} MiB ({copies} × {checkpoint_bytes / 2**20:.1f} MiB: last.ckpt, "
            f"the best and one being written) — free space there or set hydra.run.dir to a folder "
            f"on another disk",
        )


def is_intact(path: Path) -> str | None:
    """None when ``path`` is a whole torch checkpoint, else why not (without unpickling it:
    torch writes a zip archive whose records carry CRCs)."""
    return zip_problem(path)


def newest_intact(folder: Path) -> Path | None:
    """``folder/last.ckpt`` if whole, else the most recently written whole ``*.ckpt``; each
    damaged file on the way is named in a warning. None when there is no whole checkpoint."""
    last = folder / "last.ckpt"
    others = sorted(
        (p for p in folder.glob("*.ckpt") if p != last),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for candidate in ([last] if last.exists() else []) + others:
        problem = is_intact(candidate)
        if problem is None:
            return candidate
        log.warning("ckpt_path=auto: skipping %s: %s", candidate, problem)
    return None
