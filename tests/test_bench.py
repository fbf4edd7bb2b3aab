"""scripts/bench.py's end-to-end epoch timing, on CPU with the jet fixture."""

import sys
from pathlib import Path

import torch
from conftest import FIXTURE_JETS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from epoch_timing import train_epochs


def test_epoch_timing_runs_a_real_short_training_per_experiment():
    seconds, utilisation = train_epochs(
        "top_gsymm", FIXTURE_JETS, torch.device("cpu"), bf16=False, epochs=2, batches=2
    )
    assert 0 < seconds < 60 and utilisation is None  # no GPU to sample on CPU


def test_model_costs_cover_every_top_experiment_as_configured(capsys):
    import bench

    bench.bench_models(torch.device("cpu"), rounds=1, batch_size=8)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| top_")]
    table = {row.split(" | ")[0][2:]: row.split(" | ") for row in rows}
    assert set(table) == set(bench.TOP_EXPERIMENTS)  # the extras come with dev
    assert table["top_baseline"][-1].startswith("1.00×")
    assert table["top_pelican"][2] == "32" and table["top_lloca"][2] == "80"
    assert table["top_gsymm"][3] == table["top_baseline"][3] == "71,809"  # same network
    assert table["top_gsymm"][1] == "GSEAL" and table["top_dsymm"][1] == "δSEAL exact"
    assert table["top_augment"][1] == "augmentation" and table["top_lloca"][1] == "plain"


def test_treatment_costs_cover_every_treatment_and_name_the_refused(capsys, monkeypatch):
    import bench

    monkeypatch.setattr(bench, "TREATED_BACKBONES", {"part": ["model.net.backbone.layers=1"]})
    bench.bench_treatments(torch.device("cpu"), rounds=1, batch_size=8)
    out = capsys.readouterr().out
    rows = {
        line.split(" | ")[0][2:]: line.split(" | ")
        for line in out.splitlines()
        if line.startswith("| ")
    }
    treatments = {
        p.stem for p in (Path(bench.__file__).parents[1] / "configs" / "treatment").glob("*.yaml")
    }
    assert treatments <= set(rows)
    assert rows["none"][4] == "1.00×" and rows["lloca_refs"][4].endswith("×")
    assert not rows["lloca_refs"][1].startswith(("refused", "skipped"))
    assert rows["gsymm"][1] == "GSEAL" and rows["gsymm"][-1].startswith("≤ 2.1×")
    assert rows["dsymm"][1].startswith("refused: part.embed.input_bn (BatchNorm1d)")


def test_padding_bench_trains_on_jets_filling_half_the_slots(capsys, tmp_path):
    import bench

    from seal.data.jets import JetFile

    path = tmp_path / "trimmed.h5"
    assert bench.trimmed_jets(path, keep=40, repeats=2) == 600
    trimmed, original = JetFile(path, 80).read(0, 300), JetFile(FIXTURE_JETS, 80).read(0, 300)
    assert trimmed["mask"].sum(1).max() == 40 and original["mask"].sum(1).max() == 80
    assert (trimmed["p4"] == original["p4"][:, :80] * trimmed["mask"][..., None]).all()
    bench.bench_padding(torch.device("cpu"), rounds=1, repeats=1)
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()]
    rows = {row[0][2:]: row for row in rows if row[0] in ("| plain", "| GSEAL")}
    assert set(rows) == {"plain", "GSEAL"} and all(r[-1].endswith("× |") for r in rows.values())
