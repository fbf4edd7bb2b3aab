import copy

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from tolerances import ROUTES_F64

from seal.data.tensordict import loader
from seal.data.toy import make_toy
from seal.groups import Lorentz
from seal.models import MLP
from seal.symmetry import SymmetryRegularizer, dseal, gseal
from seal.tasks import RegressionTask
from seal.testing import quiet_trainer

F64 = torch.float64


class GradRecorder(pl.Callback):
    """Keeps the parameter gradients seen just before each optimizer step."""

    def __init__(self):
        self.grads = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.grads.append({n: p.grad.clone() for n, p in pl_module.named_parameters()})


def make_module(dropout=0.0, seed=0):
    pl.seed_everything(seed, verbose=False)
    # float64 from the start: a float32 module would round a float64 checkpoint on resume
    return RegressionTask(MLP(n_particles=1, width=32, dropout=dropout)).double()


def fit(module, callbacks, max_steps, n=64, batch_size=16, accumulate=1, ckpt_path=None, val=False):
    data = make_toy(n, seed=1, dtype=F64)
    trainer = quiet_trainer(
        max_steps=max_steps,
        devices=1,
        precision="64-true",
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        accumulate_grad_batches=accumulate,
        callbacks=callbacks,
        num_sanity_val_steps=0,
        limit_val_batches=1.0 if val else 0,
    )
    val_loader = loader(make_toy(32, seed=2, dtype=F64), batch_size) if val else None
    trainer.fit(module, loader(data, batch_size), val_loader, ckpt_path=ckpt_path)
    return trainer, data


def params(module):
    return {n: p.detach().clone() for n, p in module.named_parameters()}


@pytest.mark.parametrize("penalty", ["gsymm", "dsymm"])
def test_zero_weight_trains_bit_for_bit_like_no_callback(penalty):
    plain = make_module(dropout=0.3)
    fit(plain, [], max_steps=6)
    regularised = make_module(dropout=0.3)
    trainer, _ = fit(regularised, [SymmetryRegularizer(penalty, weight=0.0, seed=3)], max_steps=6)
    assert trainer.callback_metrics["train/symm_loss"] > 0  # computed and logged all the same
    for name, value in params(plain).items():
        assert torch.equal(value, params(regularised)[name]), name


OPTIONS = [
    ("gsymm", {}),
    ("gsymm", {"fraction": 0.25}),
    ("gsymm", {"implementation": "separate", "fraction": 0.5}),
    ("dsymm", {}),
    ("dsymm", {"stochastic": True, "fraction": 0.5}),
    ("dsymm", {"method": "finite_difference", "stochastic": True, "fraction": 0.25}),
    ("dsymm", {"method": "finite_difference", "implementation": "separate"}),
]


@pytest.mark.parametrize(("penalty", "options"), OPTIONS)
@pytest.mark.parametrize("accumulate", [1, 2])
def test_gradient_is_task_plus_weighted_penalty(penalty, options, accumulate):
    weight, seed, batch_size = 2.5, 11, 16
    module = make_module()
    initial = copy.deepcopy(module)
    recorder = GradRecorder()
    callback = SymmetryRegularizer(penalty, weight=weight, beta_max=0.8, seed=seed, **options)
    _, data = fit(
        module, [callback, recorder], max_steps=1, batch_size=batch_size, accumulate=accumulate
    )

    generator = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(accumulate):  # the micro-batches of the first optimizer step, in order
        batch = {k: v[i * batch_size : (i + 1) * batch_size] for k, v in data.items()}
        task = (initial(batch) - batch["target"]).square().mean()
        if penalty == "gsymm":
            symm = gseal(initial, batch, Lorentz(0.8), generator=generator, **options)
        else:
            symm = dseal(initial, batch, Lorentz(), generator=generator, **options)
        total = total + (task + weight * symm) / accumulate
    expected = dict(
        zip(
            [n for n, _ in initial.named_parameters()],
            torch.autograd.grad(total, list(initial.parameters())),
        )
    )
    assert len(recorder.grads) == 1
    for name, grad in recorder.grads[0].items():
        torch.testing.assert_close(grad, expected[name], **ROUTES_F64, msg=name)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
