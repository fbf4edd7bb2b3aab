"""A nominal jet file and its systematic variations, matched jet by jet (ATLAS open data v2),
or seal's detector variations of it made in memory (``variations="auto"``).

The variation files hold the same jets as the nominal one, not necessarily in the same rows: a
jet is found by its ``EventInfo_mcEventNumber`` and, among the (at most two) jets of that event,
by the nearest direction in (η, φ) — the two leading jets of a dijet event have similar pT but
opposite φ, so the direction, not the pT, tells them apart — and its pT must then agree within a
relative tolerance (a variation moves a jet's pT by a few per cent, not by half). Files without
event numbers (seal's before they were written, ATLAS's first release) are numbered by their
row, which is what ``scripts/make_variations.py`` writes for them too.
"""

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seal.data.atlas_layout import (
    CONSTITUENT_KEYS,
    EVENT_NUMBER,
    EVENT_WEIGHTS,
    JET_KEYS,
    MEV_PER_GEV,
)
from seal.data.jets import JetFile, atlas_batch
from seal.data.variations import GROUP, VARIATIONS, VariationSettings, variation_rng, vary

log = logging.getLogger(__name__)
NOMINAL_NAME = "nominal.h5"
# generator settings that make two files different samples, not variations of one
SAMPLE_KEYS = ("pt_min", "pt_max", "eta_max", "radius")


@dataclass
class Variation:
    """One variation: its ``name`` (``metadata/variation`` or the file's stem), ``group``
    (``metadata/group``: ``detector``, ``modelling``, …; ``other`` where the file says none)
    and its file (None: made in memory from the nominal jets); a generator-weight variation
    (``weight_index``) is the nominal jets with their weights times ``w[:, i] / w[:, 0]`` of
    ``EventInfo_mcEventWeights``."""

    name: str
    group: str
    path: Path | None
    weight_index: int | None = None  # a generator-weight variation: this column of the weights


def event_numbers(file: JetFile) -> np.ndarray:
    """Every row's event number (int64); the row itself where the file has none."""
    if EVENT_NUMBER in file.h5:
        return file.h5[EVENT_NUMBER][:].astype(np.int64)
    return np.arange(len(file), dtype=np.int64)


def _directions(file: JetFile) -> np.ndarray:
    """(n, 3): pT (GeV), η, φ of every jet."""
    h5 = file.h5
    return np.stack(
        (h5["fjet_pt"][:] / MEV_PER_GEV, h5["fjet_eta"][:], h5["fjet_phi"][:]), axis=-1
    ).astype(np.float64)


def _settings(file: JetFile) -> dict:
    meta = file.h5.get("metadata")
    if meta is None:
        return {}
    for key in ("settings", "nominal_settings"):
        if key in meta.attrs:
            return json.loads(meta.attrs[key])
    return {}


def _selection_differs(a: JetFile, b: JetFile) -> str:
    """The jet selection settings (pT window, |η| cut, R) in which two seal-made files differ,
    as text ('' where they agree or a file does not record them)."""
    ours, theirs = _settings(a), _settings(b)
    differ = [k for k in SAMPLE_KEYS if k in ours and k in theirs and ours[k] != theirs[k]]
    return ", ".join(f"{k} {ours[k]} here, {theirs[k]} there" for k in differ)


def check_same_selection(nominal, other) -> None:
    """Refuse a two-point sample ``other`` whose jets are selected otherwise than
    ``nominal``'s (pT window, |η| cut, R): the comparison would measure the selection."""
    a, b = JetFile(nominal), JetFile(other)
    try:
        differ = _selection_differs(a, b)
    finally:
        a.close()
        b.close()
    if differ:
        raise ValueError(
            f"{other}: another jet selection than {nominal} ({differ}); a two-point comparison "
            f"needs the same pT window, |η| cut and R"
        )


