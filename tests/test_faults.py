"""Faults a user meets: each is named before work starts, or handled without losing anything."""

import csv
import errno
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from conftest import FIXTURE_JETS, TINY, TOP_TINY
from hydra.errors import InstantiationException

from seal.checkpoints import AtomicCheckpointIO, is_intact, newest_intact
from seal.config_checks import ConfigError
from seal.symmetry import RouteError
from seal.train import resolve_ckpt_path, run

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "override, message",
    [
        (
            "symmetry.weight=abc",
            "symmetry.weight='abc': seal.symmetry.SymmetryRegularizer expects float",
        ),
        ("model.optimizer.lr=abc", "model.optimizer.lr='abc': torch.optim.Adam expects float"),
        (
            "trainer.max_epochs=1.5",
            r"trainer.max_epochs=1.5: pytorch_lightning.Trainer expects "
            r"Optional\[int\]",
        ),
        ("+model.net.widht=8", "model.net.widht: seal.models.MLP takes no argument 'widht'"),
        ("data.batch_size=many", "data.batch_size='many': .*ToyDataModule expects a number"),
    ],
)
def test_config_values_are_checked_with_the_key_named(override, message, compose_cfg, tmp_path):
    cfg = compose_cfg(["+experiment=toy_gsymm", *TINY, override])
    with pytest.raises(ConfigError, match=message):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()  # nothing was built, nothing trained


def test_values_the_targets_accept_pass_the_check(compose_cfg, tmp_path):
    from seal.config_checks import check_config

    accepted = (
        ["trainer.enable_progress_bar=0", "trainer.devices=1"],
        ["trainer=ddp"],
        ["trainer.precision=16-mixed", "+trainer.max_time=null"],
        ["+model.optimizer.betas=[0.8,0.9]", "trainer.limit_val_batches=0.5"],
    )
    for overrides in accepted:
        check_config(compose_cfg(["+experiment=toy_gsymm", *overrides], tmp_path))


def test_several_bad_values_are_named_at_once(compose_cfg):
    cfg = compose_cfg(
        ["+experiment=toy_gsymm", *TINY, "symmetry.weight=abc", "trainer.max_epochs=1.5"]
    )
    with pytest.raises(ConfigError) as caught:
        run(cfg)
    assert "symmetry.weight" in str(caught.value) and "trainer.max_epochs" in str(caught.value)


@pytest.mark.parametrize("kind", ["file_parent", "sweep"])
def test_an_output_folder_that_cannot_be_made_is_named(tmp_path, kind):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    key = "hydra.run.dir" if kind == "file_parent" else "hydra.sweep.dir"
    args = (["-m", "seed=1,2"] if kind == "sweep" else []) + [f"{key}={blocker}/run"]
    done = subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert f"{key}={blocker}/run cannot be used as the output folder ({blocker} is a file" in (
        done.stderr
    )
    assert "NotADirectoryError" not in done.stderr


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


def test_resume_appends_to_the_csv_and_tensorboard_logs(compose_cfg, tmp_path):
    common = [
        "+experiment=toy_gsymm",
        *TINY,
        "data.n_train=64",
        "data.batch_size=16",
        "ckpt_path=auto",
        "logger=[csv,tensorboard]",
    ]
    run(compose_cfg([*common, "trainer.max_epochs=1"], tmp_path))
    first_rows = _csv_rows(tmp_path / "csv" / "metrics.csv")
    first_events = set((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert first_rows and first_events
    run(compose_cfg([*common, "trainer.max_epochs=2"], tmp_path))  # the requeued job
    rows = _csv_rows(tmp_path / "csv" / "metrics.csv")
    # the first job's rows up to its checkpoint (4 steps) are kept; its test rows, logged at
    # step 4, belong to a future the resumed run rewrites and are dropped
    before = [r for r in first_rows if int(r["step"]) < 4]
    assert len(before) < len(first_rows) and rows[: len(before)] == before
    epochs = {r["epoch"] for r in rows if r.get("epoch")}
    assert {"0", "1"} <= epochs  # epoch 0 from the first job, epoch 1 from the resumed one
    events = set((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert first_events < events  # the first job's event file kept, the second one added


def test_a_failed_checkpoint_write_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.arange(1000.0)}, path)
    assert is_intact(path) is None
    real_save = torch.save

    def disk_full(obj, file, *args, **kwargs):
        real_save(obj, file, *args, **kwargs)
        file.truncate(100)  # half a file on disk, then the error a full disk gives
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"no space left .* the previous last\.ckpt is intact"):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(1000)}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


