"""δSEAL, the infinitesimal form: ``Σ_a ‖J_f(x)·(T_a x) − T_a f(x)‖²`` over the generators T_a.

The second term is present only for four-vector outputs. Reductions over the k generators:
``sum`` (default; the SEAL authors' tagger code) or ``mean`` (their toy code: k = 6 times
smaller for the Lorentz group).
"""

import contextlib

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from seal.groups import Group
from seal.symmetry.base import Copies, Penalty
from seal.symmetry.batching import (
    as_output,
    at_least_float32,
    batch_size,
    full_precision,
    reduced_precision,
)

METHODS = ("exact", "finite_difference")
REDUCTIONS = ("sum", "mean")


def example_generators(group, rows, dtype, device, stochastic, generator) -> tuple:
    """Per-example generator matrices ``T`` (n_dir, rows, 4, 4) and the estimator's factor.

    All k generators (factor 1), or one random unit combination ``Σ_a v_a T_a`` per example
    (factor k: E[v vᵀ] = I/k for v uniform on the unit sphere, so the estimate is unbiased).
    """
    gens = group.generators(dtype=dtype, device=device)  # (k, 4, 4)
    k = gens.shape[0]
    if not stochastic:
        return gens[:, None].expand(k, rows, 4, 4), 1.0
    v = torch.randn((rows, k), generator=generator, dtype=torch.float64)
    v = (v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)).to(dtype=dtype, device=device)
    return torch.einsum("ba,aij->bij", v, gens)[None], float(k)


def directions(batch: dict, keys, gens: torch.Tensor) -> dict:
    """Per key, the directions ``T_{a,b} x_b`` as (n_dir, B, ...) with padded rows zeroed."""
    dirs = {}
    for k in keys:
        x = batch[k].reshape(batch[k].shape[0], -1, 4)  # (B, M, 4): M = N particles or 1
        d = torch.einsum("abij,bmj->abmi", gens.to(x.dtype), x)
        if "mask" in batch and batch[k].dim() == 3:
            d = d * batch["mask"].unsqueeze(-1).to(d.dtype)  # (B, M, 1) broadcast
        dirs[k] = d.reshape(gens.shape[0], *batch[k].shape)
    return dirs


def _input_grads(y: torch.Tensor, inputs: dict) -> tuple:
    # an unused input (say jet_p4) gets a zero gradient
    return torch.autograd.grad(y, list(inputs.values()), create_graph=True, materialize_grads=True)


def _along(grads, keys, dirs) -> torch.Tensor:
    """Σ over particles and components of ``∂f/∂x · d_a`` → (B, n_dir)."""
    return sum(torch.einsum("b...i,ab...i->ba", g, dirs[k]) for g, k in zip(grads, keys))


@contextlib.contextmanager
def exact_mode():
    """Where exact δSEAL differentiates twice: gradients on, attention on the math kernel (the
    fused ones have no second derivative), ``torch.compile`` bypassed."""
    with (
        sdpa_kernel(SDPBackend.MATH),
        torch.enable_grad(),
        torch.compiler.set_stance("force_eager"),
    ):
        yield


