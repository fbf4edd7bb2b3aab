"""Detector systematic variations of jets in the ATLAS layout, as pure array functions.

The variations act on the stored constituents of the nominal jets — the nominal events are
reused, nothing is regenerated — as a calorimeter's cluster-level uncertainties would:

* ``energy_scale_up`` / ``energy_scale_down``: every constituent's E and pT times 1 ± ``scale``;
* ``energy_resolution``: every constituent's E and pT times 1 + ``resolution`` · N(0, 1) (a factor
  ≤ 0 removes the constituent);
* ``position``: every constituent's η and φ shifted by N(0, ``position``) each, its energy and
  mass kept;
* ``efficiency``: every constituent removed with probability ``efficiency`` (a track- or
  cluster-efficiency loss).

A jet never loses its last constituent (a removal or a factor ≤ 0 that would empty it keeps its
leading constituent as it was): the nominal jet was seen, and an empty jet has no output.

Each jet's four-momentum changes by the sum of its stored constituents' changes (exact when the
file stores every constituent; constituents beyond ``fjet_clus_*``'s width are unchanged), and
the constituents are put back in pT order. The cell threshold of the emulation is not applied
again. Random numbers come from one stream per variation (:func:`variation_rng`), drawn row by
row, so the result does not depend on the block size it is computed in.
:mod:`seal.generation.variations` writes them as files; :mod:`seal.data.systematics` also makes
them in memory for an evaluation.
"""

import math
from dataclasses import dataclass

import numpy as np

from seal.data.atlas_layout import CONSTITUENT_KEYS, JET_KEYS

VARIATIONS = (
    "energy_scale_up",
    "energy_scale_down",
    "energy_resolution",
    "position",
    "efficiency",
)
NOMINAL = "nominal"
# up/down pairs: the uncertainty is the larger of the two shifts (ATLAS's recipe)
PAIRS = {"energy_scale": ("energy_scale_up", "energy_scale_down")}
GROUP = "detector"


@dataclass
class VariationSettings:
    """The size of each detector variation (relative for energies, absolute for η and φ).

    Parameters
    ----------
    scale : float
        Energy scale shift (0.01: ±1 %).
    resolution : float
        Extra relative energy smearing σ (0.05: 5 % per constituent).
    position : float
        σ of the η and φ shifts (0.01: a tenth of a 0.1 × 0.1 cell).
    efficiency : float
        Fraction of constituents removed (0.02: 2 %).
    seed : int
        Seed of the random variations.
    """

    scale: float = 0.01
    resolution: float = 0.05
    position: float = 0.01
    efficiency: float = 0.02
    seed: int = 0

    def __post_init__(self):
        rules = {
            "scale": (lambda x: 0.0 < x < 1.0, "in (0, 1) (0.01 = ±1 %)"),
            "resolution": (lambda x: 0.0 <= x < 10.0, "in [0, 10) (0.05 = 5 %)"),
            "position": (lambda x: 0.0 <= x < 1.0, "in [0, 1) (η and φ units)"),
            "efficiency": (lambda x: 0.0 <= x < 1.0, "in [0, 1) (a fraction removed)"),
        }
        for name, (ok, rule) in rules.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not ok(value):
                raise ValueError(f"variation setting {name} must be {rule}; got {value!r}")


def _four_vectors(pt, eta, phi, energy) -> np.ndarray:
    """(n, C) each → (n, C, 4) px py pz E."""
    return np.stack((pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), energy), axis=-1)


