"""Cost of the symmetry terms as ratios to plain training, measured side by side in one process.

    python scripts/bench.py [--device cuda] [--rounds 10] [--precision auto|bf16|32]
                            [--only steps|epochs|models|treatments|systematics|constraint|
                                    throughput|padding|data|generation]

Steps: for the toy MLP, seal's top transformer and a stock ``nn.TransformerEncoder`` tagger (batch
256, 120 constituents) one optimiser step (forward, backward, Adam) of every mode on the same
model and batch, interleaved round by round so drifts in machine load hit every mode alike;
median time, ratio to plain, memory — on CUDA the peak allocated during the step, on CPU the
bytes autograd saves for the backward (the part that grows with the penalty; parameters and
optimiser state are the same in every mode) — and the route SymmetryLoss chose for the model.
Each penalty runs as the callback runs it (sharing the task's forward on that route) and as the
straightforward reference (implementation=separate): a forward on g·x beside the task's for
GSEAL, one forward and double backward per generator for the exact δSEAL, one forward per
shifted input for finite differences.
Precision: what training uses (``--precision auto``): bf16 autocast on CUDA as ``trainer=gpu``,
fp32 on CPU. Epochs: end to end, a short real training run per top experiment (the data stream,
Lightning and the callback included; validation off), the training-epoch time after the first
epoch, its ratio to plain training and on CUDA the mean GPU utilisation (3×256 transformer there,
the CPU-sized one on CPU). Throughput: jets/s of plain and GSEAL training vs batch size.
Padding: training jets/s through the jet stream (data included) of plain and GSEAL steps with
every batch padded to ``n_constituents`` = 80 against each batch padded to its longest jet
(``data.padding=batch``), on fixture jets trimmed to at most 40 constituents (jets that fill at
most half the slots, as trimmed or detector-level jets do); the goal: ≥ 1.5× plain jets/s.
Models: one optimiser step of every top-tagging experiment's network as configured (its
constituent count, its symmetry term) on the same generated jets, ratio to plain training of
the transformer — the cost column of docs/results.md.
Treatments: every treatment (configs/treatment) on ParT and on L-GATr-slim with references, as
``+experiment=top model/backbone=… treatment=…`` builds it (32 constituents): step time and memory
as ratios to the same backbone untreated, the CPU goals checked (GSEAL ≤ 2.1×, exact δSEAL ≤ 3.0×,
stochastic finite-difference δSEAL ≤ 3.5×), refused pairs named.
Constraint: GSEAL and exact δSEAL steps with a fixed λ against the same steps constrained
(``symmetry.constraint``: the penalty over the output's variance, the task loss and one dual
update per step), interleaved; the goal: the constrained step ≤ 1.02× the fixed one.
Data: HDF5 → batches, one core.
Generation: Pythia + FastJet jets/s per core.
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
from seal.generation.jets import GeneratorConfig, generate_chunk, pythia_settings
from seal.groups import Lorentz, transform_batch
from seal.models import MLP, ConstituentTransformer, TorchTransformerTagger
from seal.symmetry import SymmetryLoss
from seal.symmetry.constraint import Constraint, normalised
from seal.testing import random_on_shell

# mode → SymmetryLoss arguments; every mode runs as the callback runs it (SymmetryLoss.with_output:
# the penalty shares the task's forward on the route chosen for the model) — "straightforward"
# forces the reference route (implementation=separate)
PENALTY_MODES = {
    "GSEAL": ("gsymm", {}),
    "GSEAL on 25 % of the batch": ("gsymm", {"fraction": 0.25}),
    "GSEAL straightforward": ("gsymm", {"implementation": "separate"}),
    "δSEAL exact": ("dsymm", {}),
    "δSEAL exact straightforward": ("dsymm", {"implementation": "separate"}),
    "δSEAL stochastic (finite diff.)": (
        "dsymm",
        {"method": "finite_difference", "stochastic": True},
    ),
    "δSEAL stochastic (finite diff.), 25 %": (
        "dsymm",
        {"method": "finite_difference", "stochastic": True, "fraction": 0.25},
    ),
    "δSEAL finite diff.": ("dsymm", {"method": "finite_difference"}),
    "δSEAL finite diff. straightforward": (
        "dsymm",
        {"method": "finite_difference", "implementation": "separate"},
    ),
}
MODES = ("plain", "augmentation", *PENALTY_MODES)


PRECISION = {"dtype": None}  # bf16 autocast on CUDA (what trainer=gpu trains in), set by main()


def autocast(device: torch.device):
    dtype = PRECISION["dtype"]
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def make_step(model, batch, task_loss, mode):
    """One optimiser step of ``mode`` and the route it takes (``-`` without a penalty), under
    the benchmark's precision (the trainer's: bf16 autocast on CUDA, fp32 on CPU)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    loss_fn = None
    if mode in PENALTY_MODES:
        penalty, options = PENALTY_MODES[mode]
        group = Lorentz(0.5)
        loss_fn = SymmetryLoss(penalty, group, generator=generator, **options)
        with autocast(batch["p4"].device):
            try:  # finite differences under bf16 are refused (they would difference rounding)
                loss_fn.penalty.check_precision(batch["p4"].device)
            except RuntimeError as why:
                return None, f"refused: {why}"
            loss_fn.prepare(model, batch)

    device = batch["p4"].device

    def step(batch=batch):  # another batch: the same step on it (the padding bench)
        optimizer.zero_grad(set_to_none=True)
        penalty = 0.0
        with autocast(device):
            if loss_fn is not None:
                output, penalty = loss_fn.with_output(model, batch)
            elif mode == "augmentation":
                lam = Lorentz(0.5).sample(len(batch["target"]), generator, device=device)
                output = model(transform_batch(batch, lam, ["p4"]))
            else:
                output = model(batch)
            loss = task_loss(output.float(), batch["target"]) + penalty
        loss.backward()
        optimizer.step()

    return step, "-" if loss_fn is None else loss_fn.route


