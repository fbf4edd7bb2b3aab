"""Jet generation: Pythia 8 events → FastJet anti-kT jets → ATLAS top-tagging HDF5 layout.

Signal is hadronic tt̄ (both W → quarks) with each jet truth-matched to a top (the top and its
three decay quarks within ΔR < R of the jet axis); background is QCD dijets (up to the two
leading jets of each event). The jet-pT window is cut into slices, each generated with its own
pT̂ range, so a wide window fills evenly. Work is split into chunks: one Pythia per chunk with
a seed derived from (``seed``, chunk index), so the output does not depend on how many processes
ran, and finished chunks are kept on disk, so an interrupted run resumes where it stopped.
"""

import json
import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from seal.data import detector
from seal.data.atlas_format import write_atlas
from seal.data.chunks import run_chunks

NEUTRINOS = (12, 14, 16)
QUIET = [
    "Next:numberCount = 0", "Next:numberShowEvent = 0", "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0", "Init:showChangedSettings = off", "Init:showProcesses = off",
    "Init:showChangedParticleData = off", "Print:quiet = on",
]  # fmt: skip


@dataclass
class GeneratorConfig:
    """What to generate (all momenta in GeV).

    n_signal, n_background : jets of each class.
    pt_min, pt_max, eta_max : jet acceptance; ``n_slices`` pT slices fill it evenly.
    radius : anti-kT R; top jets need the top and its decay quarks within ΔR < R.
    mpi, detector : multiparton interactions; the calorimeter emulation of
    :mod:`seal.data.detector`.
    n_constituents : constituents stored per jet (pT-ordered, zero-padded).
    chunk_jets : jets per chunk (the unit of work, of resume and of the progress bar).
    seed : base seed; ``sqrt_s`` : collision energy.
    """

    n_signal: int = 2000
    n_background: int = 2000
    pt_min: float = 400.0
    pt_max: float = 1000.0
    eta_max: float = 2.0
    radius: float = 1.0
    n_slices: int = 6
    mpi: bool = True
    detector: bool = False
    n_constituents: int = 200
    chunk_jets: int = 200
    seed: int = 0
    sqrt_s: float = 13000.0

    def __post_init__(self):
        if not 0 < self.pt_min < self.pt_max:
            raise ValueError(f"need 0 < pt_min < pt_max; got {self.pt_min}, {self.pt_max}")
        if not self.eta_max > 0:
            raise ValueError(f"eta_max (the |η| cut) must be > 0; got {self.eta_max}")
        if not self.radius > 0:
            raise ValueError(f"radius (anti-kT R) must be > 0; got {self.radius}")
        for name in ("n_signal", "n_background", "n_slices", "n_constituents", "chunk_jets"):
            if getattr(self, name) < (0 if name.startswith("n_s") or name == "n_background" else 1):
                raise ValueError(f"{name} must be positive; got {getattr(self, name)}")

    def slice_edges(self, index: int) -> tuple[float, float]:
        width = (self.pt_max - self.pt_min) / self.n_slices
        return self.pt_min + index * width, self.pt_min + (index + 1) * width

    def chunks(self) -> list[tuple[str, int, int, int]]:
        """(process, slice, jets, chunk index) for every chunk, slices round-robin."""
        out = []
        for process, total in (("ttbar", self.n_signal), ("qcd", self.n_background)):
            per_slice = math.ceil(total / self.n_slices)
            n_chunks = math.ceil(per_slice / self.chunk_jets)
            for s in range(self.n_slices):
                left = min(per_slice, total - s * per_slice)
                for c in range(n_chunks):
                    jets = min(self.chunk_jets, left - c * self.chunk_jets)
                    if jets > 0:
                        out.append((process, s, jets, len(out)))
        return out


def pythia_settings(cfg: GeneratorConfig, process: str, slice_index: int, seed: int) -> list[str]:
    """Pythia 8 settings for one chunk."""
    lo, hi = cfg.slice_edges(slice_index)
    common = [f"Beams:eCM = {cfg.sqrt_s}", f"PartonLevel:MPI = {'on' if cfg.mpi else 'off'}",
              "Random:setSeed = on", f"Random:seed = {seed}", *QUIET]  # fmt: skip
    if process == "ttbar":  # pT̂ = top pT; the jet carries most of it
        hard = ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", "24:onMode = off",
                "24:onIfAny = 1 2 3 4 5", f"PhaseSpace:pTHatMin = {0.85 * lo}",
                f"PhaseSpace:pTHatMax = {1.2 * hi}"]  # fmt: skip
    else:
        hard = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {0.8 * lo}",
                f"PhaseSpace:pTHatMax = {1.2 * hi}"]  # fmt: skip
    return common + hard


