"""Writing the ATLAS top-tagging open-data layout (keys: :mod:`seal.data.atlas_layout`).

The generated file adds ``weights`` (training weights that flatten the background pT spectrum
to the signal's) and a ``metadata`` group (settings, seed, versions, timing).
"""

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import h5py
import numpy as np

import seal
from seal.data.atlas_layout import EVENT_NUMBER, MEV_KEYS, MEV_PER_GEV
from seal.generation.chunks import load_chunk


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


def write_atlas(output: Path, chunk_files: list, cfg, block_rows: int = 16384) -> None:
    """Merge generator chunks (GeV) into one shuffled ATLAS-layout file (MeV), atomically.

    Streamed: memory holds one chunk or one block of ``block_rows`` output rows, never the set.
    Pass 1 reads the jets' pT and labels (for the shuffle and the weights); pass 2 sends every
    chunk's rows, converted, to per-block scratch files beside the output; pass 3 writes each
    block in order. The shuffle is one permutation of all rows (seeded by ``cfg.seed``), so the
    file does not depend on ``block_rows``.
    """
    output, chunk_files = Path(output), [Path(f) for f in chunk_files]
    for stale in output.parent.glob(f".{output.name}.*"):  # a merge killed earlier
        shutil.rmtree(stale, ignore_errors=True)
    labels, pts = [], []
    for path in chunk_files:
        chunk = load_chunk(path, ("labels", "fjet_pt"))
        labels.append(chunk["labels"])
        pts.append(chunk["fjet_pt"])
    labels, pts = np.concatenate(labels), np.concatenate(pts)
    n = len(labels)
    order = np.random.default_rng(cfg.seed).permutation(n)  # output row i ← input row order[i]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    weights = flatten_weights(pts[order], labels[order])
    first = load_chunk(chunk_files[0])
    dtypes = {"labels": np.int8, EVENT_NUMBER: np.int64}
    fields = [(k, dtypes.get(k, np.float32), first[k].shape[1:]) for k in first]
    record = np.dtype([("position", np.int64), *fields])
    tmp = output.with_suffix(".tmp.h5")
    with tempfile.TemporaryDirectory(dir=output.parent, prefix=f".{output.name}.") as scratch:
        blocks = _scatter(chunk_files, position, record, block_rows, Path(scratch))
        with h5py.File(tmp, "w") as f:
            datasets = {
                name: f.create_dataset(
                    name,
                    shape=(n, *shape),
                    dtype=dtype,
                    chunks=(min(1024, n), *shape) if n else None,
                )
                for name, dtype, shape in fields
            }
            f.create_dataset(
                "weights", data=weights.astype(np.float32), chunks=(min(1024, n),) if n else None
            )
            for block, path in blocks:
                rows = np.fromfile(path, dtype=record)
                rows = rows[np.argsort(rows["position"])]
                start = block * block_rows
                for name, _, _ in fields:
                    datasets[name][start : start + len(rows)] = rows[name]
                path.unlink()
            meta = f.create_group("metadata")
            meta.attrs["generator"] = "Pythia 8 (pythia8mc) + FastJet, written by seal"
            meta.attrs["settings"] = json.dumps(asdict(cfg))
            meta.attrs["seed"] = cfg.seed
            meta.attrs["units"] = "MeV for fjet_clus_pt, fjet_clus_E, fjet_pt, fjet_m"
            meta.attrs["seal_version"] = _version()
    os.replace(tmp, output)


def _scatter(
    chunk_files, position, record, block_rows, scratch: Path, budget: int = 256 * 2**20
) -> list:
    """Every chunk's rows, in output units, appended to the scratch file of their output block;
    returns [(block, file)] in block order. Rows wait in memory until ``budget`` bytes are
    buffered, so each scratch file is opened a few times, not once per chunk."""
    offset, used, buffered, size = 0, set(), {}, 0

    def flush():
        for block, parts in buffered.items():
            with open(scratch / f"block_{block:06d}.bin", "ab") as file:
                for part in parts:
                    part.tofile(file)
        buffered.clear()

    for path in chunk_files:
        chunk = load_chunk(path)
        rows = np.empty(len(chunk["labels"]), dtype=record)
        for name in record.names[1:]:
            rows[name] = chunk[name] * MEV_PER_GEV if name in MEV_KEYS else chunk[name]
        rows["position"] = position[offset : offset + len(rows)]
        offset += len(rows)
        block_of = rows["position"] // block_rows
        for block in np.unique(block_of):
            buffered.setdefault(int(block), []).append(rows[block_of == block])
            used.add(int(block))
        size += rows.nbytes
        if size > budget:
            flush()
            size = 0
    flush()
    return [(b, scratch / f"block_{b:06d}.bin") for b in sorted(used)]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{seal.__version__} / pythia8mc {version('pythia8mc')}"
    except PackageNotFoundError:
        return f"{seal.__version__} / pythia8mc unknown"
