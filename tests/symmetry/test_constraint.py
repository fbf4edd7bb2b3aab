"""Constrained SEAL: the multiplier found by dual ascent on a target amount of symmetry."""

import json
import logging
import math

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY
from hydra.errors import InstantiationException
from pytorch_lightning.callbacks import ModelCheckpoint
from test_callback import fit, make_module, params

from seal.config_checks import ConfigError, check_config
from seal.symmetry import SymmetryRegularizer
from seal.symmetry.constraint import Constraint, normalised
from seal.train import run

F64 = torch.float64


def outputs_with_variance(variance: float, n: int = 64) -> torch.Tensor:
    y = torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = (y - y.mean()) / y.std(unbiased=False)
    return y * math.sqrt(variance)


def test_the_constrained_quantity_is_the_penalty_over_the_outputs_variance():
    penalty = torch.tensor([0.02, 0.5], dtype=torch.float64, requires_grad=True)
    output = outputs_with_variance(2.0).requires_grad_(True)
    g = normalised(penalty, output)
    torch.testing.assert_close(g, torch.tensor([0.01, 0.25], dtype=torch.float64))
    g.sum().backward()  # a collapse of the output (smaller variance) raises g
    assert (output.grad * output).sum() < 0
    vector = outputs_with_variance(1.0, 64).reshape(16, 4)  # four-vector outputs: Σ components
    expected = vector.var(0, unbiased=False).sum()
    one = torch.tensor(1.0, dtype=torch.float64)
    torch.testing.assert_close(normalised(one, vector), 1 / expected)


@pytest.mark.parametrize("g, expected_exponent", [(0.01, math.log(2.0)), (25.0, 1.0)])
def test_one_dual_step_is_the_written_update(g, expected_exponent):
    # target 0.005: ln(L̂/ε) = ln 2 (unclipped) or clipped to 1
    constraint = Constraint(target=0.005, rate=0.1, smoothing=0.0, initial_weight=1.0)
    lam = constraint.update(torch.tensor(g, dtype=torch.float64))
    assert float(lam[0]) == pytest.approx(math.exp(0.1 * expected_exponent), rel=1e-12)
    assert float(constraint.estimate[0]) == g


def test_the_estimate_is_a_running_mean_and_lambda_follows_it_down():
    constraint = Constraint(target=1.0, rate=0.5, smoothing=0.5, initial_weight=1.0)
    constraint.update(torch.tensor(4.0))  # the first value starts the estimate
    constraint.update(torch.tensor(0.5))  # 0.5 · 4 + 0.5 · 0.5
    assert float(constraint.estimate[0]) == 2.25
    weight = float(constraint.weight[0])
    for _ in range(30):  # below the target from here: λ shrinks by a factor each batch
        constraint.update(torch.tensor(0.01))
    assert float(constraint.weight[0]) < weight * math.exp(-0.5 * 20)
    summary = constraint.summary()
    assert summary["constraint/met"] == 1.0 and summary["constraint/capped"] == 0.0
    far = Constraint(target=1e-3, max_weight=1e4)
    far.update(torch.tensor(0.5))  # far above the target, far from the cap: neither
    assert far.summary()["constraint/met"] == far.summary()["constraint/capped"] == 0.0


def test_an_unreachable_target_stops_at_the_cap_and_says_so(caplog):
    constraint = Constraint(target=1e-3, rate=1.0, max_weight=10.0, initial_weight=1.0, patience=5)
    with caplog.at_level(logging.WARNING, logger="seal.symmetry"):
        for _ in range(6):  # at the cap from the third update: not yet for 5 batches
            constraint.update(torch.tensor(0.5))
        assert not caplog.records
        for _ in range(4):
            constraint.update(torch.tensor(0.5))
    assert float(constraint.weight[0]) == 10.0  # e¹ per batch, capped
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "target 0.001 cannot be met" in warnings[0]
    assert "cap 10" in warnings[0] and "still 0.5" in warnings[0]
    summary = constraint.summary()
    assert summary["constraint/met"] == 0.0 and summary["constraint/capped"] == 1.0
    assert summary["constraint/reached"] == 0.5