def _last_copy(index, ids, d1):
    """Follow Pythia's carbon copies (a daughter with the same id) to the last one."""
    while d1[index] > 0 and ids[d1[index]] == ids[index]:
        index = d1[index]
    return index


def top_partons(ids, d1, d2, p) -> list[np.ndarray]:
    """For every top of one event: (4, 4) momenta (px, py, pz, E) of t, b, q, q̄ from its W."""
    out = []
    for top in np.flatnonzero(np.abs(ids) == 6):
        if ids[d1[top]] == ids[top]:  # not the last copy
            continue
        daughters = range(d1[top], d2[top] + 1)
        b = [i for i in daughters if abs(ids[i]) == 5]
        w = [i for i in daughters if abs(ids[i]) == 24]
        if not b or not w:
            continue
        w_last = _last_copy(w[0], ids, d1)
        quarks = [i for i in range(d1[w_last], d2[w_last] + 1) if 0 < abs(ids[i]) <= 5]
        if len(quarks) == 2:
            out.append(p[[top, b[0], *quarks]])
    return out


def eta_phi(p: np.ndarray):
    """(..., ≥3) (px, py, pz, …) → pseudorapidity and azimuth."""
    pt = np.hypot(p[..., 0], p[..., 1])
    return np.arcsinh(p[..., 2] / np.maximum(pt, 1e-12)), np.arctan2(p[..., 1], p[..., 0])


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _select(jets, constituents, truth, cfg, lo, hi, process):
    """Jets of one event inside [lo, hi) × |η| < eta_max (and top-matched for tt̄)."""
    kept = []
    for jet, cons in zip(jets, constituents):
        pt = math.hypot(jet[0], jet[1])
        eta, phi = eta_phi(jet)
        if not (lo <= pt < hi and abs(eta) < cfg.eta_max):
            continue
        if process == "ttbar":
            matched = any(
                (_delta_r(eta, phi, *eta_phi(partons)) < cfg.radius).all() for partons in truth
            )
            if not matched:
                continue
        kept.append((jet, cons))
    return kept


def _visible(batch):
    """Final-state particles that a detector sees (no neutrinos), awkward (events × particles)."""
    import awkward as ak

    prt = batch.prt
    keep = prt.status > 0
    for neutrino in NEUTRINOS:
        keep = keep & (abs(prt.id) != neutrino)
    p = prt[keep].p
    return ak.zip({"px": p.px, "py": p.py, "pz": p.pz, "E": p.e})


def generate_chunk(cfg: GeneratorConfig, process: str, slice_index: int, n_jets: int, seed: int):
    """Run Pythia until ``n_jets`` jets are accepted; returns jets as numpy arrays.

    Returns ``{"jet": (n, 4) px py pz E, "constituents": list of (k, 4), "events": int}``.
    """
    import awkward as ak
    import fastjet
    import pythia8mc

    pythia = pythia8mc.Pythia("", False)
    for line in pythia_settings(cfg, process, slice_index, seed):
        pythia.readString(line)
    if not pythia.init():
        settings = "; ".join(pythia_settings(cfg, process, slice_index, seed)[:5])
        raise RuntimeError(
            f"Pythia failed to initialise for {process}, slice {slice_index}: {settings}"
        )
    lo, hi = cfg.slice_edges(slice_index)
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, cfg.radius)
    jets_out, cons_out, events = [], [], 0
    while len(jets_out) < n_jets:
        batch = pythia.nextBatch(25)
        events += len(batch)
        particles = _visible(batch)
        if cfg.detector:
            particles = detector.emulate(particles, np.random.default_rng([seed, events]))
        sequence = fastjet.ClusterSequence(particles, definition)
        jets = sequence.inclusive_jets(0.5 * lo)  # (events × jets)
        constituents = sequence.constituents(0.5 * lo)  # (events × jets × particles)
        for i in range(len(batch)):
            if len(jets[i]) == 0:
                continue
            j = jets[i]
            p_jets = np.stack([ak.to_numpy(j.px), ak.to_numpy(j.py), ak.to_numpy(j.pz),
                               ak.to_numpy(j.E)], axis=-1)  # fmt: skip
            order = np.argsort(-np.hypot(p_jets[:, 0], p_jets[:, 1]))[:2]  # two leading jets
            cons = [np.stack([ak.to_numpy(c.px), ak.to_numpy(c.py), ak.to_numpy(c.pz),
                              ak.to_numpy(c.E)], axis=-1) for c in constituents[i]]  # fmt: skip
            truth = []
            if process == "ttbar":
                prt = batch.prt[i]
                p = np.stack([ak.to_numpy(prt.p.px), ak.to_numpy(prt.p.py),
                              ak.to_numpy(prt.p.pz), ak.to_numpy(prt.p.e)], axis=-1)  # fmt: skip
                truth = top_partons(ak.to_numpy(prt.id), ak.to_numpy(prt.daughter1),
                                    ak.to_numpy(prt.daughter2), p)  # fmt: skip
            for jet, con in _select(p_jets[order], [cons[k] for k in order], truth, cfg, lo, hi,
                                    process):  # fmt: skip
                jets_out.append(jet)
                cons_out.append(con)
    return {"jet": np.array(jets_out[:n_jets]), "constituents": cons_out[:n_jets], "events": events}


