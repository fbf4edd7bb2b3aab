"""Lazy readers of jet HDF5 files → batch dicts (``p4`` in GeV, ``mask``, ``target``, ``weight``,
``jet_p4``).

Two layouts are read unchanged:

* **ATLAS top tagging** (open data record 15013, and what :mod:`seal.generation.jets` writes):
  ``fjet_clus_pt/eta/phi/E`` (n, C) in MeV, ``fjet_pt/eta/phi/m``, ``labels``, and
  ``weights`` or ``training_weights``;
* **Top Tagging Landscape** (pandas HDF5, fixed format): columns ``E_i, PX_i, PY_i, PZ_i`` in GeV
  and ``is_signal_new``, read straight from the pandas block datasets with h5py.

Nothing is loaded whole: rows are read in chunks, so memory is bounded by the chunk size.
"""

import logging
from pathlib import Path

import h5py
import numpy as np

from seal.data.atlas_layout import CONSTITUENT_KEYS, JET_KEYS, MEV_PER_GEV

log = logging.getLogger(__name__)
NO_DATA_HINT = (
    "generate jets with `python scripts/generate_jets.py --out {path}` (or let the top-tagging "
    "data config generate its default set), or point `data.path` at the ATLAS top-tagging "
    "open data (record 15013) or a Top Tagging Landscape file"
)


