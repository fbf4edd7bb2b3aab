"""Chunked, resumable, multi-process generation: the shared engine of the event generators.

Work is cut into chunks, each made by one call of a worker with its own seed, so the output does
not depend on how many processes ran. Every finished chunk is written atomically to its own
``.npz`` file, so an interrupted run resumes where it stopped.
"""

import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm


def _make(args):
    worker, payload, path = args
    start = time.perf_counter()
    arrays = worker(payload)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # a chunk is either complete on disk or absent
    return len(next(iter(arrays.values()))), time.perf_counter() - start


def run_chunks(
    worker,
    tasks: list[tuple[Path, object]],
    desc: str,
    unit: str = "jets",
    processes: int | None = None,
) -> dict:
    """Make every chunk ``path`` missing on disk as ``worker(payload)`` (a dict of arrays).

    ``worker`` must be a module-level function (it runs in forked processes). Shows a progress
    bar with the rate overall and per core; returns ``{"made", "seconds", "per_s",
    "per_s_per_core"}`` for the chunks made in this call.
    """
    todo = [(worker, payload, Path(path)) for path, payload in tasks if not Path(path).exists()]
    processes = processes or os.cpu_count() or 1
    start, made, busy = time.perf_counter(), 0, 0.0
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="chunk", desc=desc)
    with multiprocessing.get_context("fork").Pool(min(processes, max(1, len(todo)))) as pool:
        for n, seconds in pool.imap_unordered(_make, todo):
            made, busy = made + n, busy + seconds
            elapsed = time.perf_counter() - start
            bar.set_postfix(
                {f"{unit}/s": f"{made / elapsed:.1f}", "per_core": f"{made / max(busy, 1e-9):.1f}"}
            )
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    return {
        "made": made,
        "seconds": elapsed,
        "per_s": made / elapsed if made else 0.0,
        "per_s_per_core": made / busy if busy else 0.0,
    }
