"""Symmetry-encouraging penalties as pure functions of ``(fn, batch, group)``.

``fn`` maps a batch dict to the model output: shape ``(B,)`` or ``(B, 1)`` for an invariant
(``output="scalar"``) quantity, ``(B, 4)`` for a four-vector (``output="vector"``) that should
transform as ``Λ f``. Each penalty returns a scalar tensor that carries gradients to the
parameters of ``fn``.

Two implementations of every penalty give the same value on the same sampled elements:

* ``fused`` — GSEAL and finite-difference δSEAL build transformed copies of the first ``m`` rows
  (:class:`Pairs`) and run **one** forward over the joined batch; paired rows share their dropout
  masks (:mod:`seal.symmetry.pairing`). The callback joins them to the task's own forward. The
  exact δSEAL takes all generator directions from one double backward (scalar outputs).
* ``separate`` — the straightforward reference: one forward per compared input under a replayed
  RNG state (so dropout masks agree), one double backward per generator for the exact δSEAL.

``fraction`` evaluates the penalty on the first ``ceil(fraction·B)`` rows only (an unbiased
estimate of the batch mean when the loader shuffles). ``stochastic`` δSEAL replaces the sum over
the k generators by one random unit combination ``v`` per example, multiplied by k — unbiased,
since E[v vᵀ] = I/k for v uniform on the unit sphere.

The transformed inputs are built in the inputs' dtype with autocast switched off (a bf16 boost
would move momenta by ~0.4 %). RNG: the global RNG is restored after a pure penalty, so adding
one does not change the random stream of the training around it. Group elements, subsets and
random directions are drawn from ``generator`` (the global RNG when None).
"""

import contextlib
import math

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from seal.groups import Group, check_four_vectors, transform
from seal.symmetry.pairing import double_backward_region, paired_rows

OUTPUTS = ("scalar", "vector")
DSEAL_METHODS = ("exact", "finite_difference")
IMPLEMENTATIONS = ("fused", "separate")


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
def replayable_rng(device: torch.device):
    """Context yielding ``replay()``, which rewinds the global RNG to its state at entry.

    The state at entry is restored on exit (CPU, and the CUDA device when ``device`` is one).
    """
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        state = get_rng_state(device)
        yield lambda: set_rng_state(state, device)


def _present_keys(batch: dict, key: str, extra_keys) -> list[str]:
    if key not in batch:
        raise KeyError(
            f"the symmetry penalty transforms batch[{key!r}], but the batch has only "
            f"{sorted(batch)}; set the regulariser's `key` to the four-momentum entry"
        )
    keys = [key] + [k for k in extra_keys if k in batch and k != key]
    for k in keys:
        check_four_vectors(batch[k], k)
    return keys


def _output(y: torch.Tensor, output: str, batch_size: int) -> torch.Tensor:
    """Model output as (B,) for scalar or (B, 4) for vector outputs."""
    if output == "scalar" and y.shape in ((batch_size,), (batch_size, 1)):
        return y.reshape(batch_size)
    if output == "vector" and y.shape == (batch_size, 4):
        return y
    want = "(B,) or (B, 1)" if output == "scalar" else "(B, 4)"
    raise ValueError(f"output={output!r} needs model outputs of shape {want}; got {tuple(y.shape)}")


def _check_output_kind(output: str) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"unknown output kind {output!r}; choose one of {OUTPUTS}")


def check_options(
    output: str = "scalar",
    method: str = "exact",
    implementation: str = "fused",
    fraction: float = 1.0,
    eps: float = 1e-3,
) -> None:
    """Raise ``ValueError`` naming the first bad penalty option."""
    _check_output_kind(output)
    if method not in DSEAL_METHODS:
        raise ValueError(f"unknown δSEAL method {method!r}; choose one of {DSEAL_METHODS}")
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(
            f"unknown penalty implementation {implementation!r}; choose one of {IMPLEMENTATIONS}"
        )
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction of the batch must be in (0, 1]; got {fraction}")
    if not eps > 0.0:
        raise ValueError(f"finite-difference step eps must be > 0; got {eps}")


def penalty_rows(batch_size: int, fraction: float) -> int:
    """Rows the penalty is evaluated on: ``ceil(fraction · B)``, at least one."""
    # (the 1e-9 keeps 0.1 · 30 = 3.0000000000000004 at 3 rows)
    return min(batch_size, max(1, math.ceil(fraction * batch_size - 1e-9)))


def head(batch: dict, rows: int) -> dict:
    """The first ``rows`` examples of every per-example entry (other entries shared)."""
    size = batch_size(batch)
    return {k: v[:rows] if _per_example(v, size) else v for k, v in batch.items()}