def test_a_penalty_already_falling_fast_enough_lowers_lambda_before_it_reaches_the_target():
    # g falls by a factor e^-r per batch: with smoothing 0 the trend is exactly -r, and the
    # error is ln(g/ε) - H·r — negative while g is still 10× above ε if H·r > ln 10
    rate, horizon, r = 0.1, 100.0, 0.05
    constraint = Constraint(target=1e-3, rate=rate, smoothing=0.0, horizon=horizon).bind()
    constraint.weight = torch.ones(1, dtype=F64)  # above its start (0.01), which is its floor
    g = [1e-1 * math.exp(-r * t) for t in range(40)]
    for value in g[:-1]:
        constraint.update(torch.tensor(value, dtype=torch.float64))
    before = float(constraint.weight[0])
    constraint.update(torch.tensor(g[-1], dtype=torch.float64))
    error = math.log(g[-1] / 1e-3) - horizon * r  # ln(13.5) - 5 = -2.4: clipped to -1
    assert g[-1] > 10 * 1e-3 and error < -1
    assert float(constraint.slope[0]) == pytest.approx(-r, rel=1e-9)
    assert float(constraint.weight[0]) == pytest.approx(before * math.exp(-rate), rel=1e-12)
    steady = Constraint(target=1e-3, rate=rate, smoothing=0.0, horizon=horizon)  # no trend:
    for _ in range(3):  # a flat g above the target raises λ by e^η every batch
        steady.update(torch.tensor(0.01, dtype=torch.float64))
    assert float(steady.weight[0]) == pytest.approx(1e-2 * math.exp(3 * rate), rel=1e-12)


def test_above_the_target_the_prediction_never_takes_lambda_below_its_start():
    # a penalty falling fast from far above the target (a network learning in its first
    # batches) holds λ at its start instead of lowering it; below the target λ falls again
    constraint = Constraint(target=1e-3, rate=0.1, smoothing=0.0, horizon=100, initial_weight=0.5)
    for t in range(30):
        constraint.update(torch.tensor(1.0 * math.exp(-0.1 * t), dtype=F64))
    assert float(constraint.weight[0]) == 0.5
    constraint.update(torch.tensor(1e-4, dtype=F64))
    assert float(constraint.weight[0]) == pytest.approx(0.5 * math.exp(-0.1), rel=1e-12)


def test_lambda_stops_growing_where_the_penalty_outweighs_the_task(caplog):
    # λ·L̂ ≤ max_share · L̂_task: with L̂ = 0.5 and the task at 0.2, λ stops at 3 · 0.2 / 0.5
    constraint = Constraint(target=1e-3, rate=1.0, smoothing=0.0, horizon=0, patience=5)
    with caplog.at_level(logging.WARNING, logger="seal.symmetry"):
        for _ in range(12):
            constraint.update(torch.tensor(0.5, dtype=F64), task_loss=0.2)
    assert float(constraint.weight[0]) == pytest.approx(3 * 0.2 / 0.5, rel=1e-12)
    assert bool(constraint.held[0])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "target 0.001 cannot be met" in warnings[0]
    assert (
        "stopped growing at 1.2" in warnings[0]
        and "outweighs the task's loss 3-fold" in warnings[0]
    )
    assert constraint.summary()["constraint/capped"] == 1.0
    # the limit holds growth only: once the task's loss falls, a λ above it is not pushed down
    constraint.update(torch.tensor(0.5, dtype=F64), task_loss=0.01)
    assert float(constraint.weight[0]) == pytest.approx(1.2, rel=1e-12)
    # below the target λ shrinks as before; a task loss ≤ 0 (a log-likelihood) sets no limit
    constraint.update(torch.tensor(1e-4, dtype=F64), task_loss=0.01)
    assert float(constraint.weight[0]) == pytest.approx(1.2 * math.exp(-1), rel=1e-12)
    free = Constraint(target=1e-3, rate=1.0, smoothing=0.0, horizon=0)
    for _ in range(3):
        free.update(torch.tensor(0.5, dtype=F64), task_loss=-2.0)
    assert float(free.weight[0]) == pytest.approx(1e-2 * math.exp(3), rel=1e-12)


def test_a_non_finite_penalty_is_refused():
    with pytest.raises(FloatingPointError, match=r"variance \[nan\] is not finite at step 0"):
        Constraint(target=1e-3).update(torch.tensor(float("nan")))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"target": 0.0}, "target must be finite and > 0; got 0.0"),
        ({"target": -1e-3}, "target must be finite and > 0; got -0.001"),
        ({"target": float("nan")}, "target must be finite and > 0; got nan"),
        ({"target": float("inf")}, "target must be finite and > 0; got inf"),
        ({"target": "abc"}, "target must be a number; got 'abc'"),
        ({"target": 1e-3, "rate": 0.0}, "rate must be finite and > 0"),
        ({"target": 1e-3, "smoothing": 1.0}, r"smoothing must be in \[0, 1\); got 1.0"),
        ({"target": 1e-3, "min_weight": 1.0}, "min_weight ≤ initial_weight ≤ max_weight"),
        ({"target": 1e-3, "patience": 0}, "patience must be an integer ≥ 1; got 0"),
        ({"target": 1e-3, "horizon": -1}, r"horizon must be 0 \(no prediction\) or .* ≥ 2; got -1"),
        ({"target": 1e-3, "horizon": 1}, r"horizon must be 0 .*; got 1"),
        ({"target": 1e-3, "horizon": float("nan")}, r"horizon must be 0 .*; got nan"),
        ({"target": 1e-3, "horizon": True}, r"horizon must be 0 .*; got True"),
        ({"target": 1e-3, "max_share": 0}, "max_share must be finite and > 0; got 0"),
    ],
)
def test_bad_constraints_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        Constraint(**options)