def open_h5(path: Path) -> h5py.File:
    """Open for reading, with errors that name the file and say what to do."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"jet file {path} does not exist: " + NO_DATA_HINT.format(path=path)
        )
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise OSError(f"cannot read HDF5 file {path} (corrupt or truncated?): {error}") from error


class JetFile:
    """One jet file; ``read(start, stop)`` returns that row range as numpy arrays.

    Parameters
    ----------
    path
        Path to an ATLAS-layout or Top-Landscape-layout HDF5 file.
    n_constituents : int
        Keep the first N constituents (files store them pT-ordered); fewer stored → zero-padded.
    negative_weights : {"refuse", "abs"}
        A jet with a negative weight (an NLO generator's, say): refused, naming the jet
        (default: the loss is normalised by the batch's weight sum and the ROC curve needs
        weights ≥ 0), or read as its absolute value (the usual approximation; say so in a
        result).
    labels : {"binary", "soft"}
        ``binary``: every label is 0 (background) or 1 (signal), anything else refused naming
        the jet; ``soft``: any label in [0, 1] (the loss takes it as it is; metrics count a jet
        as signal where its label is above 0.5).
    """

    def __init__(
        self,
        path,
        n_constituents: int = 80,
        negative_weights: str = "refuse",
        labels: str = "binary",
    ):
        self.path, self.n_constituents = Path(path), int(n_constituents)
        if self.n_constituents < 1:
            raise ValueError(f"n_constituents must be >= 1; got {n_constituents}")
        check_choice("negative_weights", negative_weights)
        check_choice("labels", labels)
        self.negative_weights, self.labels = negative_weights, labels
        self.h5 = open_h5(self.path)
        if "fjet_clus_pt" in self.h5:
            self.layout = "atlas"
            self._check_atlas()
        elif "table" in self.h5 and "block0_items" in self.h5["table"]:
            self.layout = "landscape"
            self._index_landscape()
        else:
            raise KeyError(
                f"{self.path}: neither the ATLAS layout (no 'fjet_clus_pt') nor the Top "
                f"Landscape layout (no 'table/block0_items'); keys: {sorted(self.h5)}"
            )

    def __len__(self) -> int:
        return self._len

    def close(self) -> None:
        self.h5.close()

    # -- layout checks -----------------------------------------------------------------------
    def _require(self, key):
        if key not in self.h5:
            raise KeyError(f"{self.path}: missing dataset {key!r} (keys: {sorted(self.h5)})")
        return self.h5[key]

    def _check_atlas(self):
        shape = self._require("fjet_clus_pt").shape
        if len(shape) != 2:
            raise ValueError(
                f"{self.path}: 'fjet_clus_pt' must be (jets, constituents); got {shape}"
            )
        for key in CONSTITUENT_KEYS:
            if self._require(key).shape != shape:
                raise ValueError(
                    f"{self.path}: {key!r} has shape {self.h5[key].shape}, expected {shape}"
                )
        self.weight_key = next((k for k in ("weights", "training_weights") if k in self.h5), None)
        if self.weight_key is None:
            raise KeyError(f"{self.path}: missing dataset 'weights' (or 'training_weights')")
        for key in (*JET_KEYS, "labels", self.weight_key):
            if self._require(key).shape != shape[:1]:
                raise ValueError(
                    f"{self.path}: {key!r} has shape {self.h5[key].shape}, expected ({shape[0]},)"
                )
        self._len = shape[0]

    def _index_landscape(self):
        table = self.h5["table"]
        self.columns = {}  # column name → (block dataset, column index)
        for name in table:
            if name.endswith("_items"):
                values = table[name.replace("_items", "_values")]
                for i, item in enumerate(table[name][:]):
                    self.columns[item.decode()] = (values, i)
        for column in ("is_signal_new", "E_0", "PX_0", "PY_0", "PZ_0"):
            if column not in self.columns:
                raise KeyError(f"{self.path}: Top Landscape column {column!r} is missing")
        stored = sum(1 for c in self.columns if c.startswith("E_") and c[2:].isdigit())
        self.n_stored = min(stored, self.n_constituents)
        missing = [
            f"{c}_{i}"
            for i in range(self.n_stored)
            for c in ("E", "PX", "PY", "PZ")
            if f"{c}_{i}" not in self.columns
        ]
        if missing:
            raise KeyError(
                f"{self.path}: Top Landscape column(s) {missing[:8]}"
                f"{' …' if len(missing) > 8 else ''} missing ({len(missing)} of the "
                f"{4 * self.n_stored} that {self.n_stored} constituents need); rewrite the file "
                f"with every E_i, PX_i, PY_i, PZ_i, or set data.n_constituents below the first gap"
            )
        self._len = self.columns["is_signal_new"][0].shape[0]

    # -- reading -----------------------------------------------------------------------------
    def read(self, start: int, stop: int, keep: np.ndarray | None = None) -> dict:
        """Rows [start, stop) (those where ``keep``, if given) → ``p4`` (n, N, 4) float32 GeV,
        ``mask`` (n, N), ``target``, ``weight``, ``jet_p4`` (n, 4), ``jet_pt`` (n,) and
        ``index`` (n,), each jet's row in the file.

        Jets without constituents are dropped (their count is logged); non-finite values and
        negative energies raise ``ValueError`` naming the file, the entry and the jet."""
        if self.layout == "atlas":
            out = self._read_atlas(start, stop)
        else:
            out = self._read_landscape(start, stop)
        out["index"] = np.arange(start, stop)  # the jet's row in the file
        if keep is not None:
            out = {k: v[keep] for k, v in out.items()}
        return self._validate(out, out["index"])

    def _read_atlas(self, start, stop):
        n = self.n_constituents
        raw = {k: self.h5[k][start:stop, :n] for k in CONSTITUENT_KEYS}
        raw |= {k: self.h5[k][start:stop] for k in (*JET_KEYS, "labels")}
        raw["weights"] = self.h5[self.weight_key][start:stop]
        pt = raw[CONSTITUENT_KEYS[0]]
        if (pt < 0).any():  # pT = 0 marks padding: a negative one would silently become padding
            jet, slot = (int(i) for i in np.argwhere(pt < 0)[0])
            raise ValueError(
                f"{self.path}: {CONSTITUENT_KEYS[0]} of jet {start + jet}, constituent {slot}, is "
                f"{pt[jet, slot]:g} MeV < 0 (pT = 0 marks padding); fix or drop such jets"
            )
        return atlas_batch(raw, n)

    def _read_landscape(self, start, stop):
        comps = []
        for c in ("E", "PX", "PY", "PZ"):
            block, _first = self.columns[f"{c}_0"]
            idx = [self.columns[f"{c}_{i}"][1] for i in range(self.n_stored)]
            rows = block[start:stop]  # (n, columns of this block): one contiguous read
            comps.append(rows[:, idx].astype(np.float32))
        p4 = _pad(np.stack(comps, axis=-1), self.n_constituents)  # (n, N, 4)
        mask = p4[..., 0] > 0
        jet_p4 = (p4 * mask[..., None]).sum(1)
        labels_block, col = self.columns["is_signal_new"]
        return {
            "p4": p4,
            "mask": mask,
            "jet_p4": jet_p4,
            "jet_pt": np.hypot(jet_p4[:, 1], jet_p4[:, 2]),
            "target": labels_block[start:stop, col].astype(np.float32),
            "weight": np.ones(stop - start, dtype=np.float32),
        }

    def _validate(self, out, rows):
        for key, value in out.items():
            if value.dtype.kind == "f" and not np.isfinite(value).all():
                row = rows[int(np.argwhere(~np.isfinite(value))[0][0])]
                raise ValueError(f"{self.path}: non-finite value in {key!r} of jet {row}")
        labels = out["target"]
        binary = self.labels == "binary"
        bad = (labels != 0) & (labels != 1) if binary else ~((labels >= 0) & (labels <= 1))
        if bad.any():
            i = int(np.argwhere(bad)[0][0])
            soft = binary and bool(((labels >= 0) & (labels <= 1)).all())
            raise ValueError(
                f"{self.path}: label {labels[i]:g} of jet {rows[i]} is "
                + ("not 0 (background) or 1 (signal)" if binary else "outside [0, 1]")
                + f"; {int(bad.sum())} such jets in rows {rows[0]}–{rows[-1]}"
                + ("; soft labels in [0, 1] are read with data.labels=soft" if soft else "")
            )
        weights = out["weight"]
        if (weights < 0).any():
            if self.negative_weights == "abs":
                out["weight"] = np.abs(weights)
            else:
                i = int(np.argwhere(weights < 0)[0][0])
                raise ValueError(
                    f"{self.path}: weight {weights[i]:g} of jet {rows[i]} is negative "
                    f"({int((weights < 0).sum())} such jets in rows {rows[0]}–{rows[-1]}); "
                    f"seal's loss and ROC curves need weights ≥ 0 — set "
                    f"data.negative_weights=abs to train and evaluate on |weight|, or drop them"
                )
        negative = (out["p4"][..., 0] < 0) & out["mask"]
        if negative.any():
            row = rows[int(np.argwhere(negative)[0][0])]
            raise ValueError(f"{self.path}: negative constituent energy in jet {row}")
        empty = ~out["mask"].any(1)
        if empty.any():
            log.warning(
                "%s: dropped %d jets without constituents among rows %d–%d",
                self.path,
                int(empty.sum()),
                rows[0],
                rows[-1],
            )
            out = {k: v[~empty] for k, v in out.items()}
        return out

    def jet_pt(self, chunk_rows: int = 65536) -> np.ndarray:
        """Jet pT in GeV for every row (read in chunks)."""
        if self.layout == "atlas":
            return np.concatenate(
                [
                    self.h5["fjet_pt"][a : a + chunk_rows] / MEV_PER_GEV
                    for a in range(0, len(self), chunk_rows)
                ]
                or [np.zeros(0)]
            )
        return np.concatenate(
            [
                self._read_landscape(a, min(a + chunk_rows, len(self)))["jet_pt"]
                for a in range(0, len(self), chunk_rows)
            ]
            or [np.zeros(0)]
        )


# the data options with a fixed set of values, each value's meaning (said when one is wrong)
CHOICES = {
    "padding": {
        "batch": "each batch padded to its longest jet",
        "fixed": "always data.n_constituents slots",
    },
    "negative_weights": {
        "refuse": "a jet with a negative weight stops the run, naming it",
        "abs": "its |weight| is used",
    },
    "labels": {"binary": "0 or 1", "soft": "any value in [0, 1]"},
}


def check_choice(key: str, value) -> None:
    """``data.<key>`` must be one of :data:`CHOICES`' values for it."""
    meanings = CHOICES[key]
    if value not in meanings:
        said = "; ".join(f"{name}: {meaning}" for name, meaning in meanings.items())
        raise ValueError(f"data.{key} must be one of {list(meanings)} ({said}); got {value!r}")


def atlas_batch(raw: dict, n_constituents: int) -> dict:
    """ATLAS-layout arrays (``fjet_clus_*`` (n, ≥ C), ``fjet_*``, ``labels``, ``weights``; MeV)
    → the batch arrays ``p4`` (n, C, 4) GeV float32, ``mask``, ``jet_p4``, ``jet_pt``,
    ``target``, ``weight`` (C = ``n_constituents``, zero-padded if fewer are given)."""
    n = n_constituents
    pt, eta, phi, energy = (np.asarray(raw[k])[:, :n].astype(np.float32) for k in CONSTITUENT_KEYS)
    pt, energy = pt / MEV_PER_GEV, energy / MEV_PER_GEV
    p4 = np.stack((energy, pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)), axis=-1)
    mask = pt > 0
    j_pt, j_eta, j_phi, j_m = (np.asarray(raw[k]).astype(np.float64) for k in JET_KEYS)
    j_pt, j_m = j_pt / MEV_PER_GEV, j_m / MEV_PER_GEV
    pz = j_pt * np.sinh(j_eta)
    jet_p4 = np.stack(
        (np.sqrt(j_m**2 + j_pt**2 + pz**2), j_pt * np.cos(j_phi), j_pt * np.sin(j_phi), pz),
        axis=-1,
    )
    return {
        "p4": _pad(p4, n),
        "mask": _pad(mask, n),
        "jet_p4": jet_p4.astype(np.float32),
        "jet_pt": j_pt.astype(np.float32),
        "target": np.asarray(raw["labels"]).astype(np.float32),
        "weight": np.asarray(raw["weights"]).astype(np.float32),
    }


def _pad(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad axis 1 to length n."""
    if x.shape[1] >= n:
        return x
    pad = [(0, 0), (0, n - x.shape[1])] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, pad)