def to_atlas_arrays(jets: np.ndarray, constituents: list, n_constituents: int) -> dict:
    """Jets (n, 4) and constituent lists → ATLAS-layout arrays in GeV (pT-ordered, padded)."""
    n = len(jets)
    clus = np.zeros((4, n, n_constituents), dtype=np.float64)  # pt, eta, phi, E
    for i, cons in enumerate(constituents):
        pt = np.hypot(cons[:, 0], cons[:, 1])
        order = np.argsort(-pt)[:n_constituents]
        eta, phi = eta_phi(cons[order])
        k = len(order)
        clus[:, i, :k] = pt[order], eta, phi, cons[order, 3]
    jet_pt = np.hypot(jets[:, 0], jets[:, 1])
    jet_eta, jet_phi = eta_phi(jets)
    jet_m = np.sqrt(np.maximum(jets[:, 3] ** 2 - (jets[:, :3] ** 2).sum(-1), 0.0))
    return {
        "fjet_clus_pt": clus[0], "fjet_clus_eta": clus[1], "fjet_clus_phi": clus[2],
        "fjet_clus_E": clus[3], "fjet_pt": jet_pt, "fjet_eta": jet_eta, "fjet_phi": jet_phi,
        "fjet_m": jet_m,
    }  # fmt: skip


PYTHIA_MAX_SEED = 900_000_000


def chunk_seed(seed: int, index: int) -> int:
    """Pythia seed (1 … 9·10⁸, Pythia's range) of chunk ``index``, distinct across chunks."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) % PYTHIA_MAX_SEED + 1


def _jet_chunk(payload) -> dict:
    cfg, (process, slice_index, n_jets, index) = payload
    out = generate_chunk(cfg, process, slice_index, n_jets, seed=chunk_seed(cfg.seed, index))
    arrays = to_atlas_arrays(out["jet"], out["constituents"], cfg.n_constituents)
    arrays["labels"] = np.full(len(out["jet"]), int(process == "ttbar"))
    return arrays


def generate(cfg: GeneratorConfig, output: Path, processes: int | None = None,
             **jobs) -> dict | None:  # fmt: skip
    """Generate ``cfg`` into ``output`` (ATLAS layout); resumable. Returns the timing summary
    (``made`` jets, ``seconds``, ``per_s``, ``per_s_per_core``). ``jobs``: ``executor``,
    ``chunks_per_job``, ``wait`` of :func:`~seal.data.chunks.run_chunks` (submitit); with
    ``wait=False`` nothing is merged and None is returned."""
    output = Path(output)
    chunk_dir = output.with_name(output.name + ".chunks")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    (chunk_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    paths = [chunk_dir / f"chunk_{c[3]:05d}.npz" for c in cfg.chunks()]
    timing = run_chunks(_jet_chunk, [(path, (cfg, c)) for path, c in zip(paths, cfg.chunks())],
                        f"generating {output.name}", "jets", processes, **jobs)  # fmt: skip
    if timing is None:  # submitted, not waited for
        return None
    write_atlas(output, paths, cfg)
    shutil.rmtree(chunk_dir)  # merged: the chunks were only kept to resume an interrupted run
    with h5py.File(output, "a") as f:
        f["metadata"].attrs["timing"] = json.dumps(timing)
    return timing
