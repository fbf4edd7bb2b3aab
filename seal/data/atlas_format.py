"""Writing the ATLAS top-tagging open-data layout (CERN open data record 15013).

Per jet ``i``: ``fjet_clus_pt/eta/phi/E[i, :]`` (constituents, pT-ordered, zero-padded; pT and
E in MeV), ``fjet_pt/eta/phi/m[i]`` (MeV), ``labels[i]`` (1 = top) and ``weights[i]`` (training
weights that flatten the background pT spectrum to the signal's), plus a ``metadata`` group.
"""

import json
import os
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

CONSTITUENT_KEYS = ("fjet_clus_pt", "fjet_clus_eta", "fjet_clus_phi", "fjet_clus_E")
JET_KEYS = ("fjet_pt", "fjet_eta", "fjet_phi", "fjet_m")
MEV_KEYS = ("fjet_clus_pt", "fjet_clus_E", "fjet_pt", "fjet_m")
MEV_PER_GEV = 1000.0


def flatten_weights(pt: np.ndarray, labels: np.ndarray, bins: int = 20) -> np.ndarray:
    """Signal weight 1; background weight ∝ n_sig(pT bin) / n_bkg(pT bin), mean 1 on background."""
    weights = np.ones(len(pt))
    background = labels == 0
    if background.any() and (~background).any():
        edges = np.quantile(pt, np.linspace(0, 1, bins + 1))
        edges[-1] = np.nextafter(edges[-1], np.inf)
        n_sig = np.histogram(pt[~background], edges)[0].astype(float)
        n_bkg = np.histogram(pt[background], edges)[0].astype(float)
        ratio = np.divide(n_sig, n_bkg, out=np.zeros_like(n_sig), where=n_bkg > 0)
        w = ratio[np.clip(np.digitize(pt[background], edges) - 1, 0, bins - 1)]
        weights[background] = w / w.mean() if w.mean() > 0 else 1.0
    return weights


def write_atlas(output: Path, chunk_files: list, cfg) -> None:
    """Merge generator chunks (GeV) into one shuffled ATLAS-layout file (MeV), atomically."""
    parts = [dict(np.load(f)) for f in chunk_files]
    data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.random.default_rng(cfg.seed).permutation(len(data["labels"]))
    data = {k: v[order] for k, v in data.items()}
    data["weights"] = flatten_weights(data["fjet_pt"], data["labels"])
    for key in MEV_KEYS:
        data[key] = data[key] * MEV_PER_GEV
    tmp = Path(output).with_suffix(".tmp.h5")
    with h5py.File(tmp, "w") as f:
        for key, value in data.items():
            dtype = np.int8 if key == "labels" else np.float32
            chunks = (min(1024, len(value)), *value.shape[1:]) if len(value) else None
            f.create_dataset(key, data=value.astype(dtype), chunks=chunks)
        meta = f.create_group("metadata")
        meta.attrs["generator"] = "Pythia 8 (pythia8mc) + FastJet, written by seal"
        meta.attrs["settings"] = json.dumps(asdict(cfg))
        meta.attrs["seed"] = cfg.seed
        meta.attrs["units"] = "MeV for fjet_clus_pt, fjet_clus_E, fjet_pt, fjet_m"
        meta.attrs["seal_version"] = _version()
    os.replace(tmp, output)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seal") + " / pythia8mc " + version("pythia8mc")
    except PackageNotFoundError:
        return "unknown"
