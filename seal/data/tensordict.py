"""A map-style dataset over a dict of equal-length tensors that yields whole batch dicts."""

import functools

import pytorch_lightning as pl
import torch
from torch import distributed
from torch.utils.data import DataLoader, Dataset, DistributedSampler


class TensorDictDataset(Dataset):
    """Rows of ``tensors`` (dict of tensors sharing the first dimension).

    ``__getitems__`` gathers a whole batch with one index per tensor, so a DataLoader with
    ``collate_fn=collate_dict`` costs one gather per key instead of one per example.
    """

    def __init__(self, tensors: dict[str, torch.Tensor]):
        lengths = {k: len(v) for k, v in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"all entries need the same length; got {lengths}")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, index: int) -> dict:
        return {k: v[index] for k, v in self.tensors.items()}

    def __getitems__(self, indices: list[int]) -> dict:
        index = torch.as_tensor(indices)
        return {k: v[index] for k, v in self.tensors.items()}


def collate_dict(batch, transform=None):
    """Pass a batch dict from ``__getitems__`` through (stacking a list of row dicts
    otherwise), then apply ``transform`` (batch dict → batch dict) if given."""
    if not isinstance(batch, dict):
        batch = {k: torch.stack([row[k] for row in batch]) for k in batch[0]}
    return batch if transform is None else transform(batch)


def rank_and_world() -> tuple[int, int]:
    """(rank, number of ranks) of this DDP process; (0, 1) outside DDP."""
    if distributed.is_available() and distributed.is_initialized():
        return distributed.get_rank(), distributed.get_world_size()
    return 0, 1


class EpochSampler(DistributedSampler):
    """A fresh permutation each epoch, seeded ``(seed, epoch)``, that can start mid-epoch.

    Lightning calls ``set_epoch`` at the start of every epoch; ``resume(epoch, batches)`` makes
    that epoch's iteration skip its first ``batches`` batches (once). Under DDP rank r takes
    every world-size-th row of the permutation (the tail that does not divide is dropped, so
    every rank runs the same number of steps); being a ``DistributedSampler`` it is not
    replaced by Lightning's.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self._skip = 0, {}

    _world = staticmethod(rank_and_world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, batches: int) -> None:
        self._skip = {epoch: batches}

    def __len__(self) -> int:
        return self.n // self._world()[1]

    def __iter__(self):
        rank, world = self._world()
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        order = torch.randperm(self.n, generator=gen)[: len(self) * world][rank::world]
        start = self._skip.pop(self.epoch, 0) * self.batch_size
        return iter(order[start:].tolist())


class ShardSampler(DistributedSampler):
    """Rows in order; under DDP rank r takes rows r, r + world, … with no padding, so the
    ranks together see every row exactly once (Lightning's own ``DistributedSampler`` repeats
    rows to even the ranks out, which would count them twice in whole-split metrics)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        rank, world = EpochSampler._world()
        return len(range(rank, self.n, world))

    def __iter__(self):
        rank, world = EpochSampler._world()
        return iter(range(rank, self.n, world))

    def set_epoch(self, epoch: int) -> None:
        """(Lightning calls it on distributed samplers; the order never changes.)"""


class ResumableLoader(DataLoader):
    """A shuffling DataLoader whose position Lightning saves in checkpoints and restores.

    ``state_dict`` records the epoch and the batches yielded so far, which Lightning 2.6 asks for
    after the step that consumed the last of them (checkpoints are written in batch-end and
    validation hooks, before the next batch is fetched; pinned by tests/callbacks/test_resume.py);
    ``load_state_dict`` makes that epoch continue from the next batch with the same
    order, so a run killed mid-epoch resumes on exactly the batches it would have seen.
    """

    def __init__(self, dataset, batch_size: int, seed: int, **kwargs):
        sampler = EpochSampler(len(dataset), batch_size, seed)
        # its own generator: every iter() draws a base seed, which must not move the global RNG
        generator = torch.Generator().manual_seed(seed)
        super().__init__(dataset, batch_size, sampler=sampler, generator=generator, **kwargs)
        self._yielded = 0

    def __iter__(self):
        self._yielded = self.sampler._skip.get(self.sampler.epoch, 0)
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict:
        return {"seed": self.sampler.seed, "epoch": self.sampler.epoch, "batches": self._yielded}

    def load_state_dict(self, state: dict) -> None:
        self.sampler.seed = int(state["seed"])
        self.sampler.resume(int(state["epoch"]), int(state["batches"]))


def loader(tensors: dict, batch_size: int, shuffle=False, transform=None, seed=None, **kwargs):
    """A DataLoader over ``TensorDictDataset(tensors)`` yielding (transformed) batch dicts.

    With ``shuffle`` it is a :class:`ResumableLoader` seeded with ``seed`` (default
    ``torch.initial_seed()``, i.e. the run's seed after ``seed_everything``); otherwise rows
    come in order, shared out over DDP ranks without repeats (:class:`ShardSampler`).
    """
    collate = functools.partial(collate_dict, transform=transform)
    dataset = TensorDictDataset(tensors)
    if shuffle:
        seed = torch.initial_seed() if seed is None else seed
        return ResumableLoader(dataset, batch_size, seed, collate_fn=collate, **kwargs)
    sampler = ShardSampler(len(dataset))  # whole-split evaluation: each row once over ranks
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, collate_fn=collate, **kwargs)


class SplitLoaders(pl.LightningDataModule):
    """A datamodule whose three loaders come from one ``_loader(split, shuffle, transform)``.

    Training batches are shuffled and go through ``self.augment``; validation and test batches
    come in order, unaugmented.
    """

    def train_dataloader(self):
        return self._loader("train", shuffle=True, transform=self.augment)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")
