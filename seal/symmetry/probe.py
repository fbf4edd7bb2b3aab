"""What a model does in training that a penalty must not mistake for symmetry breaking.

:func:`probe` runs the model a few times on a handful of rows of a real batch, in the mode it
trains in, without gradients, without consuming the caller's random numbers and without moving
its buffers, and answers:

* **stochastic** — do two forwards from different RNG states differ (dropout, functional or
  inside attention)? Then compared forwards must replay one RNG state.
* **replayable** — do two forwards from the *same* RNG state agree? If not, the randomness does
  not come from torch's global RNG and no route can match it.
* **coupled** — does an example's output change when only the *other* rows change (batch
  statistics, ``x - x.mean(0)``)? Then transformed copies must not share a forward with the
  originals, and one backward of the batch sum does not give per-example derivatives.
* **mutated buffers** — which buffers a training forward writes (running statistics); the
  penalty's forwards then work on scratch copies.

When a property is found, forward hooks (present during the probe only) name the first module,
in execution order, whose output shows it.
"""

import dataclasses
import warnings

import torch
from torch import nn

from seal.symmetry.batching import batch_size, head, per_example
from seal.symmetry.rng import buffer_snapshot, isolated, rng_device

RELATIVE_TOLERANCE = 1e-6  # smaller differences (rounding, GPU atomics) are not randomness


@dataclasses.dataclass(frozen=True)
class Traits:
    """What :func:`probe` found; a module path names where, ``None`` means not found."""

    stochastic: str | None = None
    unreplayable: str | None = None
    coupled: str | None = None
    mutated_buffers: tuple[str, ...] = ()
    rows: int = 0

    @property
    def coupling_known(self) -> bool:
        return self.rows >= 2


def _first_tensor(out):
    if torch.is_tensor(out):
        return out
    if isinstance(out, (tuple, list)):
        return next((t for t in (_first_tensor(o) for o in out) if t is not None), None)
    if isinstance(out, dict):
        return next((t for t in (_first_tensor(o) for o in out.values()) if t is not None), None)
    return None


class _Recorder:
    """Forward hooks on every submodule recording (path, input, output) in call order (first
    tensor of each)."""

    def __init__(self, model):
        self.model, self.records, self.handles = model, [], []

    def __enter__(self):
        if isinstance(self.model, nn.Module):
            for name, module in self.model.named_modules():
                hook = self._hook(name)
                self.handles.append(module.register_forward_hook(hook))
        return self.records

    def _hook(self, name):
        def record(module, args, out):
            tensor, given = _first_tensor(out), _first_tensor(args)
            if tensor is not None:
                given = None if given is None else given.detach().clone()
                self.records.append((name, given, tensor.detach().clone()))

        return record

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def _differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return True
    a, b = a.double(), b.double()
    scale = max(a.abs().max().item(), b.abs().max().item(), 1e-30) if a.numel() else 1.0
    return bool(((a - b).abs() > RELATIVE_TOLERANCE * scale).any()) or bool(
        (a.isnan() != b.isnan()).any()
    )


def _row_zero(t: torch.Tensor, rows: int) -> torch.Tensor | None:
    """Example 0 of an intermediate tensor: index 0 along its first dimension of size ``rows``."""
    dim = next((d for d, size in enumerate(t.shape) if size == rows), None)
    return None if dim is None else t.select(dim, 0)


def _describe(model, name: str) -> str:
    if name == "" and not isinstance(model, nn.Module):
        return f"{getattr(model, '__name__', type(model).__name__)} (the function itself)"
    if name == "":
        return f"{type(model).__name__}.forward (the model's own code)"
    owner = model.get_submodule(name)
    own_code = "" if _is_leaf_cause(owner) else ".forward"
    return f"{name} ({type(owner).__name__}{own_code})"


def _is_leaf_cause(module) -> bool:
    return not any(True for _ in module.children()) or isinstance(module, nn.MultiheadAttention)


def _slices(a, b, rows):
    if rows is None or a is None or b is None:
        return a, b
    return _row_zero(a, rows), _row_zero(b, rows)


def _first_difference(model, first, second, rows: int | None = None) -> str:
    """Where two recorded forwards (``rows``: their example 0) start to differ: the first
    module, in execution order, whose output differs though its input does not — or, when the
    input already differs, the code of the module around it (functional calls there)."""
    for (name, in_a, out_a), (_, in_b, out_b) in zip(first, second):
        out_a, out_b = _slices(out_a, out_b, rows)
        if out_a is None or out_b is None or not _differs(out_a, out_b):
            continue
        in_a, in_b = _slices(in_a, in_b, rows)
        if in_a is not None and in_b is not None and _differs(in_a, in_b):
            name = name.rpartition(".")[0]  # the difference arose in the enclosing forward
        return _describe(model, name)
    return _describe(model, "")


def _probe_rows(batch: dict) -> int:
    """A small row count that no other dimension of the batch's tensors shares (so example 0
    can be found in intermediate outputs)."""
    size = batch_size(batch)
    taken = {d for v in batch.values() if per_example(v, size) for d in v.shape[1:]}
    for rows in (11, 7, 5, 3, 2):
        if rows <= size and rows not in taken:
            return rows
    return min(size, 11)


def _others_moved(batch: dict, keys) -> dict:
    """The batch with the four-vectors of every example but the first scaled by 1.5."""
    moved = dict(batch)
    for k in keys:
        x = batch[k]
        scale = torch.full(
            (x.shape[0],) + (1,) * (x.dim() - 1), 1.5, dtype=x.dtype, device=x.device
        )
        scale[0] = 1.0
        moved[k] = x * scale
    return moved


