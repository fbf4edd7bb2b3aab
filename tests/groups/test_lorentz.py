import math

import pytest
import torch

from seal.groups import (
    METRIC,
    boost_matrix,
    check_four_vectors,
    generators,
    inner,
    mass2,
    rotation_matrix,
    transform,
)

F64 = torch.float64


def test_inner_and_mass2_on_known_vectors():
    a = torch.tensor([5.0, 1.0, 2.0, 3.0], dtype=F64)
    b = torch.tensor([2.0, -1.0, 0.5, 4.0], dtype=F64)
    assert inner(a, b).item() == 10.0 - (-1.0 + 1.0 + 12.0)
    assert mass2(a).item() == 25.0 - 14.0
    assert torch.equal(METRIC, torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=F64)))


def test_generators_order_symmetry_and_algebra():
    g = generators()
    assert g.shape == (6, 4, 4) and g.dtype == F64
    kx, ky, kz, jx, jy, jz = g
    for k in (kx, ky, kz):
        assert torch.equal(k, k.T)
    for j in (jx, jy, jz):
        assert torch.equal(j, -j.T)
    assert kz[0, 3] == kz[3, 0] == 1 and kz.abs().sum() == 2

    def comm(a, b):
        return a @ b - b @ a

    assert torch.equal(comm(jx, jy), jz)
    assert torch.equal(comm(jy, jz), jx)
    assert torch.equal(comm(kx, ky), -jz)
    assert torch.equal(comm(jx, ky), kz)
    # every generator preserves the metric infinitesimally: Tᵀη + ηT = 0
    for t in g:
        assert torch.equal(t.T @ METRIC + METRIC @ t, torch.zeros(4, 4, dtype=F64))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_expm_of_boost_generator_is_boost_matrix(axis):
    theta = 0.83
    beta = torch.zeros(3, dtype=F64)
    beta[axis] = math.tanh(theta)
    expected = torch.linalg.matrix_exp(theta * generators()[axis])
    torch.testing.assert_close(boost_matrix(beta), expected, atol=1e-13, rtol=0)
    assert boost_matrix(beta)[0, 0].item() == pytest.approx(math.cosh(theta), rel=1e-14)


def test_expm_of_rotation_generators_is_rotation_matrix():
    gen = torch.Generator().manual_seed(1)
    axis_angle = torch.randn(10, 3, generator=gen, dtype=F64) * 2
    expected = torch.linalg.matrix_exp(torch.einsum("bi,ijk->bjk", axis_angle, generators()[3:]))
    torch.testing.assert_close(rotation_matrix(axis_angle), expected, atol=1e-13, rtol=0)
    # a quarter turn about z takes x̂ to ŷ
    quarter = rotation_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=F64))
    x_hat = torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=F64)
    torch.testing.assert_close(quarter @ x_hat, torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64))


def test_general_boost_matches_exponential_and_zero_velocity_is_identity():
    gen = torch.Generator().manual_seed(2)
    rapidity = torch.randn(8, 3, generator=gen, dtype=F64)
    eta = rapidity.norm(dim=-1, keepdim=True)
    beta = torch.tanh(eta) * rapidity / eta
    expected = torch.linalg.matrix_exp(torch.einsum("bi,ijk->bjk", rapidity, generators()[:3]))
    torch.testing.assert_close(boost_matrix(beta), expected, atol=1e-12, rtol=1e-12)
    assert torch.equal(boost_matrix(torch.zeros(3, dtype=F64)), torch.eye(4, dtype=F64))


def test_collinear_boosts_add_rapidities():
    direction = torch.tensor([1.0, -2.0, 0.5], dtype=F64)
    direction = direction / direction.norm()
    a, b = 0.4, 1.1
    composed = boost_matrix(math.tanh(a) * direction) @ boost_matrix(math.tanh(b) * direction)
    torch.testing.assert_close(
        composed, boost_matrix(math.tanh(a + b) * direction), atol=1e-13, rtol=0
    )


def test_boost_gives_rest_particle_its_velocity():
    beta = torch.tensor([0.3, -0.2, 0.6], dtype=F64)
    rest = torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=F64)
    moved = boost_matrix(beta) @ rest
    torch.testing.assert_close(moved[1:] / moved[0], beta, atol=1e-15, rtol=0)


@pytest.mark.parametrize(
    "beta, words",
    [
        ([0.0, 0.0, 1.0], "|β| = 1.0"),
        ([0.8, 0.8, 0.0], "|β| = 1.13"),
        ([float("nan"), 0, 0], "nan"),
    ],
)
def test_boost_rejects_superluminal_and_nan(beta, words):
    with pytest.raises(ValueError, match="β") as info:
        boost_matrix(torch.tensor([[0.1, 0.0, 0.0], beta], dtype=F64))
    assert words in str(info.value) and "index (1,)" in str(info.value)


def test_boost_and_rotation_reject_wrong_shape():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        boost_matrix(torch.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 3\)"):
        rotation_matrix(torch.zeros(2, 2))


def test_transform_keeps_padding_zero_and_preserves_products():
    gen = torch.Generator().manual_seed(3)
    p4 = torch.randn(4, 5, 4, generator=gen, dtype=F64)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 4, dtype=torch.bool)
    p4[~mask] = 0.0
    lam = boost_matrix(torch.full((4, 3), 0.5, dtype=F64))
    out = transform(p4, lam, mask)
    assert torch.equal(out[~mask], torch.zeros_like(out[~mask]))
    torch.testing.assert_close(inner(out[:, 0], out[:, 1]), inner(p4[:, 0], p4[:, 1]))
    torch.testing.assert_close(transform(p4[:, 0], lam), out[:, 0])
    assert transform(p4.float(), lam).dtype == torch.float32


def test_check_four_vectors_names_the_entry_and_index():
    p4 = torch.ones(2, 3, 4)
    p4[1, 2, 0] = float("inf")
    with pytest.raises(ValueError, match=r"batch\['p4'\] has a non-finite .* index \(1, 2, 0\)"):
        check_four_vectors(p4, "p4")
    with pytest.raises(ValueError, match=r"batch\['jet_p4'\] must have shape"):
        check_four_vectors(torch.ones(2, 3), "jet_p4")
