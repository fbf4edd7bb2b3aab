"""A two-process CPU DDP (gloo) top-tagging run on the jet fixture, for test_jet_ddp.py:

    python ddp_jets_job.py OUT_DIR [STOP_AT [RANKS]]

Every rank records the jets (file rows) of each of its training batches in
``OUT_DIR/batches_rank{r}.jsonl``; with STOP_AT the ranks listed in RANKS (default "0,1":
every task of the job, as a scheduler signals them) send themselves SIGTERM after that
optimiser step, and the run stops as preempted.
Run as a script because Lightning's DDP launcher re-executes the command for rank 1.
"""

import json
import os
import signal
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import open_dict

from seal.train import run

ROOT = Path(__file__).resolve().parents[2]
OVERRIDES = [
    "+experiment=top_baseline",
    f"data.path={ROOT / 'tests' / 'data' / 'fixture_jets.h5'}",
    "data.generate=null",
    "data.batch_size=32",
    "model.net.backbone.dim=16",
    "model.net.backbone.ff_dim=16",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "+trainer.strategy=ddp",
    "trainer.max_epochs=2",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.enable_progress_bar=false",
    "trainer.log_every_n_steps=1",
    "test=false",
    "~evaluation",
    "logger=none",
    "ckpt_path=auto",
]


class Record(pl.Callback):
    """Each training batch's jets, per rank; SIGTERM to this process after step ``stop_at``."""

    def __init__(self, out: Path, stop_at: int | None, ranks=(0, 1)):
        self.out, self.stop_at, self.ranks = out, stop_at, ranks

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        line = {
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
            "rows": batch["index"].tolist(),
        }
        with open(self.out / f"batches_rank{trainer.global_rank}.jsonl", "a") as file:
            file.write(json.dumps(line) + "\n")

    def on_train_batch_end(self, trainer, *args):
        if trainer.global_step == self.stop_at and trainer.global_rank in self.ranks:
            os.kill(os.getpid(), signal.SIGTERM)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    stop_at = int(sys.argv[2]) if len(sys.argv) > 2 else None
    ranks = tuple(int(r) for r in sys.argv[3].split(",")) if len(sys.argv) > 3 else (0, 1)
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=OVERRIDES)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    try:
        run(cfg, callbacks=[Record(out, stop_at, ranks)])
    finally:
        # an undestroyed gloo group aborts the interpreter at exit now and then
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