def _run(fn, inputs) -> tuple:
    with _Recorder(fn) as records:
        y = _first_tensor(fn(inputs))
    if y is None:
        raise TypeError(
            f"{type(fn).__name__} returned no tensor; forward(batch) must return the output "
            f"the penalty compares ((B,), (B, 1) or (B, 4))"
        )
    return y.detach(), records


def _load(fn, snapshot: dict | None) -> None:
    """Put clones of ``snapshot``'s buffers into ``fn`` (inside :func:`isolated`: scratch)."""
    for name, value in (snapshot or {}).items():
        owner_name, _, leaf = name.rpartition(".")
        fn.get_submodule(owner_name)._buffers[leaf] = value.clone()


def probe(fn, batch: dict, keys) -> Traits:
    """Probe ``fn`` (a model or any callable of the batch) on a few rows of ``batch``.

    ``keys``: the four-vector entries the group acts on (moved in the coupling probe). Runs in
    full precision (autocast off): the questions are structural, and bf16 rounding of
    nondeterministic kernels must not pass for randomness.
    """
    rows = _probe_rows(batch)
    sub = head(batch, rows)
    names = tuple(n for n, _ in fn.named_buffers()) if isinstance(fn, nn.Module) else ()
    device = rng_device(fn, batch)
    start = buffer_snapshot(fn, names)
    unreplayable = stochastic = coupled = None
    with (
        torch.no_grad(),
        torch.autocast(device.type, enabled=False),
        isolated(fn, names, device, buffers=start) as replay,
    ):
        first = _run(fn, sub)
        now = dict(fn.named_buffers()) if names else {}
        mutated = tuple(n for n in names if not torch.equal(now[n], start[n]))
        replay()
        again = _run(fn, sub)
        replay()
        for where in {torch.device("cpu"), device}:  # another RNG state, the same buffers
            torch.empty(64, device=where).uniform_()
        other = _run(fn, sub)
        if _differs(first[0], again[0]):
            unreplayable = _first_difference(fn, first[1], again[1])
        elif _differs(first[0], other[0]):
            stochastic = _first_difference(fn, first[1], other[1])
        if rows >= 2 and unreplayable is None:
            # from the buffers the first forward left: a buffer set once from the first batch
            # a model sees (lloca's edge standardisation, a lazy layer) is not batch coupling
            settled = buffer_snapshot(fn, names) if mutated else None
            replay()
            _load(fn, settled)
            reference = _run(fn, sub) if mutated else first
            replay()
            _load(fn, settled)
            moved = _run(fn, _others_moved(sub, keys))
            if _differs(reference[0][0], moved[0][0]):
                coupled = _first_difference(fn, reference[1], moved[1], rows)
    return Traits(stochastic, unreplayable, coupled, mutated, rows)


def nonfinite_derivative(fn, batch: dict, keys) -> str | None:
    """Where the input derivative that the exact δSEAL needs stops being finite, or None.

    One forward and one backward of the output sum on ``batch`` (the probe's rows), with the
    four-vector entries ``keys`` requiring gradients. Backward hooks on every submodule name the
    first module, in backward order, whose gradient with respect to its input is non-finite
    while the gradient of its output is finite: where the NaN or inf arose (ParT's pairwise
    features, say, whose derivative at the i = j pair is 0/0). Call it with the caller's RNG
    and buffers isolated (:func:`seal.symmetry.rng.isolated`).
    """
    inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
    found: list[str] = []
    handles = []

    def hook(name):
        def record(module, grad_input, grad_output):
            out_ok = all(torch.isfinite(g).all() for g in grad_output if g is not None)
            in_bad = any(not torch.isfinite(g).all() for g in grad_input if g is not None)
            if out_ok and in_bad and not found:
                found.append(name)

        return record

    if isinstance(fn, nn.Module):
        for name, module in fn.named_modules():
            if name:
                handles.append(module.register_full_backward_hook(hook(name)))
    try:
        with torch.enable_grad(), warnings.catch_warnings():
            # modules fed no tensor that requires gradients (a dict of constants) warn here
            warnings.filterwarnings("ignore", "Full backward hook is firing", UserWarning)
            y = _first_tensor(fn({**batch, **inputs}))
            grads = torch.autograd.grad(
                y.float().sum(), list(inputs.values()), allow_unused=True, materialize_grads=True
            )
    finally:
        for handle in handles:
            handle.remove()
    if all(torch.isfinite(g).all() for g in grads):
        return None
    return _describe(fn, found[0] if found else "")


def double_backward_error(fn, batch: dict, keys) -> str | None:
    """torch's message if the exact δSEAL's double backward cannot run through ``fn``, or None.

    Exact δSEAL differentiates the input derivative again with respect to the parameters; some
    operations have no second derivative in torch (lloca's ``segment_reduce``, say), and that is
    found here, on the probe's rows, instead of in the first training step. Call it with the
    caller's RNG and buffers isolated (:func:`seal.symmetry.rng.isolated`).
    """
    inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
    params = [p for p in fn.parameters() if p.requires_grad] if isinstance(fn, nn.Module) else []
    try:
        with torch.enable_grad():
            y = _first_tensor(fn({**batch, **inputs}))
            grads = torch.autograd.grad(
                y.float().sum(), list(inputs.values()), create_graph=True, allow_unused=True
            )
            total = sum(g.square().sum() for g in grads if g is not None)
            if params and torch.is_tensor(total) and total.requires_grad:
                torch.autograd.grad(total, params, allow_unused=True)
    except RuntimeError as error:
        return str(error).splitlines()[0]
    return None
