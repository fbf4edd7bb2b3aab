"""The energy scale (a dilation of the four-momenta) and its product with Lorentz subgroups:
group laws, sampling, and the penalties on scale-invariant and homogeneous functions."""

import math

import pytest
import torch

from seal.groups import (
    METRIC,
    EnergyScale,
    Lorentz,
    ProductGroup,
    Rotations,
    ZBoostZRotation,
    generators,
    inner,
    make_group,
)
from seal.symmetry import dseal, gseal
from seal.testing import random_on_shell

F64 = torch.float64
N = 20_000
KS_CRITICAL = 1.63 / math.sqrt(N)  # Kolmogorov–Smirnov at 1 %


def scales(lam: torch.Tensor) -> torch.Tensor:
    return lam[:, 0, 0]


def test_energy_scale_elements_are_multiples_of_the_identity_log_uniform_in_range():
    lam = EnergyScale(0.05).sample(N, generator=torch.Generator().manual_seed(0))
    s = scales(lam)
    torch.testing.assert_close(lam, s[:, None, None] * torch.eye(4, dtype=F64), rtol=0, atol=0)
    u = torch.log(s) / math.log1p(0.05)  # uniform in [−1, 1]
    assert u.min() >= -1.0 and u.max() <= 1.0
    x, _ = torch.sort((u + 1.0) / 2.0)
    ks = (torch.arange(1, N + 1, dtype=F64) / N - x).abs().max().item()
    assert ks < KS_CRITICAL
    assert torch.equal(EnergyScale(0.0).sample(3), torch.eye(4, dtype=F64).expand(3, 4, 4))


def test_energy_scale_group_laws_and_generator():
    group = EnergyScale(0.1)
    a, b = group.sample(2, generator=torch.Generator().manual_seed(1))
    eye = torch.eye(4, dtype=F64)
    product = a @ b  # closed: a scale times a scale is the scale s_a·s_b
    torch.testing.assert_close(product, scales(a[None]) * scales(b[None]) * eye, rtol=1e-15, atol=0)
    torch.testing.assert_close(a @ torch.linalg.inv(a), eye, rtol=0, atol=1e-15)  # inverse
    torch.testing.assert_close(a @ b, b @ a, rtol=0, atol=0)  # abelian
    (gen,) = group.generators()
    t = 1e-7  # the generator is the derivative of exp(t·S) = e^t·1 at t = 0
    torch.testing.assert_close((math.exp(t) * eye - eye) / t, gen, rtol=0, atol=1e-7)
    assert group.generator_names == ("S",)


def test_the_product_with_lorentz_commutes_and_scales_the_metric():
    group = ProductGroup(Lorentz(0.8), EnergyScale(0.05))
    assert group.name == "lorentz+energy_scale"
    assert group.generator_names == ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz", "S")
    torch.testing.assert_close(
        group.generators(), torch.cat([generators(), torch.eye(4, dtype=F64)[None]])
    )
    lam = group.sample(500, generator=torch.Generator().manual_seed(2))
    s = torch.linalg.det(lam) ** 0.25  # det(s Λ) = s⁴
    eta = METRIC.expand(500, 4, 4)
    torch.testing.assert_close(
        lam.transpose(1, 2) @ eta @ lam, s[:, None, None] ** 2 * eta, atol=1e-12, rtol=0
    )
    assert (s >= 1 / 1.05 - 1e-12).all() and (s <= 1.05 + 1e-12).all()
    # the same seed draws the same Lorentz element as the Lorentz group alone, then the scale
    alone = Lorentz(0.8).sample(500, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(lam / s[:, None, None], alone, atol=1e-12, rtol=0)


def test_names_build_products_and_bad_input_is_named():
    assert make_group("energy_scale", shift_max=0.02).shift_max == 0.02
    product = make_group("zboost_zrotation+energy_scale", beta_max=0.3)
    assert isinstance(product, ProductGroup) and product.factors[0].beta_max == 0.3
    assert product.generator_names == ("Kz", "Jz", "S")
    with pytest.raises(
        ValueError, match=r"unknown group 'scale' in 'lorentz\+scale'.*energy_scale"
    ):
        make_group("lorentz+scale")
    with pytest.raises(ValueError, match=r"\['lorentz', 'rotations'\] do not commute"):
        ProductGroup(Lorentz(), Rotations())
    with pytest.raises(ValueError, match="at least two groups"):
        ProductGroup(Lorentz())
    with pytest.raises(
        ValueError, match=r"\['energy_scale'\] given more than once in lorentz\+energy_scale\+"
    ):
        make_group("lorentz+energy_scale+energy_scale")
    for bad in (-0.01, float("nan"), float("inf"), "5%"):
        with pytest.raises(ValueError, match=r"shift_max must be a finite number >= 0.*got"):
            EnergyScale(bad)


def test_a_list_of_factors_is_accepted_as_hydra_passes_it():
    group = ProductGroup([ZBoostZRotation(0.2), EnergyScale(0.1)])
    assert group.name == "zboost_zrotation+energy_scale"


@pytest.fixture
def batch():
    return random_on_shell(24, 6, seed=3)


def ratio_of_products(batch):
    """(p1·p2) / (p1·p3): invariant under Lorentz transformations and every scale."""
    p = batch["p4"]
    return inner(p[:, 0], p[:, 1]) / inner(p[:, 0], p[:, 2])


def total_energy(batch):
    """Σ E: homogeneous of degree 1, so ∂_S f = f and f(s·x) − f(x) = (s − 1) f."""
    return (batch["p4"][..., 0] * batch["mask"]).sum(-1)


@pytest.mark.parametrize(
    "group", [EnergyScale(0.2), make_group("lorentz+energy_scale", 0.9, shift_max=0.2)]
)
def test_penalties_vanish_on_a_scale_and_lorentz_invariant_function(group):
    batch = random_on_shell(24, 3, seed=3, pad=False)  # no padded p1, p2, p3
    size = ratio_of_products(batch).square().mean()
    assert gseal(ratio_of_products, batch, group) <= 1e-24 * size
    assert dseal(ratio_of_products, batch, group) <= 1e-24 * size


def test_penalties_in_closed_form_on_the_total_energy(batch):
    f = total_energy(batch)
    group = EnergyScale(0.2)
    torch.testing.assert_close(
        dseal(total_energy, batch, group), f.square().mean(), rtol=1e-13, atol=0
    )
    fd = dseal(total_energy, batch, group, method="finite_difference", eps=1e-4)
    torch.testing.assert_close(fd, f.square().mean(), rtol=1e-10, atol=0)  # linear: exact too
    s = scales(group.sample(24, generator=torch.Generator().manual_seed(4)))
    expected = ((s - 1.0) * f).square().mean()
    value = gseal(total_energy, batch, group, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(value, expected, rtol=1e-13, atol=0)
    # with the Lorentz generators too, the scale adds its f² to the boosts' E-derivatives
    both = make_group("lorentz+energy_scale")
    p = (batch["p4"] * batch["mask"].unsqueeze(-1)).sum(1)  # ∂_{K_i} E = p_i, rotations: 0
    expected = (f.square() + p[:, 1:].square().sum(-1)).mean()
    torch.testing.assert_close(dseal(total_energy, batch, both), expected, rtol=1e-13, atol=0)