class SystematicSet:
    """The nominal file and its variations.

    Parameters
    ----------
    nominal : path
        The nominal ATLAS-layout file (the run's data file).
    variations : "auto", path or list of paths
        ``auto``: seal's detector variations (:mod:`seal.data.variations`) of the nominal jets,
        made in memory with ``settings`` — the same jets as ``scripts/make_variations.py
        --rows a:b`` writes, a and b the first and one past the last row asked for; or variation
        files, or a folder of them (every ``*.h5`` but ``nominal.h5``).
    n_constituents : int
        As the run's data (``data.n_constituents``).
    pt_tolerance : float
        A matched jet's pT may differ from the nominal's by at most this fraction.
    dr_tolerance : float
        ... and its direction by at most this ΔR in (η, φ): an event whose jet is absent from a
        variation file (it failed that file's selection) must not hand its other jet — similar
        pT, the same label, the opposite φ — to the nominal one.
    settings : VariationSettings or dict, optional
        The sizes of the ``auto`` variations (defaults: :class:`VariationSettings`).
    """

    def __init__(
        self,
        nominal,
        variations="auto",
        n_constituents: int = 80,
        pt_tolerance: float = 0.25,
        settings: VariationSettings | dict | None = None,
        dr_tolerance: float = 0.5,
    ):
        if not isinstance(pt_tolerance, int | float) or not 0 < pt_tolerance < 1:
            raise ValueError(f"pt_tolerance must be in (0, 1); got {pt_tolerance!r}")
        if not isinstance(dr_tolerance, int | float) or not 0 < dr_tolerance < math.inf:
            raise ValueError(f"dr_tolerance must be a finite ΔR > 0; got {dr_tolerance!r}")
        self.dr_tolerance = float(dr_tolerance)
        if isinstance(settings, dict):
            settings = VariationSettings(**settings)
        self.settings = settings or VariationSettings()
        self.nominal = JetFile(nominal, n_constituents)
        if self.nominal.layout != "atlas":
            raise ValueError(
                f"{nominal}: systematic variations need the ATLAS layout (event numbers, jet "
                f"kinematics); this is a {self.nominal.layout} file"
            )
        self.n_constituents, self.pt_tolerance = n_constituents, pt_tolerance
        if isinstance(variations, str) and variations == "auto":
            self.variations = [Variation(name, GROUP, None) for name in VARIATIONS]
        else:
            self.variations = [self._open(Path(p)) for p in self._paths(variations)]
        self.variations += self._weight_variations()
        names = [v.name for v in self.variations]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            paths = [str(v.path) for v in self.variations if v.name in twice]
            raise ValueError(f"variation(s) {twice} given twice: {paths}")
        self._numbers = self._kinematics = None  # read once, by the first match()

    def close(self) -> None:
        """Close the nominal file (variation files are opened and closed per read)."""
        self.nominal.close()

    def _weight_variations(self) -> list[Variation]:
        """The nominal file's generator-weight variations (group ``modelling``): the columns of
        ``EventInfo_mcEventWeights`` after the baseline, named by ``metadata/mc_weight_names``."""
        h5 = self.nominal.h5
        if EVENT_WEIGHTS not in h5:
            return []
        shape = h5[EVENT_WEIGHTS].shape
        meta = h5.get("metadata")
        names = (
            json.loads(meta.attrs["mc_weight_names"])
            if meta is not None and "mc_weight_names" in meta.attrs
            else None
        )
        if (
            len(shape) != 2
            or shape[0] != len(self.nominal)
            or names is None
            or len(names) != shape[1]
        ):
            raise ValueError(
                f"{self.nominal.path}: {EVENT_WEIGHTS} of shape {shape} needs (jets, weights) and "
                f"one name per column in metadata/mc_weight_names (found {names})"
            )
        return [Variation(name, "modelling", None, i) for i, name in enumerate(names) if i > 0]

    @staticmethod
    def _paths(variations) -> list[Path]:
        if isinstance(variations, str | Path):
            folder = Path(variations)
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"systematic variations: {folder} is not a folder of .h5 files"
                )
            paths = sorted(p for p in folder.glob("*.h5") if p.name != NOMINAL_NAME)
            if not paths:
                raise FileNotFoundError(
                    f"systematic variations: no variation files in {folder} (make them with "
                    f"scripts/make_variations.py)"
                )
            return paths
        paths = [Path(p) for p in variations]
        if not paths:
            raise ValueError("systematic variations: the list of files is empty")
        return paths

    def _open(self, path: Path) -> Variation:
        file = JetFile(path, self.n_constituents)  # names a missing file or dataset
        try:
            if file.layout != "atlas":
                raise ValueError(f"{path}: a variation must be in the ATLAS layout")
            meta = file.h5.get("metadata")
            attrs = dict(meta.attrs) if meta is not None else {}
            differ = _selection_differs(self.nominal, file)
            if differ:
                raise ValueError(
                    f"{path}: not a variation of {self.nominal.path} — another sample "
                    f"(generator settings differ: {differ}); compare different samples as a "
                    f"two-point comparison instead (evaluation.systematics.two_point)"
                )
            return Variation(
                name=str(attrs.get("variation", path.stem)),
                group=str(attrs.get("group", "") or "other"),
                path=path,
            )
        finally:
            file.close()

    def match(self, rows: np.ndarray, variation: Variation) -> np.ndarray:
        """The rows of ``variation``'s file holding the nominal file's jets ``rows`` (same
        order). Raises ``ValueError`` naming the file and the counts if any jet has no match."""
        rows = np.asarray(rows, dtype=np.int64)
        if self._numbers is None:  # only files are matched: in-memory variations never read these
            self._numbers, self._kinematics = event_numbers(self.nominal), _directions(self.nominal)
        file = JetFile(variation.path, self.n_constituents)
        try:
            numbers, kinematics = event_numbers(file), _directions(file)
        finally:
            file.close()
        order = np.argsort(numbers, kind="stable")
        sorted_numbers = numbers[order]
        wanted = self._numbers[rows]
        first = np.searchsorted(sorted_numbers, wanted, side="left")
        last = np.searchsorted(sorted_numbers, wanted, side="right")
        found = np.full(len(rows), -1, dtype=np.int64)
        no_event = last == first
        far = apart = 0
        for i in np.flatnonzero(~no_event):
            candidates = order[first[i] : last[i]]
            pt, eta, phi = self._kinematics[rows[i]]
            d_phi = np.angle(np.exp(1j * (kinematics[candidates, 2] - phi)))
            distance = np.hypot(kinematics[candidates, 1] - eta, d_phi)
            nearest = int(np.argmin(distance))
            best = candidates[nearest]
            if distance[nearest] > self.dr_tolerance:
                apart += 1
            elif abs(kinematics[best, 0] / pt - 1.0) > self.pt_tolerance:
                far += 1
            else:
                found[i] = best
        missing = int(no_event.sum())
        taken, counts = np.unique(found[found >= 0], return_counts=True)
        if (counts > 1).any():
            row = int(taken[counts > 1][0])
            raise ValueError(
                f"{variation.path}: row {row} is the nearest jet of {int(counts.max())} nominal "
                f"jets of event {int(numbers[row])}; the files do not hold the same jets"
            )
        if missing or far or apart:
            example = int(rows[np.flatnonzero(found < 0)[0]])
            raise ValueError(
                f"{variation.path}: {missing + far + apart} of {len(rows)} nominal jets have no "
                f"match ({missing} with an event number absent there, {apart} whose nearest jet "
                f"is more than ΔR = {self.dr_tolerance:g} away, {far} whose nearest jet's pT "
                f"differs by more than {self.pt_tolerance:.0%}; first: nominal row {example}, "
                f"event {int(self._numbers[example])}) — is it a variation of "
                f"{self.nominal.path} and of these rows (the test split)?"
            )
        return found

    def arrays(self, variation: Variation, rows: np.ndarray) -> dict:
        """The batch arrays (``p4``, ``mask``, ``jet_p4``, ``target``, ``weight``, ``index`` —
        the row in the variation's file) of the nominal jets ``rows`` under ``variation``, in
        the order of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        if variation.path is not None:
            return self.read(variation, self.match(rows, variation))
        lo, hi = int(rows.min()), int(rows.max()) + 1
        h5 = self.nominal.h5
        if variation.weight_index is not None:
            out = self.nominal._read_atlas(lo, hi)
            w = h5[EVENT_WEIGHTS][lo:hi].astype(np.float64)
            bad = ~np.isfinite(w[:, variation.weight_index]) | ~(w[:, 0] != 0)
            if bad.any():
                row = lo + int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"{self.nominal.path}: {EVENT_WEIGHTS} of row {row} is not finite or has a "
                    f"zero baseline"
                )
            ratio = w[:, variation.weight_index] / w[:, 0]
            if (ratio < 0).any():  # a ROC of negative weights is not monotone: no 1/ε_B, no AUC
                negative = np.flatnonzero(ratio[rows - lo] < 0)
                if len(negative):
                    raise ValueError(
                        f"{self.nominal.path}: variation {variation.name!r} gives "
                        f"{len(negative)} of the {len(rows)} jets a negative weight (first: row "
                        f"{int(rows[negative[0]])}); the tagging metrics need weights ≥ 0 "
                        f"(negative MC weights are not supported yet)"
                    )
            out["weight"] = (out["weight"] * ratio).astype(np.float32)
            out["index"] = np.arange(lo, hi)
            return {k: v[rows - lo] for k, v in out.items()}
        raw = {k: h5[k][lo:hi] for k in (*CONSTITUENT_KEYS, *JET_KEYS)}
        rng = variation_rng(variation.name, self.settings)
        varied = vary(raw, variation.name, self.settings, rng)
        varied = {k: v.astype(raw[k].dtype) for k, v in varied.items()}  # stored, as in the files
        varied["labels"] = h5["labels"][lo:hi]
        varied["weights"] = h5[self.nominal.weight_key][lo:hi]
        out = atlas_batch(varied, self.n_constituents)
        out["index"] = np.arange(lo, hi)
        return {k: v[rows - lo] for k, v in out.items()}

    def read(self, variation: Variation, rows: np.ndarray) -> dict:
        """The batch arrays of ``variation``'s jets at ``rows`` of its file (any order)."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        file = JetFile(variation.path, self.n_constituents)
        try:
            lo, hi = int(rows[order[0]]), int(rows[order[-1]]) + 1
            keep = np.zeros(hi - lo, dtype=bool)
            keep[rows - lo] = True
            out = file._read_atlas(lo, hi)
            out["index"] = np.arange(lo, hi)
            out = {k: v[keep] for k, v in out.items()}  # rows ascending
        finally:
            file.close()
        for key in ("p4", "jet_p4", "weight"):
            bad = ~np.isfinite(out[key].reshape(len(rows), -1)).all(1)
            if bad.any():
                raise ValueError(
                    f"{variation.path}: non-finite {key!r} in jet {int(out['index'][bad][0])}"
                )
        empty = ~out["mask"].any(1)
        if empty.any():
            raise ValueError(
                f"{variation.path}: {int(empty.sum())} of the matched jets have no constituents "
                f"(first: row {int(out['index'][empty][0])}); a jet the nominal file has cannot "
                f"be empty in a variation of it"
            )
        back = np.empty_like(order)
        back[order] = np.arange(len(order))
        return {k: v[back] for k, v in out.items()}
