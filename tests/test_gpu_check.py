"""scripts/gpu_check.py (`make gpu-check`) off the GPU: how it reads the bench, judges the goals,
and refuses to run where it cannot."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import gpu_check  # noqa: E402

# the H100's bench output of 2026-12-06 (docs/gpu.md), cut to two tables
BENCH = """device: cuda (NVIDIA H100 80GB HBM3), torch 2.11.0+cu130, 16 CPU threads, 10 rounds

### toy MLP 3×300 GELU, batch 1000

| mode | route | step (ms) | ratio to plain | peak MiB | memory ratio |
|---|---|---:|---:|---:|---:|
| plain | - | 4.5 | 1.00× | 70.1 | 1.00× |
| GSEAL | fused | 9.0 | 2.02× | 80.6 | 1.15× |

### top transformer 3×256 (dropout 0.1), 120 constituents, batch 256

| mode | route | step (ms) | ratio to plain | peak MiB | memory ratio |
|---|---|---:|---:|---:|---:|
| plain | - | 13.3 | 1.00× | 770.7 | 1.00× |
| GSEAL | replay | 23.1 | 1.73× | 1414.5 | 1.84× |
| GSEAL on 25 % of the batch | replay | 31.3 | 2.35× | 938.8 | 1.22× |
| δSEAL exact | fused | 56.7 | 4.26× | 3431.2 | 4.45× |
| δSEAL finite diff. | refused: finite-difference δSEAL under bf16 | nan | nan× | 0.0 | 0.00× |
"""


def test_the_bench_ratios_are_read_from_the_transformer_table_only():
    ratios = gpu_check.bench_ratios(BENCH)
    assert ratios == {
        "plain": (1.0, 1.0),
        "GSEAL": (1.73, 1.84),
        "GSEAL on 25 % of the batch": (2.35, 1.22),
        "δSEAL exact": (4.26, 4.45),
    }


def test_each_goal_is_judged_and_an_unmeasured_one_says_so():
    ratios = {"GSEAL": (1.25, 1.8), "δSEAL exact": (4.26, 4.45)}
    rows = gpu_check.goal_rows(ratios, busy=64.0, compiled=(2.0, 1.5))
    table = {row.split(" | ")[0][2:]: row.split(" | ")[1:] for row in rows[2:]}
    assert table["GSEAL step ≤ 1.3× plain"] == ["1.25×", "met |"]
    assert table["GSEAL on 25 % of the batch ≤ 1.1× plain"] == ["not measured", "– |"]
    assert table["exact δSEAL step ≤ 2.0× plain"] == ["4.26×", "**not met** |"]
    assert table["plain training keeps the GPU busy ≥ 70 %"] == ["64 %", "**not met** |"]
    assert table["compiled faster than eager (plain epoch)"] == [
        "1.50 s vs 2.00 s (0.75×)",
        "met |",
    ]


def test_missing_packages_without_wheels_are_named_with_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "NEEDED", ("hydra", "no_such_module_here"))
    with pytest.raises(SystemExit, match=r"\['no_such_module_here'\] not importable and no wheels"):
        gpu_check.install_wheels(tmp_path / "wheels")


def test_the_fixture_copies_are_one_file_of_repeated_jets(tmp_path):
    import h5py

    path = gpu_check.fixture_copies(tmp_path / "jets.h5", repeats=3)
    with h5py.File(path) as f, h5py.File(ROOT / "tests" / "data" / "fixture_jets.h5") as src:
        assert f["labels"].shape == (900,) and "metadata" not in f
        assert (f["fjet_clus_pt"][600:] == src["fjet_clus_pt"][:]).all()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU refusal")
def test_without_a_gpu_it_stops_at_once_saying_why(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/gpu_check.py", "--out", str(tmp_path / "gpu.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "gpu-check needs a CUDA GPU" in done.stderr
    assert not (tmp_path / "gpu.md").exists()