@pytest.mark.parametrize("implementation", ["auto", "separate"])
def test_training_penalty_shares_dropout_masks_with_the_task_forward(fraction, implementation):
    # identity "boosts": any nonzero GSEAL value would be a dropout-mask mismatch between the
    # task's forward and the boosted copy's
    module = make_module(dropout=0.5)
    regulariser = SymmetryRegularizer(
        "gsymm", group="boosts", beta_max=0.0, fraction=fraction, implementation=implementation
    )
    trainer, _ = fit(module, [regulariser], max_steps=3)
    assert trainer.callback_metrics["train/symm_loss"].item() == 0.0


class ForwardSizes(pl.Callback):
    """Rows of every forward of the module, one list per training batch."""

    def __init__(self, module):
        self.steps = []
        module.register_forward_hook(lambda m, args, out: self.steps[-1].append(len(out)))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.steps.append([])


@pytest.mark.parametrize(
    ("dropout", "expected"), [(0.0, [16 + 4]), (0.5, [4, 4, 12])]
)  # fused: one forward of 16 rows and 4 boosted copies; replay: the task's first 4 rows, their
# copies from the same RNG state, the other 12 rows
def test_penalty_shares_the_task_forward(dropout, expected):
    module = make_module(dropout=dropout)
    sizes = ForwardSizes(module)
    fit(module, [SymmetryRegularizer("gsymm", fraction=0.25), sizes], max_steps=2, batch_size=16)
    assert sizes.steps[1] == expected  # (the first step also probes the model)


def test_module_class_is_untouched_and_wrapper_removed():
    class_step = RegressionTask.__dict__["training_step"]
    module = make_module()
    fit(module, [SymmetryRegularizer("gsymm", seed=0)], max_steps=2)
    assert RegressionTask.__dict__["training_step"] is class_step
    assert "training_step" not in vars(module)
    assert module.training_step.__func__ is class_step


def test_wrapper_removed_after_a_failing_fit():
    class Failing(RegressionTask):
        def training_step(self, batch, batch_idx):
            if batch_idx == 1:
                raise RuntimeError("boom")
            return super().training_step(batch, batch_idx)

    pl.seed_everything(0, verbose=False)
    module = Failing(MLP(n_particles=1, width=8))
    with pytest.raises(RuntimeError, match="boom"):
        fit(module, [SymmetryRegularizer("gsymm", seed=0)], max_steps=3)
    assert "training_step" not in vars(module)


def test_two_regularisers_stack_and_unwrap_cleanly():
    module = make_module()
    first = SymmetryRegularizer("gsymm", weight=1.0, seed=0)
    second = SymmetryRegularizer("dsymm", weight=1.0, group="rotations")
    fit(module, [first, second], max_steps=2)
    assert first.batches == second.batches == 2
    assert "training_step" not in vars(module)


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_a_stacked_regulariser_never_scores_another_ones_forwards(fraction):
    # the identity regulariser must stay exactly 0 beside a real one (dropout: replay route)
    real = SymmetryRegularizer("gsymm", weight=1.0, seed=0, fraction=fraction)
    identity = SymmetryRegularizer("gsymm", group="boosts", beta_max=0.0, seed=5)
    fit(make_module(dropout=0.5), [real, identity], max_steps=3)
    assert identity.last_terms["symmetry"].item() == 0.0
    assert real.last_terms["symmetry"].item() > 0.0


