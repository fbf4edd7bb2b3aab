import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict
from torch import nn

from seal.data.atlas_layout import EVENT_NUMBER, EVENT_WEIGHTS
from seal.models.transformer import EncoderBlock


class TinyAttentionNet(nn.Module):
    """LayerNorm + masked attention + dropout on raw four-momenta; (B,) or (B, out_dim) out."""

    def __init__(self, out_dim: int = 1, dim: int = 16, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(4, dim)
        self.block = EncoderBlock(dim, heads=2, ff_dim=32, dropout=dropout)
        self.head = nn.Linear(dim, out_dim)

    def forward(self, batch):
        x = self.block(self.embed(batch["p4"] / 50.0), batch["mask"])  # (B, N, D)
        w = batch["mask"].unsqueeze(-1).to(x.dtype)
        out = self.head((x * w).sum(1) / w.sum(1))  # (B, out_dim)
        return out.squeeze(-1) if out.shape[-1] == 1 else out


class SignalAt(pl.Callback):
    """Sends this process ``signum`` at the end of training step ``step`` (as a scheduler's
    preemption arrives between two of Lightning's checks)."""

    def __init__(self, step: int, signum=signal.SIGTERM):
        self.step, self.signum = step, signum

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.fixture
def tiny_attention():
    return TinyAttentionNet


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
FIXTURE_JETS = Path(__file__).resolve().parent / "data" / "fixture_jets.h5"
FIXTURE_DIMUON = Path(__file__).resolve().parent / "data" / "fixture_dimuon.h5"
# every config test starts from these dotted overrides (one epoch, one validation batch)
COMMON_TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "evaluation.betas=[0.0,0.5]",
    "callbacks.model_summary=null",
]
# one optimiser step on a tiny toy
TINY = ["data.n_train=32", "data.n_val=32", "data.n_test=32", "data.batch_size=32", *COMMON_TINY]
# the same for top tagging, on the 300-jet fixture (pT 400–800 GeV)
TOP_DATA_TINY = [
    f"data.path={FIXTURE_JETS}",
    "data.generate=null",
    "data.batch_size=32",
    "evaluation.pt_bins=[400,600,800]",
    "trainer.limit_train_batches=2",
    *COMMON_TINY,
]
TOP_TINY = [*TOP_DATA_TINY, "model.net.backbone.dim=16", "model.net.backbone.ff_dim=16"]
EXTRAP_TINY = ["data.train_pt=[null,600]", "data.val_pt=[null,600]", "data.test_pt=[600,null]"]
# the alternatives' networks, shrunk (these replace the transformer's model.net.dim/ff_dim)
INVARIANT_TINY = ["model.net.hidden=8", "model.net.latent_dim=8"]
HYBRID_TINY = [
    "model.net.latent_dim=8",
    "model.net.invariant.hidden=8",
    "model.net.invariant.latent_dim=8",
]
# the dimuon study on the 2000-event fixture made by `make fixture`
DIMUON_TINY = [
    f"data.path={FIXTURE_DIMUON}",
    "data.generate=null",
    "data.n_train=64",
    "data.n_val=64",
    "data.n_test=256",
    "data.batch_size=32",
    "trainer.limit_train_batches=2",
    *COMMON_TINY,
]


@pytest.fixture
def compose_cfg(tmp_path):
    """compose(overrides) → the run config with its output folder in tmp_path."""

    def compose(overrides, output_dir=None):
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
        HydraConfig.instance().set_config(cfg)
        with open_dict(cfg):
            cfg.paths.output_dir = str(output_dir or tmp_path)
            del cfg.hydra
        return cfg

    yield compose
    GlobalHydra.instance().clear()


# ---- jet files for the systematics tests --------------------------------------------------------


def rewrite(source, target, rows=None, drop=(), change=None):
    """Copy an ATLAS-layout file, its rows permuted by ``rows``, without ``drop``, with
    ``change(name, array)`` applied to every dataset."""
    with h5py.File(source) as src, h5py.File(target, "w") as dst:
        for key in src:
            if key == "metadata":
                src.copy("metadata", dst)
            elif key not in drop:
                data = src[key][:]
                data = data if rows is None else data[rows]
                dst[key] = change(key, data) if change else data


def with_shower_weights(target, names=("baseline", "isr_up", "isr_down")):
    """The fixture with per-event generator weights (the jets of one event share them)."""
    rewrite(FIXTURE_JETS, target)
    with h5py.File(target, "a") as f:
        numbers = f[EVENT_NUMBER][:]
        _, event = np.unique(numbers, return_inverse=True)
        per_event = np.random.default_rng(1).uniform(0.5, 1.5, (event.max() + 1, len(names)))
        per_event[:, 0] = 1.0
        f[EVENT_WEIGHTS] = per_event[event].astype(np.float32)
        f["metadata"].attrs["mc_weight_names"] = json.dumps(list(names))
    return per_event[event]
