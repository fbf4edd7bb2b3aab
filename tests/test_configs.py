"""The config tree's shared pieces: the top parent, the extrap overlay, the optimiser group and the
learning-rate schedule every task honours."""

import math

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONFIG_DIR, TINY
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pytorch_lightning.callbacks import ModelCheckpoint

from seal.config_checks import ConfigError, check_config, renamed_experiments
from seal.data.tensordict import loader
from seal.data.toy import make_toy
from seal.models import MLP
from seal.tasks import RegressionTask, TaggingTask
from seal.tasks.schedules import WarmupCosine
from seal.testing import quiet_trainer
from seal.train import run


def test_old_extrapolation_names_stop_with_the_new_spelling():
    messages = renamed_experiments(["-m", "+experiment=top_gsymm_extrap,top_lloca", "seed=1"])
    assert messages == [
        "experiment top_gsymm_extrap is now spelt `+experiment=top_gsymm +extrap=pt800` "
        "(one pT-extrapolation overlay for every top experiment, configs/extrap/pt800.yaml)"
    ]
    assert len(renamed_experiments(["experiment=[top_baseline_extrap,top_dsymm_extrap]"])) == 2
    assert renamed_experiments(["+experiment=top_gsymm", "data.test_pt=[800,null]"]) == []
    assert renamed_experiments(["+experiment=top_gsymm", "model=torch_transformer"]) == [
        "model=torch_transformer is now `model/backbone=torch_transformer`"
    ]
    assert renamed_experiments(["+experiment=toy_gsymm", "model=mlp"]) == []
    assert renamed_experiments(["+experiment=top_gsymm", "model=lloca"]) == [
        "with a top experiment, model=lloca is `treatment=lloca` (`treatment=lloca_refs` with "
        "reference vectors)"
    ]
    assert renamed_experiments(["+experiment=dimuon_lloca", "model=lloca"]) == []


def test_the_extrap_overlay_names_the_run_and_sets_the_windows():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["+experiment=top_gsymm", "+extrap=pt800"], return_hydra_config=True)
        nominal = compose("train", ["+experiment=top_gsymm"], return_hydra_config=True)
    assert "/top_gsymm_extrap/runs/" in cfg.hydra.run.dir
    assert "/top_gsymm/runs/" in nominal.hydra.run.dir
    assert list(cfg.data.train_pt) == [None, 800] and list(cfg.data.test_pt) == [800, None]
    assert nominal.data.test_pt is None and nominal.name_suffix == ""


def test_every_top_experiment_shares_the_parent():
    for path in sorted((CONFIG_DIR / "experiment").glob("top_*.yaml")):
        text = path.read_text()
        assert "  - top\n" in text and "override /treatment: " in text, path.name
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", ["+experiment=top_lgatr"])
    assert cfg.trainer.max_epochs == 10 and cfg.trainer.gradient_clip_val == 1.0
    assert cfg.model.net.backbone._target_ == "seal.models.lgatr.LGATrTagger"
    assert cfg.callbacks.early_stopping.monitor == "val/loss"


def test_the_optimizer_group(compose_cfg):
    cfg = compose_cfg(["+experiment=top_baseline"])
    assert cfg.model.optimizer.lr == 5e-4 and "scheduler" not in cfg.model  # the tagger's lr
    cfg = compose_cfg(["model/optimizer=adamw", "model.optimizer.lr=2e-3"])
    optimizer = instantiate(cfg.model).configure_optimizers()
    assert type(optimizer) is torch.optim.AdamW
    assert optimizer.defaults["lr"] == 2e-3 and optimizer.defaults["weight_decay"] == 0.01


