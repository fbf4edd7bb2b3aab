"""Batch-dict plumbing shared by the penalties: sizes, heads, joins, output checks, precision."""

import math
from collections.abc import Mapping

import torch

from seal.groups import check_four_vectors

OUTPUTS = ("scalar", "vector")


def batch_size(batch: dict) -> int:
    """Leading dimension of the first tensor entry of ``batch``."""
    for value in batch.values():
        if torch.is_tensor(value) and value.dim() > 0:
            return int(value.shape[0])
    raise ValueError("cannot infer the batch size: the batch holds no tensors")


def batch_device(batch: dict) -> torch.device:
    """Device of the first tensor entry of ``batch``."""
    return next(v.device for v in batch.values() if torch.is_tensor(v))


def per_example(value, size: int) -> bool:
    return torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == size


def rows_of(batch: dict, start: int, stop: int | None = None) -> dict:
    """Rows ``start:stop`` of every per-example entry (other entries shared)."""
    size = batch_size(batch)
    return {k: v[start:stop] if per_example(v, size) else v for k, v in batch.items()}


def head(batch: dict, rows: int) -> dict:
    """The first ``rows`` examples of every per-example entry (other entries shared)."""
    return rows_of(batch, 0, rows)


def join(batch: dict, copies: list[dict], rows: int) -> dict:
    """``batch`` followed by each copy; a copy's missing per-example entries repeat the first
    ``rows`` rows of ``batch`` (mask, target, ...)."""
    size = batch_size(batch)
    return {
        k: torch.cat([v] + [c.get(k, v[:rows]) for c in copies]) if per_example(v, size) else v
        for k, v in batch.items()
    }


def stack_copies(batch: dict, copies: list[dict]) -> dict:
    """The copies alone as one batch; entries a copy lacks repeat ``batch``'s (same rows)."""
    size = batch_size(batch)
    return {
        k: torch.cat([c.get(k, v) for c in copies]) if per_example(v, size) else v
        for k, v in batch.items()
    }


def penalty_rows(size: int, fraction: float) -> int:
    """Rows the penalty is evaluated on: ``ceil(fraction · B)``, at least one."""
    # (the 1e-9 keeps 0.1 · 30 = 3.0000000000000004 at 3 rows)
    return min(size, max(1, math.ceil(fraction * size - 1e-9)))


def four_vector_keys(batch: dict, key: str, extra_keys) -> list[str]:
    """``key`` and the ``extra_keys`` present, each checked to be finite ``(..., 4)``."""
    if not isinstance(batch, Mapping):
        shape = f" of shape {tuple(batch.shape)}" if torch.is_tensor(batch) else ""
        raise TypeError(
            f"the symmetry penalty takes a batch dict ({{{key!r}: four-momenta, 'mask': ..., "
            f"...}}, what the model's forward reads); got a {type(batch).__name__}{shape} — "
            f"pass {{{key!r}: x}}, or wrap a model whose forward takes a tensor"
        )
    if key not in batch:
        raise KeyError(
            f"the symmetry penalty transforms batch[{key!r}], but the batch has only "
            f"{sorted(batch)}; set the penalty's `key` to the four-momentum entry"
        )
    keys = [key] + [k for k in extra_keys if k in batch and k != key]
    for k in keys:
        value = batch[k]
        if torch.is_tensor(value) and not (value.is_floating_point() or value.is_complex()):
            raise TypeError(
                f"batch[{k!r}] has dtype {value.dtype}; four-momenta must be floating point "
                f"(cast them with .float() or .double())"
            )
        check_four_vectors(value, k)
        if value.shape[0] == 0:
            raise ValueError(
                f"batch[{k!r}] holds no examples (shape {tuple(value.shape)}); the symmetry "
                f"penalty needs a batch of at least one"
            )
    if "mask" in batch and batch[key].dim() == 3:
        check_mask(batch["mask"], batch[key])
    return keys


def check_mask(mask, p4: torch.Tensor) -> None:
    """``mask`` must be ``(B, N)`` like ``p4`` ``(B, N, 4)``, bool or 0/1 numbers."""
    if not torch.is_tensor(mask) or tuple(mask.shape) != tuple(p4.shape[:2]):
        shape = tuple(mask.shape) if torch.is_tensor(mask) else type(mask).__name__
        raise ValueError(
            f"batch['mask'] must have shape (B, N) = {tuple(p4.shape[:2])} like batch['p4'] "
            f"{tuple(p4.shape)}; got {shape}"
        )
    if mask.dtype != torch.bool and not ((mask == 0) | (mask == 1)).all():
        bad = mask[(mask != 0) & (mask != 1)][0].item()
        raise ValueError(
            f"batch['mask'] must be bool (True: a real particle) or 0/1; it holds {bad} "
            f"({mask.dtype})"
        )


def check_output_kind(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"unknown output kind {output!r}; choose one of {OUTPUTS}")


def as_output(y, output: str, size: int, owner: str = "the model") -> torch.Tensor:
    """Model output as (B,) for ``scalar`` or (B, 4) for ``vector``; else a ValueError naming
    ``owner`` and the contract."""
    shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
    if output == "scalar" and shape in ((size,), (size, 1)):
        return y.reshape(size)
    if output == "vector" and shape == (size, 4):
        return y
    want = "(B,) or (B, 1)" if output == "scalar" else "(B, 4)"
    other = "(B, 4) needs output=vector" if shape == (size, 4) else ""
    raise ValueError(
        f"{owner} returned {shape} for a batch of B = {size}; output={output!r} needs model "
        f"outputs of shape {want}: forward(batch) must give one invariant per example "
        f"((B,) or (B, 1), output=scalar) or one four-vector ((B, 4), output=vector)"
        + (f"; {other}" if other else "")
    )


def full_precision(device: torch.device):
    """Autocast off: group actions and finite-difference shifts stay in the inputs' dtype."""
    return torch.autocast(device.type, enabled=False)


def at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def reduced_precision(device: torch.device) -> bool:
    return torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) in (
        torch.float16,
        torch.bfloat16,
    )
