"""A simple calorimeter emulation: the realistic source of *approximate* Lorentz symmetry.

Visible particles are summed into η–φ cells (Δη = Δφ ≈ 0.1 within |η| < 2.5), each cell's
energy is smeared with a resolution σ/E = a/√E ⊕ b (a = 50 %, b = 3 %, E in GeV), cells below a
threshold (0.5 GeV) are dropped, and every surviving cell becomes a massless four-vector at the
cell centre. Particles outside the acceptance are lost. All three steps break boost invariance
slightly, as a real detector does.
"""

import numpy as np

CELL = 0.1
ETA_MAX = 2.5
N_PHI = 63  # 2π / 63 ≈ 0.0997
STOCHASTIC, CONSTANT, THRESHOLD = 0.5, 0.03, 0.5


def _cells(p: np.ndarray, event: np.ndarray, n_events: int, rng: np.random.Generator) -> tuple:
    """Particles (n, 4) px py pz E of ``n_events`` events (``event``: each particle's event) →
    cells (m, 4) and each cell's event, ordered by event then cell. The smearing draws one
    normal number per hit cell in that order, as event-by-event processing would."""
    pt = np.hypot(p[:, 0], p[:, 1])
    eta = np.arcsinh(p[:, 2] / np.maximum(pt, 1e-12))
    phi = np.arctan2(p[:, 1], p[:, 0])
    inside = np.abs(eta) < ETA_MAX
    n_eta = round(2 * ETA_MAX / CELL)
    i_eta = np.minimum(((eta[inside] + ETA_MAX) / CELL).astype(int), n_eta - 1)
    i_phi = np.minimum(((phi[inside] + np.pi) / (2 * np.pi / N_PHI)).astype(int), N_PHI - 1)
    per_event = n_eta * N_PHI
    cell = event[inside] * per_event + i_eta * N_PHI + i_phi
    energy = np.bincount(cell, weights=p[inside, 3], minlength=n_events * per_event)
    hit = np.flatnonzero(energy > 0)
    e = energy[hit]
    sigma = np.sqrt(STOCHASTIC**2 / e + CONSTANT**2)
    e = e * (1.0 + sigma * rng.standard_normal(len(e)))
    keep = e > THRESHOLD
    hit, e = hit[keep], e[keep]
    local = hit % per_event
    eta_c = -ETA_MAX + (local // N_PHI + 0.5) * CELL
    phi_c = -np.pi + (local % N_PHI + 0.5) * 2 * np.pi / N_PHI
    pt_c = e / np.cosh(eta_c)
    cells = np.stack([pt_c * np.cos(phi_c), pt_c * np.sin(phi_c), pt_c * np.sinh(eta_c), e], -1)
    return cells, hit // per_event


def emulate_event(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 4) px py pz E → (m, 4) cell four-vectors px py pz E."""
    return _cells(p, np.zeros(len(p), dtype=int), 1, rng)[0]


def emulate(particles, rng: np.random.Generator):
    """Awkward (events × particles{px, py, pz, E}) → the same layout of calorimeter cells, all
    events at once."""
    import awkward as ak

    fields = ("px", "py", "pz", "E")  # (works for lists of records and records of lists)
    counts = ak.to_numpy(ak.num(particles["px"]))
    p = np.stack([ak.to_numpy(ak.flatten(particles[f])) for f in fields], axis=-1)
    p = p.reshape(-1, 4).astype(np.float64)
    cells, event = _cells(p, np.repeat(np.arange(len(counts)), counts), len(counts), rng)
    per_event = np.bincount(event, minlength=len(counts))
    return ak.unflatten(ak.zip({f: cells[:, i] for i, f in enumerate(fields)}), per_event)
