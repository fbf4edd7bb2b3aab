import math

import pytest
import torch
from tolerances import EXACT_F64

from seal.groups import ZBoostZRotation, transform
from seal.models import FEATURE_NAMES, constituent_features

F64 = torch.float64


def massless(pt, eta, phi):
    return [pt * math.cosh(eta), pt * math.cos(phi), pt * math.sin(phi), pt * math.sinh(eta)]


def wrap(angle):
    while angle > math.pi:
        angle -= 2 * math.pi
    while angle <= -math.pi:
        angle += 2 * math.pi
    return angle


def test_features_equal_hand_computed_values_across_the_phi_seam():
    parts = [(300.0, 0.5, 3.10), (120.0, 0.3, -3.05), (40.0, 0.9, 2.95)]  # φ straddles ±π
    p4 = torch.tensor([[massless(*p) for p in parts] + [[0.0] * 4]], dtype=F64)  # one pad
    mask = torch.tensor([[True, True, True, False]])
    out = constituent_features(p4, mask)
    jet = [sum(c) for c in zip(*[massless(*p) for p in parts])]
    jet_pt = math.hypot(jet[1], jet[2])
    jet_eta = math.asinh(jet[3] / jet_pt)
    jet_phi = math.atan2(jet[2], jet[1])
    for i, (pt, eta, phi) in enumerate(parts):
        energy = pt * math.cosh(eta)
        dphi = wrap(phi - jet_phi)
        expected = [
            math.log(pt),
            math.log(energy),
            math.log(pt / jet_pt),
            math.log(energy / jet[0]),
            eta - jet_eta,
            dphi,
            math.hypot(eta - jet_eta, dphi),
        ]
        torch.testing.assert_close(out[0, i], torch.tensor(expected, dtype=F64), **EXACT_F64)
        assert abs(dphi) < 0.2  # the seam did not produce a 2π jump
    assert torch.equal(out[0, 3], torch.zeros(7, dtype=F64))
    assert out.shape == (1, 4, len(FEATURE_NAMES))


def test_stored_jet_axis_is_used_when_given():
    p4 = torch.tensor([[massless(100.0, 0.0, 0.0), massless(50.0, 0.2, 0.1)]], dtype=F64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    axis = torch.tensor([massless(200.0, 1.0, 0.5)], dtype=F64)
    out = constituent_features(p4, mask, jet_p4=axis)
    torch.testing.assert_close(out[0, 0, 4:6], torch.tensor([-1.0, -0.5], dtype=F64))


def test_padding_gives_finite_values_and_gradients():
    gen = torch.Generator().manual_seed(0)
    p4 = torch.randn(3, 6, 4, generator=gen, dtype=F64) * 50
    p4[..., 0] = p4[..., 1:].norm(dim=-1) + 1.0
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [1] * 6], dtype=torch.bool)
    p4 = torch.where(mask.unsqueeze(-1), p4, 0.0).requires_grad_(True)
    out = constituent_features(p4, mask)
    assert torch.isfinite(out).all()
    out.square().sum().backward()
    assert torch.isfinite(p4.grad).all()
    assert torch.equal(p4.grad[~mask], torch.zeros_like(p4.grad[~mask]))


def test_longitudinal_boosts_and_azimuthal_rotations_keep_transverse_features():
    # massless constituents: pT, pT/pT_jet and Δφ are invariant under the collider subgroup;
    # Δη and ΔR too when the axis is massless (pseudorapidity = rapidity), not for the massive
    # constituent sum; the energies change
    gen = torch.Generator().manual_seed(2)
    pt = 10 + 90 * torch.rand(4, 5, generator=gen, dtype=F64)
    eta = torch.randn(4, 5, generator=gen, dtype=F64) * 0.3
    phi = 0.2 * torch.randn(4, 5, generator=gen, dtype=F64)
    p4 = torch.stack((pt * eta.cosh(), pt * phi.cos(), pt * phi.sin(), pt * eta.sinh()), -1)
    axis = torch.tensor([massless(100.0, 0.1, 0.05)] * 4, dtype=F64)
    mask = torch.ones(4, 5, dtype=torch.bool)
    lam = ZBoostZRotation(0.9).sample(4, generator=torch.Generator().manual_seed(3))
    moved, moved_axis = transform(p4, lam), transform(axis, lam)
    before, after = constituent_features(p4, mask), constituent_features(moved, mask)
    torch.testing.assert_close(
        after[..., [0, 2, 5]], before[..., [0, 2, 5]], rtol=1e-10, atol=1e-10
    )
    assert (after[..., 4] - before[..., 4]).abs().max() > 1e-3  # massive axis: Δη moves
    before = constituent_features(p4, mask, axis)
    after = constituent_features(moved, mask, moved_axis)
    transverse = [0, 2, 4, 5, 6]
    torch.testing.assert_close(
        after[..., transverse], before[..., transverse], rtol=1e-10, atol=1e-10
    )
    assert (after[..., 1] - before[..., 1]).abs().max() > 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_is_preserved(dtype):
    p4 = torch.tensor([[massless(10.0, 0.1, 0.2)]], dtype=dtype)
    assert constituent_features(p4, torch.ones(1, 1, dtype=torch.bool)).dtype == dtype
