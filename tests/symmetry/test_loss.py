"""SymmetryLoss, the plain-PyTorch API: routes, isolation from training, weights, reductions."""

import logging

import pytest
import pytorch_lightning as pl
import torch
from test_penalties import FixedZBoost, first_pz
from tolerances import EXACT_F64, ROUTES_F64
from zoo import ModuleDropout, PooledBatchNorm

from seal.data.tensordict import loader
from seal.groups import Boosts, Lorentz, ZBoostZRotation
from seal.models import MLP
from seal.symmetry import DSEAL, GSEAL, RouteError, SymmetryLoss, SymmetryRegularizer, dseal
from seal.tasks import RegressionTask, TaggingTask
from seal.testing import quiet_trainer, random_on_shell

F64 = torch.float64


def jets(n=16, seed=3):
    batch = random_on_shell(n, 6, seed=seed)
    batch["target"] = (torch.arange(n) % 2).to(F64)
    batch["weight"] = 0.5 + torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return batch


def fit(task, callbacks, steps=4):
    trainer = quiet_trainer(
        max_steps=steps,
        devices=1,
        precision="64-true",
        enable_checkpointing=False,
        callbacks=callbacks,
        limit_val_batches=0,
    )
    data = {k: torch.cat([v, v.flip(0)]) for k, v in jets().items()}
    trainer.fit(task, loader(data, batch_size=8))
    return trainer


def state_after(model_factory, callbacks):
    pl.seed_everything(0, verbose=False)
    task = TaggingTask(model_factory().double())
    fit(task, callbacks)
    return task.state_dict(), torch.get_rng_state()


@pytest.mark.parametrize("model", [ModuleDropout, PooledBatchNorm])
@pytest.mark.parametrize(
    ("penalty", "options"),
    [("gsymm", {}), ("gsymm", {"fraction": 0.5}), ("dsymm", {"method": "finite_difference"})],
)
def test_zero_weight_is_bit_identical_to_no_regulariser(model, penalty, options):
    plain_state, plain_rng = state_after(model, [])
    callback = SymmetryRegularizer(penalty, weight=0.0, seed=2, **options)
    state, rng = state_after(model, [callback])
    assert callback.batches == 4
    assert torch.equal(rng, plain_rng)  # the task's random stream is untouched
    for name, value in plain_state.items():  # parameters and BatchNorm running statistics
        assert torch.equal(value, state[name]), name


def test_probing_and_penalties_leave_rng_and_buffers_alone():
    pl.seed_everything(0, verbose=False)
    model = PooledBatchNorm().double().train()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    rng = torch.get_rng_state()
    loss = SymmetryLoss("gsymm", Lorentz(0.5))
    assert loss(model, jets()) > 0
    assert loss.route == "replay" and "norm (BatchNorm1d)" in loss.reason
    assert loss.traits.mutated_buffers == (
        "norm.running_mean",
        "norm.running_var",
        "norm.num_batches_tracked",
    )
    assert torch.equal(torch.get_rng_state(), rng)
    for name, value in model.named_buffers():
        assert torch.equal(value, buffers[name]), name


def test_the_route_is_logged_once_with_its_reason(caplog):
    model = ModuleDropout().double().train()
    loss = SymmetryLoss("gsymm", Lorentz(0.5))
    with caplog.at_level(logging.INFO, logger="seal.symmetry"):
        loss(model, jets())
        loss(model, jets(seed=4))
    lines = [r.getMessage() for r in caplog.records if r.name == "seal.symmetry"]
    assert lines == [
        "GSEAL on ModuleDropout in training: route replay (drop (Dropout) is random in training "
        "(dropout): compared inputs get their own forwards from one RNG state)"
    ]


