"""The dimuon DataModule: Z → μμ vs γ* → μμ from one HDF5 file, held in memory."""

from pathlib import Path

import h5py
import numpy as np
import torch

from seal.data.generated import generate_missing
from seal.data.tensordict import SplitLoaders, loader

REQUIRED = {"p4": 3, "labels": 1, "weights": 1}  # key → number of axes


def read_dimuon(path: Path) -> dict:
    """Validated arrays of a dimuon file: ``p4 (N, k, 4)``, ``labels (N,)``, ``weights (N,)``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"dimuon file {path} does not exist: generate it with "
            f"`python scripts/generate_dimuon.py --out {path}` (or keep data.generate set)"
        )
    with h5py.File(path, "r") as f:
        missing = [k for k in REQUIRED if k not in f]
        if missing:
            raise KeyError(f"{path}: missing key(s) {missing}; found {sorted(f)}")
        data = {k: f[k][:] for k in REQUIRED}
    n = len(data["labels"])
    for key, ndim in REQUIRED.items():
        shape = data[key].shape
        if data[key].ndim != ndim or shape[0] != n or (key == "p4" and shape[-1] != 4):
            raise ValueError(
                f"{path}: {key!r} has shape {shape}; expected "
                f"{'(N, k, 4)' if key == 'p4' else '(N,)'} with N = {n}"
            )
    bad = ~np.isfinite(data["p4"]).all((1, 2))
    if bad.any():
        raise ValueError(f"{path}: non-finite value in 'p4' of event {int(np.flatnonzero(bad)[0])}")
    return data


class DimuonDataModule(SplitLoaders):
    """Dimuon events: train on the first ``n_train`` rows, validate and test on disjoint rows
    at the end of the file (so training sets of different sizes nest and share one test set).

    Parameters
    ----------
    path : str
        The file; generated once when missing and ``generate`` is given.
    n_train, n_val, n_test
        Events per split.
    batch_size, num_workers
        Loader settings.
    generate : dict, optional
        :class:`~seal.generation.dimuon.DimuonConfig` fields for a
        missing file (generated on first use).
    augment : callable, optional
        Applied to training batches.

    Notes
    -----
    Batches: ``p4 (B, 2, 4)`` GeV, ``mask (B, 2)``, ``target``, ``weight`` (background
    reweighted to the signal's leading-muon pT), ``jet_p4`` (the dimuon system).
    """

    def __init__(
        self,
        path,
        n_train=80_000,
        n_val=10_000,
        n_test=40_000,
        batch_size=512,
        num_workers=0,
        generate=None,
        augment=None,
    ):
        super().__init__()
        self.path, self.sizes = Path(path), {"train": n_train, "val": n_val, "test": n_test}
        if min(self.sizes.values()) < 1:
            raise ValueError(f"data.n_train/n_val/n_test must be ≥ 1; got {self.sizes}")
        self.batch_size, self.num_workers = batch_size, num_workers
        self.generate, self.augment = generate, augment
        self.splits: dict[str, dict] = {}

    def prepare_data(self) -> None:
        generate_missing(self.path, self.generate, "dimuon")

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data = read_dimuon(self.path)
        n = len(data["labels"])
        if sum(self.sizes.values()) > n:
            raise ValueError(
                f"{self.path} has {n} events; data.n_train + n_val + n_test = "
                f"{sum(self.sizes.values())} {self.sizes}"
            )
        p4 = torch.from_numpy(data["p4"]).float()
        tensors = {
            "p4": p4,
            "mask": torch.ones(p4.shape[:2], dtype=torch.bool),
            "target": torch.from_numpy(data["labels"]).float(),
            "weight": torch.from_numpy(data["weights"]).float(),
            "jet_p4": p4.sum(1),
        }
        n_test, n_val = self.sizes["test"], self.sizes["val"]
        rows = {
            "train": slice(0, self.sizes["train"]),
            "val": slice(n - n_test - n_val, n - n_test),
            "test": slice(n - n_test, n),
        }
        self.splits = {name: {k: v[r] for k, v in tensors.items()} for name, r in rows.items()}

    def _loader(self, split, shuffle=False, transform=None):
        return loader(
            self.splits[split],
            self.batch_size,
            shuffle=shuffle,
            transform=transform,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