def batch_size(batch: dict) -> int:
    """Leading dimension of the first tensor entry of ``batch``."""
    for value in batch.values():
        if torch.is_tensor(value) and value.dim() > 0:
            return int(value.shape[0])
    raise ValueError("cannot infer the batch size: the batch holds no tensors")


def _per_example(value, size: int) -> bool:
    return torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == size


def _full_precision(device: torch.device):
    """Autocast off: group actions and finite-difference shifts stay in the inputs' dtype."""
    return torch.autocast(device.type, enabled=False)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _reduced_precision(device: torch.device) -> bool:
    return torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) in (
        torch.float16,
        torch.bfloat16,
    )


class Pairs:
    """Transformed copies of the first ``rows`` examples of a batch, and how to score them.

    ``copies`` is a list of dicts holding the transformed four-vector entries (``rows`` each);
    ``score(y, outputs)`` turns the model output on the original rows (``(rows,)`` or
    ``(rows, 4)``; ``None`` unless ``needs_base``) and on each copy into the penalty.
    """

    def __init__(self, copies: list, rows: int, output: str, score, needs_base: bool = True):
        self.copies, self.rows, self.output = copies, rows, output
        self.score, self.needs_base = score, needs_base

    def join(self, batch: dict) -> dict:
        """``batch`` with the copies appended to every per-example entry."""
        size = batch_size(batch)
        return {
            k: torch.cat([v] + [c.get(k, v[: self.rows]) for c in self.copies])
            if _per_example(v, size)
            else v
            for k, v in batch.items()
        }

    def pairing(self, size: int, device: torch.device | None = None):
        """Dropout pairing for the joined batch of a ``size``-row batch (index on ``device``)."""
        return paired_rows(size, len(self.copies), self.rows, device)

    def split(self, y_all: torch.Tensor, size: int) -> tuple:
        """Model output on the joined batch → (output on the original rows, penalty)."""
        y = _at_least_float32(_output(y_all, self.output, size + len(self.copies) * self.rows))
        with _full_precision(y.device):
            base, outs = y[:size], list(y[size:].split(self.rows))
            return y_all[:size], self.score(base[: self.rows], outs)

    def forward(self, fn, batch: dict) -> tuple:
        """One forward over ``batch`` (whose first rows were copied) and the copies →
        (output on ``batch``, penalty)."""
        size = batch_size(batch)
        with self.pairing(size, batch_device(batch)):
            return self.split(fn(self.join(batch)), size)

    def separate(self, fn, batch: dict) -> torch.Tensor:
        """The same penalty from one forward per copy (and one on ``batch``), masks replayed."""
        with replayable_rng(batch_device(batch)) as replay:
            outs = []
            for copy in self.copies:
                replay()
                outs.append(_output(fn({**batch, **copy}), self.output, self.rows))
            y = None
            if self.needs_base:
                replay()
                y = _output(fn(batch), self.output, self.rows)
        return self.score(y, outs)


def batch_device(batch: dict) -> torch.device:
    """Device of the first tensor entry of ``batch``."""
    return next(v.device for v in batch.values() if torch.is_tensor(v))


def _transform(batch: dict, key: str, lam: torch.Tensor) -> torch.Tensor:
    return transform(batch[key], lam, batch.get("mask") if batch[key].dim() == 3 else None)


def gseal_pairs(
    batch: dict,
    group: Group,
    output: str = "scalar",
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
) -> Pairs:
    """GSEAL as :class:`Pairs`: one copy ``g_b · x_b`` of each of the first rows."""
    _check_output_kind(output)
    keys = _present_keys(batch, key, extra_keys)
    x = batch[key]
    rows = penalty_rows(x.shape[0], fraction)
    lam = group.sample(rows, generator=generator, device=x.device)  # (rows, 4, 4) float64
    sub = head(batch, rows)
    with _full_precision(x.device):
        copy = {k: _transform(sub, k, lam) for k in keys}

    def score(y, outs):
        (y_g,) = outs
        if output == "vector":
            y = torch.einsum("bij,bj->bi", lam.to(y.dtype), y)  # ρ(g) f(x)
            return (y_g - y).square().sum(-1).mean()
        return (y_g - y).square().mean()

    return Pairs([copy], rows, output, score)