@pytest.mark.parametrize("fraction", [1.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_callback_and_plain_api_give_the_same_penalty(fraction, weighted):
    pl.seed_everything(0, verbose=False)
    task = TaggingTask(MLP(n_particles=6, width=16).double())
    batch = {k: v[:8] for k, v in jets().items()}
    options = {"fraction": fraction, "weighted": weighted}
    plain = SymmetryLoss(
        "gsymm", Lorentz(0.7), generator=torch.Generator().manual_seed(5), **options
    )(task, batch)
    callback = SymmetryRegularizer("gsymm", group=Lorentz(0.7), seed=5, **options)
    trainer = fit(task, [callback], steps=1)
    assert callback.loss.route == "fused"
    torch.testing.assert_close(
        trainer.callback_metrics["train/symm_loss"], plain.detach(), **ROUTES_F64
    )


def test_zero_weight_logs_the_penalty_on_the_configured_fraction():
    pl.seed_everything(0, verbose=False)
    task = RegressionTask(MLP(n_particles=6, width=16).double())
    batch = {k: v[:8] for k, v in jets().items()}
    expected = SymmetryLoss("gsymm", generator=torch.Generator().manual_seed(5), fraction=0.25)
    value = expected(task, batch)
    callback = SymmetryRegularizer("gsymm", weight=0.0, seed=5, fraction=0.25)
    trainer = fit(task, [callback], steps=1)
    torch.testing.assert_close(
        trainer.callback_metrics["train/symm_loss"], value.detach(), **ROUTES_F64
    )


def test_weighted_penalties_are_weighted_means():
    batch = jets()
    p, w = batch["p4"][:, 0], batch["weight"]
    per_example = (0.75 * p[:, 0] + 0.25 * p[:, 3]).square()  # pz' − pz under FixedZBoost
    weighted = SymmetryLoss(GSEAL(), FixedZBoost(), weighted=True)(first_pz, batch)
    torch.testing.assert_close(weighted, (w * per_example).sum() / w.sum(), **EXACT_F64)
    # δSEAL of pz: Σ_a (∂_a pz)² = E² + px² + py² per example
    derivative = p[:, 0].square() + p[:, 1].square() + p[:, 2].square()
    value = SymmetryLoss(DSEAL(), Lorentz(), weighted=True)(first_pz, batch)
    torch.testing.assert_close(value, (w * derivative).sum() / w.sum(), **EXACT_F64)
    half = SymmetryLoss(GSEAL(), FixedZBoost(), weighted=True, fraction=0.5)(first_pz, batch)
    torch.testing.assert_close(half, (w * per_example)[:8].sum() / w[:8].sum(), **EXACT_F64)
    with pytest.raises(KeyError, match=r"weighted=True weights by batch\['weight'\]"):
        SymmetryLoss(GSEAL(), Lorentz(0.5), weighted=True)(first_pz, {"p4": batch["p4"]})


@pytest.mark.parametrize(("group", "k"), [(Lorentz(), 6), (ZBoostZRotation(), 2)])
def test_dseal_mean_reduction_is_the_sum_over_k(group, k):
    batch = jets()
    summed = dseal(first_pz, batch, group)
    torch.testing.assert_close(
        dseal(first_pz, batch, group, reduction="mean"), summed / k, **EXACT_F64
    )


class TakesTensor(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, p4):
        return self.linear(p4).sum((1, 2))


class ThreeOutputs(torch.nn.Module):
    def forward(self, batch):
        return batch["p4"][:, 0, :3]


def test_models_outside_the_contract_are_refused_naming_class_and_contract():
    takes_tensor = r"TakesTensor could not be run on the batch dict .*forward\(batch\) → "
    with pytest.raises(TypeError, match=takes_tensor + r"\(B,\), \(B, 1\) or \(B, 4\)"):
        SymmetryLoss("gsymm")(TakesTensor().double(), jets())
    three = r"ThreeOutputs returned \(\d+, 3\) .*output='scalar' needs model outputs of shape "
    with pytest.raises(ValueError, match=three + r"\(B,\) or \(B, 1\)"):
        SymmetryLoss("gsymm")(ThreeOutputs(), jets())
    with pytest.raises(ValueError, match=r"\(B, 4\) needs output=vector"):
        SymmetryLoss("gsymm")(lambda b: b["p4"][:, 0], jets())
    with pytest.raises(ValueError, match="fraction of the batch must be in"):
        SymmetryLoss("gsymm", fraction=0.0)


def test_plain_training_loop():
    """The README example: a hand-written loop with the plain API."""
    torch.manual_seed(0)
    model = ModuleDropout().double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = SymmetryLoss("gsymm", group=Boosts(0.5))
    batch = jets()
    penalties = []
    for _ in range(30):
        output, penalty = loss_fn.with_output(model, batch)
        task = torch.nn.functional.binary_cross_entropy_with_logits(output, batch["target"])
        (task + 10.0 * penalty).backward()
        optimizer.step()
        optimizer.zero_grad()
        penalties.append(penalty.item())
    assert loss_fn.route == "replay"
    assert penalties[-1] < 0.2 * penalties[0]  # the penalty does its job


class OwnGenerator(torch.nn.Module):
    """Dropout drawn from a generator of its own: no RNG state the penalty can replay."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, batch):
        x = self.linear(batch["p4"] / 50).squeeze(-1)  # (B, N)
        keep = torch.rand(x.shape, generator=self.generator, dtype=x.dtype) > 0.5
        return (x * keep).sum(-1)


def test_randomness_that_cannot_be_replayed_is_refused_naming_the_module():
    with pytest.raises(RouteError, match=r"OwnGenerator\.forward .* same torch RNG state"):
        SymmetryLoss("gsymm", Lorentz(0.5))(OwnGenerator().double(), jets())


def test_a_batchnorm_model_is_penalised_on_at_least_two_rows():
    # fraction · B < 1 would leave BatchNorm one row, whose statistics do not exist
    model = PooledBatchNorm().double().train()
    loss = SymmetryLoss("gsymm", Lorentz(0.5), fraction=0.3)
    batch = {k: v[:3] for k, v in jets().items()}
    assert loss(model, batch) > 0 and loss.rows(3) == 2
    output, penalty = loss.with_output(model, batch)
    assert output.shape == (3,) and penalty > 0


@pytest.mark.parametrize(
    ("alias", "name", "cls"), [("gseal", "gsymm", GSEAL), ("dseal", "dsymm", DSEAL)]
)
def test_the_class_spelling_is_a_name_too(alias, name, cls):
    batch = random_on_shell(6, 3, seed=4)
    values = [
        SymmetryLoss(spelling, group=Lorentz(0.5), generator=torch.Generator().manual_seed(1))(
            first_pz, batch
        )
        for spelling in (alias, name)
    ]
    assert isinstance(SymmetryLoss(alias).penalty, cls) and torch.equal(*values)
    with pytest.raises(ValueError, match=r"unknown symmetry penalty 'gseel'; choose one of"):
        SymmetryLoss("gseel")


class PairDistances(torch.nn.Module):
    """√(Σ (p_i − p_j)²) over every pair, i = j included: finite, but its derivative at i = j
    is 0/0 (the trap of ParT's pairwise features)."""

    def forward(self, p4):
        return (p4[:, :, None] - p4[:, None, :]).square().sum(-1).sqrt()  # (B, N, N)


class PairNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.pairs, self.head = PairDistances(), torch.nn.Linear(1, 1)

    def forward(self, batch):
        return self.head(self.pairs(batch["p4"]).mean((1, 2))[:, None]).squeeze(-1)


def test_a_non_finite_derivative_refuses_exact_dseal_naming_the_module():
    batch = random_on_shell(6, 4, seed=2)
    model = PairNet().double()
    assert torch.isfinite(model(batch)).all()  # the output is fine; its derivative is not
    with pytest.raises(RouteError, match=r"pairs \(PairDistances\).*method=finite_difference"):
        SymmetryLoss("dsymm", group=Lorentz())(model, batch)
    with pytest.raises(RouteError, match=r"pairs \(PairDistances\)"):  # the one-call form too
        dseal(model, batch, Lorentz())
    fd = SymmetryLoss("dsymm", group=Lorentz(), method="finite_difference")(model, batch)
    assert torch.isfinite(fd) and fd > 0  # the route the message points at works
    assert torch.isfinite(SymmetryLoss("gsymm", group=Lorentz(0.5))(model, batch))


def test_the_callback_refuses_it_before_the_first_step():
    model = RegressionTask(PairNet()).double()
    batch = random_on_shell(8, 4, seed=2)
    batch["target"] = torch.zeros(8, dtype=torch.float64)
    regulariser = SymmetryRegularizer("dsymm", weight=1.0)
    trainer = quiet_trainer(
        max_steps=2, precision="64-true", enable_checkpointing=False, callbacks=[regulariser]
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(RouteError, match=r"pairs \(PairDistances\)"):
        trainer.fit(model, loader(batch, 4))
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())  # no step taken


def test_each_mode_gets_its_own_route():
    # a loss first called in eval mode (no dropout: fused) must not keep that route in training,
    # where dropout makes fusing inexact: the identity element gives exactly 0 in both
    batch = random_on_shell(8, 4, seed=6)
    model = ModuleDropout().double()
    loss = SymmetryLoss("gsymm", group=Boosts(0.0))
    assert loss(model.eval(), batch).item() == 0.0 and loss.route == "fused"
    assert loss(model.train(), batch).item() == 0.0 and loss.route == "replay"
    assert loss(model.eval(), batch).item() == 0.0 and loss.route == "fused"
    assert set(loss.routes) == {True, False}  # each probed once


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (lambda b: {**b, "p4": b["p4"].long()}, TypeError, r"batch\['p4'\] has dtype torch.int64"),
        (lambda b: {k: v[:0] for k, v in b.items()}, ValueError, r"holds no examples \(shape \(0,"),
        (lambda b: {**b, "mask": b["mask"][:, :2]}, ValueError, r"shape \(B, N\) = \(6, 3\)"),
        (lambda b: {**b, "mask": 2.0 * b["mask"]}, ValueError, r"bool .* or 0/1; it holds 2.0"),
        (lambda b: b["p4"], TypeError, r"takes a batch dict .* got a Tensor of shape \(6, 3, 4\)"),
    ],
    ids=["integer p4", "empty batch", "mask shape", "mask values", "a tensor"],
)
def test_bad_batches_are_named(change, error, message):
    batch = change(random_on_shell(6, 3, seed=1))
    for penalty in ("gsymm", "dsymm"):
        with pytest.raises(error, match=message):
            SymmetryLoss(penalty, group=Lorentz(0.5))(first_pz, batch)


def test_a_float_zero_one_mask_is_a_mask():
    batch = random_on_shell(6, 3, seed=1)
    floats = {**batch, "mask": batch["mask"].double()}
    for penalty in ("gsymm", "dsymm"):
        values = [
            SymmetryLoss(penalty, group=Lorentz(0.5), generator=torch.Generator().manual_seed(2))(
                first_pz, b
            )
            for b in (batch, floats)
        ]
        assert torch.equal(*values)


def test_a_model_with_a_non_finite_output_is_named():
    batch = random_on_shell(6, 3, seed=1)

    def log_of_zero(b):
        return torch.log(b["p4"][:, 0, 0] * 0)  # -inf

    with pytest.raises(ValueError, match=r"log_of_zero gives a non-finite output .* 5 of 5 values"):
        SymmetryLoss("gsymm", group=Lorentz(0.5))(log_of_zero, batch)


def adam_steps(factory, loss_fn=None, steps=5):
    """Parameters after ``steps`` Adam steps of a plain loop; with ``loss_fn`` the output comes
    from ``with_output`` and the penalty is added with λ = 0."""
    torch.manual_seed(0)
    model = factory().double().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.manual_seed(1)
    for step in range(steps):
        batch = random_on_shell(8, 4, seed=step)
        if loss_fn is None:
            output, penalty = model(batch), 0.0
        else:
            output, penalty = loss_fn.with_output(model, batch)
        optimizer.zero_grad()
        (output.square().mean() + 0.0 * penalty).backward()
        optimizer.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("fraction", [1.0, 0.5])
@pytest.mark.parametrize(
    ("model", "penalty", "options"),
    [
        ("mlp", "gsymm", {}),
        ("mlp", "dsymm", {}),
        ("dropout", "gsymm", {}),
        ("dropout", "dsymm", {}),
        ("dropout", "dsymm", {"method": "finite_difference"}),
        ("batchnorm", "gsymm", {}),
    ],
)
def test_zero_weight_through_with_output_is_bit_identical_except_where_documented(
    model, penalty, options, fraction
):
    factory = {
        "mlp": lambda: MLP(n_particles=4, width=16),
        "dropout": ModuleDropout,
        "batchnorm": PooledBatchNorm,
    }[model]
    plain = adam_steps(factory)
    loss_fn = SymmetryLoss(penalty, group=Lorentz(0.5), fraction=fraction, **options)
    shared = adam_steps(factory, loss_fn)
    identical = all(torch.equal(plain[name], shared[name]) for name in plain)
    # the documented exception (seal/symmetry/loss.py): dropout, fraction < 1, a copies penalty
    split = model == "dropout" and fraction < 1 and loss_fn.penalty.uses_copies
    assert identical != split, (loss_fn.route, loss_fn.reason)


@pytest.mark.parametrize("penalty", ["gsymm", "dsymm"])
def test_a_training_penalty_under_no_grad_is_refused_and_an_eval_one_measured(penalty):
    from seal.models import ConstituentTransformer

    model, batch = ConstituentTransformer(size="cpu").double(), random_on_shell(4, 5, seed=0)
    loss = SymmetryLoss(penalty, Lorentz(0.5))
    for context in (torch.no_grad, torch.inference_mode):
        with context(), pytest.raises(RuntimeError, match=r"no gradient.*model\.eval\(\)"):
            loss(model.train(), batch)
    with torch.no_grad():
        measured = loss(model.eval(), batch)
        logged = loss(model.train(), batch, measure=True)  # what a λ = 0 run logs
    assert torch.isfinite(measured) and measured > 0 and torch.isfinite(logged)
    with torch.no_grad(), pytest.raises(RuntimeError, match="no gradient"):
        loss.with_output(model.train(), batch)
