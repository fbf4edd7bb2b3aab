"""File checks shared by checkpoints, generator chunks (both zip archives underneath) and
output folders."""

import os
import zipfile
from pathlib import Path


def zip_problem(path: Path, members: tuple = (), crc: bool = True) -> str | None:
    """None when ``path`` is a whole zip archive (a torch checkpoint, an ``.npz`` chunk) that
    holds ``members``, else why not — found from the records' CRCs (``crc=False``: from the
    central directory alone, which a cut-short file lacks), without unpickling anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            missing = sorted(set(members) - set(archive.namelist()))
            bad = archive.testzip() if crc else None
    except Exception as error:  # a damaged header can raise more than BadZipFile
        return f"not a readable archive ({type(error).__name__}: {error})"
    if missing:
        return f"records {missing} are missing"
    return None if bad is None else f"corrupt record {bad!r}"


def folder_problem(folder: Path) -> str | None:
    """None when ``folder`` exists or can be created and takes files, else why not (naming a
    file that stands where a folder should be)."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".seal_write_test_{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as error:
        blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            return f"{blocker} is a file, not a folder"
        return error.strerror or str(error)
    return None