def test_ckpt_path_auto_falls_back_to_the_newest_intact_checkpoint(compose_cfg, tmp_path, caplog):
    common = [
        "+experiment=toy_gsymm",
        *TINY,
        "data.n_train=64",
        "data.batch_size=16",
        "ckpt_path=auto",
        "trainer.limit_val_batches=null",
    ]
    run(compose_cfg([*common, "trainer.max_epochs=2"], tmp_path))
    folder = tmp_path / "checkpoints"
    last = folder / "last.ckpt"
    epoch_file = next(p for p in folder.glob("epoch_*.ckpt"))
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a truncated write
    assert is_intact(last) is not None and is_intact(epoch_file) is None
    caplog.set_level(logging.INFO)
    cfg = compose_cfg([*common, "trainer.max_epochs=3"], tmp_path)
    assert resolve_ckpt_path(cfg) == str(epoch_file)
    assert f"skipping {last}" in caplog.text and f"resuming from {epoch_file}" in caplog.text
    again = run(cfg)
    assert again["trainer/global_step"] == 12  # resumed from the intact epoch-level checkpoint
    # the first job's rows after the checkpoint it resumed from were dropped, not duplicated
    steps = [r["step"] for r in _csv_rows(tmp_path / "csv" / "metrics.csv") if r["train/loss"]]
    assert sorted(steps, key=int) == [str(s) for s in range(12)]


