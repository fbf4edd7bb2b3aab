"""A map-style dataset over a dict of equal-length tensors that yields whole batch dicts."""

import functools

import torch
from torch.utils.data import DataLoader, Dataset


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


def loader(tensors: dict, batch_size: int, shuffle=False, transform=None, **kwargs) -> DataLoader:
    """A DataLoader over ``TensorDictDataset(tensors)`` yielding (transformed) batch dicts."""
    return DataLoader(
        TensorDictDataset(tensors), batch_size=batch_size, shuffle=shuffle,
        collate_fn=functools.partial(collate_dict, transform=transform), **kwargs,
    )  # fmt: skip
