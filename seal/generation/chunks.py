"""Chunked, resumable, multi-process generation: the shared engine of the event generators.

Work is cut into chunks, each made by one call of a worker with its own seed, so the output does
not depend on how many processes ran. Every finished chunk is written atomically to its own
``.npz`` file, so an interrupted run resumes where it stopped. SIGINT (Ctrl-C) or SIGTERM (a
batch system's kill) stops the workers, removes half-written files, says how to resume and raises
:class:`Interrupted`.
"""

import contextlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from seal.files import zip_problem


class Interrupted(KeyboardInterrupt):
    """Generation stopped by a signal; the finished chunks are on disk."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _worker_signals() -> None:
    # Ctrl-C reaches the whole process group: workers leave it to the parent, which stops
    # them with SIGTERM (default action: exit at once, no traceback). The parent forked them
    # with both signals blocked: unblock once the dispositions are set.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def _signals_raise():
    """SIGINT and SIGTERM raise :class:`Interrupted` in the main thread while inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise_interrupted) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _make(args):
    worker, payload, path = args
    start = time.perf_counter()
    arrays = worker(payload)
    tmp = _temporary(path)
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # a chunk is either complete on disk or absent
    return len(next(iter(arrays.values()))), time.perf_counter() - start


def _summary(made: int, busy: float, start: float) -> dict:
    elapsed = time.perf_counter() - start
    return {
        "made": made,
        "seconds": elapsed,
        "per_s": made / elapsed if made else 0.0,
        "per_s_per_core": made / busy if busy else 0.0,
    }


def _max_jobs(executor) -> int:
    """Jobs one array may hold: the cores of this machine for submitit's local executor (it
    starts every job at once), SLURM's default MaxArraySize otherwise."""
    if getattr(executor, "cluster", None) == "local":
        return os.cpu_count() or 1
    return 1000


def _run_jobs(todo, tasks, desc, unit, executor, chunks_per_job, wait) -> dict | None:
    """The chunks as a submitit job array; waits with a progress bar unless ``wait=False``."""
    import submitit

    if chunks_per_job < 1:
        raise ValueError(f"chunks_per_job must be >= 1; got {chunks_per_job}")
    start, made, busy = time.perf_counter(), 0, 0.0
    folder = Path(tasks[0][0]).parent if tasks else Path(".")
    pending = [args for args in todo if _marker(args[2]).exists()]
    if pending and not wait:  # submitted by an earlier run that did not wait: leave them be
        todo = [args for args in todo if not _marker(args[2]).exists()]
        message = (
            f"{desc}: {len(pending)} chunks were submitted by an earlier run and have "
            f"not landed yet; they are not submitted again (if those jobs died, rerun "
            f"without --no-wait or remove {folder}/.*.submitted)"
        )
        tqdm.write(message, file=sys.stderr)
    if not todo and not pending:
        return _summary(0, 0.0, start)  # every chunk is there: the caller merges
    chunks_per_job = max(chunks_per_job, math.ceil(len(todo) / _max_jobs(executor)))
    groups = [todo[i : i + chunks_per_job] for i in range(0, len(todo), chunks_per_job)]
    try:
        with _signals_raise():
            jobs = executor.map_array(_make_many, groups) if groups else []
    except Interrupted as stop:  # no job handles yet: nothing to cancel from here
        tqdm.write(
            f"{desc}: stopped by {signal.Signals(stop.signum).name} while submitting; "
            f"jobs already submitted may run (see {executor.folder}). Run the same "
            f"command again to resume.",
            file=sys.stderr,
        )
        raise
    if not wait:
        for _, _, path in todo:
            _marker(path).write_text(" ".join(str(job.job_id) for job in jobs[:1]))
        if not jobs:
            return None
        ids = f"{jobs[0].job_id} … {jobs[-1].job_id}"
        print(
            f"{desc}: submitted {len(todo)} chunks as {len(jobs)} jobs ({ids}); chunks land "
            f"in {folder}. Run the same command again when they have finished: it merges "
            f"them.",
            file=sys.stderr,
        )
        return None
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="chunk", desc=desc)
    failed = []
    try:
        with _signals_raise():
            for job in submitit.helpers.as_completed(jobs):
                try:
                    results = job.result()
                except Exception as error:  # the chunk files say what is missing
                    failed.append(
                        f"job {job.job_id}: {type(error).__name__}: "
                        f"{str(error).strip().splitlines()[-1] if str(error) else ''} "
                        f"(log: {job.paths.stderr})"
                    )
                    bar.update(0)
                    continue
                for n, seconds in results:
                    made, busy = made + n, busy + seconds
                bar.update(len(results))
    except Interrupted as stop:
        bar.close()
        for job in jobs:
            if not job.done():  # (a local job's controller prints submitit's KeyboardInterrupt)
                job.cancel(check=False)
        tqdm.write(
            f"{desc}: stopped by {signal.Signals(stop.signum).name}; unfinished jobs "
            f"cancelled; {sum(Path(p).exists() for p, _ in tasks)} of {len(tasks)} "
            f"chunks are complete in {folder}. Run the same command again to resume.",
            file=sys.stderr,
        )
        raise
    bar.close()
    if failed:
        raise RuntimeError(
            f"{desc}: {len(failed)} of {len(jobs)} jobs failed; the finished "
            "chunks are kept, rerun to retry the rest:\n  " + "\n  ".join(failed)
        )
    return _summary(made, busy, start)


