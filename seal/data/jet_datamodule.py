"""Streaming jet batches from HDF5 with bounded memory, and the top-tagging DataModule."""

import copy
import logging
import math
import multiprocessing
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from seal.data.generated import generate_missing
from seal.data.jets import NO_DATA_HINT, JetFile, check_choice
from seal.data.tensordict import SplitLoaders, rank_and_world

log = logging.getLogger(__name__)

BATCH_KEYS = ("p4", "mask", "target", "weight", "jet_p4", "index")  # index: row in the file
# JetStream shards its chunks over workers and ranks itself, so its __len__ is right
warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined")


class JetStream(IterableDataset):
    """Batches of the selected rows of a jet file, read ``chunk_rows`` rows at a time.

    Parameters
    ----------
    path, n_constituents
        The file and constituents per jet (see :class:`JetFile`).
    selected : bool array (rows,)
        The rows of this split (index range and pT window).
    batch_size : int
    shuffle : bool
        Shuffle the chunk order and the rows inside a two-chunk buffer (a new order every
        epoch); otherwise rows come in file order.
    chunk_rows : int
        Rows per read; memory is O(chunk_rows × constituents).
    transform : callable, optional
        Applied to every batch dict (e.g. augmentation).
    by_rank : bool
        Share the chunks out over DDP ranks (training, validation, test); ``False`` gives one
        process every row (the post-training evaluation on rank 0).
    num_workers : int
        DataLoader workers the chunks are shared out over.
    seed : int, optional
        Seed of the shuffled chunk order; default ``torch.initial_seed()`` (the run's seed).
    padding : {"batch", "fixed"}
        ``batch``: ``p4`` and ``mask`` end at the last slot any jet of the batch fills (slots
        that are padding in every jet are left out: exact for any network that respects the
        mask); ``fixed``: always ``n_constituents`` slots.
    negative_weights, labels
        See :class:`~seal.data.jets.JetFile`.

    Notes
    -----
    Chunks are shared out over DataLoader workers (and DDP ranks), so each row is read once per
    epoch across the whole job. Batches carry ``index``, each jet's row in the file.

    Shuffled (training) streams split over several ranks or workers share out *rows*, not
    chunks: the chunks are put in an order drawn from ``seed`` and the epoch (the same on every
    rank), and each (rank, worker) shard takes an equal run of rows from that sequence, padded
    by rows from its start where the total does not divide, as a distributed sampler pads. So
    every rank yields exactly ``len(self)`` batches (DDP steps in lockstep: a rank with one batch
    more would wait forever in its gradient all-reduce), whatever the sizes of the chunks.
    """

    def __init__(
        self,
        path,
        n_constituents,
        selected,
        batch_size,
        shuffle=False,
        chunk_rows=16384,
        transform=None,
        by_rank=True,
        num_workers=0,
        seed=None,
        padding="batch",
        negative_weights="refuse",
        labels="binary",
    ):
        super().__init__()
        for key, value in (
            ("padding", padding),
            ("negative_weights", negative_weights),
            ("labels", labels),
        ):
            check_choice(key, value)
        self.padding, self.negative_weights, self.labels = padding, negative_weights, labels
        # the shared chunk order: after seed_everything, the run's seed on every rank
        self.seed = torch.initial_seed() if seed is None else int(seed)
        # the epoch, set by EpochLoader before every pass; shared memory, so persistent worker
        # processes read the new value too
        self._epoch = multiprocessing.RawValue("q", 0)
        # batches of this pass already trained on (a mid-epoch resume): read, never yielded
        self._skip = multiprocessing.RawValue("q", 0)
        self.path, self.n_constituents, self.selected = Path(path), n_constituents, selected
        self.batch_size, self.shuffle, self.chunk_rows = batch_size, shuffle, chunk_rows
        self.transform, self.by_rank, self.num_workers = transform, by_rank, num_workers

    @property
    def epoch(self) -> int:
        return self._epoch.value

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """The pass's epoch (its order) and how many of its first batches to leave out."""
        self._epoch.value, self._skip.value = int(epoch), int(skip)

    def _world(self) -> tuple[int, int]:
        return rank_and_world() if self.by_rank else (0, 1)

    def __len__(self) -> int:
        """Batches this rank yields: exact in file order (evaluation: Lightning stops a loop
        after ``len`` batches, so an underestimate would drop jets); the even share when the
        chunks are shuffled (their split over ranks changes every epoch)."""
        rank, world = self._world()
        if self.shuffle and world * max(1, self.num_workers) > 1:
            workers = max(1, self.num_workers)
            per_shard = math.ceil(int(self.selected.sum()) / (world * workers))
            return workers * math.ceil(per_shard / self.batch_size)
        if self.shuffle:
            return math.ceil(int(self.selected.sum()) / self.batch_size)
        starts, workers = self._chunk_starts(), max(1, self.num_workers)
        batches = 0
        for worker in range(workers):  # each worker batches its own chunks' rows
            mine = starts[rank * workers + worker :: world * workers]
            rows = sum(int(self.selected[a : a + self.chunk_rows].sum()) for a in mine)
            batches += math.ceil(rows / self.batch_size)
        # a rank without chunks still runs its (empty) loop, so it joins the epoch-end gather
        return max(1, batches) if world > 1 else batches

    def _chunk_starts(self) -> list[int]:
        return [
            a
            for a in range(0, len(self.selected), self.chunk_rows)
            if self.selected[a : a + self.chunk_rows].any()
        ]

    def _shards(self) -> tuple[int, int, int, int]:
        """(this shard, shards, workers of this rank, batches of the shard to leave out): one
        shard per (rank, worker). The DataLoader takes batches from its workers in turn,
        starting with worker 0, and the pass's batch i comes from the rank's shard i mod W: a
        pass resumed after ``skip`` batches gives worker j the shard (skip + j) mod W, from its
        batch (skip + j) // W on, so the batches come in the order they would have."""
        worker = get_worker_info()
        n_workers, worker_id = (worker.num_workers, worker.id) if worker else (1, 0)
        rank, world = self._world()
        skip = self._skip.value
        role = (worker_id + skip) % n_workers
        return (
            rank * n_workers + role,
            world * n_workers,
            n_workers,
            (skip + worker_id) // n_workers,
        )

    def _my_pieces(self) -> list[tuple[int, int, int]]:
        """This shard's reads: (chunk start, first, last) = the chunk's selected rows
        ``[first, last)``. In file order: whole chunks, dealt out round-robin. Shuffled and
        split: an equal run of rows of the shuffled chunk sequence (see the class docstring)."""
        starts = self._chunk_starts()
        counts = [int(self.selected[a : a + self.chunk_rows].sum()) for a in starts]
        shard, n_shards, _, _ = self._shards()
        if self.shuffle:  # the same order on every rank and worker
            order = np.random.default_rng([self.seed, self.epoch]).permutation(len(starts))
            starts, counts = [starts[i] for i in order], [counts[i] for i in order]
        if not self.shuffle or n_shards == 1:
            return [(a, 0, c) for a, c in zip(starts, counts)][shard::n_shards]
        total, edges = sum(counts), np.cumsum([0, *counts])
        per_shard = math.ceil(total / n_shards)
        pieces, begin = [], shard * per_shard
        while begin < (shard + 1) * per_shard:  # positions past the total wrap to the start
            lo = begin % total
            hi = min(lo + (shard + 1) * per_shard - begin, total)
            for i, a in enumerate(starts):
                first, last = max(lo, edges[i]), min(hi, edges[i + 1])
                if first < last:
                    pieces.append((a, int(first - edges[i]), int(last - edges[i])))
            begin += hi - lo
        return pieces

    def __iter__(self):
        shard, n_shards, n_workers, skip = self._shards()
        # the order of rows inside this shard: new every epoch, reproducible on resume
        rng = np.random.default_rng([self.seed, self.epoch, shard])
        pieces = self._my_pieces()
        # batches of the shard already trained on (a resumed pass) are read, not built
        if not self.shuffle or n_shards == 1:
            for i, rows in enumerate(self._batches(pieces, rng)):
                if i >= skip:
                    yield self._batch(rows)
            return
        # a shard of per_shard rows gives this many batches; jets without constituents, dropped
        # when read, could make it one fewer: then rows are read again, never a batch short
        quota, made = len(self) // n_workers, 0
        while made < quota:
            before = made
            for rows in self._batches(pieces, rng):
                if made >= skip:
                    yield self._batch(rows)
                made += 1
                if made == quota:
                    return
            if made == before:
                raise RuntimeError(f"{self.path}: the split has no jets to batch")

    def _batches(self, pieces: list[tuple[int, int, int]], rng):
        """The shard's batches as row dicts, in order (:meth:`_batch` makes the tensors)."""
        file = JetFile(self.path, self.n_constituents, self.negative_weights, self.labels)
        buffer = None
        try:
            for start, first, last in pieces:
                stop = min(start + self.chunk_rows, len(self.selected))
                keep = self.selected[start:stop]
                if (first, last) != (0, int(keep.sum())):
                    part = np.zeros_like(keep)
                    part[np.flatnonzero(keep)[first:last]] = True
                    keep = part
                rows = file.read(start, stop, keep)
                buffer = (
                    rows
                    if buffer is None
                    else {k: np.concatenate((buffer[k], rows[k])) for k in rows}
                )
                if self.shuffle:
                    order = rng.permutation(len(buffer["target"]))
                    buffer = {k: v[order] for k, v in buffer.items()}
                while len(buffer["target"]) >= self.batch_size:
                    yield {k: v[: self.batch_size] for k, v in buffer.items()}
                    buffer = {k: v[self.batch_size :] for k, v in buffer.items()}
            if buffer is not None and len(buffer["target"]):
                yield buffer
        finally:
            file.close()

    def _batch(self, rows: dict) -> dict:
        if self.padding == "batch":
            rows = trim_padding(rows)
        batch = {k: torch.from_numpy(np.ascontiguousarray(rows[k])) for k in BATCH_KEYS}
        return batch if self.transform is None else self.transform(batch)


