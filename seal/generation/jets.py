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
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from seal.data.atlas_layout import CONSTITUENT_KEYS, EVENT_NUMBER, EVENT_WEIGHTS, JET_KEYS
from seal.generation import detector
from seal.generation.atlas import write_atlas
from seal.generation.chunks import generate_chunked
from seal.generation.pythia import PYTHIA_MAX_SEED, QUIET, chunk_seed, start_pythia

NEUTRINOS = (12, 14, 16)
# alternative models for two-point modelling uncertainties (a separate sample each): a softer
# Lund fragmentation function than Monash's (a, b) = (0.68, 0.98), and a weaker final-state
# shower than Monash's α_s(m_Z) = 0.1365
ALTERNATIVES = {
    "hadronisation": ["StringZ:aLund = 0.50", "StringZ:bLund = 0.75"],
    "shower": ["TimeShower:alphaSvalue = 0.125"],
}
# Pythia's shower uncertainty bands stored with shower_weights=True, in this order after the
# baseline: more ISR (its scale ×½), less ISR (×2), more FSR, less FSR
SHOWER_WEIGHTS = {
    "isr_up": "isr:muRfac=0.5",
    "isr_down": "isr:muRfac=2.0",
    "fsr_up": "fsr:muRfac=0.5",
    "fsr_down": "fsr:muRfac=2.0",
}