class SavedBytes(torch.autograd.graph.saved_tensors_hooks):
    """Counts the bytes of distinct storages autograd saves for the backward."""

    def __init__(self):
        self.storages = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            self.storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        super().__init__(pack, lambda tensor: tensor)

    @property
    def total(self) -> int:
        return sum(self.storages.values())


def memory_of(step, device: torch.device) -> int:
    """Peak CUDA memory of one step, or on CPU the bytes saved for its backward."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device)
    saved = SavedBytes()
    with saved:
        step()
    return saved.total


def time_modes(model, batch, task_loss, rounds: int, device: torch.device) -> dict:
    """(median step seconds, memory) per mode; modes over 5× plain are timed in 2 rounds only."""
    made = {mode: make_step(model, batch, task_loss, mode) for mode in MODES}
    refused = {mode: why for mode, (step, why) in made.items() if step is None}
    made = {mode: pair for mode, pair in made.items() if mode not in refused}
    steps = {mode: step for mode, (step, _) in made.items()}
    times = {mode: [] for mode in made}
    memory = {mode: memory_of(step, device) for mode, step in steps.items()}  # also warms up
    for round_ in range(rounds):
        for mode, step in steps.items():
            slow = times[mode] and times[mode][0] > 5 * times["plain"][0]
            if round_ < 2 or not slow:
                times[mode].append(_timed(step, device))
    timed = {mode: (statistics.median(t), memory[mode], made[mode][1]) for mode, t in times.items()}
    return timed | {mode: (float("nan"), 0, why) for mode, why in refused.items()}


def _timed(step, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def top_batch(size: int, device: torch.device, n: int = 120) -> dict:
    jets = random_on_shell(size, n, seed=0, max_momentum=200.0, dtype=torch.float32)
    jets["target"] = (torch.arange(size) % 2).float()
    return {k: v.to(device) for k, v in jets.items()}


def top_model(device: torch.device) -> tuple:
    """The SEAL-size tagger (size=published) on a GPU, the CPU-sized one on a CPU."""
    if device.type == "cuda":
        return "3×256", ConstituentTransformer(size="published").to(device)
    return "2×64", ConstituentTransformer(size="cpu").to(device)


WORKLOADS = ("toy", "top", "stock")


def workloads(device: torch.device, names=WORKLOADS):
    if "toy" in names:
        toy = {k: v.to(device) for k, v in make_toy(1000, n_particles=1, seed=0).items()}
        mlp = MLP(n_particles=1, width=300, depth=3).to(device)
        yield "toy MLP 3×300 GELU, batch 1000", mlp, toy, F.mse_loss
    bce = F.binary_cross_entropy_with_logits
    if "top" in names:
        size, net = top_model(device)
        title = f"top transformer {size} (dropout 0.1), 120 constituents, batch 256"
        yield title, net, top_batch(256, device), bce
    if "stock" in names:
        stock = TorchTransformerTagger(dim=64, depth=2, heads=4, ff_dim=128).to(device)
        title = "stock nn.TransformerEncoder 2×64 (torch_transformer, dropout 0.1), batch 256"
        yield title, stock, top_batch(256, device), bce


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
            print(
                f"| HDF5 → batches, 80 constituents, shuffle={shuffle} | {rows} jets | "
                f"{rows / seconds:,.0f} jets/s |"
            )


def bench_throughput(device: torch.device, rounds: int, sizes=(64, 128, 256, 512)) -> None:
    """Training jets/s of the top transformer, plain and GSEAL, vs batch size."""
    print("\n### top transformer training throughput vs batch size\n")
    print("| batch | plain (jets/s) | GSEAL (jets/s) | GSEAL 25 % (jets/s) |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        _, net = top_model(device)
        batch = top_batch(size, device)
        loss = F.binary_cross_entropy_with_logits
        modes = ("plain", "GSEAL", "GSEAL on 25 % of the batch")
        steps = [make_step(net, batch, loss, mode)[0] for mode in modes]
        for step in steps:
            step()
        times = [[] for _ in steps]
        for _ in range(max(3, rounds // 2)):
            for t, step in zip(times, steps):
                t.append(_timed(step, device))
        rates = " | ".join(f"{size / statistics.median(t):,.0f}" for t in times)
        print(f"| {size} | {rates} |")


def trimmed_jets(path: Path, keep: int = 40, repeats: int = 8) -> int:
    """The fixture's jets, each cut to its ``keep`` hardest constituents (stored pT-ordered), as
    an ATLAS-layout file at ``path``; returns the number of jets."""
    with h5py.File(FIXTURE) as src, h5py.File(path, "w") as dst:
        for key in src:
            if key == "metadata":
                continue
            data = np.concatenate([src[key][:]] * repeats)
            if key.startswith("fjet_clus_"):
                data[:, keep:] = 0
            dst.create_dataset(key, data=data)
        return len(dst["labels"])


def bench_padding(
    device: torch.device, rounds: int, slots: int = 80, keep: int = 40, repeats: int = 8
) -> None:
    """Training jets/s, plain and GSEAL, with fixed and per-batch padding (data included)."""
    bce = F.binary_cross_entropy_with_logits
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trimmed.h5"
        n = trimmed_jets(path, keep, repeats)
        streams = {
            padding: JetStream(path, slots, np.ones(n, bool), 256, True, padding=padding, seed=0)
            for padding in ("fixed", "batch")
        }
        first = {k: v.to(device) for k, v in next(iter(streams["fixed"])).items()}
        filled = float(first["mask"].float().sum(1).mean()) / slots
        size, _ = top_model(device)
        print(
            f"\n### padding: top transformer {size} training through the jet stream, {n} jets "
            f"of ≤ {keep} constituents in {slots} slots (mean {100 * filled:.0f} % filled), "
            f"batch 256, median of {max(3, rounds // 3)} epochs\n"
        )
        print("| mode | fixed padding (jets/s) | per-batch padding (jets/s) | ratio |")
        print("|---|---:|---:|---:|")
        for mode in ("plain", "GSEAL"):
            torch.manual_seed(0)
            _, net = top_model(device)
            step, _ = make_step(net.train(), first, bce, mode)

            def epoch(stream, step=step):
                start, jets = time.perf_counter(), 0
                for batch in stream:
                    step({k: v.to(device) for k, v in batch.items()})
                    jets += len(batch["target"])
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                return jets / (time.perf_counter() - start)

            for stream in streams.values():  # warm-up
                epoch(stream)
            rates = {padding: [] for padding in streams}
            for _ in range(max(3, rounds // 3)):
                for padding, stream in streams.items():
                    rates[padding].append(epoch(stream))
            fixed, trimmed = (statistics.median(rates[p]) for p in ("fixed", "batch"))
            print(f"| {mode} | {fixed:,.0f} | {trimmed:,.0f} | {trimmed / fixed:.2f}× |")


def bench_generation(n_jets: int = 200) -> None:
    """Pythia 8 + FastJet on one core: the whole pipeline against Pythia alone, same settings.

    The default set's settings (400–1200 GeV in 8 slices, MPI on), its 700–800 GeV slice, per
    process and acceptance mode: the pipeline makes ``n_jets`` accepted jets (start-up
    included); then a second Pythia with the same settings and seed generates the same number
    of events and nothing else. Efficiency = (accepted jets per second) / (Pythia events per
    second): 1 means one accepted jet per event at Pythia's own pace.
    """
    import pythia8mc

    print(
        "\n### jet generation, one core (Pythia 8 + FastJet, the default set's 700–800 GeV "
        "slice, MPI on)\n"
    )
    print(
        "| process | accept | jets | events | pipeline (s) | Pythia alone (s) | jets/event | "
        "pipeline jets/s | Pythia events/s | efficiency |\n|---|---|---:|---:|---:|---:|---:|"
        "---:|---:|---:|"
    )
    for process in ("ttbar", "qcd"):
        for accept in ("slice", "window"):
            cfg = GeneratorConfig(
                n_slices=8, pt_min=400.0, pt_max=1200.0, n_constituents=120, seed=3, accept=accept
            )
            start = time.perf_counter()
            out = generate_chunk(cfg, process, 3, n_jets, seed=11)
            pipeline = time.perf_counter() - start
            start = time.perf_counter()
            pythia = pythia8mc.Pythia("", False)
            for line in pythia_settings(cfg, process, 3, 11):
                pythia.readString(line)
            pythia.init()
            events = 0
            while events < out["events"]:
                events += len(pythia.nextBatch(25))
            alone = time.perf_counter() - start
            jets_rate, event_rate = n_jets / pipeline, events / alone
            print(
                f"| {process} | {accept} | {n_jets} | {out['events']} | {pipeline:.1f} | "
                f"{alone:.1f} | {n_jets / out['events']:.2f} | {jets_rate:.1f} | "
                f"{event_rate:.1f} | {jets_rate / event_rate:.2f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per mode")
    parser.add_argument(
        "--only",
        choices=(
            "steps",
            "epochs",
            "models",
            "treatments",
            "systematics",
            "constraint",
            "throughput",
            "padding",
            "data",
            "generation",
        ),
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "bf16", "32"),
        default="auto",
        help="auto: bf16 autocast on CUDA (as trainer=gpu trains), fp32 on CPU",
    )
    parser.add_argument(
        "--epoch-batches",
        type=int,
        default=None,
        help="epochs: training batches per epoch (default: all on CUDA, 20 on CPU)",
    )
    parser.add_argument(
        "--epoch-data",
        type=Path,
        default=None,
        help="epochs: jet file to train on (default: data/top_default.h5 if "
        "present, else the test fixture)",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"steps: comma-separated subset of {','.join(WORKLOADS)}",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = args.precision == "bf16" or (args.precision == "auto" and device.type == "cuda")
    PRECISION["dtype"] = torch.bfloat16 if bf16 else None
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(
        f"device: {device} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads, {args.rounds} rounds, "
        f"{'bf16 autocast' if bf16 else 'fp32'}"
    )
    if args.only in (None, "steps"):
        bench_steps(device, args.rounds, args.workloads.split(","))
    if args.only in (None, "epochs"):
        batches = args.epoch_batches or (None if device.type == "cuda" else 20)
        bench_epochs(device, bf16, args.epoch_data, batches)
    if args.only in (None, "models"):
        bench_models(device, args.rounds)
    if args.only in (None, "treatments"):
        bench_treatments(device, args.rounds)
    if args.only in (None, "systematics"):
        bench_systematics(device, args.rounds)
    if args.only in (None, "constraint"):
        bench_constraint(device, args.rounds)
    if args.only in (None, "throughput"):
        bench_throughput(device, args.rounds)
    if args.only in (None, "padding"):
        bench_padding(device, args.rounds)
    if args.only in (None, "data"):  # one core from here on
        print("\n### data loading (1 core)\n\n| what | size | throughput |\n|---|---:|---:|")
        bench_data()
    if args.only in (None, "generation"):
        bench_generation()


def bench_steps(device: torch.device, rounds: int, names=WORKLOADS) -> None:
    unit = "peak MiB" if device.type == "cuda" else "saved MiB"
    for title, model, batch, task_loss in workloads(device, names):
        results = time_modes(model, batch, task_loss, rounds, device)
        base_time, base_memory, _ = results["plain"]
        print(
            f"\n### {title}\n\n| mode | route | step (ms) | ratio to plain | {unit} | "
            f"memory ratio |\n|---|---|---:|---:|---:|---:|"
        )
        for mode, (seconds, memory, route) in results.items():
            print(
                f"| {mode} | {route} | {1e3 * seconds:.1f} | {seconds / base_time:.2f}× | "
                f"{memory / 2**20:.1f} | {memory / base_memory:.2f}× |"
            )


TOP_EXPERIMENTS = (
    "top_baseline",
    "top_augment",
    "top_gsymm",
    "top_dsymm",
    "top_invariant",
    "top_hybrid",
    "top_lloca",
    "top_lloca_beam",
    "top_pelican",
    "top_lgatr",
)
# backbone → its overrides in the treatments table (L-GATr-slim with references: without them it
# is exactly invariant and every treatment but none is refused)
TREATED_BACKBONES = {
    "part": [],
    "lgatr_slim": [
        "model.net.backbone.beam_reference=lightlike",
        "model.net.backbone.time_reference=true",
    ],
}
# the cost goals of the treatments table on CPU: mode → most ÷ plain
GOALS = {"GSEAL": 2.1, "δSEAL exact": 3.0, "δSEAL stochastic (finite diff.)": 3.5}


def step_mode(cfg) -> str:
    """How a composed config's training step runs, as :func:`make_step`'s mode."""
    if cfg.get("symmetry") is None:
        return "augmentation" if cfg.data.get("augment") else "plain"
    penalty = cfg.symmetry.penalty
    if penalty._target_.endswith("GSEAL"):
        return "GSEAL"
    if penalty.method == "exact":
        return "δSEAL exact"
    return "δSEAL stochastic (finite diff.)" if penalty.stochastic else "δSEAL finite diff."


def config_steps(rows: dict, device: torch.device, batch_size: int) -> tuple:
    """label → overrides of ``train`` ⇒ (label → (one training step, mode, route, constituents,
    parameters), label → why it was refused or skipped). Each network is built as its config
    builds it and steps on the same generated jets (the test fixture, cut to the config's
    constituent count)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from seal.data.jets import JetFile
    from seal.models.compose import check_treatment
    from seal.symmetry import RouteError

    configs = Path(__file__).resolve().parents[1] / "configs"
    file = JetFile(FIXTURE, 80)
    jets = file.read(0, batch_size)
    file.close()
    steps, refused = {}, {}
    with initialize_config_dir(config_dir=str(configs), version_base="1.3"):
        for label, overrides in rows.items():
            cfg = compose("train", overrides=overrides)
            mode = step_mode(cfg)
            try:
                torch.manual_seed(0)
                net = instantiate(cfg.model.net).to(device)
                check_treatment(net, cfg.get("symmetry"), cfg.data.get("augment"))
                n = int(cfg.data.n_constituents)
                batch = {
                    k: torch.as_tensor(v).to(device)
                    for k, v in jets.items()
                    if k in ("p4", "mask", "jet_p4")
                }
                batch["p4"], batch["mask"] = batch["p4"][:, :n], batch["mask"][:, :n]
                batch["target"] = torch.as_tensor(jets["target"]).float().to(device)
                bce = F.binary_cross_entropy_with_logits
                step, route = make_step(net.train(), batch, bce, mode)
            except ImportError as error:  # an optional extra that is not installed
                refused[label] = f"skipped: {error}"
                continue
            except (InstantiationException, RouteError, ValueError) as error:
                cause = error.__cause__ if isinstance(error, InstantiationException) else error
                refused[label] = f"refused: {str(cause).split(';')[0]}"
                continue
            params = sum(p.numel() for p in net.parameters())
            steps[label] = (step, mode, route, n, params, net, batch)
    return steps, refused


