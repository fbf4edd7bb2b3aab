import math

import pytest
import torch

from seal.groups import METRIC, Boosts, Lorentz, Rotations, ZBoostZRotation, generators, make_group

F64 = torch.float64
N = 20_000
KS_CRITICAL = 1.63 / math.sqrt(N)  # Kolmogorov–Smirnov at 1 % significance


def ks_distance(samples: torch.Tensor, cdf) -> float:
    x, _ = torch.sort(samples)
    n = len(x)
    f = cdf(x)
    above = torch.arange(1, n + 1, dtype=F64) / n - f
    below = f - torch.arange(n, dtype=F64) / n
    return max(above.max().item(), below.max().item())


def speeds(lam: torch.Tensor) -> torch.Tensor:
    """|β| of the boost part of Λ = R·B: the first column is (γ, R γβ)."""
    return lam[:, 1:, 0].norm(dim=-1) / lam[:, 0, 0]


GROUPS = [Lorentz(0.9), Boosts(0.7, "volume"), Rotations(), ZBoostZRotation(0.5, "beta2")]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_samples_are_proper_orthochronous_lorentz(group):
    lam = group.sample(500, generator=torch.Generator().manual_seed(0))
    assert lam.shape == (500, 4, 4) and lam.dtype == F64
    eta = METRIC.expand(500, 4, 4)
    torch.testing.assert_close(lam.transpose(1, 2) @ eta @ lam, eta, atol=1e-12, rtol=0)
    torch.testing.assert_close(
        torch.linalg.det(lam), torch.ones(500, dtype=F64), atol=1e-12, rtol=0
    )
    assert (lam[:, 0, 0] >= 1.0).all()


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_generators_are_subsets_of_lorentz(group):
    full = generators()
    g = group.generators()
    assert all(any(torch.equal(t, f) for f in full) for t in g)
    assert len(g) == {"lorentz": 6, "boosts": 3, "rotations": 3, "zboost_zrotation": 2}[group.name]


def test_seeded_sampling_is_reproducible_and_dtype_device_follow_request():
    a = Lorentz(0.5).sample(7, generator=torch.Generator().manual_seed(5), dtype=torch.float32)
    b = Lorentz(0.5).sample(7, generator=torch.Generator().manual_seed(5), dtype=torch.float32)
    assert torch.equal(a, b) and a.dtype == torch.float32


@pytest.mark.parametrize("group_cls", [Boosts, Lorentz, ZBoostZRotation])
@pytest.mark.parametrize("law, power", [("uniform", 1), ("beta2", 2), ("volume", 3)])
def test_magnitude_law_matches_its_name(group_cls, law, power):
    beta_max = 0.8
    lam = group_cls(beta_max, law).sample(N, generator=torch.Generator().manual_seed(11))
    b = speeds(lam)
    assert b.max() < beta_max
    assert ks_distance(b, lambda x: (x / beta_max) ** power) < KS_CRITICAL
    for other in {1, 2, 3} - {power}:  # the test can tell the laws apart
        assert ks_distance(b, lambda x, p=other: (x / beta_max) ** p) > 10 * KS_CRITICAL


def test_boost_directions_are_isotropic():
    lam = Boosts(0.6).sample(N, generator=torch.Generator().manual_seed(3))
    unit = lam[:, 1:, 0] / lam[:, 1:, 0].norm(dim=-1, keepdim=True)
    assert unit.mean(0).abs().max() < 4 / math.sqrt(3 * N)
    torch.testing.assert_close(unit.T @ unit / N, torch.eye(3, dtype=F64) / 3, atol=0.01, rtol=0)


def test_rotations_are_haar_uniform():
    lam = Rotations().sample(N, generator=torch.Generator().manual_seed(4))
    assert torch.equal(lam[:, 0], torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(N, 4))
    # Haar measure on SO(3): E[R] = 0 and the rotation angle has density (1 − cos θ)/π
    assert lam[:, 1:, 1:].mean(0).abs().max() < 0.02
    angle = torch.arccos(((lam[:, 1:, 1:].diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert ks_distance(angle, lambda t: (t - torch.sin(t)) / math.pi) < KS_CRITICAL


def test_zboost_zrotation_keeps_the_beam_axis():
    lam = ZBoostZRotation(0.9).sample(2000, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(lam[:, 1:3, 0], torch.zeros(2000, 2, dtype=F64), atol=1e-14, rtol=0)
    # transverse momenta only rotate: |pT| is conserved
    p = torch.tensor([10.0, 3.0, 4.0, 2.0], dtype=F64)
    moved = lam @ p
    torch.testing.assert_close(moved[:, 1:3].norm(dim=-1), torch.full((2000,), 5.0, dtype=F64))
    beta_z = lam[:, 3, 0] / lam[:, 0, 0]
    assert abs((beta_z > 0).double().mean().item() - 0.5) < 0.05  # both beam directions


def test_zero_beta_max_samples_only_rotations():
    lam = Boosts(0.0).sample(5)
    torch.testing.assert_close(lam, torch.eye(4, dtype=F64).expand(5, 4, 4))


@pytest.mark.parametrize("beta_max", [1.0, 1.5, -0.1, float("nan")])
def test_bad_beta_max_is_rejected(beta_max):
    with pytest.raises(ValueError, match="beta_max"):
        Boosts(beta_max)


def test_make_group_by_name_and_errors():
    assert isinstance(make_group("zboost_zrotation", 0.3), ZBoostZRotation)
    assert make_group("lorentz", 0.2, "volume").magnitude == "volume"
    with pytest.raises(ValueError, match="unknown group 'poincare'"):
        make_group("poincare")
    with pytest.raises(ValueError, match="unknown magnitude law 'cubic'"):
        Lorentz(0.5, "cubic")