def test_a_no_grad_forward_of_the_task_is_not_shared():
    class LogsFirst(RegressionTask):
        def training_step(self, batch, batch_idx):
            with torch.no_grad():
                self.log("train/output_mean", self(batch).mean())
            return super().training_step(batch, batch_idx)

    def trained(weight):
        pl.seed_everything(0, verbose=False)
        module = LogsFirst(MLP(n_particles=1, width=32)).double()
        fit(module, [SymmetryRegularizer("gsymm", weight=weight, seed=3)], max_steps=3)
        return params(module)

    plain, regularised = trained(0.0), trained(100.0)
    assert any(not torch.equal(plain[n], regularised[n]) for n in plain)  # λ acts


def test_logs_train_and_validation_penalties_including_exact_dseal():
    module = make_module()
    trainer, _ = fit(module, [SymmetryRegularizer("dsymm", weight=0.5)], max_steps=4, val=True)
    metrics = trainer.callback_metrics
    assert metrics["val/symm_loss"] > 0 and metrics["train/symm_loss"] > 0
    assert metrics["train/symm_weight"] == 0.5


def test_warmup_is_linear_in_training_batches():
    callback = SymmetryRegularizer("gsymm", weight=10.0, warmup_steps=4)
    weights = []
    for _ in range(6):
        weights.append(callback.current_weight())
        callback.batches += 1
    assert weights == [0.0, 2.5, 5.0, 7.5, 10.0, 10.0]


@pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`")
def test_resume_continues_schedule_and_group_samples(tmp_path):
    def regulariser():
        return SymmetryRegularizer("gsymm", weight=1.0, warmup_steps=5, seed=4)

    straight = make_module()
    fit(straight, [regulariser()], max_steps=8)

    # checkpoint written by Lightning at the end of the first epoch (4 batches of 16)
    saver = ModelCheckpoint(
        dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1, filename="{step}"
    )
    fit(make_module(), [regulariser(), saver], max_steps=6)
    resumed, callback = make_module(seed=99), regulariser()
    fit(resumed, [callback], max_steps=8, ckpt_path=tmp_path / "step=4.ckpt")
    assert callback.batches == 8
    for name, value in params(straight).items():
        assert torch.equal(value, params(resumed)[name]), name


def test_manual_optimisation_is_refused():
    class Manual(RegressionTask):
        def __init__(self, model):
            super().__init__(model)
            self.automatic_optimization = False

    module = Manual(MLP(n_particles=1, width=8))
    with pytest.raises(RuntimeError, match="Manual uses manual optimisation"):
        fit(module, [SymmetryRegularizer("gsymm")], max_steps=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"penalty": "lsymm"}, "unknown symmetry penalty 'lsymm'"),
        ({"weight": -1.0}, "λ must be >= 0; got -1.0"),
        ({"weight": float("nan")}, "λ must be >= 0; got nan"),
        ({"group": "poincare"}, "unknown group 'poincare'"),
        ({"beta_max": 1.0}, "beta_max must satisfy 0 <= beta_max < 1; got 1.0"),
        ({"output": "matrix"}, "unknown output kind 'matrix'"),
        ({"penalty": "dsymm", "method": "jvp"}, "unknown δSEAL method 'jvp'"),
        ({"penalty": "dsymm", "reduction": "max"}, "unknown δSEAL reduction 'max'"),
        ({"warmup_steps": -3}, "warmup_steps must be >= 0"),
        ({"fraction": 1.5}, "fraction of the batch must be in (0, 1]; got 1.5"),
        ({"implementation": "twice"}, "unknown penalty implementation 'twice'"),
    ],
)
def test_bad_configuration_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SymmetryRegularizer(**kwargs)


def test_an_option_of_another_penalty_is_an_error():
    with pytest.raises(TypeError, match=r"penalty 'gsymm' \(GSEAL\).*'method'"):
        SymmetryRegularizer("gsymm", method="exact")


def test_missing_key_names_the_key():
    module = make_module()
    with pytest.raises(KeyError, match="batch\\['momenta'\\]"):
        fit(module, [SymmetryRegularizer("gsymm", key="momenta")], max_steps=1)
