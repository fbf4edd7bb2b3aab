"""One run per folder: the lock a training run holds on its folder."""

import json
import logging
import os
import socket
import subprocess
import sys

import pytest
from conftest import TINY

from seal.runlock import LOCK, FolderInUseError, run_lock
from seal.train import run


def write_lock(folder, pid, host=None, job=None):
    folder.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": host or socket.gethostname(), "started": 1.7e9, "slurm_job": job}
    (folder / LOCK).write_text(json.dumps(holder))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_second_run_into_a_folder_in_use_is_refused_naming_the_first(compose_cfg, tmp_path):
    write_lock(tmp_path, os.getppid())  # a live process on this host: the first run
    cfg = compose_cfg(["+experiment=toy_gsymm", *TINY], tmp_path)
    with pytest.raises(FolderInUseError) as refused:
        run(cfg)
    text = str(refused.value)
    assert f"PID {os.getppid()} on {socket.gethostname()}" in text and "started 20" in text
    assert "hydra.run.dir" in text and str(tmp_path / LOCK) in text
    assert not (tmp_path / "checkpoints").exists() and (tmp_path / LOCK).exists()


def test_a_lock_another_host_holds_is_refused_and_one_of_this_job_taken_over(tmp_path, monkeypatch):
    write_lock(tmp_path, 1, host="elsewhere", job="77")
    with pytest.raises(FolderInUseError, match=r"PID 1 on elsewhere, .*SLURM job 77"):
        with run_lock(tmp_path):
            pass
    monkeypatch.setenv("SLURM_JOB_ID", "77")  # the same job, requeued onto another node
    with run_lock(tmp_path):
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / LOCK).exists()


def test_a_stale_lock_is_taken_over_with_a_warning_and_released_after_the_run(
    compose_cfg, tmp_path, caplog
):
    pid = dead_pid()
    write_lock(tmp_path, pid)
    cfg = compose_cfg(["+experiment=toy_gsymm", *TINY], tmp_path)
    with caplog.at_level(logging.WARNING, logger="seal.train"):
        metrics = run(cfg)
    assert metrics["trainer/global_step"] == 1
    assert f"PID {pid}" in caplog.text and "no longer exists on this host" in caplog.text
    assert not (tmp_path / LOCK).exists()  # released


def test_the_lock_is_released_when_the_run_fails_and_ranks_it_launched_take_none(
    tmp_path, monkeypatch
):
    with pytest.raises(RuntimeError, match="boom"):
        with run_lock(tmp_path):
            assert (tmp_path / LOCK).exists()
            raise RuntimeError("boom")
    assert not (tmp_path / LOCK).exists()
    write_lock(tmp_path, os.getppid())
    monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP rank: runs in the folder rank 0 holds
    with run_lock(tmp_path):
        pass
    assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getppid()


def test_ckpt_path_auto_resumes_only_this_runs_checkpoints(compose_cfg, tmp_path):
    common = ["+experiment=toy_gsymm", *TINY, "ckpt_path=auto"]
    run(compose_cfg([*common, "seed=1"], tmp_path))  # an earlier run in the folder
    # (the data differ too: the toy draws its events from the seed)
    other = compose_cfg([*common, "seed=2", "symmetry.weight=3"], tmp_path)
    with pytest.raises(
        ValueError, match=r"written by another run in this folder: its data, symmetry, seed differ"
    ):
        run(other)
    longer = compose_cfg([*common, "seed=1", "trainer.max_epochs=2"], tmp_path)
    assert run(longer)["trainer/global_step"] == 2  # the same run, extended: resumed


def test_a_repeated_fresh_run_moves_the_previous_runs_outputs_aside(compose_cfg, tmp_path, caplog):
    common = ["+experiment=toy_gsymm", *TINY, "trainer.max_epochs=2", "logger=csv"]
    first = run(compose_cfg([*common, "seed=1"], tmp_path))
    before = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    (tmp_path / "jets.h5").write_bytes(b"a user's file in the run folder")
    with caplog.at_level(logging.WARNING, logger="seal.train"):
        second = run(compose_cfg([*common, "seed=2"], tmp_path))
    (previous,) = (tmp_path / "previous").iterdir()
    assert "held a previous run's outputs" in caplog.text and str(previous) in caplog.text
    assert sorted(p.name for p in (previous / "checkpoints").iterdir()) == before
    assert json.loads((previous / "metrics.json").read_text())["test/mse"] == first["test/mse"]
    assert json.loads((tmp_path / "metrics.json").read_text())["test/mse"] == second["test/mse"]
    # the new run's CSV holds its own rows only: one per logged step of two epochs, not four
    rows = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()
    old_rows = (previous / "csv" / "metrics.csv").read_text().splitlines()
    assert len(rows) == len(old_rows) and rows != old_rows
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == before
    assert (tmp_path / "jets.h5").exists() and not (previous / "jets.h5").exists()  # not a run's
