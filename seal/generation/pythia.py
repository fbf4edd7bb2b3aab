"""What every Pythia 8 generator in seal shares: quiet settings, chunk seeds, a started Pythia."""

import numpy as np

QUIET = [
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showProcesses = off",
    "Init:showChangedParticleData = off",
    "Print:quiet = on",
]
PYTHIA_MAX_SEED = 900_000_000


def chunk_seed(seed: int, index: int) -> int:
    """Pythia seed (1 … 9·10⁸, Pythia's range) of chunk ``index``, distinct across chunks."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) % PYTHIA_MAX_SEED + 1


def start_pythia(settings: list[str], what: str):
    """A ``pythia8mc.Pythia`` with ``settings`` read and initialised.

    Parameters
    ----------
    settings : list of str
        Pythia setting lines (``"Beams:eCM = 13000"``, ...).
    what : str
        What the instance makes, for the error message when Pythia refuses to initialise.

    Raises
    ------
    RuntimeError
        Pythia failed to initialise; the message names ``what`` and the first settings.
    """
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in settings:
        pythia.readString(line)
    if not pythia.init():
        raise RuntimeError(f"Pythia failed to initialise {what}: {'; '.join(settings[:7])}")
    return pythia
