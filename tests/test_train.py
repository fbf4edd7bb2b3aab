"""seal.train.run: errors before training, resume, loggers, launchers and sweepers."""

import json
import math
import signal

import pytest
import pytorch_lightning as pl
import torch
from conftest import TINY, TOP_TINY, SignalAt
from hydra.core.hydra_config import HydraConfig
from hydra.errors import ConfigCompositionException, InstantiationException, MissingConfigException

from seal.config_checks import ConfigError
from seal.train import run


@pytest.mark.parametrize(
    "override, error, message",
    [
        (
            "data.n_train=-5",
            ValueError,
            "data.n_train must be a positive number of examples; got -5",
        ),
        ("evaluation.betas=[0.5,1.0]", ValueError, r"betas must lie in \[0, 1\); got \|β\| = 1.0"),
        ("symmetry.weight=-1", ValueError, "λ must be >= 0; got -1"),
        (
            "symmetry.group.beta_max=1.2",
            ValueError,
            "beta_max must satisfy 0 <= beta_max < 1; got 1.2",
        ),
        ("symmetry.penalty.output=tensor", ValueError, "unknown output kind 'tensor'"),
        ("symmetry.implementation=vmap", ValueError, "unknown penalty implementation 'vmap'"),
        ("+callbacks.bogus.every=3", ValueError, "callbacks.bogus has no _target_"),
        ("data.truth=tachyon", ValueError, "unknown toy truth 'tachyon'"),
    ],
)
def test_bad_settings_fail_before_training(override, error, message, compose_cfg, tmp_path):
    cfg = compose_cfg(["+experiment=toy_gsymm", *TINY, override])
    with pytest.raises((error, InstantiationException), match=message):  # Hydra wraps, keeps text
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_unknown_experiment_and_key_are_named(compose_cfg):
    with pytest.raises(MissingConfigException, match="experiment/toy_nope"):
        compose_cfg(["+experiment=toy_nope"])
    with pytest.raises(ConfigCompositionException, match=r"data\.n_trian"):
        compose_cfg(["+experiment=toy_gsymm", "data.n_trian=5"])
    with pytest.raises(ConfigCompositionException, match=r"symmetry\.weight"):
        compose_cfg(["+experiment=toy_baseline", "symmetry.weight=5"])  # no regulariser there
    with pytest.raises(ConfigCompositionException, match=r"symmetry\.group\.beta_max"):
        compose_cfg(
            ["+experiment=toy_gsymm", "symmetry/group=rotations", "symmetry.group.beta_max=0.3"]
        )  # rotations have no boosts


GROUP_CONFIGS = ["lorentz", "boosts", "rotations", "zboost_zrotation", "energy_scale"]


@pytest.mark.parametrize("group", [*GROUP_CONFIGS, "lorentz_energy_scale"])
def test_every_group_config_builds_its_group(compose_cfg, group):
    import hydra

    cfg = compose_cfg(["+experiment=toy_dsymm", *TINY, f"symmetry/group={group}"])
    regulariser = hydra.utils.instantiate(cfg.symmetry)
    assert regulariser.group.name == group.replace("_energy", "+energy")
    assert regulariser.penalty.name == "dsymm"


@pytest.mark.parametrize("penalty", ["toy_gsymm", "toy_dsymm"])
def test_a_toy_run_penalises_the_energy_scale_with_the_lorentz_generators(
    compose_cfg, tmp_path, penalty
):
    cfg = compose_cfg(
        [f"+experiment={penalty}", *TINY, "symmetry/group=lorentz_energy_scale"], tmp_path
    )
    metrics = run(cfg)
    assert math.isfinite(metrics["train/symm_loss"]) and metrics["train/symm_loss"] > 0