def fit_lrs(task, steps, ckpt_path=None, callbacks=()):
    """The learning rate at every optimiser step of ``steps`` (8 batches an epoch)."""
    lrs = []

    class Record(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            lrs.append(optimizer.param_groups[0]["lr"])

    trainer = quiet_trainer(
        max_steps=steps,
        enable_checkpointing=bool(callbacks),
        callbacks=[Record(), *callbacks],
        limit_val_batches=0,
    )
    trainer.fit(task, loader(make_toy(64, seed=1), 8, shuffle=False), ckpt_path=ckpt_path)
    return lrs


def task(scheduler, cls=RegressionTask):
    torch.manual_seed(0)
    optimizer = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
    return cls(MLP(n_particles=1, width=8, out_dim=1), optimizer, scheduler=scheduler)


def test_warmup_cosine_follows_its_formula_every_optimizer_step():
    lrs = fit_lrs(task(WarmupCosine(warmup_steps=2)), steps=6)
    # warm-up 1/2, 2/2; then ½(1 + cos(π k/4)) for k = 0 … 3 of the 4 remaining steps
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert lrs == pytest.approx([0.1 * f for f in expected], rel=1e-12)
    assert fit_lrs(task(None), steps=3) == [0.1, 0.1, 0.1]  # no schedule: the optimiser's lr


def test_the_tagging_task_honours_the_schedule_too():
    tagger = task(WarmupCosine(warmup_steps=3, min_factor=0.5, total_steps=10), TaggingTask)
    tagger.trainer = pl.Trainer(max_steps=10, logger=False)
    config = tagger.configure_optimizers()
    assert config["lr_scheduler"]["interval"] == "step"
    assert config["lr_scheduler"]["scheduler"].get_last_lr() == pytest.approx([0.1 / 3])


def test_a_resumed_run_continues_the_schedule(tmp_path):
    whole = fit_lrs(task(WarmupCosine(warmup_steps=3)), steps=8)
    saved = ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=4, save_top_k=-1)
    first = fit_lrs(task(WarmupCosine(warmup_steps=3, total_steps=8)), steps=4, callbacks=[saved])
    rest = fit_lrs(
        task(WarmupCosine(warmup_steps=3, total_steps=8)),
        steps=8,
        ckpt_path=str(tmp_path / "epoch=0-step=4.ckpt"),
    )
    assert first + rest == pytest.approx(whole, rel=1e-12)


def test_the_schedule_from_the_command_line(compose_cfg, tmp_path):
    overrides = [*TINY, "model/scheduler=cosine", "model.scheduler.warmup_steps=1"]
    cfg = compose_cfg(["+experiment=toy_baseline", *overrides, "trainer.max_epochs=3"])
    assert run(cfg)["trainer/global_step"] == 3  # one batch an epoch: warm-up 1, cosine 2
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)
    (schedule,) = checkpoint["lr_schedulers"]
    assert schedule["last_epoch"] == 3 and schedule["_last_lr"] == [0.0]  # cos(π) at the end


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"warmup_steps": -1}, "model.scheduler.warmup_steps must be a whole number of steps >= 0"),
        ({"warmup_steps": 1.5}, "model.scheduler.warmup_steps must be a whole number"),
        ({"min_factor": 1.5}, r"model.scheduler.min_factor must be in \[0, 1\]; got 1.5"),
        (
            {"warmup_steps": 5, "total_steps": 5},
            "total_steps must be a whole number of steps above",
        ),
    ],
)
def test_bad_schedules_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        WarmupCosine(**options)


def test_bad_schedules_from_the_command_line_stop_before_work(compose_cfg, tmp_path):
    cfg = compose_cfg(["model/scheduler=cosine", "model.scheduler.warmup_steps=abc", *TINY])
    with pytest.raises(ConfigError, match=r"model\.scheduler\.warmup_steps"):
        check_config(cfg)
    cfg = compose_cfg(["model/scheduler=cosine", *TINY])  # 500 warm-up steps, a 1-step run
    with pytest.raises(ValueError, match="warmup_steps=500 is not shorter than the run"):
        run(cfg)
    assert not list(tmp_path.rglob("*.ckpt"))  # nothing trained, nothing saved