def test_a_target_with_a_weight_or_per_generator_gseal_is_refused():
    with pytest.raises(ValueError, match=r"symmetry\.weight=0\.1 and symmetry\.constraint"):
        SymmetryRegularizer("gsymm", weight=0.1, constraint={"target": 1e-3})
    with pytest.raises(ValueError, match=r"per_generator=true needs δSEAL .* GSEAL"):
        SymmetryRegularizer("gsymm", constraint={"target": 1e-3, "per_generator": True})
    with pytest.raises(ValueError, match=r"needs δSEAL .* DSEAL \(stochastic\)"):
        SymmetryRegularizer(
            "dsymm", stochastic=True, constraint={"target": 1e-3, "per_generator": True}
        )
    with pytest.raises(TypeError, match=r"symmetry\.constraint: .*'targt'"):
        SymmetryRegularizer("gsymm", constraint={"targt": 1e-3})


def test_per_generator_multipliers_split_the_dseal_penalty(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the trainer's root folder: constraint.csv goes there
    callback = SymmetryRegularizer("dsymm", constraint=Constraint(1e-3, per_generator=True), seed=0)
    trainer, _ = fit(make_module(), [callback], max_steps=4, val=True)  # one epoch
    assert callback.constraint.names == ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz")
    logged = trainer.callback_metrics  # the sum of the six, and each
    assert logged["val/symm_loss"] > 0 and "train/symm_weight/Kz" in logged
    assert len(callback.history) == 4 and len(callback.history[0]) == 1 + 6 + 6
    from seal.data.toy import make_toy

    batch = make_toy(16, seed=1, dtype=torch.float64)
    module = make_module()
    per_generator = callback.loss(module, batch)
    callback.penalty.per_generator_values = False
    total = callback.loss(module, batch)
    assert per_generator.shape == (6,)
    torch.testing.assert_close(per_generator.sum(), total, rtol=1e-12, atol=0)


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_a_resumed_constrained_run_is_bit_identical(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)

    def regulariser():
        return SymmetryRegularizer("gsymm", seed=4, constraint={"target": 1e-3, "rate": 0.2})

    straight, callback = make_module(), regulariser()
    fit(straight, [callback], max_steps=8)
    saver = ModelCheckpoint(
        dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1, filename="{step}"
    )
    fit(make_module(), [regulariser(), saver], max_steps=6)
    resumed, again = make_module(seed=99), regulariser()
    fit(resumed, [again], max_steps=8, ckpt_path=tmp_path / "step=4.ckpt")
    assert torch.equal(again.constraint.weight, callback.constraint.weight)
    assert torch.equal(again.constraint.estimate, callback.constraint.estimate)
    assert torch.equal(again.constraint.slope, callback.constraint.slope)
    assert again.constraint.task == callback.constraint.task  # the anti-wind-up's estimate
    assert again.history == callback.history
    for name, value in params(straight).items():
        assert torch.equal(value, params(resumed)[name]), name


def test_a_constrained_run_writes_lambda_to_the_log_the_folder_and_metrics(compose_cfg, tmp_path):
    cfg = compose_cfg(
        [
            "+experiment=toy_gsymm",
            *TINY,
            "trainer.max_epochs=3",
            "+constraint=target",
            "symmetry.constraint.target=0.01",
            "symmetry.warmup_steps=1",  # the overlay's 50 would cover this whole run
        ]
    )
    assert compose_cfg(["+experiment=toy_gsymm", "+constraint=target"]).symmetry.warmup_steps == 50
    metrics = run(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["constraint/target"] == 0.01 and saved["constraint/weight"] > 0
    rows = (tmp_path / "constraint.csv").read_text().splitlines()
    # one row per dual update: none during the warm-up batch
    assert rows[0] == "batch,weight,estimate" and len(rows) == saved["trainer/global_step"]
    assert len(rows) > 2 and float(rows[-1].split(",")[1]) == saved["constraint/weight"]
    # the log's last λ is the one the last batch trained with: before its own update
    assert metrics["train/symm_weight"] == pytest.approx(float(rows[-2].split(",")[1]), rel=1e-6)
    assert (tmp_path / "constraint.png").exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+experiment=toy_baseline"], "no penalty .* need a run with a symmetry treatment"),
        (["+experiment=toy_gsymm", "symmetry.constraint.target=abc"], "target='abc'"),
        (["+experiment=toy_gsymm", "symmetry.weight=1"], r"symmetry\.weight=1 and symmetry"),
        (["+experiment=toy_dsymm", "symmetry.constraint.target=-1"], "finite and > 0; got -1"),
    ],
)
def test_bad_constraint_settings_fail_before_training(overrides, message, compose_cfg, tmp_path):
    cfg = compose_cfg([*overrides[:1], *TINY, "+constraint=target", *overrides[1:]])
    with pytest.raises((ConfigError, ValueError, InstantiationException), match=message):
        check_config(cfg)
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resuming_with_other_constraint_settings_is_refused(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    saver = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=2, filename="{step}")
    constrained = SymmetryRegularizer("gsymm", seed=4, constraint={"target": 1e-3})
    fit(make_module(), [constrained, saver], max_steps=2)
    with pytest.raises(ValueError, match=r"trained with symmetry\.constraint and this run is"):
        fit(
            make_module(),
            [SymmetryRegularizer("gsymm", seed=4)],
            4,
            ckpt_path=tmp_path / "step=2.ckpt",
        )


