"""File checks shared by checkpoints and generator chunks (both zip archives underneath)."""

import zipfile
from pathlib import Path


def zip_problem(path: Path) -> str | None:
    """None when ``path`` is a whole zip archive (a torch checkpoint, an ``.npz`` chunk), else
    why not — found from the records' CRCs, without unpickling or loading anything."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (OSError, zipfile.BadZipFile) as error:
        return f"not a readable archive ({error})"
    return None if bad is None else f"corrupt record {bad!r}"