@dataclass
class GeneratorConfig:
    """What to generate (all momenta in GeV).

    Parameters
    ----------
    n_signal, n_background : int
        Jets of each class.
    pt_min, pt_max, eta_max : float
        Jet acceptance; ``n_slices`` pT slices fill it evenly.
    radius : float
        Anti-kT R; top jets need the top and its decay quarks within ΔR < R.
    n_slices : int
        pT slices of the window, each generated with its own pT̂ range.
    mpi, detector : bool
        Multiparton interactions; the calorimeter emulation of :mod:`seal.generation.detector`.
    n_constituents : int
        Constituents stored per jet (pT-ordered, zero-padded).
    chunk_jets : int
        Jets per chunk (the unit of work, of resume and of the progress bar).
    seed : int
        Base seed; chunk ``i`` is seeded from (``seed``, i).
    sqrt_s : float
        Collision energy.
    accept : {"slice", "window"}
        ``slice``: a chunk keeps the jets inside its own pT slice (every slice filled equally: a
        flat spectrum); ``window``: every jet inside the whole [pt_min, pt_max) window (2.5–5×
        more jets per Pythia event with many slices; the spectrum becomes the mixture of the
        slices' own jet-pT distributions, smooth but not flat).
    trim, trim_radius, trim_fcut : bool, float, float
        ATLAS-style trimming: recluster each jet's constituents into kT subjets of
        R = ``trim_radius`` and drop those below ``trim_fcut`` × the jet's pT; the jet is then
        the sum of what is kept (selection and truth matching use it).
    pileup_mu : float
        Overlay Poisson(μ) minimum-bias events (Pythia SoftQCD) on every hard event before
        clustering; 0 = none.
    alternative : str
        ``""`` (nominal) or an alternative model of the same events for a two-point modelling
        uncertainty (:data:`ALTERNATIVES`: ``hadronisation``, ``shower``), as ATLAS compares
        Pythia with Herwig and Sherpa: a separate sample, evaluated as a whole.
    shower_weights : bool
        Store Pythia's shower-variation weights of every jet's event (its uncertainty bands:
        ISR and FSR renormalisation scales ×½ and ×2) as ``EventInfo_mcEventWeights`` (n, 5):
        the baseline, then :data:`SHOWER_WEIGHTS`. Pythia's bookkeeping of the bands draws
        random numbers, so a set made with them holds other events than one made without
        (each is its own nominal).
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
    accept: str = "slice"
    trim: bool = False
    trim_radius: float = 0.2
    trim_fcut: float = 0.05
    pileup_mu: float = 0.0
    alternative: str = ""
    shower_weights: bool = False

    def __post_init__(self):
        if not 0 < self.pt_min < self.pt_max:
            raise ValueError(f"need 0 < pt_min < pt_max; got {self.pt_min}, {self.pt_max}")
        if not self.eta_max > 0:
            raise ValueError(f"eta_max (the |η| cut) must be > 0; got {self.eta_max}")
        if not self.radius > 0:
            raise ValueError(f"radius (anti-kT R) must be > 0; got {self.radius}")
        if self.trim and (not 0 < self.trim_radius < self.radius or not 0 <= self.trim_fcut < 1):
            raise ValueError(
                f"trimming needs 0 < trim_radius < radius and 0 <= trim_fcut < 1; "
                f"got {self.trim_radius}, {self.trim_fcut}"
            )
        if self.accept not in ("slice", "window"):
            raise ValueError(f"accept must be 'slice' or 'window'; got {self.accept!r}")
        if self.alternative not in ("", *ALTERNATIVES):
            raise ValueError(
                f"alternative must be one of {['', *ALTERNATIVES]} ('' = nominal); "
                f"got {self.alternative!r}"
            )
        if not self.pileup_mu >= 0:
            raise ValueError(f"pileup_mu must be >= 0; got {self.pileup_mu}")
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
    common = [
        f"Beams:eCM = {cfg.sqrt_s}",
        f"PartonLevel:MPI = {'on' if cfg.mpi else 'off'}",
        "Random:setSeed = on",
        f"Random:seed = {seed}",
        *QUIET,
    ]
    if process == "ttbar":  # pT̂ = top pT; the jet carries most of it
        hard = [
            "Top:gg2ttbar = on",
            "Top:qqbar2ttbar = on",
            "24:onMode = off",
            "24:onIfAny = 1 2 3 4 5",
            f"PhaseSpace:pTHatMin = {0.85 * lo}",
            f"PhaseSpace:pTHatMax = {1.2 * hi}",
        ]
    else:
        hard = [
            "HardQCD:all = on",
            f"PhaseSpace:pTHatMin = {0.8 * lo}",
            f"PhaseSpace:pTHatMax = {1.2 * hi}",
        ]
    hard += ALTERNATIVES.get(cfg.alternative, [])
    if cfg.shower_weights:
        bands = ", ".join(f"{name} {setting}" for name, setting in SHOWER_WEIGHTS.items())
        hard += ["UncertaintyBands:doVariations = on", f"UncertaintyBands:List = {{{bands}}}"]
    return common + hard


def _first_in_range(ids, first, last, wanted, nth: int = 0) -> np.ndarray:
    """Per row, the index of the ``nth`` particle in ``[first, last]`` whose id passes
    ``wanted`` (-1 if none): daughter ranges are short, so this loops over offsets only."""
    found, seen = np.full(len(first), -1), np.zeros(len(first), dtype=int)
    for k in range(int((last - first).max(initial=-1)) + 1):
        index = first + k
        hit = (index <= last) & wanted(ids[np.minimum(index, len(ids) - 1)])
        take = hit & (seen == nth) & (found < 0)
        found[take] = index[take]
        seen += hit
    return found


def top_partons(ids, d1, d2, p, counts=None) -> np.ndarray:
    """Every top's (t, b, q, q̄) momenta (px, py, pz, E), found through the decay chain of the
    event record (the top's last carbon copy → its W and b → the W's last copy → two quarks).

    ``ids``, ``d1``, ``d2`` (daughter indices within the event) and ``p`` (n, 4) are the
    particles of all events in a row, ``counts`` the particles per event (default: one event).
    Returns (events, tops, 4, 4), NaN where an event has fewer tops than the most.
    """
    counts = np.array([len(ids)]) if counts is None else np.asarray(counts)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    event = np.repeat(np.arange(len(counts)), counts)
    first, last = d1 + offsets[event], d2 + offsets[event]  # indices into the flat arrays
    tops = np.flatnonzero((np.abs(ids) == 6) & (ids[first] != ids))  # the last copies
    b = _first_in_range(ids, first[tops], last[tops], lambda i: np.abs(i) == 5)
    w = _first_in_range(ids, first[tops], last[tops], lambda i: np.abs(i) == 24)
    ok = (b >= 0) & (w >= 0)
    tops, b, w = tops[ok], b[ok], w[ok]
    while True:  # follow the W's carbon copies: a daughter (the first) with the same id
        copy = (d1[w] > 0) & (ids[first[w]] == ids[w])
        if not copy.any():
            break
        w = np.where(copy, first[w], w)
    quark = lambda i: (np.abs(i) > 0) & (np.abs(i) <= 5)  # noqa: E731
    q1, q2 = (_first_in_range(ids, first[w], last[w], quark, nth) for nth in (0, 1))
    n_quarks = sum(
        (_first_in_range(ids, first[w], last[w], quark, nth) >= 0).astype(int) for nth in range(3)
    )
    ok = n_quarks == 2  # exactly two quarks from the W
    tops, b, q1, q2 = tops[ok], b[ok], q1[ok], q2[ok]
    owner = event[tops]
    slot = np.arange(len(tops)) - np.searchsorted(owner, owner)  # rank of the top in its event
    out = np.full((len(counts), int(slot.max(initial=-1)) + 1, 4, 4), np.nan)
    out[owner, slot] = np.stack([p[tops], p[b], p[q1], p[q2]], axis=1)
    return out


def eta_phi(p: np.ndarray):
    """(..., ≥3) (px, py, pz, …) → pseudorapidity and azimuth."""
    pt = np.hypot(p[..., 0], p[..., 1])
    return np.arcsinh(p[..., 2] / np.maximum(pt, 1e-12)), np.arctan2(p[..., 1], p[..., 0])


def _delta_r(eta1, phi1, eta2, phi2):
    dphi = (phi1 - phi2 + np.pi) % (2 * np.pi) - np.pi
    return np.hypot(eta1 - eta2, dphi)


def _matched(jets: np.ndarray, partons: np.ndarray, radius: float) -> np.ndarray:
    """(events, J) whether a top's partons all lie within ΔR < R of the jet; jets (events, J, 4),
    partons (events, tops, 4, 4) NaN-padded."""
    if partons.shape[1] == 0:
        return np.zeros(jets.shape[:2], dtype=bool)
    j_eta, j_phi = eta_phi(jets)  # (E, J)
    p_eta, p_phi = eta_phi(partons)  # (E, T, 4)
    dr = _delta_r(
        j_eta[:, :, None, None], j_phi[:, :, None, None], p_eta[:, None], p_phi[:, None]
    )  # (E, J, T, 4); NaN for missing tops → False
    return (dr < radius).all(-1).any(-1)


def _numpy4(array, fields=("px", "py", "pz", "E")) -> np.ndarray:
    import awkward as ak

    return np.stack([ak.to_numpy(array[f]) for f in fields], axis=-1)


def _padded(array, n: int, fields=("px", "py", "pz", "E")) -> np.ndarray:
    """Awkward (rows × var) four-vectors → (rows, n, 4), zero-padded or cut."""
    import awkward as ak

    return np.stack(
        [ak.to_numpy(ak.fill_none(ak.pad_none(array[f], n, clip=True), 0.0)) for f in fields],
        axis=-1,
    )


def trimmed(jets, constituents, cfg) -> tuple:
    """Trim every jet (events × jets): kT subjets of R = ``trim_radius`` from its constituents,
    those with pT < ``trim_fcut`` × the jet's pT dropped; returns the kept constituents and
    their sums as the jets, in the same layout."""
    import awkward as ak
    import fastjet

    per_event = ak.num(jets)
    flat = ak.flatten(constituents, axis=1)  # (jets × particles): each jet clustered on its own
    if len(flat) == 0:
        return jets, constituents
    definition = fastjet.JetDefinition(fastjet.kt_algorithm, cfg.trim_radius)
    sequence = fastjet.ClusterSequence(flat, definition)
    subjets, parts = sequence.inclusive_jets(), sequence.constituents()
    jet_pt = np.hypot(ak.flatten(jets.px), ak.flatten(jets.py))
    kept = np.hypot(subjets.px, subjets.py) >= cfg.trim_fcut * jet_pt  # (jets × subjets)
    parts = ak.flatten(parts[kept], axis=2)  # (jets × particles)
    sums = ak.zip({f: ak.sum(parts[f], axis=1) for f in ("px", "py", "pz", "E")})
    return ak.unflatten(sums, per_event), ak.unflatten(parts, per_event)


def _accepted(batch, sequence, cfg, lo, hi, process, n_constituents) -> tuple:
    """One batch of events → the accepted jets (n, 4), their constituents (n, C, 4),
    pT-ordered and zero-padded, and each jet's event (its index in the batch, (n,)): the two
    leading jets of each event inside the pT window and |η| < eta_max (and truth-matched to a
    top for tt̄), in event order, leading jet first. Array operations over the whole batch, no
    loop over events."""
    import awkward as ak

    jets = sequence.inclusive_jets(0.5 * lo)  # (events × jets)
    constituents = sequence.constituents(0.5 * lo)  # (events × jets × particles)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)[:, :2]
    jets, constituents = jets[order], constituents[order]
    if cfg.trim:
        jets, constituents = trimmed(jets, constituents, cfg)
    dense = _padded(jets, 2)  # (E, 2, 4), missing jets all zero
    present = ak.to_numpy(ak.fill_none(ak.pad_none(ak.ones_like(jets.px), 2, clip=True), 0)) > 0
    pt = np.hypot(dense[..., 0], dense[..., 1])
    eta, _ = eta_phi(dense)
    keep = present & (pt >= lo) & (pt < hi) & (np.abs(eta) < cfg.eta_max)
    if process == "ttbar" and keep.any():
        prt = batch.prt
        record = [ak.to_numpy(ak.flatten(prt[f])) for f in ("id", "daughter1", "daughter2")]
        momenta = _numpy4(ak.flatten(prt.p), ("px", "py", "pz", "e"))
        partons = top_partons(*record, momenta, ak.to_numpy(ak.num(prt.id)))
        keep &= _matched(dense, partons, cfg.radius)
    mask = ak.Array(keep)[ak.local_index(jets)]  # (events × jets), jets as in `jets`
    chosen = ak.flatten(constituents[mask], axis=1)  # (accepted × particles)
    cons = chosen[ak.argsort(np.hypot(chosen.px, chosen.py), axis=1, ascending=False)]
    return dense[keep], _padded(cons, n_constituents), np.nonzero(keep)[0]


def visible(batch):
    """Final-state particles that a detector sees (no neutrinos), awkward (events × particles)."""
    import awkward as ak

    prt = batch.prt
    keep = prt.status > 0
    for neutrino in NEUTRINOS:
        keep = keep & (abs(prt.id) != neutrino)
    p = prt[keep].p
    return ak.zip({"px": p.px, "py": p.py, "pz": p.pz, "E": p.e})


def generate_chunk(
    cfg: GeneratorConfig,
    process: str,
    slice_index: int,
    n_jets: int,
    seed: int,
    n_constituents: int | None = None,
) -> dict:
    """Run Pythia until ``n_jets`` jets are accepted; returns jets as numpy arrays.

    Returns ``{"jet": (n, 4) px py pz E, "constituents": (n, C, 4) pT-ordered, zero-padded
    (C = ``n_constituents``, default the config's), "event": (n,) each jet's event (counted
    from 0 in this chunk; the two jets of one event share it), "events": int}``.
    """
    import fastjet

    settings = pythia_settings(cfg, process, slice_index, seed)
    pythia = start_pythia(settings, f"for {process}, slice {slice_index}")
    window = cfg.slice_edges(slice_index) if cfg.accept == "slice" else (cfg.pt_min, cfg.pt_max)
    definition = fastjet.JetDefinition(fastjet.antikt_algorithm, cfg.radius)
    n_constituents = n_constituents or cfg.n_constituents
    pileup = minimum_bias(cfg, seed) if cfg.pileup_mu > 0 else None
    jets_out, cons_out, event_out, weights_out, accepted, events = [], [], [], [], 0, 0
    while accepted < n_jets:
        batch = pythia.nextBatch(25)
        first = events
        events += len(batch)
        if cfg.shower_weights:
            weights_out.append(_shower_weights(batch))
        particles = visible(batch)
        if pileup is not None:
            rng = np.random.default_rng([seed, events, 1])
            particles = overlay(particles, pileup, cfg.pileup_mu, rng)
        if cfg.detector:
            particles = detector.emulate(particles, np.random.default_rng([seed, events]))
        sequence = fastjet.ClusterSequence(particles, definition)
        jets, cons, event = _accepted(batch, sequence, cfg, *window, process, n_constituents)
        jets_out.append(jets)
        cons_out.append(cons)
        event_out.append(first + event)
        accepted += len(jets)
    out = {
        "jet": np.concatenate(jets_out)[:n_jets],
        "constituents": np.concatenate(cons_out)[:n_jets],
        "event": np.concatenate(event_out)[:n_jets].astype(np.int64),
        "events": events,
    }
    if cfg.shower_weights:  # every event's weights, then each jet its event's
        out["shower_weights"] = np.concatenate(weights_out)[out["event"]]
    return out


def _shower_weights(batch) -> np.ndarray:
    """(events, 1 + 4): the baseline weight and the four variations, in the order of
    :data:`SHOWER_WEIGHTS` (Pythia lists the variations, then the same again as groups)."""
    import awkward as ak

    weights = ak.to_numpy(batch.info.weights)  # (events, 1 + 2 × 4)
    if weights.ndim != 2 or weights.shape[1] < 1 + len(SHOWER_WEIGHTS):
        raise RuntimeError(
            f"Pythia gave {weights.shape} shower weights per batch; expected (events, ≥ 5) — "
            f"is UncertaintyBands:doVariations on?"
        )
    return weights[:, : 1 + len(SHOWER_WEIGHTS)]


def minimum_bias(cfg: GeneratorConfig, seed: int):
    """A second Pythia for pile-up: inelastic minimum-bias events (SoftQCD:inelastic), own
    seed."""
    settings = [
        f"Beams:eCM = {cfg.sqrt_s}",
        "SoftQCD:inelastic = on",
        "Random:setSeed = on",
        f"Random:seed = {seed % PYTHIA_MAX_SEED + 1}",
        *QUIET,
    ]
    return start_pythia(settings, "minimum-bias events for pile-up")


def overlay(particles, minimum_bias, mu: float, rng: np.random.Generator):
    """Add the visible particles of Poisson(μ) minimum-bias events to every event."""
    import awkward as ak

    counts = rng.poisson(mu, len(particles))
    if counts.sum() == 0:
        return particles
    batches, made = [], 0
    while made < counts.sum():  # Pythia skips events that fail: ask again until there are enough
        batch = visible(minimum_bias.nextBatch(int(counts.sum()) - made))
        batches.append(batch)
        made += len(batch)
    extra = batches[0] if len(batches) == 1 else ak.concatenate(batches)  # (pile-up × particles)
    extra = ak.flatten(ak.unflatten(extra, counts), axis=2)  # (events × particles)
    return ak.concatenate([particles, extra], axis=1)


def to_atlas_arrays(jets: np.ndarray, constituents: np.ndarray) -> dict:
    """Jets (n, 4) and pT-ordered, zero-padded constituents (n, C, 4) px py pz E → ATLAS-layout
    arrays in GeV (padding slots all zero)."""
    pt = np.hypot(constituents[..., 0], constituents[..., 1])
    eta, phi = eta_phi(constituents)
    empty = pt == 0
    eta, phi = np.where(empty, 0.0, eta), np.where(empty, 0.0, phi)
    jet_pt = np.hypot(jets[:, 0], jets[:, 1])
    jet_eta, jet_phi = eta_phi(jets)
    jet_m = np.sqrt(np.maximum(jets[:, 3] ** 2 - (jets[:, :3] ** 2).sum(-1), 0.0))
    columns = (pt, eta, phi, constituents[..., 3], jet_pt, jet_eta, jet_phi, jet_m)
    return dict(zip(CONSTITUENT_KEYS + JET_KEYS, columns))


def jet_chunk(payload) -> dict:
    cfg, (process, slice_index, n_jets, index) = payload
    out = generate_chunk(cfg, process, slice_index, n_jets, seed=chunk_seed(cfg.seed, index))
    arrays = to_atlas_arrays(out["jet"], out["constituents"])
    arrays["labels"] = np.full(len(out["jet"]), int(process == "ttbar"))
    arrays[EVENT_NUMBER] = event_numbers(index, out["event"])
    if "shower_weights" in out:
        arrays[EVENT_WEIGHTS] = out["shower_weights"].astype(np.float32)
    return arrays


def event_numbers(chunk_index: int, event: np.ndarray) -> np.ndarray:
    """A number per jet that is unique per generated event in the whole file: the chunk's index
    in the high 32 bits, the event's place in the chunk in the low ones (int64, like ATLAS's
    ``EventInfo_mcEventNumber``); the two jets of one event share it."""
    return (np.int64(chunk_index) << np.int64(32)) + event.astype(np.int64)


def generate(
    cfg: GeneratorConfig, output: Path, processes: int | None = None, **jobs
) -> dict | None:
    """Generate ``cfg`` into ``output`` (ATLAS layout); resumable.

    Returns the timing summary (``made`` jets, ``seconds``, ``per_s``, ``per_s_per_core``).
    ``jobs``: ``executor``, ``chunks_per_job``, ``wait`` of
    :func:`~seal.generation.chunks.run_chunks` (submitit); with ``wait=False`` None is returned,
    and nothing merged, until every chunk is on disk.
    """

    def write(output: Path, paths: list[Path], timing: dict) -> None:
        write_atlas(output, paths, cfg)
        with h5py.File(output, "a") as f:
            f["metadata"].attrs["timing"] = json.dumps(timing)
            if cfg.shower_weights:
                names = ["baseline", *SHOWER_WEIGHTS]
                f["metadata"].attrs["mc_weight_names"] = json.dumps(names)

    return generate_chunked(cfg, output, jet_chunk, "jets", write, processes, **jobs)
