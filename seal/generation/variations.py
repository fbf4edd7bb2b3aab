"""Writing detector systematic variations of a jet file, laid out as the ATLAS top-tagging open
data v2: a nominal file and one file per variation, the same jets in the same order, each carrying
its ``EventInfo_mcEventNumber`` so a reader can match them. What each variation does:
:mod:`seal.data.variations`.
"""

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

from seal.data.atlas_layout import CONSTITUENT_KEYS, EVENT_NUMBER, JET_KEYS, MEV_PER_GEV
from seal.data.variations import (
    GROUP,
    NOMINAL,
    VARIATIONS,
    VariationSettings,
    variation_rng,
    vary,
)

log = logging.getLogger(__name__)
__all__ = ["VARIATIONS", "VariationSettings", "vary", "write_variations"]


def write_variations(
    nominal: Path,
    out_dir: Path,
    settings: VariationSettings | None = None,
    names=VARIATIONS,
    rows: tuple[int, int] | None = None,
    block_rows: int = 16384,
    force: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Write ``out_dir/nominal.h5`` and ``out_dir/<variation>.h5`` for the rows ``[a, b)`` of
    the ATLAS-layout file ``nominal`` (all rows by default); a file already there is kept
    unless ``force`` (an interrupted run resumes by variation). Returns the paths written."""
    from tqdm.auto import tqdm

    settings = settings or VariationSettings()
    nominal, out_dir = Path(nominal), Path(out_dir)
    unknown = [n for n in names if n not in VARIATIONS]
    if unknown:
        raise ValueError(f"unknown variation(s) {unknown}; choose from {list(VARIATIONS)}")
    with h5py.File(nominal, "r") as f:
        missing = [k for k in (*CONSTITUENT_KEYS, *JET_KEYS, "labels") if k not in f]
        if missing:
            raise KeyError(f"{nominal}: not an ATLAS-layout jet file (missing {missing})")
        total = f["fjet_pt"].shape[0]
    start, stop = rows if rows is not None else (0, total)
    if not 0 <= start < stop <= total:
        raise ValueError(f"rows [{start}, {stop}) are not inside the {total} rows of {nominal}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (NOMINAL, *names):
        path = out_dir / f"{name}.h5"
        written.append(path)
        if path.exists() and not force:
            log.info("%s exists: kept (force=True to write it again)", path)
            continue
        rng = variation_rng(name, settings)
        _write_one(nominal, path, name, settings, rng, start, stop, block_rows, progress, tqdm)
    return written


def _write_one(nominal, path, name, settings, rng, start, stop, block_rows, progress, tqdm):
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = stop - start
    with h5py.File(nominal, "r") as src, h5py.File(tmp, "w") as dst:
        varied = (*CONSTITUENT_KEYS, *JET_KEYS)
        passed = [k for k in src if k != "metadata" and k not in varied]
        for key in (*varied, *passed):
            shape, dtype = (n, *src[key].shape[1:]), src[key].dtype
            dst.create_dataset(key, shape=shape, dtype=dtype, chunks=(min(1024, n), *shape[1:]))
        if EVENT_NUMBER not in src:
            log.warning(
                "%s has no %s: the variation files number the jets by their row in it",
                nominal,
                EVENT_NUMBER,
            )
            dst.create_dataset(EVENT_NUMBER, data=np.arange(start, stop, dtype=np.int64))
        bar = tqdm(total=n, desc=f"{path.name}", unit="jet", disable=not progress)
        for a in range(start, stop, block_rows):
            b = min(a + block_rows, stop)
            block = {k: src[k][a:b] for k in varied}
            out = vary(block, name, settings, rng)
            for key in varied:
                dst[key][a - start : b - start] = out[key].astype(src[key].dtype)
            for key in passed:
                dst[key][a - start : b - start] = src[key][a:b]
            bar.update(b - a)
        bar.close()
        meta = dst.create_group("metadata")
        if "metadata" in src:
            for key, value in src["metadata"].attrs.items():
                meta.attrs[f"nominal_{key}"] = value
        meta.attrs["variation"] = name
        meta.attrs["group"] = GROUP if name != NOMINAL else ""
        meta.attrs["variation_settings"] = json.dumps(asdict(settings))
        meta.attrs["nominal_file"] = str(nominal)
        meta.attrs["nominal_rows"] = json.dumps([start, stop])
        meta.attrs["units"] = f"MeV for fjet_clus_pt, fjet_clus_E, fjet_pt, fjet_m ({MEV_PER_GEV})"
    os.replace(tmp, path)
