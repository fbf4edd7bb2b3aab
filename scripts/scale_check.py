"""seal at scale on one machine: a large jet file, one streaming epoch, peak memory, and
(optionally) two-process DDP with every training jet counted.

    python scripts/scale_check.py write --out data/top_1m.h5 --jets 1000000
    python scripts/scale_check.py train --data data/top_1m.h5 --out outputs/scale/1m [--devices 2]

``write`` makes an ATLAS-layout file of ``--jets`` jets from a source file's jets (default the
test fixture: no downloads), read once and written in blocks, each copy of a source jet turned
by its own azimuthal angle (the same physics, no two jets alike), at ``--constituents`` per jet.

``train`` trains one epoch of ``+experiment=top_baseline`` (a small network: the loader and its
memory are what is measured) streaming from the file, on ``--devices`` CPU processes (gloo DDP
for 2); every rank counts how often it saw each jet and records its peak resident memory
(``ru_maxrss``). Rank 0 then writes ``summary.json`` in ``--out``: jets/s, steps per rank, peak
RSS per rank, and whether every training jet came exactly once in the epoch.
"""

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytorch_lightning as pl
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "fixture_jets.h5"


def write(source: Path, out: Path, jets: int, constituents: int, block: int = 65536) -> None:
    from seal.data.atlas_layout import CONSTITUENT_KEYS, JET_KEYS

    if out.exists():
        sys.exit(f"{out} exists: remove it or choose another --out")
    with h5py.File(source) as src:
        weight_key = "weights" if "weights" in src else "training_weights"
        data = {k: src[k][:, :constituents] for k in CONSTITUENT_KEYS}
        data |= {k: src[k][:] for k in (*JET_KEYS, "labels", weight_key)}
        attrs = dict(src["metadata"].attrs) if "metadata" in src else {}
    n = len(data["labels"])
    if n == 0:
        sys.exit(f"{source} holds no jets")
    rng = np.random.default_rng(0)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with h5py.File(partial, "w") as dst:
        for key, value in data.items():
            dst.create_dataset(
                key,
                shape=(jets, *value.shape[1:]),
                dtype=value.dtype,
                chunks=(min(block, 4096, jets), *value.shape[1:]),
            )
        meta = dst.create_group("metadata")
        for key, value in attrs.items():
            meta.attrs[key] = value
        meta.attrs["scale_check"] = f"{jets} jets from {source.name}, each copy turned in φ"
        for start in tqdm(range(0, jets, block), desc=f"writing {out.name}", unit="block"):
            rows = np.arange(start, min(start + block, jets)) % n
            turn = rng.uniform(-np.pi, np.pi, size=len(rows)).astype(np.float32)
            for key, value in data.items():
                part = value[rows]
                if key in ("fjet_clus_phi", "fjet_phi"):
                    part = (
                        np.mod(
                            part + (turn[:, None] if part.ndim == 2 else turn) + np.pi, 2 * np.pi
                        )
                        - np.pi
                    )
                dst[key][start : start + len(rows)] = part
    partial.rename(out)
    print(f"{out}: {jets} jets, {constituents} constituents, {out.stat().st_size / 2**30:.2f} GiB")


class Coverage(pl.Callback):
    """Per rank: how often each file row came in a training batch, steps, peak memory."""

    def __init__(self, out: Path, rows: int):
        self.out, self.counts, self.steps, self.start = out, np.zeros(rows, np.uint8), 0, 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        np.add.at(self.counts, batch["index"].numpy(), 1)
        self.steps += 1

    def on_train_epoch_end(self, trainer, pl_module):
        rank = trainer.global_rank
        np.save(self.out / f"counts_rank{rank}.npy", self.counts)
        record = {
            "rank": rank,
            "steps": self.steps,
            "jets": int(self.counts.sum()),
            "epoch_s": time.perf_counter() - self.start,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        (self.out / f"rank{rank}.json").write_text(json.dumps(record))


def train(data: Path, out: Path, devices: int, batch_size: int) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from seal.data.jet_datamodule import JetDataModule
    from seal.train import run

    out.mkdir(parents=True, exist_ok=True)
    overrides = [
        "+experiment=top_baseline",
        f"data.path={data}",
        "data.generate=null",
        "data.split=[0.98,0.01,0.01]",
        f"data.batch_size={batch_size}",
        "model.net.backbone.dim=16",  # 6 000 jets/s on one core: the stream is what is measured
        "model.net.backbone.ff_dim=32",
        "model.net.backbone.depth=1",
        "model.net.backbone.heads=1",
        "trainer.accelerator=cpu",
        f"trainer.devices={devices}",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "trainer.log_every_n_steps=50",
        "test=false",
        "~evaluation",
        "logger=none",
    ] + (["+trainer.strategy=ddp"] if devices > 1 else [])
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out / "run")
    with h5py.File(data) as f:
        rows = len(f["labels"])
    start = time.perf_counter()
    run(cfg, callbacks=[Coverage(out, rows)])
    seconds = time.perf_counter() - start
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        rank = dist.get_rank()
        dist.barrier()  # every rank's record is written
        dist.destroy_process_group()
        if rank != 0:
            return
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(devices)]
    counts = sum(np.load(out / f"counts_rank{r}.npy").astype(np.int64) for r in range(devices))
    module = JetDataModule(data, split=(0.98, 0.01, 0.01))
    module.setup()
    training = module.selected["train"]
    summary = {
        "file": str(data),
        "rows": rows,
        "training_jets": int(training.sum()),
        "devices": devices,
        "batch_size": batch_size,
        "run_s": seconds,
        "epoch_s": max(r["epoch_s"] for r in ranks),
        "jets_per_s": int(counts.sum()) / max(r["epoch_s"] for r in ranks),
        "steps_per_rank": [r["steps"] for r in ranks],
        "peak_rss_mib_per_rank": [round(r["peak_rss_mib"]) for r in ranks],
        "every_training_jet_once": bool(
            (counts[training] == 1).all() and not counts[~training].any()
        ),
        "jets_seen_more_than_once": int((counts[training] > 1).sum()),
        "jets_not_seen": int((counts[training] == 0).sum()),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write a large ATLAS-layout jet file")
    w.add_argument("--out", type=Path, required=True)
    w.add_argument("--jets", type=int, default=1_000_000)
    w.add_argument("--source", type=Path, default=FIXTURE)
    w.add_argument("--constituents", type=int, default=80)
    t = sub.add_parser("train", help="one streaming epoch, peak memory, jets counted")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--devices", type=int, default=1)
    t.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()
    if args.command == "write":
        if args.jets < 1 or args.constituents < 1:
            sys.exit("--jets and --constituents must be ≥ 1")
        write(args.source, args.out, args.jets, args.constituents)
    else:
        if args.devices < 1:
            sys.exit("--devices must be ≥ 1")
        if not args.data.exists():
            sys.exit(f"{args.data} does not exist: make it with `scale_check.py write`")
        train(args.data, args.out, args.devices, args.batch_size)


if __name__ == "__main__":
    main()