def vary(arrays: dict, name: str, settings: VariationSettings, rng: np.random.Generator) -> dict:
    """One block of rows (the file's arrays: ``fjet_clus_*`` (n, C) and ``fjet_*`` (n,), MeV)
    → the same keys varied by ``name`` (``nominal``: unchanged copies)."""
    if name == NOMINAL:
        return {k: np.array(arrays[k]) for k in (*CONSTITUENT_KEYS, *JET_KEYS)}
    pt, eta, phi, energy = (np.asarray(arrays[k], dtype=np.float64) for k in CONSTITUENT_KEYS)
    present = pt > 0
    new_pt, new_eta, new_phi, new_e = pt.copy(), eta.copy(), phi.copy(), energy.copy()
    if name in ("energy_scale_up", "energy_scale_down"):
        factor = 1.0 + (settings.scale if name.endswith("up") else -settings.scale)
        new_pt, new_e = pt * factor, energy * factor
    elif name == "energy_resolution":
        factor = 1.0 + settings.resolution * rng.standard_normal(pt.shape)
        factor = np.maximum(factor, 0.0)
        new_pt, new_e = pt * factor, energy * factor
    elif name == "position":
        shift = settings.position * rng.standard_normal((*pt.shape, 2))
        new_eta = eta + shift[..., 0]
        new_phi = np.angle(np.exp(1j * (phi + shift[..., 1])))  # back into (−π, π]
        mass2 = np.maximum(energy**2 - (pt * np.cosh(eta)) ** 2, 0.0)  # kept, as is E
        new_pt = np.sqrt(np.maximum(energy**2 - mass2, 0.0)) / np.cosh(new_eta)
    elif name == "efficiency":
        kept = rng.random(pt.shape) >= settings.efficiency
        new_pt, new_e = pt * kept, energy * kept
    else:
        raise ValueError(f"unknown variation {name!r}; choose from {(NOMINAL, *VARIATIONS)}")
    new_pt = np.where(present, new_pt, 0.0)
    gone = present & (new_pt <= 0)
    emptied = present.any(1) & (gone == present).all(1)
    if emptied.any():  # a jet never loses its last constituent: it keeps its leading one as is
        r = np.flatnonzero(emptied)
        c = np.argmax(np.where(present, pt, -np.inf), axis=1)[r]
        gone[r, c] = False
        new_pt[r, c], new_eta[r, c], new_phi[r, c], new_e[r, c] = (
            pt[r, c],
            eta[r, c],
            phi[r, c],
            energy[r, c],
        )
    new_pt, new_e = np.where(gone, 0.0, new_pt), np.where(present & ~gone, new_e, 0.0)
    new_eta, new_phi = np.where(new_pt > 0, new_eta, 0.0), np.where(new_pt > 0, new_phi, 0.0)

    before = (_four_vectors(pt, eta, phi, energy) * present[..., None]).sum(1)
    after = (_four_vectors(new_pt, new_eta, new_phi, new_e) * (new_pt > 0)[..., None]).sum(1)
    jet = _jet_four_vectors(arrays) + after - before  # (n, 4) px py pz E
    order = np.argsort(-new_pt, axis=1, kind="stable")
    out = {
        key: np.take_along_axis(value, order, axis=1)
        for key, value in zip(CONSTITUENT_KEYS, (new_pt, new_eta, new_phi, new_e))
    }
    out.update(zip(JET_KEYS, _jet_columns(jet)))
    return out


def _jet_four_vectors(arrays) -> np.ndarray:
    j_pt, j_eta, j_phi, j_m = (np.asarray(arrays[k], dtype=np.float64) for k in JET_KEYS)
    pz = j_pt * np.sinh(j_eta)
    energy = np.sqrt(j_m**2 + j_pt**2 + pz**2)
    return np.stack((j_pt * np.cos(j_phi), j_pt * np.sin(j_phi), pz, energy), axis=-1)


def _jet_columns(jet: np.ndarray) -> tuple:
    pt = np.hypot(jet[:, 0], jet[:, 1])
    eta = np.arcsinh(jet[:, 2] / np.maximum(pt, 1e-12))
    phi = np.arctan2(jet[:, 1], jet[:, 0])
    m = np.sqrt(np.maximum(jet[:, 3] ** 2 - (jet[:, :3] ** 2).sum(-1), 0.0))
    return pt, eta, phi, m


def variation_rng(name: str, settings: VariationSettings) -> np.random.Generator:
    """The random stream of one variation (seeded by ``settings.seed`` and the variation)."""
    return np.random.default_rng([settings.seed, (NOMINAL, *VARIATIONS).index(name)])
