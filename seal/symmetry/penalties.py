"""Symmetry-encouraging penalties as pure functions of ``(fn, batch, group)``.

``fn`` maps a batch dict to the model output: shape ``(B,)`` or ``(B, 1)`` for an invariant
(``output="scalar"``) quantity, ``(B, 4)`` for a four-vector (``output="vector"``) that should
transform as ``Λ f``. Each penalty returns a scalar tensor that carries gradients to the
parameters of ``fn``.

RNG: the forwards inside a penalty all start from the same global RNG state (so dropout masks
agree and cannot masquerade as symmetry breaking), and the global RNG is restored afterwards, so
adding a penalty does not change the random stream of the training it is added to. Group
elements are drawn from ``generator`` (the global RNG when None).
"""

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from seal.groups import Group, check_four_vectors, transform_batch

OUTPUTS = ("scalar", "vector")
DSEAL_METHODS = ("exact", "finite_difference")


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


def gseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    key: str = "p4",
    extra_keys=("jet_p4",),
    generator: torch.Generator | None = None,
    reference: torch.Tensor | None = None,
    reference_rng: tuple | None = None,
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
    reference, reference_rng : Tensor and state from :func:`get_rng_state`, optional
        ``fn(batch)`` already computed by the caller (the task loss's forward, graph attached)
        and the global RNG state its forward started from. Saves one forward and backward;
        ``f(g·x)`` is then computed from that RNG state so dropout masks still agree.
    """
    _check_output_kind(output)
    keys = _present_keys(batch, key, extra_keys)
    x = batch[key]
    lam = group.sample(x.shape[0], generator=generator, device=x.device)  # (B, 4, 4) float64
    boosted = transform_batch(batch, lam, keys)
    with replayable_rng(x.device) as replay:
        if reference is None:
            y = _output(fn(batch), output, x.shape[0])
            replay()
        else:
            y = _output(reference, output, x.shape[0])
            set_rng_state(reference_rng, x.device)
        y_g = _output(fn(boosted), output, x.shape[0])
    if output == "vector":
        y = torch.einsum("bij,bj->bi", lam.to(y.dtype), y)  # ρ(g) f(x)
        return (y_g - y).square().sum(-1).mean()
    return (y_g - y).square().mean()


def _directions(batch: dict, keys, gens: torch.Tensor) -> dict:
    """Per key, the generator directions ``T_a x`` as (k, B, M, 4) with padded rows zeroed."""
    dirs = {}
    for k in keys:
        x = batch[k].reshape(batch[k].shape[0], -1, 4)  # (B, M, 4): M = N particles or 1
        d = torch.einsum("aij,bmj->abmi", gens.to(x.dtype), x)
        if "mask" in batch and batch[k].dim() == 3:
            d = d * batch["mask"].unsqueeze(-1).to(d.dtype)  # (B, M, 1) broadcast
        dirs[k] = d.reshape(gens.shape[0], *batch[k].shape)
    return dirs


def dseal(
    fn,
    batch: dict,
    group: Group,
    output: str = "scalar",
    method: str = "exact",
    eps: float = 1e-3,
    key: str = "p4",
    extra_keys=("jet_p4",),
) -> torch.Tensor:
    """Infinitesimal SEAL: ``mean_b Σ_a ‖J_f(x_b)·(T_a x_b) − T_a f(x_b)‖²``.

    The sum runs over the group's generators T_a (6 for the Lorentz group); the second term is
    present only for ``output="vector"``.

    Parameters
    ----------
    method : {"exact", "finite_difference"}
        ``exact``: reverse-mode double backward, one reverse pass for a scalar output and one
        per component for a vector output (forward-mode JVP gives wrong parameter gradients
        through LayerNorm; DESIGN.md §9). Runs under the math SDPA backend, the only one with
        double-backward support. ``finite_difference``: central differences
        ``(f(x + ε T_a x) − f(x − ε T_a x)) / 2ε``, 2k forwards under one RNG state.
    eps : float
        Step of the finite difference, in rapidity/angle units (relative change of x).
    fn, batch, group, output, key, extra_keys
        As for :func:`gseal`.
    """
    _check_output_kind(output)
    if method not in DSEAL_METHODS:
        raise ValueError(f"unknown δSEAL method {method!r}; choose one of {DSEAL_METHODS}")
    keys = _present_keys(batch, key, extra_keys)
    x = batch[key]
    gens = group.generators(dtype=x.dtype, device=x.device)  # (k, 4, 4)
    dirs = _directions(batch, keys, gens)
    if method == "exact":
        derivative, y = _exact_derivative(fn, batch, keys, dirs, output)
    else:
        derivative, y = _finite_difference(fn, batch, keys, dirs, output, eps)
    # derivative: (B, k) for scalar, (B, k, 4) for vector outputs
    if output == "vector":
        derivative = derivative - torch.einsum("acd,bd->bac", gens.to(y.dtype), y)  # − T_a f(x)
        return derivative.square().sum((1, 2)).mean()
    return derivative.square().sum(1).mean()


def _exact_derivative(fn, batch, keys, dirs, output):
    inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
    with sdpa_kernel(SDPBackend.MATH), torch.enable_grad(), replayable_rng(batch[keys[0]].device):
        y = _output(fn({**batch, **inputs}), output, batch[keys[0]].shape[0])
        components = [y] if output == "scalar" else list(y.unbind(-1))
        columns = []
        for comp in components:
            grads = torch.autograd.grad(
                comp.sum(), list(inputs.values()), create_graph=True, materialize_grads=True
            )  # an unused input (say jet_p4) gets a zero gradient
            # Σ over particles and components of ∂f/∂x · T_a x  → (B, k)
            terms = [torch.einsum("b...i,ab...i->ba", g, dirs[k]) for g, k in zip(grads, keys)]
            columns.append(sum(terms))
    derivative = columns[0] if output == "scalar" else torch.stack(columns, dim=-1)
    return derivative, y


def _finite_difference(fn, batch, keys, dirs, output, eps):
    n_gens, batch_size = dirs[keys[0]].shape[:2]
    columns = []
    with replayable_rng(batch[keys[0]].device) as replay:
        for a in range(n_gens):
            outs = []
            for sign in (1.0, -1.0):
                shifted = {**batch, **{k: batch[k] + sign * eps * dirs[k][a] for k in keys}}
                replay()
                outs.append(_output(fn(shifted), output, batch_size))
            columns.append((outs[0] - outs[1]) / (2 * eps))
        replay()
        y = _output(fn(batch), output, batch_size) if output == "vector" else None
    return torch.stack(columns, dim=1), y


PENALTIES = {"gsymm": gseal, "dsymm": dseal}