def _complete(path: Path) -> bool:
    """A finished chunk; one cut short (no zip directory) is said and removed, so that it is
    made again rather than merged. (Its records' CRCs are checked when the merge reads it:
    reading every chunk twice would double the I/O of a large set.)"""
    if not path.exists():
        return False
    problem = zip_problem(path, crc=False)
    if problem is None:
        return True
    tqdm.write(f"{path}: {problem}; removed, it is generated again", file=sys.stderr)
    path.unlink()
    return False


def check_resume(chunk_dir: Path, settings: dict) -> None:
    """Record the settings in ``chunk_dir/config.json``; chunks made with other settings are
    never merged with these: a difference is an error naming the settings that differ."""
    record = Path(chunk_dir) / "config.json"
    if record.exists():
        earlier = json.loads(record.read_text())
        differ = sorted(
            k for k in set(earlier) | set(settings) if earlier.get(k) != settings.get(k)
        )
        if differ:
            changes = ", ".join(f"{k}: {earlier.get(k)!r} → {settings.get(k)!r}" for k in differ)
            raise ValueError(
                f"{chunk_dir} holds chunks made with other settings ({changes}); "
                f"use the earlier settings to resume, or delete {chunk_dir} to "
                f"start over"
            )
        return
    record.write_text(json.dumps(settings, indent=1))


def load_chunk(path: Path, keys=None) -> dict:
    """The arrays of one chunk (only ``keys`` if given) for a merge; a damaged chunk is removed
    and named in the error, so that rerunning the command makes it again."""
    try:
        with np.load(path) as chunk:
            return {k: chunk[k] for k in (keys or chunk.files)}
    except Exception as error:
        Path(path).unlink(missing_ok=True)
        raise RuntimeError(
            f"chunk {path} is damaged ({type(error).__name__}: {error}); it was "
            "removed — run the same command again to make it anew"
        ) from None


def _temporary(path: Path) -> Path:
    """A writer's own temporary name: two writers of one chunk (a rerun while an earlier job
    still runs) never write into the same file."""
    return path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")


def _stale_temporaries(path: Path) -> list:
    return list(path.parent.glob(f".{path.stem}.*.tmp.npz"))


def _marker(path: Path) -> Path:
    """Left beside a chunk submitted by a run that did not wait for it."""
    return path.with_name(f".{path.stem}.submitted")


def _make_many(group: list) -> list:
    """One submitit job: several chunks in turn (a job array of thousands of seconds-long
    jobs would spend more time in the scheduler than in Pythia)."""
    return [_make(args) for args in group]


