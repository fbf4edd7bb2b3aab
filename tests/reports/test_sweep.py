import json

from omegaconf import OmegaConf
from test_compare import GSEAL_RUN

from seal.reports.sweep import summarise


def fake_run(folder, task, symmetry, metrics, test_pt=None):
    (folder / ".hydra").mkdir(parents=True)
    cfg = {"task_name": task, "symmetry": symmetry, "data": {"test_pt": test_pt, "augment": None}}
    OmegaConf.save(OmegaConf.create(cfg), folder / ".hydra" / "config.yaml")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))


def test_tagging_sweep_table_lists_finished_and_failed_runs(tmp_path):
    tagging = {
        "test/auc": 0.9,
        "test/rej@0.3": 40.0,
        "boost/auc@0.5": 0.7,
        "boost/rej@0.3@0.5": 5.0,
        "boost/rej@0.3@0": 40.0,
    }
    fake_run(tmp_path / "0", "top_baseline_extrap", None, tagging, test_pt=[800, None])
    gsymm = GSEAL_RUN
    fake_run(
        tmp_path / "1",
        "top_gsymm_extrap",
        gsymm,
        {**tagging, "boost/auc@0.5": 0.85},
        test_pt=[800, None],
    )
    fake_run(
        tmp_path / "2",
        "top_dsymm_extrap",
        {"penalty": {"_target_": "seal.symmetry.DSEAL"}, "weight": 2.0},
        None,
    )
    table, figure = summarise(tmp_path)
    lines = table.strip().splitlines()
    assert lines[0].startswith(
        "| run | task | loss | weight | beta_max | status | test_pt | test/auc"
    )
    assert (
        "| 0 | top_baseline_extrap | none |  |  | finished | 800– | 0.9 | 40 | 0.7 | 5 |" in table
    )
    assert (
        "| 1 | top_gsymm_extrap | gsymm | 1 | 0.5 | finished | 800– | 0.9 | 40 | 0.85 | 5 |"
        in table
    )
    assert "| 2 | top_dsymm_extrap | dsymm | 2 |  | failed |" in table
    assert figure.exists() and (tmp_path / "report.csv").read_text().count("\n") == 4


def test_values_with_a_bootstrap_error_print_as_value_plus_minus_error(tmp_path):
    metrics = {
        "test/auc": 0.91234,
        "test/auc_err": 0.0123,
        "test/rej@0.3": 40.0,
        "boost/auc@0.5": 0.7,
        "boost/rej@0.3@0.5": 5.0,
        "boost/rej@0.3@0.5_err": 0.5,
        "boost/rej@0.3@0": 40.0,
        "boost/rej@0.3@0_err": 4.0,
    }
    fake_run(tmp_path / "0", "top_baseline", None, metrics)
    table, _ = summarise(tmp_path)
    assert "| 0.9123 ± 0.012 | 40 | 0.7 | 5 ± 0.5 |" in table  # no error: the value alone
    assert "test/auc_err" in (tmp_path / "report.csv").read_text().splitlines()[0]


def test_varying_overrides_get_columns_and_seeds_are_merged(tmp_path):
    regression = {
        "test/mse": 1.0,
        "boost/mse@0": 1.0,
        "boost/mse@0.3": 2.0,
        "boost/mse@0.6": 3.0,
        "boost/mse@0.9": 4.0,
        "zboost/mse@0.5": 5.0,
    }
    gsymm = GSEAL_RUN

    def sweep(seeds):
        for i, (truth, seed, scale) in enumerate(seeds):
            folder = tmp_path / str(i)
            if not folder.exists():
                fake_run(folder, "toy_gsymm", gsymm, {k: v * scale for k, v in regression.items()})
            overrides = [
                "+experiment=toy_gsymm",
                f"data.truth={truth}",
                f"seed={seed}",
                "logger.name=${task_name}_x",
            ]  # an interpolation stays text
            OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
        return summarise(tmp_path)[0]

    table = sweep(
        [("exact", 1, 1.0), ("exact", 2, 3.0), ("spurion", 1, 10.0), ("spurion", 2, 10.0)]
    )
    assert table.splitlines()[0] == (
        "| run | task | loss | weight | beta_max | data.truth | status | seeds | test/mse | "
        "boost/mse@0 | boost/mse@0.3 | boost/mse@0.6 | boost/mse@0.9 | zboost/mse@0.5 |"
    )
    # exact: mean 2 ± std 1.414 of the values 1 and 3, over two seeds
    assert (
        "| 0,1 | toy_gsymm | gsymm | 1 | 0.5 | exact | finished | 2 | 2 ± 1.4 (2 seeds) |" in table
    )
    assert (
        "| 2,3 | toy_gsymm | gsymm | 1 | 0.5 | spurion | finished | 2 | 10 ± 0 (2 seeds) |" in table
    )
    assert (tmp_path / "report.csv").read_text().count("\n") == 5  # one row per run
    # the same seed twice is two runs, not two seeds
    table = sweep(
        [("exact", 1, 1.0), ("exact", 1, 3.0), ("spurion", 1, 10.0), ("spurion", 2, 10.0)]
    )
    assert "| exact | finished | 1 | 2 ± 1.4 (2 runs, 1 seeds) |" in table
