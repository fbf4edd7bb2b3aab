"""docs/examples/outside_model.py: lloca's ParticleTransformer wrapped and trained with GSEAL."""

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from seal.groups import Boosts
from seal.symmetry import SymmetryLoss
from seal.symmetry.gseal import transform_entry

pytest.importorskip("lloca")

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "outside_model.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("outside_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def result(example) -> dict:
    return example.main(batch_size=8, n_particles=5, steps=2)


def test_the_wrapper_meets_the_batch_contract(result):
    model, batch = result["model"], result["batch"]
    model.eval()
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (len(batch["p4"]),) and torch.isfinite(logits).all()


def test_the_identity_element_gives_no_penalty_in_either_mode(result):
    assert result["identity_penalty"] < 1e-12  # eval
    assert result["identity_penalty_train"] < 1e-12  # dropout on: the masks are replayed


def test_training_ran_with_a_positive_finite_boost_penalty(result):
    penalties, losses = result["penalties"], result["losses"]
    assert len(penalties) == len(losses) == 2
    assert all(math.isfinite(x) for x in penalties + losses)
    assert all(p > 0 for p in penalties)
    assert math.isfinite(result["dsymm"]) and result["dsymm"] > 0
    # ParT's dropout makes the training forwards random: compared inputs replay one RNG state
    assert result["route"] == "replay" and "dropout" in result["reason"]


def _same_elements(batch, group, seed):
    lam = group.sample(len(batch["p4"]), generator=torch.Generator().manual_seed(seed))
    return {**batch, "p4": transform_entry(batch, "p4", lam)}


def test_the_penalty_equals_a_hand_written_reference_in_eval_mode(result):
    model, batch, group = result["model"], result["batch"], Boosts(beta_max=0.5)
    model.eval()
    loss = SymmetryLoss("gsymm", group=group, generator=torch.Generator().manual_seed(3))
    value = loss(model, batch)
    assert loss.route == "fused"  # eval: no dropout, BatchNorm reads running statistics
    with torch.no_grad():
        reference = (model(_same_elements(batch, group, 3)) - model(batch)).square().mean()
    assert float(reference) > 1e-6
    torch.testing.assert_close(value.detach(), reference, rtol=1e-5, atol=1e-9)


def test_the_penalty_equals_a_reference_with_one_dropout_mask_in_training(result):
    model, batch, group = result["model"], result["batch"], Boosts(beta_max=0.5)
    model.train()
    loss = SymmetryLoss("gsymm", group=group, generator=torch.Generator().manual_seed(4))
    state = torch.get_rng_state()
    value = loss(model, batch)
    assert torch.equal(torch.get_rng_state(), state)  # the penalty consumed no task randomness
    outs = []
    for inputs in (_same_elements(batch, group, 4), batch):
        torch.set_rng_state(state)  # the same dropout masks for both forwards
        with torch.no_grad():
            outs.append(model(inputs))
    reference = (outs[0] - outs[1]).square().mean()
    torch.testing.assert_close(value.detach(), reference, rtol=1e-5, atol=1e-9)


def test_exact_dseal_on_part_is_refused_naming_the_pair_features(example):
    # ParT's pairwise features have a 0/0 derivative on the i = j pair: exact δSEAL used to
    # return NaN silently; now it is refused before any step, finite differences work
    from seal.symmetry import RouteError
    from seal.testing import random_on_shell

    model, batch = example.ParTOnP4().double().eval(), random_on_shell(6, 5, seed=1)
    with pytest.raises(RouteError, match=r"part\.pair_embed \(PairEmbed.*finite_difference"):
        SymmetryLoss("dsymm", group=Boosts())(model, batch)
    fd = SymmetryLoss("dsymm", group=Boosts(), method="finite_difference")(model, batch)
    assert torch.isfinite(fd) and fd > 0
