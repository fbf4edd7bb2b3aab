"""The hard-invariant network and the dual-subnet hybrid."""

import sys

import pytest
import torch
from tolerances import EXACT_F64, INVARIANT_F64

from seal.groups import Lorentz, ZBoostZRotation
from seal.models import MLP, ConstituentTransformer, HybridNet, InvariantNet, pair_invariants
from seal.models.invariant import signed_log
from seal.testing import assert_invariant, random_on_shell

F64 = torch.float64


def invariant_net(**kw):
    torch.manual_seed(0)
    return InvariantNet(hidden=16, latent_dim=8, **kw).double().eval()


def hybrid_net(condition="leading_pt"):
    torch.manual_seed(0)
    general = ConstituentTransformer(dim=16, depth=1, heads=2, ff_dim=16, dropout=0.0)
    return HybridNet(invariant_net(), general, latent_dim=8, condition=condition).double().eval()


def test_pair_invariants_hand_values():
    p4 = torch.tensor([[[5.0, 0, 0, 3], [2.0, 1, 0, 0], [0, 0, 0, 0]]], dtype=F64)  # m² 16, 3
    mask = torch.tensor([[True, True, False]])
    pairs = pair_invariants(p4, mask)  # P = (7, 1, 0, 3): P² = 49 - 10 = 39
    expected_raw = torch.tensor(
        [[16.0, 5 * 7 - 9, 5 * 7 - 9, 39], [10.0, 35 - 9, 14 - 1, 39]], dtype=F64
    )
    torch.testing.assert_close(pairs[0, 0, :2], signed_log(expected_raw))
    assert pairs[0, 1, 1, 0] == pytest.approx(torch.log1p(torch.tensor(3.0)).item())
    assert (pairs[0, 2] == 0).all() and (pairs[0, :, 2] == 0).all()
    assert signed_log(torch.tensor(-3.0)) == -signed_log(torch.tensor(3.0))


@pytest.mark.parametrize("max_particles", [32, 5])  # 5: jets longer than the slots kept
def test_invariant_net_is_exactly_lorentz_invariant(max_particles):
    batch = random_on_shell(12, 9, seed=3)  # padded rows included
    model = invariant_net(max_particles=max_particles)
    assert_invariant(model, batch, Lorentz(beta_max=0.9), n_samples=4, **INVARIANT_F64)


def test_invariant_net_ignores_padding_and_order():
    batch = random_on_shell(6, 5, seed=4)
    model = invariant_net()
    out = model(batch)
    padded = {
        "p4": torch.cat((batch["p4"], torch.zeros(6, 3, 4, dtype=F64)), 1),
        "mask": torch.cat((batch["mask"], torch.zeros(6, 3, dtype=torch.bool)), 1),
    }
    torch.testing.assert_close(model(padded), out, **EXACT_F64)
    perm = torch.tensor([4, 2, 0, 1, 3])
    permuted = {"p4": batch["p4"][:, perm], "mask": batch["mask"][:, perm]}
    torch.testing.assert_close(model(permuted), out, **EXACT_F64)


def test_invariant_net_is_not_trivially_constant():
    out = invariant_net()(random_on_shell(8, 4, seed=5))
    assert out.std() > 1e-4


def test_hybrid_weights_sum_to_one_and_follow_the_condition():
    model = hybrid_net(condition="cond")
    batch = random_on_shell(16, 6, seed=6)
    batch["cond"] = torch.full((16,), 50.0, dtype=F64)
    weights = model.mixing(batch)
    assert weights.shape == (16, 2) and (weights > 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(16, dtype=F64), atol=1e-15, rtol=0)
    out = model(batch)
    moved = dict(batch, cond=torch.full((16,), 800.0, dtype=F64))  # only the condition changes
    assert not torch.allclose(model.mixing(moved), weights)
    assert (model(moved) - out).abs().min() > 1e-6


def test_hybrid_leading_pt_condition_and_pure_invariant_limit():
    model = hybrid_net()
    batch = random_on_shell(10, 6, seed=7)
    pt = torch.hypot(batch["p4"][..., 1], batch["p4"][..., 2]).masked_fill(~batch["mask"], 0)
    torch.testing.assert_close(model.condition_value(batch), pt.amax(1))
    with torch.no_grad():  # force w_inv = 1: the hybrid becomes exactly invariant
        model.weight_net[-1].weight.zero_()
        model.weight_net[-1].bias.copy_(torch.tensor([200.0, -200.0]))
    assert_invariant(model, batch, Lorentz(beta_max=0.8), **INVARIANT_F64)


def test_hybrid_accepts_an_mlp_subnet_and_rejects_a_scalar_one():
    batch = random_on_shell(4, 2, seed=8, pad=False)
    model = HybridNet(
        InvariantNet(hidden=8, latent_dim=8), MLP(n_particles=2, out_dim=8, width=8), latent_dim=8
    ).double()
    assert model(batch).shape == (4,)
    with pytest.raises(TypeError, match="MLP cannot be a hybrid subnet"):
        HybridNet(InvariantNet(), MLP(n_particles=2, out_dim=1))
    with pytest.raises(KeyError, match="'nope' is neither a built-in"):
        HybridNet(InvariantNet(), MLP(n_particles=2, out_dim=8), condition="nope").double()(batch)


def test_lgatr_without_the_extra_names_the_package(monkeypatch):
    from seal.models.lgatr import LGATrTagger

    monkeypatch.setitem(sys.modules, "lgatr", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'seal-hep\[lgatr\]'"):
        LGATrTagger()


def test_lgatr_is_lorentz_invariant_and_spurions_break_it_to_z_rotations():
    pytest.importorskip("lgatr", reason="the optional extra seal-hep[lgatr] is not installed")
    from seal.models.lgatr import LGATrTagger

    batch = random_on_shell(6, 7, seed=9)
    torch.manual_seed(0)
    model = LGATrTagger(blocks=1, hidden_mv=4, hidden_s=8).double().eval()
    assert_invariant(model, batch, Lorentz(beta_max=0.8), atol=1e-8, rtol=1e-8)
    broken = (
        LGATrTagger(blocks=1, hidden_mv=4, hidden_s=8, beam_spurion="xyplane", time_spurion=True)
        .double()
        .eval()
    )
    assert_invariant(broken, batch, ZBoostZRotation(beta_max=0.0), atol=1e-8, rtol=1e-8)
    with pytest.raises(AssertionError):
        assert_invariant(broken, batch, Lorentz(beta_max=0.8))