def run_chunks(
    worker,
    tasks: list[tuple[Path, object]],
    desc: str,
    unit: str = "jets",
    processes: int | None = None,
    executor=None,
    chunks_per_job: int = 1,
    wait: bool = True,
) -> dict | None:
    """Make every chunk ``path`` missing on disk as ``worker(payload)`` (a dict of arrays).

    ``worker`` must be a module-level function (it runs in forked processes, or in submitit
    jobs). Without ``executor`` the chunks run in a process pool on this machine; with a
    submitit executor (SLURM, local, debug) they run as one job array of ``chunks_per_job``
    chunks per job, and ``wait=False`` returns None right after submitting. Shows a progress
    bar with the rate overall and per core; returns ``{"made", "seconds", "per_s",
    "per_s_per_core"}`` for the chunks made in this call.
    """
    todo = [(worker, payload, Path(path)) for path, payload in tasks if not _complete(Path(path))]
    for _, _, path in todo:
        for stale in _stale_temporaries(path):  # left by a run killed mid-write
            if executor is not None and not wait and _marker(path).exists():
                continue  # a job of an earlier run may still be writing it
            stale.unlink(missing_ok=True)
    for path, _ in tasks:
        if Path(path).exists():
            _marker(Path(path)).unlink(missing_ok=True)
    if executor is not None:
        return _run_jobs(todo, tasks, desc, unit, executor, chunks_per_job, wait)
    processes = processes or os.cpu_count() or 1
    start, made, busy = time.perf_counter(), 0, 0.0
    bar = tqdm(total=len(tasks), initial=len(tasks) - len(todo), unit="chunk", desc=desc)
    # a signal while the workers are forked waits (blocked) until the handlers are in place
    main = threading.current_thread() is threading.main_thread()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS) if main else None
    try:
        pool = multiprocessing.get_context("fork").Pool(
            min(processes, max(1, len(todo))), initializer=_worker_signals
        )
    except BaseException:
        if main:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        raise
    with _signals_raise():
        try:
            if main:  # a signal that came while forking raises here, inside the clean-up
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            for n, seconds in pool.imap_unordered(_make, todo):
                made, busy = made + n, busy + seconds
                elapsed = time.perf_counter() - start
                bar.set_postfix(
                    {
                        f"{unit}/s": f"{made / elapsed:.1f}",
                        "per_core": f"{made / max(busy, 1e-9):.1f}",
                    }
                )
                bar.update()
            pool.close()
        except Interrupted as stop:
            for s in STOP_SIGNALS:  # a second Ctrl-C or SIGTERM must not cut the clean-up short
                signal.signal(s, signal.SIG_IGN)  # (restored when the with-block ends)
            pool.terminate()
            pool.join()
            bar.close()
            for _, _, path in todo:
                for stale in _stale_temporaries(path):
                    stale.unlink(missing_ok=True)
            done = sum(Path(path).exists() for path, _ in tasks)
            folder = Path(tasks[0][0]).parent if tasks else Path(".")
            tqdm.write(
                f"{desc}: stopped by {signal.Signals(stop.signum).name}; {done} of "
                f"{len(tasks)} chunks are complete in {folder}. Run the same command "
                f"again to resume from there.",
                file=sys.stderr,
            )
            raise
        except BaseException:
            pool.terminate()
            raise
        finally:
            pool.join()
    bar.close()
    return _summary(made, busy, start)


def generate_chunked(
    cfg, output: Path, worker, unit: str, write, processes: int | None = None, **jobs
) -> dict | None:
    """The skeleton every generator shares: chunks in ``OUTPUT.chunks/``, made, merged, removed.

    Parameters
    ----------
    cfg : dataclass
        The generator's settings; ``cfg.chunks()`` lists the chunks, the last field of each being
        its index. Recorded in the chunk folder, so a resume with other settings is refused.
    output : Path
        The file to write.
    worker : callable
        Module-level ``(cfg, chunk) → dict of arrays``, run in worker processes or jobs.
    unit : str
        What a chunk counts (``"jets"``, ``"events"``), for the progress bar.
    write : callable
        ``(output, chunk_paths, timing)``: merges the chunks into ``output``.
    processes, jobs
        As :func:`run_chunks`.

    Returns
    -------
    dict or None
        The timing summary of :func:`run_chunks`; None when the jobs were submitted, not waited
        for (nothing is merged until every chunk is on disk).
    """
    output = Path(output)
    chunk_dir = output.with_name(output.name + ".chunks")
    chunk_dir.mkdir(parents=True, exist_ok=True)
    check_resume(chunk_dir, asdict(cfg))
    chunks = cfg.chunks()
    paths = [chunk_dir / f"chunk_{chunk[-1]:05d}.npz" for chunk in chunks]
    tasks = [(path, (cfg, chunk)) for path, chunk in zip(paths, chunks)]
    timing = run_chunks(worker, tasks, f"generating {output.name}", unit, processes, **jobs)
    if timing is None:  # submitted, not waited for
        return None
    write(output, paths, timing)
    shutil.rmtree(chunk_dir)  # merged: the chunks were only kept to resume an interrupted run
    return timing
