"""Checkpoints that survive a full disk or a kill mid-write, and the resume choice built on them.

* :class:`AtomicCheckpointIO` writes each checkpoint to a temporary file in the same folder,
  flushes it to disk and renames it over the old one: a failed write leaves the previous
  checkpoint whole. (Lightning's writer copies from a temporary location that may be on another
  file system; a full disk during that copy truncates ``last.ckpt``.)
* :func:`newest_intact` picks the checkpoint a requeued job resumes from: ``last.ckpt`` when it
  is whole, else the newest whole ``*.ckpt`` beside it, naming each file it skipped.
"""

import logging
import os
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
        finally:
            temporary.unlink(missing_ok=True)


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