def _example_generators(group, rows, dtype, device, stochastic, generator) -> tuple:
    """Per-example generator matrices ``T`` (n_dir, rows, 4, 4) and the estimator's factor.

    All k generators (factor 1), or one random unit combination ``Σ_a v_a T_a`` per example
    (factor k).
    """
    gens = group.generators(dtype=dtype, device=device)  # (k, 4, 4)
    k = gens.shape[0]
    if not stochastic:
        return gens[:, None].expand(k, rows, 4, 4), 1.0
    v = torch.randn((rows, k), generator=generator, dtype=torch.float64)
    v = (v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    return torch.einsum("ba,aij->bij", v, gens)[None], float(k)


def _directions(batch: dict, keys, gens: torch.Tensor) -> dict:
    """Per key, the directions ``T_{a,b} x_b`` as (n_dir, B, ...) with padded rows zeroed."""
    dirs = {}
    for k in keys:
        x = batch[k].reshape(batch[k].shape[0], -1, 4)  # (B, M, 4): M = N particles or 1
        d = torch.einsum("abij,bmj->abmi", gens.to(x.dtype), x)
        if "mask" in batch and batch[k].dim() == 3:
            d = d * batch["mask"].unsqueeze(-1).to(d.dtype)  # (B, M, 1) broadcast
        dirs[k] = d.reshape(gens.shape[0], *batch[k].shape)
    return dirs


def _dseal_score(derivative, y, gens, output: str, factor: float) -> torch.Tensor:
    """``factor · mean_b Σ_a ‖∂_a f − T_a f‖²``; derivative (B, n_dir) or (B, n_dir, 4)."""
    derivative = _at_least_float32(derivative)  # autocast: sum the squares in float32
    if output == "vector":
        derivative = derivative - torch.einsum("abij,bj->bai", gens.to(y.dtype), y)
        return factor * derivative.square().sum((1, 2)).mean()
    return factor * derivative.square().sum(1).mean()


def dseal_fd_pairs(
    batch: dict,
    group: Group,
    output: str = "scalar",
    eps: float = 1e-3,
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    stochastic: bool = False,
) -> Pairs:
    """Finite-difference δSEAL as :class:`Pairs`: copies ``x ± ε T_a x`` of the first rows."""
    _check_output_kind(output)
    keys = _present_keys(batch, key, extra_keys)
    x = batch[key]
    if _reduced_precision(x.device):
        raise RuntimeError(
            f"finite-difference δSEAL (eps={eps}) under {torch.get_autocast_dtype(x.device.type)} "
            f"autocast would difference rounding noise; use method=exact or 32-bit precision"
        )
    rows = penalty_rows(x.shape[0], fraction)
    sub = head(batch, rows)
    gens, factor = _example_generators(group, rows, x.dtype, x.device, stochastic, generator)
    with _full_precision(x.device):
        dirs = _directions(sub, keys, gens)
        copies = [
            {k: sub[k] + sign * eps * dirs[k][a] for k in keys}
            for a in range(gens.shape[0])
            for sign in (1.0, -1.0)
        ]

    def score(y, outs):
        columns = [(plus - minus) / (2 * eps) for plus, minus in zip(outs[::2], outs[1::2])]
        return _dseal_score(torch.stack(columns, dim=1), y, gens, output, factor)

    return Pairs(copies, rows, output, score, needs_base=output == "vector")


def gseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    implementation: str = "fused",
) -> torch.Tensor:
    """Group-form SEAL: ``mean_b ‖f(g_b·x_b) − ρ(g_b) f(x_b)‖²``, one g per example.

    Parameters
    ----------
    fn : callable
        Batch dict → output, see the module docstring.
    batch : dict
        ``batch[key]`` is ``(B, N, 4)`` or ``(B, 4)``; ``batch["mask"]`` (B, N) is respected.
    group : Group
        Where ``g`` is sampled from.
    output : {"scalar", "vector"}
        ρ = 1 (invariant output) or ρ = Λ (four-vector output).
    key, extra_keys : str, sequence of str
        The four-vector entries the group acts on; ``key`` must be present, the
        ``extra_keys`` (default ``jet_p4``) are transformed when present.
    generator : torch.Generator, optional
        RNG for the group elements.
    fraction : float
        Evaluate on the first ``ceil(fraction · B)`` rows.
    implementation : {"fused", "separate"}
        One forward over ``[x ; g·x]`` or two forwards; see the module docstring.
    """
    check_options(output, implementation=implementation, fraction=fraction)
    pairs = gseal_pairs(batch, group, output, key, extra_keys, generator, fraction)
    return _evaluate(pairs, fn, head(batch, pairs.rows), implementation)


def _evaluate(pairs: Pairs, fn, sub: dict, implementation: str) -> torch.Tensor:
    if implementation == "separate":
        return pairs.separate(fn, sub)
    refuse_batch_coupling(fn)
    with replayable_rng(batch_device(sub)):
        return pairs.forward(fn, sub)[1]


def refuse_batch_coupling(fn, training: bool | None = None) -> None:
    """A fused forward would let batch statistics mix originals and copies: refuse it."""
    if not isinstance(fn, torch.nn.Module) or not (fn.training if training is None else training):
        return
    for name, module in fn.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            raise ValueError(
                f"{name or type(fn).__name__} is a {type(module).__name__}: in training its "
                f"batch statistics would mix the original and transformed rows of a fused "
                f"penalty; use the regulariser's implementation=separate"
            )


def dseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    method: str = "exact",
    eps: float = 1e-3,
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    fraction: float = 1.0,
    stochastic: bool = False,
    implementation: str = "fused",
) -> torch.Tensor:
    """Infinitesimal SEAL: ``mean_b Σ_a ‖J_f(x_b)·(T_a x_b) − T_a f(x_b)‖²``.

    The sum runs over the group's generators T_a (6 for the Lorentz group); the second term is
    present only for ``output="vector"``.

    Parameters
    ----------
    method : {"exact", "finite_difference"}
        ``exact``: reverse-mode double backward — for a scalar output one reverse pass gives
        every direction; for a vector output one pass per component (forward-mode AD gives
        wrong parameter gradients through LayerNorm; DESIGN.md §9). Runs under the math SDPA
        backend, the only one with double-backward support — and only the penalty does.
        ``finite_difference``: central differences ``(f(x + ε T_a x) − f(x − ε T_a x)) / 2ε``,
        forwards only, so the fused attention kernels run.
    eps : float
        Step of the finite difference, in rapidity/angle units (relative change of x).
    stochastic : bool
        One random unit combination of the generators per example, times k (unbiased).
    generator : torch.Generator, optional
        RNG for the random directions (``stochastic``).
    implementation : {"fused", "separate"}
        ``separate`` is the straightforward reference: finite differences in one forward per
        shifted input; the exact derivative from one forward and double backward per generator.
    fn, batch, group, output, key, extra_keys, fraction
        As for :func:`gseal`.
    """
    check_options(output, method, implementation, fraction, eps)
    if method == "finite_difference":
        pairs = dseal_fd_pairs(
            batch, group, output, eps, key, extra_keys, generator, fraction, stochastic
        )
        return _evaluate(pairs, fn, head(batch, pairs.rows), implementation)
    keys = _present_keys(batch, key, extra_keys)
    x = batch[key]
    sub = head(batch, penalty_rows(x.shape[0], fraction))
    rows = sub[key].shape[0]
    gens, factor = _example_generators(group, rows, x.dtype, x.device, stochastic, generator)
    with _full_precision(x.device):
        dirs = _directions(sub, keys, gens)
    if implementation == "separate":
        derivative, y = _exact_per_direction(fn, sub, keys, dirs, output)
    else:
        derivative, y = _exact_derivative(fn, sub, keys, dirs, output)
    return _dseal_score(derivative, y, gens, output, factor)


def _input_grads(y: torch.Tensor, inputs: dict) -> tuple:
    # an unused input (say jet_p4) gets a zero gradient
    return torch.autograd.grad(y, list(inputs.values()), create_graph=True, materialize_grads=True)


def _along(grads, keys, dirs) -> torch.Tensor:
    """Σ over particles and components of ``∂f/∂x · d_a`` → (B, n_dir)."""
    return sum(torch.einsum("b...i,ab...i->ba", g, dirs[k]) for g, k in zip(grads, keys))


def _exact_derivative(fn, batch, keys, dirs, output):
    """Derivatives along every direction from one forward and double backward(s)."""
    inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
    with (
        sdpa_kernel(SDPBackend.MATH),
        double_backward_region(),
        torch.enable_grad(),
        replayable_rng(batch_device(batch)),
    ):
        y = _output(fn({**batch, **inputs}), output, batch[keys[0]].shape[0])
        if output == "scalar":
            return _along(_input_grads(y.sum(), inputs), keys, dirs), y
        # J·d as d/du of (Jᵀu)·d would need two reverse passes instead of four, but its
        # parameter gradients through LayerNorm + attention were 5–14 % off (README, §design)
        columns = [_along(_input_grads(c.sum(), inputs), keys, dirs) for c in y.unbind(-1)]
    return torch.stack(columns, dim=-1), y  # (B, n_dir, 4)


def _exact_per_direction(fn, batch, keys, dirs, output):
    """The straightforward exact derivative: one forward and double backward per generator."""
    inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
    n_dir = dirs[keys[0]].shape[0]
    columns = []
    with sdpa_kernel(SDPBackend.MATH), double_backward_region(), torch.enable_grad():
        with replayable_rng(batch_device(batch)) as replay:
            for a in range(n_dir):
                replay()
                y = _output(fn({**batch, **inputs}), output, batch[keys[0]].shape[0])
                single = {k: d[a : a + 1] for k, d in dirs.items()}
                comps = [y] if output == "scalar" else y.unbind(-1)
                parts = [_along(_input_grads(c.sum(), inputs), keys, single)[:, 0] for c in comps]
                columns.append(parts[0] if output == "scalar" else torch.stack(parts, -1))
    return torch.stack(columns, dim=1), y


PENALTIES = {"gsymm": gseal, "dsymm": dseal}
