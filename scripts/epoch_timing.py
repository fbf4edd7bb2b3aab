"""Training-epoch times of a real run (``seal.train.run``), for ``scripts/bench.py --only epochs``.

Everything a training epoch costs is in it — the data stream, Lightning, the regulariser
callback, the optimiser — but not validation (switched off) or the post-training evaluation.
On CUDA a thread samples the GPU's utilisation while the training epochs run.
"""

import logging
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

import seal.train

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GPU_NET = ["model.net.backbone.size=published"]  # the SEAL study's 3 × 256 transformer


def _utilisation() -> float | None:
    try:
        return float(torch.cuda.utilization())
    except Exception:  # no pynvml: ask nvidia-smi
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            )
            return float(out.stdout.split()[0])
        except Exception:
            return None


class EpochClock(pl.Callback):
    """Wall time of every training epoch; on CUDA, GPU utilisation samples during them."""

    def __init__(self, sample_gpu: bool):
        self.seconds, self.samples, self.sample_gpu = [], [], sample_gpu
        self._running = threading.Event()
        self._start = 0.0

    def _sample(self):
        while self._running.is_set():
            value = _utilisation()
            if value is not None:
                self.samples[-1].append(value)
            time.sleep(0.1)

    def on_train_epoch_start(self, trainer, module):
        self.samples.append([])
        if self.sample_gpu:
            self._running.set()
            threading.Thread(target=self._sample, daemon=True).start()
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, module):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self._start)
        self._running.clear()


def train_epochs(
    experiment: str,
    data: Path,
    device: torch.device,
    bf16: bool,
    epochs: int = 3,
    batches: int | None = None,
    extra: tuple = (),
) -> tuple[float, float | None]:
    """(median epoch seconds after the first, mean GPU utilisation % or None). ``extra``:
    more overrides (``model.compile=true``)."""
    cuda = device.type == "cuda"
    overrides = [
        f"+experiment={experiment}",
        f"data.path={data}",
        "data.generate=null",
        f"trainer={'gpu' if cuda else 'cpu'}",
        f"trainer.max_epochs={epochs}",
        f"trainer.precision={'bf16-mixed' if bf16 else '32-true'}",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false",
        "callbacks.model_summary=null",
        "+trainer.enable_model_summary=false",
        "callbacks.early_stopping=null",
        "callbacks.model_checkpoint=null",
        "test=false",
        "~evaluation",
        "logger=none",
        *(GPU_NET if cuda else []),
        *extra,
    ]
    if batches is not None:
        overrides.append(f"trainer.limit_train_batches={batches}")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    clock = EpochClock(sample_gpu=cuda)
    loggers = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric", "seal")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as out, open_dict(cfg):
            cfg.paths.output_dir = out
            del cfg.hydra
            seal.train.run(cfg, callbacks=[clock])
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    seconds = statistics.median(clock.seconds[1:] or clock.seconds)
    samples = [v for epoch in clock.samples[1:] for v in epoch]
    return seconds, (statistics.fmean(samples) if samples else None)