def trim_padding(rows: dict) -> dict:
    """``p4`` and ``mask`` cut after the last slot any jet of the batch fills (at least one)."""
    filled = np.flatnonzero(rows["mask"].any(0))
    width = int(filled[-1]) + 1 if len(filled) else 1
    return rows | {"p4": rows["p4"][:, :width], "mask": rows["mask"][:, :width]}


class EpochLoader(DataLoader):
    """A DataLoader that tells its :class:`JetStream` the epoch before every pass: the trainer's
    ``current_epoch`` (so a resumed run continues the sequence of shuffles where it stopped),
    else the number of passes so far.

    The epoch is read when the pass yields its first batch, not when the iterator is made:
    Lightning makes the training iterator before it restores a checkpoint's epoch counter, so a
    run resumed at an epoch boundary would otherwise replay the previous epoch's order.

    Lightning stores ``state_dict`` — the pass's epoch and the batches it has yielded — in
    checkpoints and hands it back on resume (``load_state_dict``): the first pass of that epoch
    then leaves those batches out, so a run stopped mid-epoch continues on exactly the batches
    it would have seen."""

    def __init__(self, stream: JetStream, epoch_fn=None, **kwargs):
        # its own generator: every pass draws a base seed, which must not move the global RNG
        # (a resumed pass draws it after the RNG states are restored: the dropout would shift)
        kwargs.setdefault("generator", torch.Generator().manual_seed(stream.seed))
        super().__init__(stream, **kwargs)
        self.epoch_fn, self.passes = epoch_fn, 0
        self.epoch, self.yielded, self._resume = None, 0, None

    def __iter__(self):
        return _FirstBatchStart(self)

    def _start(self):
        epoch = self.epoch_fn() if self.epoch_fn is not None else None
        self.epoch = self.passes if epoch is None else epoch
        skip = 0
        if self._resume is not None and self._resume[0] == self.epoch:
            skip = self._resume[1]
        self._resume = None
        self.dataset.set_epoch(self.epoch, skip)
        self.passes += 1
        self.yielded = skip
        return super().__iter__()

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches": self.yielded}

    def load_state_dict(self, state: dict) -> None:
        if state.get("epoch") is not None:
            self._resume = (int(state["epoch"]), int(state["batches"]))


