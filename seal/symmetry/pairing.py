"""Paired dropout for joined forwards.

A fused penalty runs the model once on ``[x ; t₁(x[:m]) ; t₂(x[:m]) ; …]`` — the batch followed
by transformed copies of its first ``m`` rows. Each copy must see the dropout mask of the row it
was made from, or mask noise would pass for symmetry breaking. Inside :func:`paired_rows`:

* every ``nn.Dropout`` module draws one mask for the ``B`` original rows and gives each copy the
  mask of its source row (through a global forward hook, so any model is covered);
* models with functional dropout (attention probabilities inside a fused SDPA kernel, say) call
  :func:`dropout` instead, which does the same, or check :func:`active` to take a route that can.

Other stochastic layers (``Dropout1d/2d/3d``, ``AlphaDropout``, in-place dropout) are refused with
an error naming the module rather than silently unpaired.
"""

import contextlib
import contextvars

import torch
from torch import nn

_SOURCE: contextvars.ContextVar = contextvars.ContextVar("seal_paired_rows", default=None)


def active() -> bool:
    """True inside :func:`paired_rows`."""
    return _SOURCE.get() is not None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """``F.dropout`` whose mask rows are shared between paired rows inside :func:`paired_rows`."""
    source = _SOURCE.get()
    if source is None or not training or p == 0.0:
        return nn.functional.dropout(x, p, training)
    n_base, index = source
    if x.shape[0] != len(index):
        raise RuntimeError(
            f"paired dropout expected {len(index)} rows (the joined batch), got a tensor of shape "
            f"{tuple(x.shape)}; a model that reshapes the batch dimension cannot run fused — use "
            f"the regulariser's implementation=separate"
        )
    keep = torch.empty((n_base, *x.shape[1:]), dtype=x.dtype, device=x.device).bernoulli_(1 - p)
    return x * keep.index_select(0, index.to(x.device)) / (1 - p)


def _dropout_hook(module, args, output):
    if not isinstance(module, nn.modules.dropout._DropoutNd):
        return None
    if not module.training or module.p == 0.0:
        return output
    if type(module) is not nn.Dropout or module.inplace:
        raise NotImplementedError(
            f"{module!r} cannot share masks between paired rows (only non-in-place nn.Dropout "
            f"can); use the regulariser's implementation=separate"
        )
    return dropout(args[0], module.p, True)


@contextlib.contextmanager
def paired_rows(n_base: int, copies: int, rows: int, device=None):
    """Rows ``n_base + c·rows + i`` (c < ``copies``, i < ``rows``) share the dropout of row i.

    ``device``: where the row index lives (the batch's), so no dropout call copies it there.
    """
    base, copy = torch.arange(n_base, device=device), torch.arange(rows, device=device)
    index = torch.cat([base] + [copy] * copies)
    token = _SOURCE.set((n_base, index))
    handle = nn.modules.module.register_module_forward_hook(_dropout_hook)
    try:
        yield
    finally:
        handle.remove()
        _SOURCE.reset(token)


_DOUBLE_BACKWARD: contextvars.ContextVar = contextvars.ContextVar("seal_double_bwd", default=False)


def double_backward() -> bool:
    """True inside :func:`double_backward_region`: the exact δSEAL differentiates the model's
    input gradient, which compiled graphs (``torch.compile``) cannot; tasks run eagerly there."""
    return _DOUBLE_BACKWARD.get()


@contextlib.contextmanager
def double_backward_region():
    token = _DOUBLE_BACKWARD.set(True)
    try:
        yield
    finally:
        _DOUBLE_BACKWARD.reset(token)