def test_newest_intact_with_nothing_whole_starts_fresh(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    assert newest_intact(tmp_path) is None
    assert newest_intact(tmp_path / "missing") is None


def test_a_nan_in_a_test_jet_stops_the_run_before_training(compose_cfg, tmp_path):
    path = tmp_path / "jets.h5"
    shutil.copy(FIXTURE_JETS, path)
    with h5py.File(path, "r+") as f:
        n = len(f["labels"])
        row = n - 3  # in the test split (the last 10 % of the rows)
        values = f["fjet_clus_eta"][row]
        values[0] = np.nan
        f["fjet_clus_eta"][row] = values
    cfg = compose_cfg(["+experiment=top_gsymm", *TOP_TINY, f"data.path={path}"], tmp_path)
    with pytest.raises(ValueError, match=rf"{path}: non-finite value in 'p4' of jet {row}"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()  # found before the first training step


def test_labels_outside_0_1_and_a_split_with_one_class_stop_the_run_before_training(
    compose_cfg, tmp_path
):
    path = tmp_path / "jets.h5"
    shutil.copy(FIXTURE_JETS, path)
    with h5py.File(path, "r+") as f:
        labels = f["labels"][:]
        labels[5] = 2
        f["labels"][:] = labels
    cfg = compose_cfg(["+experiment=top_gsymm", *TOP_TINY, f"data.path={path}"], tmp_path)
    with pytest.raises(ValueError, match=rf"{path}: label 2 of jet 5 is not 0 \(background\) or 1"):
        run(cfg)
    with h5py.File(path, "r+") as f:
        n = len(labels)
        labels[5] = 0
        labels[int(0.9 * n) :] = 0  # the test split: background only
        f["labels"][:] = labels
    with pytest.raises(ValueError, match=r"the test split holds \d+ background and 0 signal jets"):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_soft_labels_are_refused_by_default_and_read_with_data_labels_soft(compose_cfg, tmp_path):
    path = tmp_path / "data" / "jets.h5"
    path.parent.mkdir()
    shutil.copy(FIXTURE_JETS, path)
    with h5py.File(path, "r+") as f:
        smoothed = np.where(f["labels"][:] == 1, 0.9, 0.1)  # label smoothing
        del f["labels"]
        f["labels"] = smoothed
    common = ["+experiment=top_baseline", *TOP_TINY, f"data.path={path}"]
    with pytest.raises(ValueError, match=r"label 0\.9 of jet 0 is not 0 .* data\.labels=soft"):
        run(compose_cfg(common, tmp_path / "binary"))
    metrics = run(compose_cfg([*common, "data.labels=soft"], tmp_path / "soft"))
    assert 0.0 <= metrics["test/auc"] <= 1.0 and np.isfinite(metrics["test/loss"])
    h5py.File(path, "r+").close()  # the run (its systematics too) left the file closed
    beyond = tmp_path / "data" / "beyond.h5"
    shutil.copy(path, beyond)
    with h5py.File(beyond, "r+") as f:
        f["labels"][3] = 1.5
    with pytest.raises(ValueError, match=r"label 1\.5 of jet 3 is outside \[0, 1\]"):
        run(compose_cfg([*common, f"data.path={beyond}", "data.labels=soft"], tmp_path / "bad"))


def test_a_negative_constituent_pt_is_named_not_taken_for_padding(compose_cfg, tmp_path):
    path = tmp_path / "jets.h5"
    shutil.copy(FIXTURE_JETS, path)
    with h5py.File(path, "r+") as f:
        values = f["fjet_clus_pt"][7]
        values[2] = -values[2]
        f["fjet_clus_pt"][7] = values
    cfg = compose_cfg(["+experiment=top_gsymm", *TOP_TINY, f"data.path={path}"], tmp_path)
    with pytest.raises(
        ValueError, match=r"fjet_clus_pt of jet 7, constituent 2, is -[\d.e+]+ MeV < 0"
    ):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def _edit_weights(path, change):
    shutil.copy(FIXTURE_JETS, path)
    with h5py.File(path, "r+") as f:
        weights, labels = f["weights"][:], f["labels"][:]
        change(weights, labels)
        f["weights"][:] = weights


def test_negative_weights_are_refused_by_default_and_taken_absolute_when_asked(
    compose_cfg, tmp_path
):
    path = tmp_path / "jets.h5"
    _edit_weights(path, lambda w, labels: w.__setitem__(11, -0.5))
    cfg = compose_cfg(["+experiment=top_baseline", *TOP_TINY, f"data.path={path}"], tmp_path)
    with pytest.raises(
        ValueError, match=r"weight -0\.5 of jet 11 is negative .* set data\.negative_weights=abs"
    ):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()
    from seal.data.jets import JetFile

    row = JetFile(path, 80, negative_weights="abs").read(11, 12)
    assert row["weight"].tolist() == [0.5]
    with pytest.raises(
        ValueError, match=r"data\.negative_weights must be one of \['refuse', 'abs'\]"
    ):
        JetFile(path, 80, negative_weights="keep")


def test_a_class_whose_weights_sum_to_zero_stops_the_run_before_training(compose_cfg, tmp_path):
    path = tmp_path / "jets.h5"
    # every signal jet of the validation split (rows 80–90 %) weighs 0
    _edit_weights(
        path, lambda w, labels: w.__setitem__(slice(240, 270), np.where(labels[240:270], 0, 1))
    )
    cfg = compose_cfg(["+experiment=top_baseline", *TOP_TINY, f"data.path={path}"], tmp_path)
    with pytest.raises(
        ValueError, match=r"the signal jets of the val split have weights summing to 0"
    ):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_a_landscape_file_missing_a_column_is_named(tmp_path):
    pd = pytest.importorskip("pandas")
    from seal.data.jets import JetFile

    columns = {
        f"{k}_{i}": np.ones(4, np.float32) for i in range(3) for k in ("E", "PX", "PY", "PZ")
    }
    columns["is_signal_new"] = np.arange(4) % 2
    del columns["PY_1"]
    pd.DataFrame(columns).to_hdf(tmp_path / "land.h5", key="table", mode="w")
    with pytest.raises(KeyError, match=r"land\.h5: Top Landscape column\(s\) \['PY_1'\] missing"):
        JetFile(tmp_path / "land.h5", 80)
    assert JetFile(tmp_path / "land.h5", 1).read(0, 4)["p4"].shape == (4, 1, 4)


STOPPABLE_GENERATION = """
import os, sys, time
from pathlib import Path
import numpy as np
from seal.generation.chunks import Interrupted, run_chunks

def work(seconds):
    (Path(sys.argv[1]) / f"worker_{os.getpid()}.pid").touch()
    time.sleep(seconds)
    return {"x": np.zeros(3)}

folder = Path(sys.argv[1])
tasks = [(folder / f"chunk_{i}.npz", 0.05 if i == 0 else 60.0) for i in range(4)]
try:
    run_chunks(work, tasks, "test chunks", processes=2)
except Interrupted as stop:
    sys.exit(128 + stop.signum)
"""


@pytest.mark.parametrize("signum", [15, 2])  # SIGTERM (a batch system), SIGINT (Ctrl-C)
def test_a_signal_stops_generation_cleanly_and_keeps_finished_chunks(tmp_path, signum):
    import time

    process = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE_GENERATION, str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "chunk_0.npz").exists() or len(list(tmp_path.glob("*.pid"))) < 2:
        assert time.monotonic() < deadline and process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)  # the 60 s workers are stopped, not awaited
    assert process.returncode == 128 + signum, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    assert "chunks are complete in" in stderr and "Run the same command again" in stderr
    assert sorted(p.name for p in tmp_path.glob("*.npz")) == ["chunk_0.npz"]  # nothing partial
    for pid_file in tmp_path.glob("worker_*.pid"):
        assert not Path(f"/proc/{pid_file.stem.split('_')[1]}").exists(), "a worker survived"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.batch_size=0"],
            r"data\.batch_size must be a whole number ≥ 1; got 0",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.chunk_rows=0"],
            r"data\.chunk_rows must be a whole number ≥ 1; got 0",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.max_jets=0"],
            r"data\.max_jets must be a whole number ≥ 1 \(or null",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.train_pt=500"],
            r"data\.train_pt must be \[lo, hi\] in GeV .* got 500",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.test_pt=[800,400]"],
            r"data\.test_pt=\[800, 400\] is empty",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "seed=abc"],
            r"seed='abc': must be a whole number",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.split=[0.8,0.2,0.0]"],
            r"data\.split=\[0\.8, 0\.2, 0\.0\] leaves no test data",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.labels=smooth"],
            r"data\.labels must be one of \['binary', 'soft'\]",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "data.padding=dynamic"],
            r"data\.padding must be one of \['batch', 'fixed'\]",
        ),
        (
            ["+experiment=top_baseline", *TOP_TINY, "callbacks.model_checkpoint.monitor=val/aucc"],
            r"callbacks\.model_checkpoint\.monitor='val/aucc' is not a metric this run logs .*"
            r"'val/rej@0\.8'",
        ),
        (
            [
                "+experiment=toy_gsymm",
                *TINY,
                "callbacks=early_stopping",
                "callbacks.early_stopping.monitor=val_loss",
            ],
            r"callbacks\.early_stopping\.monitor='val_loss' is not a metric",
        ),
        (
            ["+experiment=toy_gsymm", *TINY, "callbacks.model_checkpoint.monitor=test/loss"],
            r"monitor='test/loss' is not a metric this run logs before it ends",
        ),
        (
            ["+experiment=toy_gsymm", *TINY, "model.net.width=0"],
            r"model\.net\.width must be a whole number ≥ 1; got 0",
        ),
        (
            ["+experiment=toy_gsymm", *TINY, "ckpt_path=/nonexistent/last.ckpt"],
            r"ckpt_path=/nonexistent/last\.ckpt: no such file",
        ),
    ],
)
def test_bad_data_model_and_resume_settings_are_named_before_training(
    overrides, message, compose_cfg, tmp_path
):
    with pytest.raises((ValueError, FileNotFoundError, InstantiationException), match=message):
        run(compose_cfg(overrides, tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def test_a_checkpoint_that_is_not_one_or_of_another_network_is_named(compose_cfg, tmp_path):
    common = ["+experiment=toy_gsymm", *TINY]
    run(compose_cfg([*common, "model.net.width=8"], tmp_path / "a"))
    not_one = tmp_path / "notes.ckpt"
    not_one.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.ckpt is not a whole Lightning checkpoint"):
        run(compose_cfg([*common, f"ckpt_path={not_one}"], tmp_path / "b"))
    other = tmp_path / "a" / "checkpoints" / "last.ckpt"
    with pytest.raises(
        ValueError,
        match=r"another network than this run's RegressionTask \(other shapes \['net\.net\.0\.b",
    ):
        run(compose_cfg([*common, "model.net.width=16", f"ckpt_path={other}"], tmp_path / "c"))
    assert not (tmp_path / "c" / "checkpoints").exists()


class _Counter(pl.Callback):
    def __init__(self):
        self.validation_batches = self.training_batches = 0

    def on_validation_batch_start(self, *args, **kwargs):
        self.validation_batches += 1

    def on_train_batch_start(self, *args, **kwargs):
        self.training_batches += 1


def test_a_route_the_model_cannot_take_is_refused_before_the_sanity_check(compose_cfg, tmp_path):
    counter = _Counter()
    cfg = compose_cfg(
        [
            "+experiment=top_gsymm",
            *TOP_TINY,
            "trainer.num_sanity_val_steps=2",
            "symmetry.implementation=fused",
        ],
        tmp_path,
    )
    with pytest.raises(RouteError, match=r"implementation=fused .* \(dropout\); use symmetry"):
        run(cfg, callbacks=[counter])
    assert counter.validation_batches == counter.training_batches == 0


def test_an_output_folder_without_room_for_the_checkpoints_is_named_before_training(
    compose_cfg, tmp_path, monkeypatch
):
    import collections

    import seal.checkpoints

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(seal.checkpoints.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 2**20))
    cfg = compose_cfg(["+experiment=top_baseline", *TOP_TINY], tmp_path)
    with pytest.raises(
        OSError, match=rf"the output folder {tmp_path} has 1 MiB free; .* need about"
    ):
        run(cfg)
    assert not (tmp_path / "checkpoints").exists()
