"""Step-time ratios of the symmetry terms to plain training, and jet-loading throughput.

    python scripts/bench.py [--device cuda] [--rounds 20] [--only steps|data]

For each model, one optimiser step (forward, backward, Adam) is timed for plain training and
with each penalty added, on the same model and batch, interleaved round by round so drifts in
machine load hit every mode alike. Prints the median time and the ratio to plain. The data
benchmark reads a 60 000-jet ATLAS-layout file (the test fixture repeated) into batches of 256
with 80 constituents on one core and reports jets/s.
"""

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from seal.data.jet_datamodule import JetStream
from seal.data.toy import make_toy
from seal.groups import Lorentz
from seal.models import MLP, ConstituentTransformer
from seal.symmetry import dseal, gseal
from seal.symmetry.penalties import get_rng_state
from seal.testing import random_on_shell

MODES = ("plain", "gsymm", "dsymm exact", "dsymm finite-diff")


def make_step(model, batch, task_loss, mode):
    """One optimiser step of ``mode``, computed as SymmetryRegularizer does it in training."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    group, generator = Lorentz(0.5), torch.Generator().manual_seed(0)
    device = batch["p4"].device

    def step():
        optimizer.zero_grad(set_to_none=True)
        rng = get_rng_state(device)
        output = model(batch)
        loss = task_loss(output, batch["target"])
        if mode == "gsymm":  # reuses the task's forward, like the callback
            loss = loss + gseal(model, batch, group, generator=generator,
                                reference=output, reference_rng=rng)  # fmt: skip
        elif mode == "dsymm exact":
            loss = loss + dseal(model, batch, group, method="exact")
        elif mode == "dsymm finite-diff":
            loss = loss + dseal(model, batch, group, method="finite_difference")
        loss.backward()
        optimizer.step()

    return step


def time_modes(model, batch, task_loss, rounds: int, device: torch.device) -> dict:
    steps = {mode: make_step(model, batch, task_loss, mode) for mode in MODES}
    times = {mode: [] for mode in MODES}
    for step in steps.values():  # warm-up: allocator, kernels, autograd caches
        for _ in range(3):
            step()
    for _ in range(rounds):
        for mode, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times[mode].append(time.perf_counter() - start)
    return {mode: statistics.median(t) for mode, t in times.items()}


def workloads(device: torch.device):
    toy = {k: v.to(device) for k, v in make_toy(1000, n_particles=1, seed=0).items()}
    mlp = MLP(n_particles=1, width=300, depth=3).to(device)
    yield "toy MLP 3×300 GELU, batch 1000", mlp, toy, F.mse_loss

    jets = random_on_shell(128, 64, seed=0, max_momentum=200.0, dtype=torch.float32)
    jets["target"] = (torch.arange(128) % 2).float()
    jets = {k: v.to(device) for k, v in jets.items()}
    net = ConstituentTransformer(dim=64, depth=2, heads=4, ff_dim=128, dropout=0.1).to(device)
    yield (
        "transformer 2×64, 64 constituents, batch 128",
        net,
        jets,
        F.binary_cross_entropy_with_logits,
    )


FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "fixture_jets.h5"


def bench_data(repeats: int = 200) -> None:
    """Jets/s from an ATLAS-layout HDF5 file to batch dicts (80 constituents, one core)."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jets.h5"
        with h5py.File(FIXTURE) as src, h5py.File(path, "w") as dst:
            for key in src:
                if key != "metadata":
                    data = np.concatenate([src[key][:]] * repeats)
                    dst.create_dataset(key, data=data, chunks=(1024, *data.shape[1:]))
        n = len(h5py.File(path)["labels"])
        for shuffle in (False, True):
            stream = JetStream(path, 80, np.ones(n, bool), 256, shuffle=shuffle)
            start = time.perf_counter()
            rows = sum(len(b["target"]) for b in stream)
            seconds = time.perf_counter() - start
            print(f"| HDF5 → batches, 80 constituents, shuffle={shuffle} | {rows} jets | "
                  f"{rows / seconds:,.0f} jets/s |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rounds", type=int, default=20, help="timed steps per mode")
    parser.add_argument("--only", choices=("steps", "data"), default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device: {device} ({name or platform.machine()}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads, {args.rounds} rounds")  # fmt: skip
    if args.only != "data":
        bench_steps(device, args.rounds)
    if args.only != "steps":
        print("\n### data loading (1 core)\n\n| what | size | throughput |\n|---|---:|---:|")
        bench_data()


def bench_steps(device: torch.device, rounds: int) -> None:
    for title, model, batch, task_loss in workloads(device):
        medians = time_modes(model, batch, task_loss, rounds, device)
        print(f"\n### {title}\n\n| mode | step (ms) | ratio to plain |\n|---|---:|---:|")
        for mode, seconds in medians.items():
            print(f"| {mode} | {1e3 * seconds:.2f} | {seconds / medians['plain']:.2f}× |")


if __name__ == "__main__":
    main()
