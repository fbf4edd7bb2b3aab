"""The SEAL toy: N four-vectors per example and a truth that is a function of them.

The default reproduces the SEAL authors' toy: one four-vector with components uniform in
[−0.5, 0.5] and the Lorentz-invariant truth m⁴ + 15 m². Three truths:

* ``exact``: ``s² + 15 s + Σ_{i<j} (p_i·p_j)²`` with ``s = (Σ_i p_i)²`` — a polynomial of the
  Minkowski products, exactly invariant (m⁴ + 15 m² for N = 1);
* ``spurion``: ``exact + c₁ (P·s) + c₂ (P·s)²`` with ``P = Σ_i p_i`` and the spurion
  ``s = (0, 0, 0, 10⁻³)``, which the network never sees: the symmetry is slightly broken;
* ``covariant``: ``Σ_i g(p_i·p_i) p_i`` with ``g(m²) = 1 + m² + m⁴``, a four-vector that
  transforms as ``Λ f``.
"""

import functools

import pytorch_lightning as pl
import torch

from seal.data.tensordict import loader
from seal.groups import inner, mass2

SAMPLERS = ("uniform", "on_shell")
TRUTHS = ("exact", "spurion", "covariant")
SPURION = (0.0, 0.0, 0.0, 1e-3)


def sample_momenta(n: int, n_particles: int = 1, sampler: str = "uniform", seed: int = 0):
    """(n, N, 4) float64 four-vectors.

    ``uniform``: every component uniform in [−0.5, 0.5] (the authors' toy; off-shell).
    ``on_shell``: massive particles, m uniform in [0.05, 0.3], momentum components Gaussian
    with σ = 0.25, E = √(m² + |p⃗|²) — a momentum spread like a boosted decay's products.
    """
    if n < 0 or n_particles < 1:
        raise ValueError(f"need n >= 0 and n_particles >= 1; got n={n}, n_particles={n_particles}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown toy sampler {sampler!r}; choose one of {SAMPLERS}")
    gen = torch.Generator().manual_seed(seed)
    if sampler == "uniform":
        return torch.rand(n, n_particles, 4, generator=gen, dtype=torch.float64) - 0.5
    mass = 0.05 + 0.25 * torch.rand(n, n_particles, 1, generator=gen, dtype=torch.float64)
    p = 0.25 * torch.randn(n, n_particles, 3, generator=gen, dtype=torch.float64)
    energy = torch.sqrt(mass.square() + p.square().sum(-1, keepdim=True))
    return torch.cat((energy, p), dim=-1)


def exact_truth(p4: torch.Tensor) -> torch.Tensor:
    """Invariant truth, (B, N, 4) → (B,): ``s² + 15 s + Σ_{i<j} (p_i·p_j)²``, ``s = (Σp)²``."""
    s = mass2(p4.sum(-2))
    products = inner(p4.unsqueeze(-2), p4.unsqueeze(-3))  # (B, N, N): p_i·p_j
    pairs = torch.triu(products.square(), diagonal=1).sum((-1, -2))
    return s.square() + 15.0 * s + pairs


def spurion_truth(p4, c1: float = 20.9983, c2: float = -0.8431, spurion=SPURION):
    """Broken truth, (B, N, 4) → (B,): ``exact + c₁ (P·s) + c₂ (P·s)²``."""
    ps = inner(p4.sum(-2), p4.new_tensor(spurion))
    return exact_truth(p4) + c1 * ps + c2 * ps.square()


def covariant_truth(p4: torch.Tensor) -> torch.Tensor:
    """Covariant truth, (B, N, 4) → (B, 4): ``Σ_i (1 + m_i² + m_i⁴) p_i``."""
    m2 = mass2(p4).unsqueeze(-1)  # (B, N, 1)
    return ((1.0 + m2 + m2.square()) * p4).sum(-2)


def make_truth(name: str, c1: float = 20.9983, c2: float = -0.8431, spurion=SPURION):
    """The truth function ``p4 (B, N, 4) → target`` called ``name``."""
    if name not in TRUTHS:
        raise ValueError(f"unknown toy truth {name!r}; choose one of {TRUTHS}")
    if name == "spurion":
        return functools.partial(spurion_truth, c1=c1, c2=c2, spurion=tuple(spurion))
    return {"exact": exact_truth, "covariant": covariant_truth}[name]


def make_toy(n, n_particles=1, seed=0, truth=exact_truth, sampler="uniform", dtype=torch.float32):
    """A batch dict ``{p4 (n, N, 4), mask (n, N), target}`` of the toy."""
    p4 = sample_momenta(n, n_particles, sampler, seed)
    return {
        "p4": p4.to(dtype),
        "mask": torch.ones(n, n_particles, dtype=torch.bool),
        "target": truth(p4).to(dtype),
    }


class ToyDataModule(pl.LightningDataModule):
    """Train / validation / test splits of the toy, drawn with fixed, distinct seeds.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Split sizes (≥ 0; train and validation ≥ 1).
    n_particles : int
        Four-vectors per example.
    sampler : {"uniform", "on_shell"}
        See :func:`sample_momenta`.
    truth : {"exact", "spurion", "covariant"}
        See the module docstring; ``c1``, ``c2``, ``spurion`` configure ``spurion``.
    batch_size, num_workers : int
        DataLoader settings (evaluation uses batches of 4096).
    seed : int
        Splits use ``seed``, ``seed + 1``, ``seed + 2``.
    augment : callable, optional
        Applied to every training batch dict (e.g. :class:`seal.data.augment.BoostAugmentation`).
    """

    def __init__(
        self,
        n_train=100_000,
        n_val=20_000,
        n_test=20_000,
        n_particles=1,
        sampler="uniform",
        truth="exact",
        c1=20.9983,
        c2=-0.8431,
        spurion=SPURION,
        batch_size=1000,
        num_workers=0,
        seed=0,
        augment=None,
    ):
        super().__init__()
        for name, size in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if size < (0 if name == "n_test" else 1):
                raise ValueError(f"data.{name} must be a positive number of examples; got {size}")
        if batch_size < 1:
            raise ValueError(f"data.batch_size must be >= 1; got {batch_size}")
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown toy sampler {sampler!r}; choose one of {SAMPLERS}")
        self.truth_fn = make_truth(truth, c1, c2, spurion)
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.n_particles, self.sampler, self.seed = n_particles, sampler, seed
        self.batch_size, self.num_workers, self.augment = batch_size, num_workers, augment
        self.splits: dict[str, dict] = {}

    def setup(self, stage: str | None = None) -> None:
        for offset, (split, size) in enumerate(self.sizes.items()):
            if split not in self.splits:
                self.splits[split] = make_toy(
                    size, self.n_particles, self.seed + offset, self.truth_fn, self.sampler
                )

    def _loader(self, split, batch_size, shuffle=False, transform=None):
        return loader(
            self.splits[split],
            batch_size,
            shuffle=shuffle,
            transform=transform,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self._loader("train", self.batch_size, shuffle=True, transform=self.augment)

    def val_dataloader(self):
        return self._loader("val", 4096)

    def test_dataloader(self):
        return self._loader("test", 4096)
