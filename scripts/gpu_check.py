"""The GPU check as one command (``make gpu-check``), on an H100/H200, in about 8 minutes.

    python3 scripts/gpu_check.py [--wheels .whl] [--out docs/gpu.md] [--budget 480]

It runs on a bare GPU machine that has torch but not seal's other dependencies: whatever of
hydra-core, omegaconf, mplhep, lloca, lgatr is missing is installed from the wheels in
``--wheels`` (``make wheels`` downloads them, on a machine with the package index) into a
temporary folder, and the check restarts itself with that folder and the repository on
``PYTHONPATH`` (no virtual environment: the machine's own CUDA torch is the one to measure).

Then, each step timed and the next skipped (and said so) once ``--budget`` seconds are spent:

1. the bf16 step bench (``scripts/bench.py --device cuda --only steps --workloads top``): one
   optimiser step of plain, GSEAL, GSEAL on 25 % and exact δSEAL on the SEAL study's 3 × 256
   transformer, step and peak-memory ratios to plain;
2. one training epoch of every top experiment with its network at ``size=published`` (the
   SEAL study's 3 × 256 transformer; the published sizes of the others), bf16, through
   ``train.run`` (data stream, Lightning, callback) on 19 200 fixture jets, with the GPU's
   utilisation sampled during the epoch;
3. ``pytest -m gpu``;
4. ``torch.compile`` (inductor) against eager: epochs of plain and GSEAL training, compiled and
   not, the first (compiling) epoch left out.

It writes ``--out`` (``docs/gpu.md``): the device, torch and CUDA versions, the goals (GSEAL
≤ 1.3×, GSEAL on 25 % ≤ 1.1×, exact δSEAL ≤ 2.0× plain's step; plain training keeps the GPU
busy ≥ 70 %; compiled faster than eager) met or not, and every figure.
"""

import argparse
import datetime
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("hydra", "omegaconf", "mplhep", "lloca", "lgatr")  # what a bare GPU machine lacks
BENCH_MODES = {  # the bench's mode → the goal's name and bound (ratio to plain)
    "GSEAL": ("GSEAL step ≤ 1.3× plain", 1.3),
    "GSEAL on 25 % of the batch": ("GSEAL on 25 % of the batch ≤ 1.1× plain", 1.1),
    "δSEAL exact": ("exact δSEAL step ≤ 2.0× plain", 2.0),
}
BUSY_GOAL, FIXTURE_REPEATS = 70.0, 64


def missing_modules() -> list[str]:
    return [name for name in NEEDED if importlib.util.find_spec(name) is None]


