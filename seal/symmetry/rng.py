"""Isolation of the penalty's forwards from training: random numbers and running statistics.

A penalty's forwards must neither consume the task's random numbers nor move its buffers
(BatchNorm running statistics), so that λ = 0 trains bit-for-bit like no penalty. Dropout masks
are matched between compared forwards by replaying one RNG state, as activation checkpointing
does.
"""

import contextlib

import torch
from torch import nn

from seal.symmetry.batching import batch_device


def get_rng_state(device: torch.device) -> tuple:
    """Global RNG state: the CPU generator's, and the CUDA device's when ``device`` is one."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


def set_rng_state(state: tuple, device: torch.device) -> None:
    """Restore a state from :func:`get_rng_state`."""
    torch.set_rng_state(state[0])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state[1], device)


@contextlib.contextmanager
def replayable_rng(device: torch.device, state: tuple | None = None):
    """Context yielding ``replay()``, which sets the global RNG to ``state`` (default: the state
    at entry). The state at entry is restored on exit, so nothing inside consumes the caller's
    random numbers."""
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        start = state if state is not None else get_rng_state(device)
        yield lambda: set_rng_state(start, device)


def buffer_snapshot(model, names: tuple[str, ...]) -> dict:
    """Clones of the buffers ``names`` of ``model`` ({} for a plain function or no names)."""
    if not names or not isinstance(model, nn.Module):
        return {}
    buffers = dict(model.named_buffers())
    return {n: buffers[n].detach().clone() for n in names}


@contextlib.contextmanager
def isolated(model, names: tuple[str, ...], device: torch.device, state=None, buffers=None):
    """Forwards inside neither consume the caller's random numbers nor write its buffers.

    The global RNG is forked and the buffers ``names`` of ``model`` are swapped for scratch
    copies (the task's tensors are never written, so autograd graphs that saved them stay
    valid). Yields ``replay()``, which resets both to the start — the RNG to ``state`` (default:
    the state at entry), the scratch buffers to ``buffers`` (default: their values at entry) —
    so that every forward after a ``replay()`` sees the same dropout masks and the same buffer
    values (running statistics, power-iteration vectors). Everything is restored on exit.
    """
    with replayable_rng(device, state) as rewind:
        if not names or not isinstance(model, nn.Module):
            yield rewind
            return
        start = buffers if buffers is not None else buffer_snapshot(model, names)
        slots = []
        for name in names:
            owner_name, _, leaf = name.rpartition(".")
            owner = model.get_submodule(owner_name)
            slots.append((name, owner, leaf, owner._buffers[leaf]))

        def replay():
            rewind()
            for name, owner, leaf, _ in slots:  # a fresh clone: graphs may hold the last one
                owner._buffers[leaf] = start[name].clone()

        replay()
        try:
            yield replay
        finally:
            for _, owner, leaf, original in slots:
                owner._buffers[leaf] = original


def rng_device(model, batch: dict) -> torch.device:
    """Where the model draws its random numbers: its parameters' device, else the batch's."""
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is not None:
            return parameter.device
    return batch_device(batch)
