"""scripts/scale_check.py: the large-file writer and the one-epoch coverage count, on a small
file (the 1 M-jet figures are in the README)."""

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "data" / "fixture_jets.h5"


def scale_check(*args):
    return subprocess.run(
        [sys.executable, "scripts/scale_check.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_writer_cycles_the_jets_each_copy_turned_in_phi(tmp_path):
    out = tmp_path / "big.h5"
    done = scale_check("write", "--out", out, "--jets", 700, "--constituents", 40)
    assert done.returncode == 0, done.stderr[-2000:]
    with h5py.File(out) as big, h5py.File(FIXTURE) as src:
        assert big["fjet_clus_pt"].shape == (700, 40) and big["labels"].shape == (700,)
        rows = np.arange(700) % 300
        for key in ("fjet_clus_pt", "fjet_clus_eta", "fjet_clus_E"):
            assert np.array_equal(big[key][:], src[key][:, :40][rows])
        assert np.array_equal(big["labels"][:], src["labels"][:][rows])
        # φ turned by one angle per jet: constituents keep their φ differences (mod 2π)
        turn = big["fjet_phi"][:] - src["fjet_phi"][:][rows]
        cons = big["fjet_clus_phi"][:, 0] - src["fjet_clus_phi"][:, 0][rows]
        assert np.allclose(np.cos(turn - cons), 1, atol=1e-5)
        assert np.std(np.cos(turn)) > 0.3  # the copies really are turned
    again = scale_check("write", "--out", out, "--jets", 10)
    assert again.returncode != 0 and "exists" in again.stderr


def test_one_epoch_counts_every_training_jet_once(tmp_path):
    data = tmp_path / "jets.h5"
    assert scale_check("write", "--out", data, "--jets", 3000).returncode == 0
    done = scale_check("train", "--data", data, "--out", tmp_path / "run", "--batch-size", 256)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["training_jets"] == 2940 and summary["steps_per_rank"] == [12]
    assert summary["every_training_jet_once"] and summary["jets_not_seen"] == 0
    assert summary["peak_rss_mib_per_rank"][0] > 0