class _FirstBatchStart:
    """An :class:`EpochLoader` pass that starts (sets the epoch, makes the DataLoader's
    iterator) on its first ``next``."""

    def __init__(self, loader: EpochLoader):
        self.loader, self.inner = loader, None

    def __iter__(self):
        return self

    def __next__(self):
        if self.inner is None:
            self.inner = self.loader._start()
        batch = next(self.inner)
        self.loader.yielded += 1
        return batch


def _check_window(name: str, window) -> None:
    """A pT window is null or [lo, hi] in GeV, either end null (open), lo < hi."""
    if window is None:
        return
    try:
        lo, hi = window
        ends = [None if v is None else float(v) for v in (lo, hi)]
    except (TypeError, ValueError):
        raise ValueError(
            f"data.{name} must be [lo, hi] in GeV (either end null for an open window) or null; "
            f"got {window!r} — e.g. data.{name}=[null,800]"
        ) from None
    if None not in ends and not ends[0] < ends[1]:
        raise ValueError(f"data.{name}=[{lo}, {hi}] is empty: lo must be below hi")


class JetDataModule(SplitLoaders):
    """Top-tagging data from one HDF5 file (ATLAS or Top Landscape layout).

    Parameters
    ----------
    path : str
        The file; when it does not exist and ``generate`` is given, the default set is generated
        there once (``prepare_data``) and reused afterwards.
    n_constituents : int
        Constituents per jet fed to the model.
    split : (float, float, float)
        Train, validation and test fractions of the rows, in file order (files are shuffled);
        they may sum to less than 1, leaving the last rows unused (a smaller test set, say).
    train_pt, val_pt, test_pt : [lo, hi] in GeV or None
        Jet-pT windows per split (extrapolation: train/val below a cut, test above it).
    batch_size, num_workers, chunk_rows
        Loader settings.
    max_jets : int, optional
        Use only the first rows of the file.
    train_jets : int, optional
        Train on only the first this many jets of the training split
        (after its pT window); validation and test are unchanged (data-efficiency curves).
    generate : dict, optional
        :class:`~seal.generation.jets.GeneratorConfig` fields for a
        missing file (generated on first use).
    augment : callable, optional
        Applied to training batches.
    padding : {"batch", "fixed"}
        Each batch padded to its longest jet (default; the same outputs and penalties for a
        network that respects the mask, less work where jets fill few of the slots), or always
        to ``n_constituents`` (a fixed shape, e.g. for a network that needs one).
    negative_weights : {"refuse", "abs"}
        A negative jet weight stops the run before training, naming the jet (default), or is
        read as its absolute value (:class:`~seal.data.jets.JetFile`).
    labels : {"binary", "soft"}
        Labels 0 or 1 (default, anything else refused naming the jet), or any value in [0, 1]
        (soft labels: the loss takes them as they are, metrics count label > 0.5 as signal).
    """

    def __init__(
        self,
        path,
        n_constituents=80,
        split=(0.8, 0.1, 0.1),
        train_pt=None,
        val_pt=None,
        test_pt=None,
        batch_size=256,
        num_workers=0,
        chunk_rows=16384,
        max_jets=None,
        train_jets=None,
        generate=None,
        augment=None,
        padding="batch",
        negative_weights="refuse",
        labels="binary",
    ):
        super().__init__()
        for key, value in (
            ("padding", padding),
            ("negative_weights", negative_weights),
            ("labels", labels),
        ):
            check_choice(key, value)
        self.padding, self.negative_weights, self.labels = padding, negative_weights, labels
        if len(split) != 3 or min(split) < 0 or sum(split) > 1.0 + 1e-9 or sum(split) <= 0:
            raise ValueError(
                f"data.split must be three fractions summing to at most 1; got {split}"
            )
        for name, value, least in (
            ("batch_size", batch_size, 1),
            ("chunk_rows", chunk_rows, 1),
            ("num_workers", num_workers, 0),
            ("n_constituents", n_constituents, 1),
            ("max_jets", max_jets, 1),
        ):
            if value is None and name == "max_jets":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(
                    f"data.{name} must be a whole number ≥ {least}"
                    f"{' (or null: the whole file)' if name == 'max_jets' else ''}; got {value!r}"
                )
        for name, window in (("train_pt", train_pt), ("val_pt", val_pt), ("test_pt", test_pt)):
            _check_window(name, window)
        self.path, self.n_constituents, self.split = Path(path), n_constituents, tuple(split)
        self.pt_windows = {"train": train_pt, "val": val_pt, "test": test_pt}
        self.batch_size, self.num_workers, self.chunk_rows = batch_size, num_workers, chunk_rows
        if train_jets is not None and int(train_jets) < 1:
            raise ValueError(f"data.train_jets must be a positive number of jets; got {train_jets}")
        self.max_jets, self.generate, self.augment = max_jets, generate, augment
        self.train_jets = None if train_jets is None else int(train_jets)
        self.selected: dict[str, np.ndarray] = {}

    def prepare_data(self) -> None:
        generate_missing(self.path, self.generate, "jets")

    def setup(self, stage: str | None = None) -> None:
        if self.selected:
            return
        if not self.path.exists():
            raise FileNotFoundError(
                f"jet file {self.path} does not exist: " + NO_DATA_HINT.format(path=self.path)
            )
        file = JetFile(self.path, self.n_constituents, self.negative_weights, self.labels)
        try:
            pt = file.jet_pt()[: self.max_jets]
            self._select(pt)
            self._check(file)
        except Exception:
            self.selected = {}
            raise
        finally:
            file.close()

    def _select(self, pt: np.ndarray) -> None:
        edges = np.cumsum([0.0, *self.split]) * len(pt)
        rows = np.arange(len(pt))
        for i, name in enumerate(("train", "val", "test")):
            chosen = (rows >= edges[i]) & (rows < edges[i + 1])
            window = self.pt_windows[name]
            if window is not None:
                lo, hi = window
                chosen &= (pt >= (lo if lo is not None else -np.inf)) & (
                    pt < (hi if hi is not None else np.inf)
                )
            if self.split[i] > 0 and not chosen.any():
                raise ValueError(
                    f"{self.path}: the {name} split selects no jets (rows {int(edges[i])}–"
                    f"{int(edges[i + 1])}, pT window {window} GeV; "
                    f"file pT {pt.min():.0f}–{pt.max():.0f} GeV)"
                )
            if name == "train" and self.train_jets is not None:
                available = int(chosen.sum())
                if available < self.train_jets:
                    raise ValueError(
                        f"{self.path}: data.train_jets={self.train_jets} but the training split "
                        f"has only {available} jets (pT window {window} GeV)"
                    )
                chosen &= np.cumsum(chosen) <= self.train_jets
            self.selected[name] = chosen

    def _check(self, file: JetFile) -> None:
        """Read every selected jet once, so that a NaN or a negative energy in a test jet stops
        the run before training (naming file and jet), not after it."""
        start_time, n = time.perf_counter(), 0
        chosen = self.selected["train"] | self.selected["val"] | self.selected["test"]
        classes = {name: np.zeros(2, dtype=np.int64) for name in self.selected}
        weights = {name: np.zeros(2) for name in self.selected}
        for start in range(0, len(chosen), self.chunk_rows):
            keep = chosen[start : start + self.chunk_rows]
            if keep.any():
                read = file.read(start, start + len(keep), keep)
                n += len(read["target"])
                for name, rows in self.selected.items():
                    here = rows[read["index"]]
                    labels = (read["target"][here] > 0.5).astype(np.int64)  # soft: leaning
                    classes[name] += np.bincount(labels, minlength=2)
                    weights[name] += np.bincount(labels, read["weight"][here], minlength=2)
        for i, name in enumerate(("train", "val", "test")):
            if self.split[i] > 0 and not classes[name].all():
                raise ValueError(
                    f"{self.path}: the {name} split holds {classes[name][0]} background and "
                    f"{classes[name][1]} signal jets (after dropping jets without constituents): "
                    f"training and the AUC need both classes — check the file's labels, "
                    f"data.split and data.{name}_pt"
                )
            if self.split[i] > 0 and not (weights[name] > 0).all():
                kind = "background" if weights[name][0] <= 0 else "signal"
                raise ValueError(
                    f"{self.path}: the {kind} jets of the {name} split have weights summing to "
                    f"{weights[name][int(kind == 'signal')]:g}: the weighted loss and ROC curve "
                    f"need a positive total per class — check the file's weights column"
                )
        log.info(
            "%s: checked %d jets of the three splits in %.1f s (finite, E ≥ 0)",
            self.path,
            n,
            time.perf_counter() - start_time,
        )

    def _loader(self, split, shuffle=False, transform=None, by_rank=True):
        stream = JetStream(
            self.path,
            self.n_constituents,
            self.selected[split],
            self.batch_size,
            shuffle,
            self.chunk_rows,
            transform,
            by_rank,
            self.num_workers,
            padding=self.padding,
            negative_weights=self.negative_weights,
            labels=self.labels,
        )
        return EpochLoader(
            stream,
            self._trainer_epoch,
            batch_size=None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def _trainer_epoch(self) -> int | None:
        trainer = getattr(self, "trainer", None)
        return None if trainer is None else trainer.current_epoch

    def evaluation_dataloader(self):
        """Every test jet, in one process (under DDP the test loader gives a rank its shard)."""
        return self._loader("test", by_rank=False)

    def systematic_set(self, variations="auto", settings=None, pt_tolerance: float = 0.25):
        """The data file with its systematic variations, for the evaluation: seal's detector
        variations made in memory (``auto``) or variation files (a folder or a list); see
        :class:`seal.data.systematics.SystematicSet`."""
        from seal.data.systematics import SystematicSet

        return SystematicSet(self.path, variations, self.n_constituents, pt_tolerance, settings)

    def alternative_test_arrays(self, path) -> dict:
        """The test jets of another sample of the same selection (a two-point modelling
        comparison: another hadronisation or shower), split and windowed as this data's own:
        the batch arrays of every test jet, concatenated. A file of another pT window, |η| cut
        or R is refused, naming both."""
        from seal.data.systematics import check_same_selection

        check_same_selection(self.path, path)
        other = copy.copy(self)
        other.path, other.selected, other.generate = Path(path), {}, None
        other.padding = "fixed"  # the batches are concatenated: one width
        other.setup("test")
        batches = list(other.evaluation_dataloader())
        return {k: torch.cat([b[k] for b in batches]).numpy() for k in batches[0]}
