"""LLoCa around the constituent transformer, and PELICAN (the `lloca` extra; installed with dev)."""

import sys
from pathlib import Path

import pytest
import torch

from seal.groups import Lorentz, ZBoostZRotation
from seal.groups.lorentz import transform
from seal.models import ConstituentTransformer
from seal.models.lloca import LLoCaTagger  # imports lloca only when a model is built
from seal.models.pelican import PelicanTagger
from seal.testing import assert_invariant, random_on_shell

FIXTURE = Path(__file__).parents[1] / "data" / "fixture_jets.h5"

pytest.importorskip("lloca", reason="the optional extra seal-hep[lloca] is not installed")


def jets(seed=9):
    """Jets of 4–8 constituents, padded (with fewer than 3 the Frames-Net has no unique frame:
    lloca then regularises with noise)."""
    return random_on_shell(5, 8, seed=seed)  # example b keeps 8 − b constituents


def lloca(**kw):
    torch.manual_seed(0)
    backbone = ConstituentTransformer(dim=16, depth=1, heads=2, ff_dim=16, dropout=0.0)
    return LLoCaTagger(backbone, hidden=8, layers=1, **kw).double().eval()


@pytest.mark.parametrize("anchor", ["leading", "mean"])
def test_lloca_is_exactly_lorentz_invariant_in_float64(anchor):
    batch, model = jets(), lloca(anchor=anchor)
    assert model(batch).std() > 1e-3  # not trivially constant
    assert_invariant(model, batch, Lorentz(beta_max=0.9), n_samples=4, atol=1e-5, rtol=1e-5)


def test_lloca_canonical_momenta_are_the_same_in_every_frame():
    batch, model = jets(seed=3), lloca()
    lam = Lorentz(beta_max=0.9).sample(len(batch["p4"]), generator=torch.Generator().manual_seed(1))
    moved = dict(batch, p4=transform(batch["p4"], lam, batch["mask"]))
    moved["jet_p4"] = transform(batch["jet_p4"], lam)
    before, after = model.canonical(batch), model.canonical(moved)
    for key in ("p4", "jet_p4"):
        torch.testing.assert_close(after[key], before[key], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(before["p4"], batch["p4"])  # the frame is not the identity

    # the frame is a Lorentz transformation: masses are kept
    def m2(p):
        return p[..., 0] ** 2 - (p[..., 1:] ** 2).sum(-1)

    torch.testing.assert_close(m2(before["p4"]), m2(batch["p4"]), atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("beam", ["lightlike", "spacelike"])
def test_lloca_references_break_it_to_rotations_about_the_beam(beam):
    batch = jets(seed=4)
    broken = lloca(beam_reference=beam, time_reference=True)
    assert_invariant(broken, batch, ZBoostZRotation(beta_max=0.0), atol=1e-5, rtol=1e-5)
    lam = Lorentz(beta_max=0.8).sample(len(batch["p4"]), generator=torch.Generator().manual_seed(2))
    moved = dict(batch, p4=transform(batch["p4"], lam, batch["mask"]))
    assert (broken(moved) - broken(batch)).abs().max() > 1e-3  # a general boost moves it
    assert broken.references[-1] == [1.0, 0.0, 0.0, 0.0] and len(broken.references) == 3


def test_lloca_handles_masks_with_holes_like_packed_jets():
    batch, model = jets(seed=6), lloca()
    order = torch.arange(8).flip(0)  # the padding first, the constituents last
    holes = {"p4": batch["p4"][:, order], "mask": batch["mask"][:, order]}
    torch.testing.assert_close(model(holes), model(batch), atol=1e-10, rtol=1e-10)


def test_lloca_is_invariant_on_float32_jets():
    """Generated top jets in float32 (collimated, near-massless constituents): a boost computed
    in float64 and rounded to float32 moves the output by far less than its spread."""
    from seal.data.jets import JetFile

    file = JetFile(FIXTURE, 80)
    data = file.read(0, 64)
    file.close()
    batch = {"p4": torch.as_tensor(data["p4"]), "mask": torch.as_tensor(data["mask"])}
    torch.manual_seed(0)
    model = LLoCaTagger(ConstituentTransformer(dim=16, depth=1, heads=2, ff_dim=16, dropout=0.0))
    model.eval()
    lam = Lorentz(beta_max=0.5).sample(64, generator=torch.Generator().manual_seed(3))
    moved = dict(batch, p4=transform(batch["p4"].double(), lam, batch["mask"]).float())
    with torch.no_grad():
        out, out_moved = model(batch), model(moved)
    assert (out_moved - out).abs().max() < 1e-3 * out.std()


def test_lloca_trains_its_frames_net_and_backbone():
    batch = {k: v.float() if v.is_floating_point() else v for k, v in jets(seed=5).items()}
    torch.manual_seed(0)
    model = LLoCaTagger(ConstituentTransformer(dim=16, depth=1, heads=2, ff_dim=16), hidden=8)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), target)
    loss.backward()
    assert torch.isfinite(loss)
    frames_grad = [p.grad for p in model.equivectors.parameters() if p.grad is not None]
    assert frames_grad and max(g.abs().max().item() for g in frames_grad) > 0
    assert model.equivectors.block.edge_inited  # standardised from the first batch
    mean = model.equivectors.block.edge_mean.clone()
    model(batch)  # and only once
    assert torch.equal(model.equivectors.block.edge_mean, mean)