def install_wheels(wheels: Path) -> None:
    """Install the missing packages from ``wheels`` and restart with them (once)."""
    missing = missing_modules()
    if not missing:
        return
    found = sorted(wheels.glob("*.whl")) if wheels.is_dir() else []
    if not found or os.environ.get("SEAL_GPU_CHECK_INSTALLED"):
        why = f"the wheels in {wheels} do not provide them" if found else f"no wheels in {wheels}"
        sys.exit(
            f"gpu-check: {missing} not importable and {why}: run `make wheels` where the "
            f"package index can be reached and bring {wheels}/ along"
        )
    target = Path(tempfile.gettempdir()) / "seal-gpu-site"
    print(f"gpu-check: installing {len(found)} wheels for {missing} into {target}", flush=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
        + ["--no-compile", "--no-cache-dir", "--upgrade", "--target", str(target)]
        + [str(path) for path in found],
        check=True,
    )
    path = os.pathsep.join(p for p in (str(target), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = os.environ | {"PYTHONPATH": path, "SEAL_GPU_CHECK_INSTALLED": "1"}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def bench_ratios(text: str, title: str = "top transformer 3×256") -> dict:
    """mode → (step ratio, memory ratio) from the bench's table under ``title``."""
    ratios, inside = {}, False
    for line in text.splitlines():
        if line.startswith("### "):
            inside = line[4:].startswith(title)
        elif inside and line.startswith("| ") and not line.startswith("| mode"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 6 and cells[3].endswith("×") and cells[3] != "nan×":
                ratios[cells[0]] = (float(cells[3][:-1]), float(cells[5][:-1]))
    return ratios


def goal_rows(ratios: dict, busy: float | None, compiled: tuple | None) -> list[str]:
    """The goals table: goal, measured, met."""

    def row(goal, value, met):
        verdict = "–" if met is None else ("met" if met else "**not met**")
        return f"| {goal} | {value} | {verdict} |"

    rows = ["| goal | measured | |", "|---|---:|---|"]
    for mode, (goal, bound) in BENCH_MODES.items():
        ratio = ratios.get(mode, (None,))[0]
        rows.append(
            row(
                goal, "not measured" if ratio is None else f"{ratio:.2f}×", ratio and ratio <= bound
            )
        )
    rows.append(
        row(
            f"plain training keeps the GPU busy ≥ {BUSY_GOAL:.0f} %",
            "not measured" if busy is None else f"{busy:.0f} %",
            None if busy is None else busy >= BUSY_GOAL,
        )
    )
    if compiled is None:
        rows.append(row("compiled faster than eager (plain epoch)", "not measured", None))
    else:
        eager, fast = compiled
        rows.append(
            row(
                "compiled faster than eager (plain epoch)",
                f"{fast:.2f} s vs {eager:.2f} s ({fast / eager:.2f}×)",
                fast < eager,
            )
        )
    return rows


def fixture_copies(path: Path, repeats: int = FIXTURE_REPEATS) -> Path:
    """The test fixture's 300 jets ``repeats`` times over, as one ATLAS-layout file."""
    import h5py
    import numpy as np

    fixture = ROOT / "tests" / "data" / "fixture_jets.h5"
    with h5py.File(fixture) as src, h5py.File(path, "w") as dst:
        for key in src:
            if key != "metadata":
                dst.create_dataset(key, data=np.concatenate([src[key][:]] * repeats))
    return path


class Check:
    """Runs the steps within the budget and collects the report's sections."""

    def __init__(self, budget: float):
        self.start, self.budget = time.monotonic(), budget
        self.sections: list[str] = []
        self.ratios, self.busy, self.compiled = {}, None, None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def step(self, title: str, fn) -> None:
        if self.elapsed() > self.budget:
            self.sections.append(
                f"**{title}**: skipped — the {self.budget:.0f} s budget was spent "
                f"({self.elapsed():.0f} s)."
            )
            print(f"gpu-check: {title}: skipped (budget spent)", flush=True)
            return
        print(f"gpu-check: {title} …", flush=True)
        begin = time.monotonic()
        try:
            body = fn()
        except Exception as error:  # the report says what broke; the other steps still run
            body = f"failed: `{type(error).__name__}: {str(error)[:500]}`"
        seconds = time.monotonic() - begin
        self.sections.append(f"**{title}** ({seconds:.0f} s)\n\n{body}")
        print(f"gpu-check: {title}: {seconds:.0f} s", flush=True)


def run_text(cmd: list[str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as stop:
        out = (stop.stdout or b"").decode() if isinstance(stop.stdout, bytes) else stop.stdout
        return -1, f"{out or ''}\n(stopped after {timeout:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheels", type=Path, default=ROOT / ".whl")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gpu.md")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all steps")
    args = parser.parse_args()
    install_wheels(args.wheels)
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu-check needs a CUDA GPU (torch.cuda.is_available() is False here)")
    sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]
    check = Check(args.budget)
    python = sys.executable

    def bench():
        cmd = [python, "scripts/bench.py", "--device", "cuda", "--only", "steps"]
        rc, text = run_text([*cmd, "--workloads", "top", "--rounds", "10"], 240)
        check.ratios = bench_ratios(text)
        table = [line for line in text.splitlines() if line.startswith(("|", "###", "device"))]
        return f"`{' '.join(cmd[1:])} --workloads top --rounds 10` (exit {rc})\n\n" + "\n".join(
            table or text.splitlines()[-30:]
        )

    data = fixture_copies(Path(tempfile.mkdtemp()) / "jets.h5")

    def epochs():
        from bench import TOP_EXPERIMENTS
        from epoch_timing import train_epochs

        rows = [
            "| experiment | epoch (s) | ratio to plain | GPU busy |",
            "|---|---:|---:|---:|",
        ]
        base = None
        for experiment in TOP_EXPERIMENTS:
            try:
                seconds, busy = train_epochs(
                    experiment,
                    data,
                    torch.device("cuda"),
                    bf16=True,
                    epochs=2,
                )
            except Exception as error:
                rows.append(
                    f"| {experiment} | failed: {type(error).__name__}: {str(error)[:200]} | | |"
                )
                continue
            base = base or seconds
            if experiment == "top_baseline":
                check.busy = busy
            util = "–" if busy is None else f"{busy:.0f} %"
            rows.append(f"| {experiment} | {seconds:.2f} | {seconds / base:.2f}× | {util} |")
        return (
            f"{300 * FIXTURE_REPEATS * 8 // 10 // 256} training batches of 256 "
            f"({FIXTURE_REPEATS} copies of the fixture, 80 % training split), bf16-mixed, "
            f"validation off; the second epoch (the first warms up), utilisation sampled "
            f"every 0.1 s during it.\n\n" + "\n".join(rows)
        )

    def pytest_gpu():
        cmd = [
            python,
            "-m",
            "pytest",
            "-q",
            "-m",
            "gpu",
            "-p",
            "no:cacheprovider",
            "tests/test_gpu.py",
        ]
        rc, text = run_text(cmd, 300)
        lines = [
            line
            for line in text.splitlines()
            if line.startswith(("FAILED", "ERROR")) or re.search(r"\d+ (passed|failed)", line)
        ]
        return (
            f"`python -m pytest -q -m gpu tests/test_gpu.py` (exit {rc})\n\n```\n"
            + "\n".join(lines or text.splitlines()[-20:])
            + "\n```"
        )

    def compiled():
        from epoch_timing import train_epochs

        rows = [
            "| experiment | eager epoch (s) | compiled epoch (s) | compiled ÷ eager |",
            "|---|---:|---:|---:|",
        ]
        for experiment in ("top_baseline", "top_gsymm"):
            times = [
                train_epochs(
                    experiment,
                    data,
                    torch.device("cuda"),
                    True,
                    epochs=3,
                    extra=(f"model.compile={flag}",),
                )[0]
                for flag in ("false", "true")
            ]
            if experiment == "top_baseline":
                check.compiled = tuple(times)
            rows.append(
                f"| {experiment} | {times[0]:.2f} | {times[1]:.2f} | {times[1] / times[0]:.2f}× |"
            )
        return (
            "`model.compile=true` (inductor) against eager, 3×256, bf16, three epochs each, "
            "median of epochs 2–3 (the first compiles).\n\n" + "\n".join(rows)
        )

    check.step("1. The bf16 step bench", bench)
    check.step("2. One epoch of every top experiment", epochs)
    check.step("3. pytest -m gpu", pytest_gpu)
    check.step("4. Compiled against eager", compiled)
    driver = run_text(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], 30)[1]
    header = (
        f"# GPU figures\n\n`make gpu-check` (`python3 scripts/gpu_check.py`) on "
        f"{datetime.date.today()}: {torch.cuda.get_device_name()} (driver {driver.strip()}), "
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, {os.cpu_count()} CPU threads; "
        f"{check.elapsed():.0f} s in all. Ratios are measured side by side in one process.\n\n"
        "## Goals\n\n"
    )
    report = header + "\n".join(goal_rows(check.ratios, check.busy, check.compiled))
    report += "\n\n## Figures\n\n" + "\n\n".join(check.sections) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    print(report)
    print(f"gpu-check: written to {args.out} in {check.elapsed():.0f} s")


if __name__ == "__main__":
    main()
