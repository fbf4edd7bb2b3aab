"""Data files that seal's own generators make on first use.

The generators (:mod:`seal.generation`, Pythia 8 and FastJet) are imported only when a file is
missing, so reading data never loads them.
"""

import importlib
from pathlib import Path

# kind → (module, settings class, function) of the generator that makes it
GENERATORS = {
    "jets": ("seal.generation.jets", "GeneratorConfig", "generate"),
    "dimuon": ("seal.generation.dimuon", "DimuonConfig", "generate_dimuon"),
}


def generate_missing(path: Path, settings: dict | None, kind: str) -> None:
    """Generate ``path`` with ``settings`` if it does not exist (and settings are given).

    Parameters
    ----------
    path : Path
        The data file a datamodule reads.
    settings : dict or None
        Fields of the generator's settings class (``data.generate``); None: never generate.
    kind : {"jets", "dimuon"}
        Which generator makes the file.
    """
    path = Path(path)
    if path.exists() or settings is None:
        return
    module, config_class, function = GENERATORS[kind]
    generator = importlib.import_module(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    getattr(generator, function)(getattr(generator, config_class)(**settings), path)