def test_a_bad_energy_scale_range_is_named_before_work(compose_cfg, tmp_path):
    cfg = compose_cfg(
        [
            "+experiment=toy_gsymm",
            *TINY,
            "symmetry/group=energy_scale",
            "symmetry.group.shift_max=-0.1",
        ],
        tmp_path,
    )
    with pytest.raises((ValueError, InstantiationException), match=r"energy_scale: shift_max must"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


@pytest.mark.filterwarnings("ignore:The dirpath has changed")
def test_resume_continues_step_count_and_warmup(compose_cfg, tmp_path):
    # 64 examples in batches of 16: 4 steps per epoch; λ warms up over 10 batches
    common = [
        "+experiment=toy_gsymm",
        *TINY,
        "data.n_train=64",
        "data.batch_size=16",
        "trainer.limit_val_batches=null",
        "symmetry.weight=10",
        "symmetry.warmup_steps=10",
    ]
    first = run(compose_cfg([*common, "trainer.max_epochs=1"], tmp_path / "a"))
    assert first["trainer/global_step"] == 4
    resumed = run(
        compose_cfg(
            [
                *common,
                "trainer.max_epochs=2",
                f"ckpt_path={tmp_path / 'a' / 'checkpoints' / 'last.ckpt'}",
            ],
            tmp_path / "b",
        )
    )
    assert resumed["trainer/global_step"] == 8
    # the 8th batch is weighted 7/10 of λ: the warm-up continued, it did not restart at 0
    assert resumed["train/symm_weight"] == pytest.approx(7.0)


def test_ckpt_path_auto_resumes_a_requeued_job_from_its_own_last_checkpoint(compose_cfg, tmp_path):
    common = [
        "+experiment=toy_gsymm",
        *TINY,
        "data.n_train=64",
        "data.batch_size=16",
        "ckpt_path=auto",
    ]
    first = run(compose_cfg([*common, "trainer.max_epochs=1"], tmp_path))  # nothing to resume
    assert first["trainer/global_step"] == 4
    again = run(compose_cfg([*common, "trainer.max_epochs=2"], tmp_path))  # the requeued job
    assert again["trainer/global_step"] == 8


def test_many_loggers_write_offline(compose_cfg, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: wandb must go offline by itself
    monkeypatch.setenv("WANDB_SILENT", "true")
    metrics = run(compose_cfg(["+experiment=toy_dsymm", *TINY, "logger=many_loggers"]))
    assert math.isfinite(metrics["val/symm_loss"])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert "val/symm_loss" in (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    offline = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 1


def test_launchers_and_optuna_search_compose(compose_cfg):
    joblib = compose_cfg(["+experiment=toy_gsymm", "launcher=joblib"], None)
    slurm = compose_cfg(["+experiment=toy_gsymm", "launcher=slurm", "trainer=gpu"], None)
    assert HydraConfig.get().launcher.max_num_timeout == 3  # requeue after a timeout
    optuna = compose_cfg(["+experiment=toy_gsymm", "hparams_search=toy_optuna"], None)
    for cfg in (joblib, slurm, optuna):
        assert cfg.task_name == "toy_gsymm"
    assert slurm.trainer.precision == "bf16-mixed"
    assert slurm.ckpt_path == "auto"  # ... and resume from the job's own last.ckpt
    assert optuna.optimized_metric == "boost/mse@0.5"


def test_covariant_experiment_trains_a_four_vector_output(compose_cfg, tmp_path):
    cfg = compose_cfg(["+experiment=toy_covariant_gsymm", *TINY])
    assert cfg.symmetry.penalty.output == "vector" and cfg.model.net.out_dim == 4
    metrics = run(cfg)
    assert math.isfinite(metrics["train/symm_loss"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["boost/mse@0.5"] == metrics["boost/mse@0.5"]


def test_gsymm_beats_baseline_on_boosted_test_inputs(compose_cfg, tmp_path):
    # the SEAL claim on a tiny budget: same steps, GSEAL's MSE at test |β| = 0.5 is lower
    budget = [
        "data.n_train=8000",
        "data.n_val=500",
        "data.n_test=2000",
        "data.batch_size=128",
        "trainer.max_epochs=8",
        "trainer.enable_progress_bar=false",
        "evaluation.betas=[0.0,0.5]",
        "callbacks.model_summary=null",
        "logger=none",
    ]
    base = run(compose_cfg(["+experiment=toy_baseline", *budget], tmp_path / "base"))
    gsymm = run(compose_cfg(["+experiment=toy_gsymm", *budget], tmp_path / "gsymm"))
    assert gsymm["boost/mse@0.5"] < 0.7 * base["boost/mse@0.5"]


def test_top_tagging_data_errors_come_before_training(compose_cfg, tmp_path):
    base = ["+experiment=top_gsymm", *TOP_TINY]
    with pytest.raises(FileNotFoundError, match=r"generate_jets\.py"):
        run(compose_cfg([*base, f"data.path={tmp_path / 'none.h5'}"], tmp_path / "a"))
    with pytest.raises(ValueError, match="the train split selects no jets"):
        run(compose_cfg([*base, "data.train_pt=[2000,null]"], tmp_path / "b"))
    assert not list(tmp_path.glob("*/checkpoints/*.ckpt"))


def test_parallel_sweep_jobs_get_one_gpu_each():
    from omegaconf import OmegaConf

    from seal.train import gpu_for_job

    gpu = OmegaConf.create({"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"})
    assert [gpu_for_job(gpu, n, 4, 3).devices for n in range(5)] == [[0], [1], [2], [0], [1]]
    assert gpu_for_job(gpu, 2, 4, 3).precision == "bf16-mixed"  # the rest is kept
    assert gpu_for_job(gpu, 2, 1, 3).devices == 1  # sequential sweep: every job may use GPU 0
    assert gpu_for_job(gpu, None, 4, 3).devices == 1  # not a multirun
    assert gpu_for_job(gpu, 2, 4, 1).devices == 1  # one GPU
    ddp = OmegaConf.create({"accelerator": "gpu", "devices": -1, "strategy": "ddp"})
    assert gpu_for_job(ddp, 2, 4, 3).devices == -1  # a DDP run keeps all GPUs
    cpu = OmegaConf.create({"accelerator": "cpu", "devices": 1})
    assert gpu_for_job(cpu, 2, 4, 3).devices == 1


@pytest.mark.parametrize("experiment", ["toy_gsymm", "toy_dsymm"])
def test_compiled_model_trains_with_the_regulariser(compose_cfg, tmp_path, experiment):
    # aot_eager: the compile path without a C++ toolchain; the exact δSEAL runs the network
    # eagerly (compiled graphs have no double backward)
    eager = run(compose_cfg([f"+experiment={experiment}", *TINY], tmp_path / "eager"))
    compiled = run(
        compose_cfg(
            [f"+experiment={experiment}", *TINY, "model.compile=aot_eager"], tmp_path / "compiled"
        )
    )
    for key in ("train/symm_loss", "val/symm_loss", "val/loss"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-4), key


def test_faults_are_said_not_crashed(compose_cfg, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    # pT bins outside the test jets (400–800 GeV): said, with the range the jets span;
    # max_steps ends before the first validation: EarlyStopping warns instead of crashing
    cfg = compose_cfg(
        [
            "+experiment=top_gsymm",
            *TOP_TINY,
            "evaluation.pt_bins=[1000,2000]",
            "trainer.max_steps=1",
            "ckpt_path=auto",
        ]
    )
    metrics = run(cfg)
    assert metrics["trainer/global_step"] == 1
    text = caplog.text
    assert "evaluation.pt_bins: the bin 1000–2000 GeV holds 0 test jets" in text
    assert "ckpt_path=auto: no intact checkpoint in" in text and "starting from scratch" in text


def test_pt_bins_that_are_not_increasing_are_refused(compose_cfg):
    cfg = compose_cfg(["+experiment=top_gsymm", *TOP_TINY, "evaluation.pt_bins=[800,400]"])
    with pytest.raises((ValueError, InstantiationException), match="pt_bins must be ≥ 2"):
        run(cfg)


class _CompiledFrames(pl.Callback):
    """torch.compile's count of compiled frames at the end of every training epoch."""

    def __init__(self):
        self.per_epoch = []

    def on_train_epoch_end(self, trainer, module):
        from torch._dynamo.utils import counters

        self.per_epoch.append(counters["frames"]["total"])


@pytest.mark.parametrize(
    "experiment, tiny",
    [("toy_gsymm", TINY), ("top_gsymm", TOP_TINY), ("top_dsymm", TOP_TINY)],
    ids=["fused-route", "replay-route", "dseal-exact"],
)
def test_compiled_training_stops_compiling_after_the_first_epoch(compose_cfg, experiment, tiny):
    import torch._dynamo

    torch._dynamo.reset()
    frames = _CompiledFrames()
    sizes = ["data.n_train=100", "data.batch_size=32"] if experiment.startswith("toy") else []
    run(
        compose_cfg(
            [
                f"+experiment={experiment}",
                *tiny,
                *sizes,
                "model.compile=aot_eager",
                "trainer.max_epochs=3",
                "test=false",
            ]
        ),
        callbacks=[frames],
    )
    # epoch 1 compiles each shape once (full and last partial batch, the penalty's copies,
    # validation); afterwards at most 2 recompilations in two more epochs
    first, *later = frames.per_epoch
    assert first >= 1 and later[-1] - first <= 2, frames.per_epoch


def test_a_top_tagger_penalised_along_the_energy_scale_trains(compose_cfg, tmp_path):
    cfg = compose_cfg(["+experiment=top_gsymm", *TOP_TINY, "symmetry/group=energy_scale"])
    metrics = run(cfg)
    assert math.isfinite(metrics["train/symm_loss"]) and math.isfinite(metrics["test/auc"])


# 64 examples in batches of 16: 4 steps an epoch, 3 epochs, validation after each
TOY_3_EPOCHS = [
    "+experiment=toy_gsymm",
    *TINY,
    "data.n_train=64",
    "data.batch_size=16",
    "trainer.max_epochs=3",
    "trainer.limit_val_batches=null",
]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_saves_the_step_says_incomplete_and_the_resumed_run_ends_bit_for_bit(
    signum, compose_cfg, tmp_path
):
    # stopped at step 6 (mid-epoch)
    common = [*TOY_3_EPOCHS, "ckpt_path=auto"]
    handlers = [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)]
    straight = run(compose_cfg(common, tmp_path / "straight"))
    # a finished run leaves every handler as it found it (Lightning's SIGTERM one included)
    assert [signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)] == (
        handlers
    )
    with pytest.raises(SystemExit) as stop:
        run(compose_cfg(common, tmp_path / "stopped"), callbacks=[SignalAt(6, signum)])
    assert stop.value.code == 128 + int(signum)  # a scheduler sees a job that did not finish
    record = json.loads((tmp_path / "stopped" / "metrics.json").read_text())
    assert record["status"] == "incomplete" and record["signal"] == signal.Signals(signum).name
    checkpoint = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert record["step"] == 6 and record["checkpoint"] == str(checkpoint)
    assert torch.load(checkpoint, weights_only=False)["global_step"] == 6
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # the handler is given back
    assert signal.getsignal(signal.SIGTERM) == handlers[0]
    resumed = run(compose_cfg(common, tmp_path / "stopped"))  # the same command: ckpt_path=auto
    assert resumed["trainer/global_step"] == straight["trainer/global_step"] == 12
    weights = [
        torch.load(folder / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for folder in (tmp_path / "straight", tmp_path / "stopped")
    ]
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name
    assert resumed["test/mse"] == straight["test/mse"]


class LastStep(pl.Callback):
    """The step ``last.ckpt`` holds as each training batch starts."""

    def __init__(self, path):
        self.path, self.seen = path, []

    def on_train_batch_start(self, trainer, *args):
        found = self.path.exists()
        self.seen.append(
            torch.load(self.path, weights_only=False)["global_step"] if found else None
        )


def test_last_ckpt_follows_every_epoch_and_every_n_steps_whatever_the_monitor(
    compose_cfg, tmp_path
):
    # mode=max: val/loss never "improves" after epoch 0, yet last.ckpt must keep up
    common = [*TOY_3_EPOCHS, "callbacks.model_checkpoint.mode=max"]
    run(compose_cfg(common, tmp_path / "epochs"))
    last = tmp_path / "epochs" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 12  # was 4: epoch 0's best
    watcher = LastStep(tmp_path / "steps" / "checkpoints" / "last.ckpt")
    steps = [*common, "callbacks.last_checkpoint.every_n_train_steps=3"]
    run(compose_cfg(steps, tmp_path / "steps"), callbacks=[watcher])
    # written every 3 steps (3, 6, 9) and after each epoch's validation (4, 8), as seen when
    # steps 1 … 12 start
    assert watcher.seen == [None, None, None, 3, 4, 4, 6, 6, 8, 9, 9, 9]
    assert torch.load(watcher.path, weights_only=False)["global_step"] == 12


@pytest.mark.parametrize("value", ["0", "-2", "true"])
def test_a_bad_last_checkpoint_interval_is_refused_before_training(value, compose_cfg, tmp_path):
    cfg = compose_cfg(
        ["+experiment=toy_gsymm", *TINY, f"callbacks.last_checkpoint.every_n_train_steps={value}"],
        tmp_path,
    )
    with pytest.raises(
        (ValueError, InstantiationException, ConfigError), match="every_n_train_steps"
    ):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()