class DSEAL(Penalty):
    """Infinitesimal SEAL: per example ``Σ_a ‖∂_a f − T_a f‖²`` along the group's generators.

    Parameters
    ----------
    method : {"exact", "finite_difference"}
        ``exact``: reverse-mode double backward — for a scalar output one backward of the batch
        sum gives every direction (examples must not interact); a four-vector output takes one
        pass per component (forward-mode AD gives wrong parameter gradients through LayerNorm;
        see docs/design.md). Runs under the math SDPA backend and eagerly (compiled graphs have
        no double backward). ``finite_difference``: central differences
        ``(f(x + ε T_a x) − f(x − ε T_a x)) / 2ε`` as transformed copies, forwards only.
    eps : float
        Finite-difference step, in rapidity/angle units.
    stochastic : bool
        One random unit combination of the generators per example, times k (unbiased).
    reduction : {"sum", "mean"}
        Over the k generators (mean = sum / k).
    output, key, extra_keys
        See :class:`~seal.symmetry.base.Penalty`.
    """

    name = "dsymm"

    def __init__(
        self,
        output="scalar",
        method="exact",
        eps=1e-3,
        stochastic=False,
        reduction="sum",
        key="p4",
        extra_keys=("jet_p4",),
    ):
        super().__init__(output, key, extra_keys)
        if method not in METHODS:
            raise ValueError(f"unknown δSEAL method {method!r}; choose one of {METHODS}")
        if not eps > 0.0:
            raise ValueError(f"finite-difference step eps must be > 0; got {eps}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"unknown δSEAL reduction {reduction!r}; choose one of {REDUCTIONS}")
        self.method, self.eps = method, float(eps)
        self.stochastic, self.reduction = bool(stochastic), reduction
        self.uses_copies = method == "finite_difference"
        self.per_generator_values = False  # one value per example and generator: (B, k)

    def check_precision(self, device: torch.device) -> None:
        if self.uses_copies and reduced_precision(device):
            raise RuntimeError(
                f"finite-difference δSEAL (eps={self.eps}) under "
                f"{torch.get_autocast_dtype(device.type)} autocast would difference rounding "
                f"noise; use method=exact or 32-bit precision"
            )

    def _setup(self, batch, group, generator) -> tuple:
        keys = self.keys(batch)
        x = batch[self.key]
        gens, factor = example_generators(
            group, x.shape[0], x.dtype, x.device, self.stochastic, generator
        )
        if self.reduction == "mean":
            factor /= group.generators().shape[0]
        with full_precision(x.device):
            dirs = directions(batch, keys, gens)
        return keys, gens, factor, dirs

    def _residuals(self, derivative, y, gens) -> torch.Tensor:
        """``‖∂_a f − T_a f‖²`` per example and direction (B, n_dir); derivative (B, n_dir[, 4])."""
        derivative = at_least_float32(derivative)  # autocast: sum the squares in float32
        if self.output == "vector":
            derivative = derivative - torch.einsum("abij,bj->bai", gens.to(y.dtype), y)
            return derivative.square().sum(2)
        return derivative.square()

    def _score(self, derivative, y, gens, factor) -> torch.Tensor:
        """``factor · Σ_a ‖∂_a f − T_a f‖²`` per example (B,); with ``per_generator_values``
        (set by a per-generator constraint) the terms themselves, (B, k)."""
        residuals = factor * self._residuals(derivative, y, gens)
        return residuals if self.per_generator_values else residuals.sum(1)

    def copies(self, batch: dict, group: Group, generator) -> Copies:
        keys, gens, factor, dirs = self._setup(batch, group, generator)
        with full_precision(batch[self.key].device):
            copies = [
                {k: batch[k] + sign * self.eps * dirs[k][a] for k in keys}
                for a in range(gens.shape[0])
                for sign in (1.0, -1.0)
            ]

        def score(y, outs):
            columns = [(p - m) / (2 * self.eps) for p, m in zip(outs[::2], outs[1::2])]
            return self._score(torch.stack(columns, dim=1), y, gens, factor)

        return Copies(copies, batch_size(batch), score, needs_base=self.output == "vector")

    def values(
        self, fn, batch: dict, group: Group, generator, separate: bool = False, replay=lambda: None
    ) -> torch.Tensor:
        """Exact δSEAL per example (B,). ``separate``: the straightforward reference — one
        forward (after ``replay()``, so dropout masks agree) and backward per generator."""
        derivative, y, gens, factor = self._derivative(
            fn, batch, group, generator, separate, replay
        )
        return self._score(derivative, y, gens, factor)

    def per_generator(self, fn, batch: dict, group: Group) -> tuple:
        """(``‖∂_a f − T_a f‖²`` per example and generator (B, k), output f (B,) or (B, 4)),
        exact, every generator separately (the symmetry spectrum of a trained model)."""
        if self.stochastic:
            raise ValueError("per-generator derivatives need stochastic=False")
        derivative, y, gens, _ = self._derivative(fn, batch, group, None)
        return self._residuals(derivative, y, gens).detach(), y.detach()

    def _derivative(self, fn, batch, group, generator, separate=False, replay=lambda: None):
        """Exact derivatives along every direction (B, n_dir[, 4]), the output, the per-example
        generators and the estimator's factor."""
        keys, gens, factor, dirs = self._setup(batch, group, generator)
        inputs = {k: batch[k].detach().requires_grad_(True) for k in keys}
        size, owner = batch_size(batch), type(fn).__name__
        n_dir = gens.shape[0]
        columns = []
        with exact_mode():
            for a in range(1 if not separate else n_dir):
                replay()
                y = as_output(fn({**batch, **inputs}), self.output, size, owner)
                along = dirs if not separate else {k: d[a : a + 1] for k, d in dirs.items()}
                comps = [y] if self.output == "scalar" else y.unbind(-1)
                parts = [_along(_input_grads(c.sum(), inputs), keys, along) for c in comps]
                columns.append(parts[0] if self.output == "scalar" else torch.stack(parts, -1))
        return torch.cat(columns, dim=1), y, gens, factor  # (B, n_dir) or (B, n_dir, 4)
