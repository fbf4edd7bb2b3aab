"""scripts/evaluate.py: a finished run's best checkpoint, tested again without training."""

import sys
from pathlib import Path

import pytest
import yaml
from conftest import TOP_TINY
from omegaconf import OmegaConf

from seal.train import run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from evaluate import evaluate


@pytest.fixture
def trained_run(compose_cfg, tmp_path):
    """A tiny finished top-tagging run folder, laid out as Hydra leaves it."""
    folder = tmp_path / "sweep" / "0"
    overrides = ["+experiment=top_baseline", *TOP_TINY, "data.split=[0.5,0.2,0.2]"]
    cfg = compose_cfg(overrides, output_dir=folder)
    metrics = run(cfg)
    (folder / ".hydra").mkdir()
    OmegaConf.save(cfg, folder / ".hydra" / "config.yaml")
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return folder, metrics


def test_the_same_settings_reproduce_the_test_metrics(trained_run, tmp_path):
    folder, trained = trained_run
    again = evaluate(folder, [], tmp_path / "again")
    for key in ("test/auc", "test/rej@0.3", "test/loss"):
        assert again[key] == pytest.approx(trained[key], rel=1e-6)
    assert again["evaluated_from"] == str(folder)
    assert (tmp_path / "again" / "predictions.csv").exists()
    assert (tmp_path / "again" / ".hydra" / "config.yaml").exists()


def test_a_larger_test_split_sees_more_jets(trained_run, tmp_path):
    folder, trained = trained_run
    larger = evaluate(folder, ["data.split=[0.5,0.2,0.3]"], tmp_path / "larger")
    rows = (tmp_path / "larger" / "predictions.csv").read_text().splitlines()
    before = (folder / "predictions.csv").read_text().splitlines()
    assert len(rows) - 1 == pytest.approx(1.5 * (len(before) - 1), abs=2)  # 0.3 / 0.2 of the file
    assert larger["test/auc"] != trained["test/auc"]
    saved = yaml.safe_load((tmp_path / "larger" / ".hydra" / "overrides.yaml").read_text())
    assert saved[-1] == "data.split=[0.5,0.2,0.3]"


def test_changing_the_training_fractions_is_refused(trained_run, tmp_path):
    folder, _ = trained_run
    with pytest.raises(ValueError, match=r"changes the training/validation fractions \[0.5, 0.2\]"):
        evaluate(folder, ["data.split=[0.6,0.2,0.2]"], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # refused before anything is written


def test_a_run_made_before_the_systematics_gets_them_and_the_same_as_a_new_run(
    trained_run, tmp_path
):
    folder, trained = trained_run
    config = OmegaConf.load(folder / ".hydra" / "config.yaml")
    del config.evaluation["systematics"]  # as a run made before the option existed
    OmegaConf.save(config, folder / ".hydra" / "config.yaml")
    again = evaluate(folder, [], tmp_path / "again")
    for key in ("syst/total/rej@0.5", "syst/energy_scale/auc"):
        assert again[key] == pytest.approx(trained[key], rel=1e-9)  # the default, as at training
    assert (tmp_path / "again" / "systematics.png").exists()
    none = evaluate(folder, ["evaluation.systematics=null"], tmp_path / "none")
    assert not any(key.startswith("syst/") for key in none)


def test_a_crashed_run_and_changed_training_data_are_refused_before_work(trained_run, tmp_path):
    folder, _ = trained_run
    for key in ("data.max_jets=150", "data.n_constituents=40"):
        with pytest.raises(ValueError, match=rf"{key.split('=')[0]}=\d+ differs from the"):
            evaluate(folder, [key], tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    (folder / "metrics.json").write_text('{"status": "incomplete", "step": 3}')
    with pytest.raises(FileNotFoundError, match=r"did not finish \(metrics.json says incomplete\)"):
        evaluate(folder, [], tmp_path / "bad")
    (folder / "metrics.json").unlink()  # a crashed run leaves none
    with pytest.raises(FileNotFoundError, match=r"did not finish \(no metrics.json\)"):
        evaluate(folder, [], tmp_path / "bad")


def test_out_as_a_file_is_refused(trained_run, tmp_path):
    import subprocess

    folder, _ = trained_run
    target = tmp_path / "a_file"
    target.write_text("x")
    script = Path(__file__).resolve().parents[1] / "scripts" / "evaluate.py"
    done = subprocess.run(
        [sys.executable, str(script), str(folder), "--out", str(target)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and f"--out {target} is a file" in done.stderr
