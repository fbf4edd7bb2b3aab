"""The one test that launches the real CLI: a three-point λ sweep whose middle job fails, then
the sweep report."""

import csv
import subprocess
import sys
from pathlib import Path

from conftest import TINY

from seal.reports.sweep import summarise

ROOT = Path(__file__).resolve().parents[1]


def test_cli_sweep_makes_two_runs_and_a_report(tmp_path):
    sweep = tmp_path / "sweep"
    command = [
        sys.executable,
        "train.py",
        "-m",
        "+experiment=toy_gsymm",
        "symmetry.weight=0,-1,1",
        *TINY,
        f"hydra.sweep.dir={sweep}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    # the failing job is reported (non-zero exit, its error named) and the others finish
    assert result.returncode != 0
    assert "symmetry weight λ must be >= 0; got -1" in result.stderr, result.stderr[-3000:]
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert [p.name for p in runs] == ["0", "2"]
    assert all(
        (p / "robustness.png").exists() and (p / "csv" / "metrics.csv").exists() for p in runs
    )

    table, figure = summarise(sweep)
    assert figure.exists() and (sweep / "report.md").read_text().endswith(table)
    with open(sweep / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["loss"], float(r["weight"]), r["status"]) for r in rows] == [
        ("gsymm", -1.0, "failed"),  # the report lists the failed job too
        ("gsymm", 0.0, "finished"),
        ("gsymm", 1.0, "finished"),
    ]
    assert all(float(r["boost/mse@0"]) > 0 for r in rows[1:])