def time_steps(steps: dict, device: torch.device, rounds: int) -> dict:
    """label → (median seconds, memory), interleaved round by round after one warm-up step."""
    memory = {label: memory_of(s[0], device) for label, s in steps.items()}  # also warms up
    times = {label: [] for label in steps}
    for _ in range(rounds):
        for label, (step, *_) in steps.items():
            times[label].append(_timed(step, device))
    return {label: (statistics.median(t), memory[label]) for label, t in times.items()}


def bench_models(device: torch.device, rounds: int, batch_size: int = 256) -> None:
    """Every top experiment's network as its config builds it, one training step each."""
    rows = {e: [f"+experiment={e}"] for e in TOP_EXPERIMENTS}
    steps, refused = config_steps(rows, device, batch_size)
    timed = time_steps(steps, device, rounds)
    base = timed["top_baseline"][0]
    print(
        f"\n### top-tagging models, one training step, batch {batch_size} "
        "(generated jets)\n\n| experiment | step | constituents | parameters | step (ms) | "
        "÷ top_baseline |\n|---|---|---:|---:|---:|---:|"
    )
    for label, (seconds, _) in timed.items():
        _, mode, _, n, params, *_ = steps[label]
        print(
            f"| {label} | {mode} | {n} | {params:,} | {1e3 * seconds:.0f} | {seconds / base:.2f}× |"
        )
    for label, why in refused.items():
        print(f"({label}: {why})")


