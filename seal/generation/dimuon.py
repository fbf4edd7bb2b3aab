"""Dimuon study of Nabat et al. (Phys. Rev. D 111, 072002): Z → μμ against γ* → μμ.

Both come from Pythia 8's weak single-boson process ``f f̄ → γ*/Z`` with only the Z
(``WeakZ0:gmZmode = 2``, signal) or only the photon (``= 1``, background) and the boson forced
to μ⁺μ⁻, in the same dimuon-mass window. Initial-state showers give the pair its pT; hadronisation
and MPI are off (they do not touch the muons). The symmetry breaking is a lab-frame resolution:
each muon's transverse momentum is shifted by a Gaussian of width ``smear`` × the event's
leading-muon pT, keeping its direction, its pz and its mass (:func:`smear_transverse`). The
background is reweighted to the signal's (smeared) leading-muon pT spectrum.

File layout (HDF5, float64): ``p4 (N, 2, 4)`` smeared muons (E, px, py, pz) in GeV, leading first;
``p4_true`` the same before smearing; ``labels (N,)`` 1 = Z; ``weights (N,)``; ``metadata``.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from seal.generation.atlas import flatten_weights
from seal.generation.chunks import generate_chunked, load_chunk
from seal.generation.pythia import QUIET, chunk_seed, start_pythia

MUON_MASS = 0.1056583755  # GeV
GMZ_MODE = {"z": 2, "gamma": 1}


@dataclass
class DimuonConfig:
    """What to generate (GeV).

    Parameters
    ----------
    n_signal, n_background : int
        Accepted events of each class.
    mass_min, mass_max : float
        The γ*/Z mass window (Pythia's m̂).
    muon_pt_min, muon_eta_max : float
        Acceptance of both muons.
    smear : float
        Width of the transverse smearing as a fraction of the leading-muon pT.
    chunk_events : int
        Events per chunk (unit of work, resume and progress).
    seed : int
        Base seed; chunk ``i`` is seeded from (``seed``, i).
    sqrt_s : float
        Collision energy.
    """

    n_signal: int = 75_000
    n_background: int = 75_000
    mass_min: float = 60.0
    mass_max: float = 120.0
    muon_pt_min: float = 20.0
    muon_eta_max: float = 2.4
    smear: float = 0.1
    chunk_events: int = 5_000
    seed: int = 0
    sqrt_s: float = 13000.0

    def __post_init__(self):
        if not 0 < self.mass_min < self.mass_max:
            raise ValueError(f"need 0 < mass_min < mass_max; got {self.mass_min}, {self.mass_max}")
        if self.smear < 0 or self.chunk_events < 1 or min(self.n_signal, self.n_background) < 0:
            raise ValueError(f"smear ≥ 0, chunk_events ≥ 1 and counts ≥ 0 required; got {self}")

    def chunks(self) -> list[tuple[str, int, int]]:
        """(process, events, chunk index) for every chunk."""
        out = []
        for process, total in (("z", self.n_signal), ("gamma", self.n_background)):
            for start in range(0, total, self.chunk_events):
                out.append((process, min(self.chunk_events, total - start), len(out)))
        return out


def pythia_settings(cfg: DimuonConfig, process: str, seed: int) -> list[str]:
    return [
        f"Beams:eCM = {cfg.sqrt_s}",
        "WeakSingleBoson:ffbar2gmZ = on",
        f"WeakZ0:gmZmode = {GMZ_MODE[process]}",
        "23:onMode = off",
        "23:onIfAny = 13",
        f"PhaseSpace:mHatMin = {cfg.mass_min}",
        f"PhaseSpace:mHatMax = {cfg.mass_max}",
        "PartonLevel:MPI = off",
        "HadronLevel:all = off",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *QUIET,
    ]


def _muon_pairs(batch) -> np.ndarray:
    """(events, 2, 4) (E, px, py, pz) of the hardest μ⁻ and μ⁺ per event, leading first;
    events without both are NaN."""
    import awkward as ak

    prt = batch.prt
    out = np.full((len(prt), 2, 4), np.nan)
    for slot, pid in enumerate((13, -13)):
        mu = prt[(prt.status > 0) & (prt.id == pid)]
        p = mu.p
        hardest = ak.argmax(np.hypot(p.px, p.py), axis=1, keepdims=True)
        best = ak.firsts(p[hardest])
        present = ~ak.to_numpy(ak.is_none(best))
        for k, name in enumerate(("e", "px", "py", "pz")):
            out[present, slot, k] = ak.to_numpy(best[name][present])
    pt = np.hypot(out[..., 1], out[..., 2])  # (events, 2)
    swap = pt[:, 1] > pt[:, 0]
    out[swap] = out[swap][:, ::-1]
    return out


def _accepted(pairs: np.ndarray, cfg: DimuonConfig) -> np.ndarray:
    pt = np.hypot(pairs[..., 1], pairs[..., 2])
    eta = np.arcsinh(pairs[..., 3] / np.maximum(pt, 1e-12))
    ok = (pt > cfg.muon_pt_min) & (np.abs(eta) < cfg.muon_eta_max)
    return np.isfinite(pairs).all((1, 2)) & ok.all(1)


def generate_chunk(cfg: DimuonConfig, process: str, n_events: int, seed: int) -> np.ndarray:
    """Run Pythia until ``n_events`` events pass the acceptance: (n, 2, 4) true muons."""
    pythia = start_pythia(pythia_settings(cfg, process, seed), f"for {process}")
    kept, n = [], 0
    while n < n_events:
        pairs = _muon_pairs(pythia.nextBatch(200))
        pairs = pairs[_accepted(pairs, cfg)]
        kept.append(pairs)
        n += len(pairs)
    return np.concatenate(kept)[:n_events]


def smear_transverse(p4: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Shift each muon's pT by N(0, (fraction · leading pT)²), keeping φ, pz and the mass.

    Parameters
    ----------
    p4 : array, shape (n, k, 4)
        (E, px, py, pz) in GeV, leading muon first.
    fraction : float
        Width of the shift in units of the event's leading-muon pT.

    Returns
    -------
    array, shape (n, k, 4)
        Smeared momenta; pT is floored at 5 % of its true value (a Gaussian tail would otherwise
        flip a soft muon through zero); E = √(m² + pT² + pz²) with the true mass m.
    """
    pt = np.hypot(p4[..., 1], p4[..., 2])  # (n, k)
    mass2 = np.maximum(p4[..., 0] ** 2 - pt**2 - p4[..., 3] ** 2, 0.0)
    sigma = fraction * pt[:, :1]  # (n, 1): the leading muon sets the scale
    new_pt = np.maximum(pt + sigma * rng.standard_normal(pt.shape), 0.05 * pt)
    scale = new_pt / np.maximum(pt, 1e-12)
    out = p4.copy()
    out[..., 1] *= scale
    out[..., 2] *= scale
    out[..., 0] = np.sqrt(mass2 + new_pt**2 + p4[..., 3] ** 2)
    return out


def dimuon_chunk(payload) -> dict:
    cfg, (process, n_events, index) = payload
    muons = generate_chunk(cfg, process, n_events, seed=chunk_seed(cfg.seed, index))
    return {"p4_true": muons, "labels": np.full(len(muons), int(process == "z"), np.int8)}


def leading_pt(p4: np.ndarray) -> np.ndarray:
    """(n, k, 4) → (n,) largest pT per event."""
    return np.hypot(p4[..., 1], p4[..., 2]).max(1)


def generate_dimuon(
    cfg: DimuonConfig, output: Path, processes: int | None = None, **jobs
) -> dict | None:
    """Generate, smear, reweight and write ``output``; resumable (chunks in OUTPUT.chunks/).
    ``jobs``: submitit options of :func:`~seal.generation.chunks.run_chunks`."""

    def write(output: Path, paths: list[Path], timing: dict) -> None:
        parts = [load_chunk(path) for path in paths]
        data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        rng = np.random.default_rng([cfg.seed, 1])
        order = rng.permutation(len(data["labels"]))
        data = {k: v[order] for k, v in data.items()}
        data["p4"] = smear_transverse(data["p4_true"], cfg.smear, rng)
        data["weights"] = flatten_weights(leading_pt(data["p4"]), data["labels"], bins=40)
        tmp = output.with_suffix(".tmp.h5")
        with h5py.File(tmp, "w") as f:
            for key, value in data.items():
                dtype = np.int8 if key == "labels" else np.float64
                f.create_dataset(key, data=value.astype(dtype))
            meta = f.create_group("metadata")
            meta.attrs["generator"] = (
                "Pythia 8 (pythia8mc) f fbar -> gamma*/Z -> mu mu, written by seal"
            )
            meta.attrs["settings"] = json.dumps(asdict(cfg))
            meta.attrs["timing"] = json.dumps(timing)
        os.replace(tmp, output)

    return generate_chunked(cfg, output, dimuon_chunk, "events", write, processes, **jobs)
