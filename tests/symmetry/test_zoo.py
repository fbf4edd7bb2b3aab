"""Exact for every model or a clear refusal: the penalties on a zoo of networks a user brings.

Under the identity element a penalty must vanish — any value is noise (dropout masks that
differ between compared forwards, batch statistics mixing originals and copies) that training
would fight as symmetry breaking. Each network trains one step, in training mode, through the
callback with its defaults; the identity penalty must be ≤ 1e-12 × the penalty at β_max = 0.5.
"""

import re

import pytest
import pytorch_lightning as pl
import torch
from tolerances import IDENTITY_RELATIVE
from zoo import NEEDS, NO_SECOND_DERIVATIVE, ZOO

from seal.data.tensordict import loader
from seal.groups import Boosts, Group, Lorentz
from seal.symmetry import RouteError, SymmetryLoss, SymmetryRegularizer
from seal.tasks import TaggingTask
from seal.testing import quiet_trainer, random_on_shell

F64 = torch.float64


class Still(Group):
    """The identity as a group: every sample is 1, every generator 0 (δSEAL's identity)."""

    name = "still"
    generator_indices = (0, 1, 2, 3, 4, 5)

    def generators(self, dtype=F64, device=None):
        return torch.zeros(6, 4, 4, dtype=dtype, device=device)

    def _sample(self, n, generator):
        return torch.eye(4, dtype=F64).expand(n, 4, 4)


# name → (penalty, options): every route each model can take
PENALTIES = {
    "GSEAL": ("gsymm", {}),
    "GSEAL on half the batch": ("gsymm", {"fraction": 0.5}),
    "δSEAL exact": ("dsymm", {}),
    "δSEAL exact, per generator": ("dsymm", {"implementation": "separate"}),
    "δSEAL finite diff.": ("dsymm", {"method": "finite_difference"}),
    "δSEAL finite diff. stochastic, half": (
        "dsymm",
        {"method": "finite_difference", "stochastic": True, "fraction": 0.5},
    ),
}


INVARIANT = {"seal InvariantNet", "L-GATr", "L-GATr-slim"}


def jets(n=12, particles=6):
    batch = random_on_shell(n, particles, seed=3, max_momentum=100.0)
    batch["target"] = (torch.arange(n) % 2).to(F64)
    return batch


def build(name):
    factory = ZOO[name][0]
    if name in NEEDS:
        pytest.importorskip(
            NEEDS[name], reason=f"the optional extra seal-hep[{NEEDS[name]}] is missing"
        )
    pl.seed_everything(0, verbose=False)
    return factory().double()


def first_step_penalty(name, penalty, options, group):
    """train/symm_loss of one training step of the zoo model with the callback's defaults."""
    callback = SymmetryRegularizer(penalty, group=group, seed=1, **options)
    trainer = quiet_trainer(
        max_steps=1,
        devices=1,
        precision="64-true",
        enable_checkpointing=False,
        callbacks=[callback],
        limit_val_batches=0,
    )
    trainer.fit(TaggingTask(build(name)), loader(jets(), batch_size=12))
    return trainer.callback_metrics["train/symm_loss"].item(), callback.loss


@pytest.mark.parametrize("penalty_name", PENALTIES)
@pytest.mark.parametrize("name", ZOO)
def test_identity_penalty_vanishes_or_the_route_is_refused(name, penalty_name):
    penalty, options = PENALTIES[penalty_name]
    _, blocker, coupled = ZOO[name]
    identity = Boosts(0.0) if penalty == "gsymm" else Still()
    real = Lorentz(0.5)
    if coupled and penalty == "dsymm" and "method" not in options:
        with pytest.raises(RouteError, match=rf"{re.escape(coupled)}.*method=finite_difference"):
            first_step_penalty(name, penalty, options, identity)
        return
    if name in NO_SECOND_DERIVATIVE and penalty == "dsymm" and "method" not in options:
        with pytest.raises(RouteError, match=r"second derivative.*method=finite_difference"):
            first_step_penalty(name, penalty, options, identity)
        return
    noise, loss = first_step_penalty(name, penalty, options, identity)
    signal, _ = first_step_penalty(name, penalty, options, real)
    if name in INVARIANT:  # exactly invariant networks: nothing to find either way
        assert noise <= 1e-20 and signal <= 1e-20, (noise, signal)
        return
    assert signal > 1e-8, signal  # a real test: the model is not invariant
    assert noise <= IDENTITY_RELATIVE * signal, (noise, signal, loss.route, loss.reason)
    if penalty == "gsymm" and not options:  # the route and the module that decided it
        assert loss.route == ("fused" if blocker is None else "replay")
        assert blocker is None or blocker in loss.reason, loss.reason


@pytest.mark.parametrize("name", [n for n, (_, blocker, _) in ZOO.items() if blocker])
def test_forcing_the_fused_route_names_the_module(name):
    model = build(name).train()
    with pytest.raises(RouteError, match=rf"implementation=fused .*{re.escape(ZOO[name][1])}"):
        SymmetryLoss("gsymm", Lorentz(0.5), implementation="fused")(model, jets())


@pytest.mark.parametrize("name", ZOO)
def test_plain_api_is_exact_on_every_model(name):
    model = build(name).train()
    assert SymmetryLoss("gsymm", Boosts(0.0))(model, jets()).item() == 0.0
    with_task = SymmetryLoss("gsymm", Boosts(0.0), fraction=0.5)
    output, penalty = with_task.with_output(model, jets())
    assert output.shape == (12,) and penalty.item() == 0.0


@pytest.mark.parametrize("name", ["ParT", "ParticleNet", "L-GATr-slim + references"])
def test_exact_dseal_equals_float64_finite_differences_in_eval_mode(name):
    pytest.importorskip(NEEDS[name])
    torch.manual_seed(0)
    model, batch = ZOO[name][0]().double().eval(), jets()
    exact = SymmetryLoss("dsymm", group=Lorentz())(model, batch)
    fd = SymmetryLoss("dsymm", group=Lorentz(), method="finite_difference", eps=1e-5)(model, batch)
    assert exact > 1e-8
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=0)


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", ["ParT", "ParticleNet", "L-GATr-slim + references"])
def test_gseal_on_the_wrapped_backbones_equals_a_hand_written_reference(name, mode):
    """The same group elements, and in training one RNG state for both forwards (the same
    dropout masks; batch statistics those of each compared batch)."""
    from seal.symmetry.gseal import transform_entry

    pytest.importorskip(NEEDS[name])
    torch.manual_seed(0)
    model, batch, group = ZOO[name][0]().double(), jets(), Lorentz(0.5)
    model.train(mode == "train")
    loss = SymmetryLoss("gsymm", group=group, generator=torch.Generator().manual_seed(5))
    state = torch.get_rng_state()
    value = loss(model, batch)
    lam = group.sample(len(batch["p4"]), generator=torch.Generator().manual_seed(5))
    moved = {**batch, "p4": transform_entry(batch, "p4", lam)}
    outputs = []
    for inputs in (moved, batch):
        torch.set_rng_state(state)
        with torch.no_grad():
            outputs.append(model(inputs))
    reference = (outputs[0] - outputs[1]).square().mean()
    assert float(reference) > 1e-8
    torch.testing.assert_close(value.detach(), reference, rtol=1e-10, atol=0)