def bench_systematics(
    device: torch.device, rounds: int, sizes=(128, 512, 2048), jets: int = 2048
) -> None:
    """The systematic evaluation's forward passes (``evaluation.systematics.batch_size``): per
    model the inference time per jet at each batch size, against one training step's per jet.
    The evaluation makes six passes over 8 000 test jets (five detector variations and a
    two-point sample), the §3 fit eight epochs over 8 000 training jets, so its share of the
    fit time is about 6/8 × (inference ÷ training per jet) at the chosen batch size."""
    rows = {e: [f"+experiment={e}"] for e in ("top_baseline", "top_lloca", "top_lgatr")}
    steps, refused = config_steps(rows, device, 256)
    timed = time_steps(steps, device, rounds)
    head = " | ".join(f"inference @{b} (ms/jet)" for b in sizes)
    print(
        f"\n### systematics forward passes ({jets} fixture jets, tiled) against a training step "
        f"(batch 256)\n\n| experiment | training (ms/jet) | {head} | @{sizes[-1]} ÷ @{sizes[0]} "
        f"| 6/8 × inference @{sizes[0]} ÷ training |\n|---|---:|{'---:|' * (len(sizes) + 2)}"
    )
    for label, (seconds, _) in timed.items():
        *_, net, batch = steps[label]
        tiled = {k: v.repeat_interleave(-(-jets // len(v)), 0)[:jets] for k, v in batch.items()}
        net.eval()
        per_jet = []
        for size in sizes:
            chunks = [{k: v[a : a + size] for k, v in tiled.items()} for a in range(0, jets, size)]

            def forward(chunks=chunks, net=net):
                with torch.no_grad():  # as the evaluation's passes
                    for chunk in chunks:
                        net(chunk)

            forward()  # warm-up
            repeats = [_timed(forward, device) for _ in range(max(2, rounds // 5))]
            per_jet.append(statistics.median(repeats) / jets)
        train = seconds / 256
        cells = " | ".join(f"{1e3 * t:.2f}" for t in per_jet)
        print(
            f"| {label} | {1e3 * train:.2f} | {cells} | {per_jet[-1] / per_jet[0]:.2f}× "
            f"| {0.75 * per_jet[0] / train:.0%} |"
        )
    for label, why in refused.items():
        print(f"({label}: {why})")


CONSTRAINT_GOAL = 1.02  # the constrained step over the fixed-λ step, at most


def constrained_step(model, batch, task_loss, penalty: str, constrained: bool):
    """One optimiser step of ``penalty`` with λ = 1 fixed, or constrained as the callback runs
    it: g = penalty / Var(output) in the loss, then one dual update from g and the task loss."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    loss_fn = SymmetryLoss(penalty, Lorentz(0.5), generator=torch.Generator().manual_seed(0))
    constraint = Constraint(target=1e-3).bind() if constrained else None
    device = batch["p4"].device
    with autocast(device):
        loss_fn.prepare(model, batch)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(device):
            output, value = loss_fn.with_output(model, batch)
            task = task_loss(output.float(), batch["target"])
            if constraint is None:
                loss = task + value
            else:
                g = normalised(value, output)
                loss = task + (constraint.weights(g) * g).sum()
        loss.backward()
        optimizer.step()
        if constraint is not None:
            constraint.update(g, task)

    return step


def bench_constraint(device: torch.device, rounds: int, names=("toy", "top")) -> None:
    """The constrained step against the fixed-λ step, interleaved (≥ 30 rounds: the difference
    is a few per cent of a step)."""
    rounds = max(rounds, 30)
    print(
        f"\n### constrained SEAL: the dual update's cost ({rounds} rounds, interleaved)\n\n"
        "| workload | penalty | fixed λ (ms) | constrained (ms) | ratio | goal ≤ "
        f"{CONSTRAINT_GOAL:.2f}× |\n|---|---|---:|---:|---:|---|"
    )
    for title, model, batch, task_loss in workloads(device, names):
        for label, penalty in (("GSEAL", "gsymm"), ("δSEAL exact", "dsymm")):
            steps = {
                kind: constrained_step(model, batch, task_loss, penalty, kind == "constrained")
                for kind in ("fixed", "constrained")
            }
            times = {kind: [] for kind in steps}
            for step in steps.values():
                step()  # warm-up
            for _ in range(rounds):
                for kind, step in steps.items():
                    times[kind].append(_timed(step, device))
            fixed, constrained = (statistics.median(times[k]) for k in steps)
            ratio = constrained / fixed
            print(
                f"| {title} | {label} | {1e3 * fixed:.1f} | {1e3 * constrained:.1f} | "
                f"{ratio:.3f}× | {'met' if ratio <= CONSTRAINT_GOAL else 'NOT met'} |"
            )


def bench_treatments(device: torch.device, rounds: int, batch_size: int = 256) -> None:
    """Every treatment on ParT and L-GATr-slim (32 constituents, as the results' rows): step
    time and memory as ratios to the same backbone without a treatment; refused pairs named."""
    treatments = sorted(
        p.stem
        for p in (Path(__file__).resolve().parents[1] / "configs" / "treatment").glob("*.yaml")
    )
    unit = "peak MiB" if device.type == "cuda" else "saved MiB"
    for backbone, extra in TREATED_BACKBONES.items():
        rows = {
            t: [
                "+experiment=top",
                f"model/backbone={backbone}",
                f"treatment={t}",
                "data.n_constituents=32",
                *extra,
            ]
            for t in treatments
        }
        steps, refused = config_steps(rows, device, batch_size)
        if "none" not in steps:
            print(f"\n({backbone}: {refused.get('none', 'not built')})")
            continue
        timed = time_steps(steps, device, rounds)
        refs = " + references" if extra else ""
        print(
            f"\n### treatments on {backbone}{refs} (CPU size, 32 constituents, batch {batch_size})"
            f" (ratios to the untreated backbone; lloca_refs_*: to lloca_refs)"
            f"\n\n| treatment | step | route | step (ms) | ratio | {unit} | memory ratio | goal |"
            f"\n|---|---|---|---:|---:|---:|---:|---|"
        )
        for label, (seconds, memory) in timed.items():
            _, mode, route, *_ = steps[label]
            # a penalty around LLoCa costs against LLoCa with the same references
            base_time, base_memory = timed[
                "lloca_refs" if label.startswith("lloca_refs_") else "none"
            ]
            ratio, goal = seconds / base_time, GOALS.get(mode)
            verdict = "–" if goal is None else f"≤ {goal}×: {'met' if ratio <= goal else 'NOT met'}"
            print(
                f"| {label} | {mode} | {route} | {1e3 * seconds:.0f} | {ratio:.2f}× | "
                f"{memory / 2**20:.1f} | {memory / base_memory:.2f}× | {verdict} |"
            )
        for label, why in refused.items():
            print(f"| {label} | {why} | | | | | | |")


EPOCH_EXPERIMENTS = ("top_baseline", "top_gsymm", "top_dsymm")


def bench_epochs(device: torch.device, bf16: bool, data: Path | None, batches: int | None) -> None:
    """End to end: a short real training run (``train.run``, Lightning, the data loader, the
    callback) per experiment on the same jets; the median training-epoch time after the first
    (warm-up) epoch, its ratio to plain training and, on CUDA, the GPU's mean utilisation."""
    from epoch_timing import train_epochs

    root = Path(__file__).resolve().parents[1]
    data = data or next((p for p in (root / "data" / "top_default.h5",) if p.exists()), FIXTURE)
    limit = f", {batches} batches per epoch" if batches else ""
    print(
        f"\n### training epochs end to end ({data.name}{limit}, "
        f"{'bf16-mixed' if bf16 else 'fp32'}; median of epochs 2–3)\n"
    )
    print("| experiment | epoch (s) | ratio to plain | GPU utilisation |\n|---|---:|---:|---:|")
    base = None
    for experiment in EPOCH_EXPERIMENTS:
        seconds, utilisation = train_epochs(experiment, data, device, bf16, batches=batches)
        base = base or seconds
        util = f"{utilisation:.0f} %" if utilisation is not None else "–"
        print(f"| {experiment} | {seconds:.2f} | {seconds / base:.2f}× | {util} |")


if __name__ == "__main__":
    main()
