"""Isolation of the penalty's forwards from training: random numbers and running statistics.

A penalty's forwards must neither consume the task's random numbers nor move its buffers
(BatchNorm running statistics), so that λ = 0 trains bit-for-bit like no penalty. Dropout masks
are matched between compared forwards by replaying one RNG state, as activation checkpointing
does.
"""

import contextlib

import torch
from torch import nn


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


@contextlib.contextmanager
def scratch_buffers(model, names: tuple[str, ...]):
    """Inside, the buffers ``names`` of ``model`` are clones: updates made there (running
    statistics) are dropped on exit. The task's tensors are swapped out, never written, so an
    autograd graph that saved them stays valid."""
    if not names or not isinstance(model, nn.Module):
        yield
        return
    saved = []
    for name in names:
        owner_name, _, leaf = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        original = owner._buffers[leaf]
        saved.append((owner, leaf, original))
        owner._buffers[leaf] = original.clone()
    try:
        yield
    finally:
        for owner, leaf, original in saved:
            owner._buffers[leaf] = original


def buffer_snapshot(model) -> dict:
    """Copies of every floating or integer buffer of ``model`` ({} for a plain function)."""
    if not isinstance(model, nn.Module):
        return {}
    return {n: b.detach().clone() for n, b in model.named_buffers() if b is not None}


def changed_buffers(model, before: dict) -> tuple[str, ...]:
    """Names of the buffers that differ from ``before`` (:func:`buffer_snapshot`)."""
    if not isinstance(model, nn.Module):
        return ()
    now = dict(model.named_buffers())
    return tuple(n for n, b in before.items() if not torch.equal(now[n], b))