def test_lloca_bad_settings_and_missing_package_are_named(monkeypatch):
    backbone = ConstituentTransformer(dim=16, depth=1, heads=2, ff_dim=16)
    with pytest.raises(ValueError, match="beam_reference='xyplane'"):
        LLoCaTagger(backbone, beam_reference="xyplane")
    with pytest.raises(ValueError, match=r"handoff_gamma=0\.5"):
        LLoCaTagger(backbone, handoff_gamma=0.5)
    with pytest.raises(ValueError, match="anchor='first'"):
        LLoCaTagger(backbone, anchor="first")
    empty = {"p4": torch.zeros(1, 3, 4), "mask": torch.zeros(1, 3, dtype=torch.bool)}
    with pytest.raises(ValueError, match="without constituents"):
        LLoCaTagger(backbone)(empty)
    monkeypatch.setitem(sys.modules, "lloca", None)  # as if not installed
    monkeypatch.setitem(sys.modules, "lloca.equivectors", None)
    with pytest.raises(ImportError, match=r"pip install 'seal-hep\[lloca\]'"):
        LLoCaTagger(backbone)
    monkeypatch.setitem(sys.modules, "pelican", None)
    with pytest.raises(ImportError, match=r"pip install 'seal-hep\[lloca\]'"):
        PelicanTagger()


def test_pelican_is_exactly_lorentz_invariant_and_trains():
    batch = random_on_shell(7, 7, seed=9)  # down to one constituent: the masses remain
    torch.manual_seed(0)
    model = PelicanTagger(blocks=1, hidden=8).double().eval()
    assert model(batch).std() > 1e-3
    assert_invariant(model, batch, Lorentz(beta_max=0.9), n_samples=4, atol=1e-8, rtol=1e-8)
    model.train()
    model(batch).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_without_references_the_same_weights_are_invariant_and_give_another_output():
    from seal.groups import Lorentz
    from seal.models import ConstituentTransformer
    from seal.models.lloca import LLoCaTagger
    from seal.symmetry.gseal import transform_entry
    from seal.testing import random_on_shell

    torch.manual_seed(0)
    backbone = ConstituentTransformer(size="cpu", dropout=0.0)
    net = LLoCaTagger(backbone, hidden=8, beam_reference="lightlike", time_reference=True)
    net = net.double().eval()
    batch = random_on_shell(6, 10, seed=2, max_momentum=200.0)  # ≥ 4 constituents: one frame
    lam = Lorentz(0.5).sample(6, generator=torch.Generator().manual_seed(0))
    moved = {**batch, "p4": transform_entry(batch, "p4", lam)}
    with torch.no_grad():
        with_refs = net(batch)
        with net.without_references():
            bare, bare_moved = net(batch), net(moved)
        assert net.references and torch.equal(net(batch), with_refs)  # restored on exit
    torch.testing.assert_close(bare_moved, bare, rtol=1e-7, atol=1e-9)  # invariant without them
    assert (with_refs - bare).abs().max() > 1e-4  # the references mattered