def train_constrained(constraint: dict, steps: int, data: dict, seed: int = 0):
    """The toy's MLP (3 × 300, Adam 1e-3) under constrained δSEAL, batches of 32 reshuffled each
    epoch; returns the callback and g = penalty / Var(output) per generator or summed, measured
    on all the training data after training (not the running estimate)."""
    from functools import partial

    from seal.data.tensordict import loader
    from seal.models import MLP
    from seal.tasks import RegressionTask
    from seal.testing import quiet_trainer

    pl.seed_everything(seed, verbose=False)
    module = RegressionTask(MLP(n_particles=1), optimizer=partial(torch.optim.Adam, lr=1e-3))
    callback = SymmetryRegularizer("dsymm", seed=3, constraint=constraint)
    trainer = quiet_trainer(
        max_steps=steps, callbacks=[callback], limit_val_batches=0, enable_checkpointing=False
    )
    trainer.fit(module, loader(data, 32, shuffle=True, seed=0))
    with torch.no_grad():
        output = module(data)
    return callback, normalised(callback.loss(module, data).detach(), output)


def test_on_the_exact_truth_two_targets_a_decade_apart_are_reached_within_20_percent(
    monkeypatch, tmp_path
):
    # 256 events, 2 000 batches: the network can break the symmetry away from the events, so
    # a penalty pushed below the target comes back up and the dual settles at the target
    monkeypatch.chdir(tmp_path)
    from seal.data.toy import make_toy

    data = make_toy(256, seed=1)
    found = {}
    for target in (3e-3, 3e-4):
        callback, g = train_constrained({"target": target}, 2000, data)
        assert 0.8 * target <= float(g) <= 1.2 * target, (target, float(g))
        assert callback.constraint.summary()["constraint/met"] == 1.0
        found[target] = float(callback.constraint.weight[0])
    assert found[3e-4] > 10 * found[3e-3]  # the tighter target needed a λ decades larger


def test_per_generator_multipliers_find_the_generators_the_spurion_breaks(monkeypatch, tmp_path):
    # truth + c₁ P·s + c₂ (P·s)² with s = (0, 0, 0, 1) breaks Kz, Jx and Jy (its own bars there
    # are about 0.9, the others 0): holding every bar to 10⁻³ takes multipliers decades larger
    # along those three, while Kx, Ky and Jz meet the target with λ at its floor
    monkeypatch.chdir(tmp_path)
    from seal.data.toy import make_toy, make_truth

    data = make_toy(4096, seed=1, truth=make_truth("spurion", spurion=(0, 0, 0, 1.0)))
    constraint = {"target": 1e-3, "per_generator": True}
    callback, g = train_constrained(constraint, 1500, data)
    weight = dict(zip(callback.constraint.names, callback.constraint.weight.tolist()))
    broken, kept = ("Kz", "Jx", "Jy"), ("Kx", "Ky", "Jz")
    assert min(weight[n] for n in broken) > 1e3 * max(weight[n] for n in kept), weight
    assert (g <= 1.2e-3).all(), g  # every bar meets the target, each at its own price
