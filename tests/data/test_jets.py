import logging
import shutil
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from seal.data.jet_datamodule import JetDataModule, JetStream
from seal.data.jets import JetFile
from seal.groups import Lorentz, mass2, transform_batch
from seal.models import constituent_features

FIXTURE = Path(__file__).with_name("fixture_jets.h5")  # made by scripts/generate_jets.py (Makefile)


def write_atlas_file(path, pt, eta, phi, energy, labels, weight_key="weights", **extra):
    """A minimal ATLAS-layout file from GeV arrays (n, C)."""
    with h5py.File(path, "w") as f:
        for key, value in (
            ("fjet_clus_pt", pt * 1e3),
            ("fjet_clus_eta", eta),
            ("fjet_clus_phi", phi),
            ("fjet_clus_E", energy * 1e3),
        ):
            f[key] = value
        px, py = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1)
        f["fjet_pt"] = np.hypot(px, py) * 1e3
        f["fjet_eta"], f["fjet_phi"] = np.zeros(len(pt)), np.arctan2(py, px)
        f["fjet_m"] = np.full(len(pt), 50e3)
        f["labels"], f[weight_key] = labels, np.ones(len(pt))
        for key, value in extra.items():
            del f[key]
            f[key] = value


def test_fixture_round_trip_matches_the_stored_atlas_arrays():
    file = JetFile(FIXTURE, n_constituents=80)
    out = file.read(0, len(file))
    with h5py.File(FIXTURE) as f:
        pt, energy = f["fjet_clus_pt"][:] / 1e3, f["fjet_clus_E"][:] / 1e3
        labels, weights = f["labels"][:], f["weights"][:]
    assert out["p4"].shape == (300, 80, 4) and out["p4"].dtype == np.float32
    np.testing.assert_allclose(
        np.hypot(out["p4"][..., 1], out["p4"][..., 2]), pt, rtol=1e-5, atol=1e-4
    )
    np.testing.assert_allclose(out["p4"][..., 0], energy, rtol=1e-6)
    assert np.array_equal(out["mask"], pt > 0)
    assert np.array_equal(out["target"], labels) and np.allclose(out["weight"], weights)
    assert set(np.unique(labels)) == {0, 1}


def test_fixture_is_physical():
    with h5py.File(FIXTURE) as f:
        jet_pt, mass, labels = f["fjet_pt"][:] / 1e3, f["fjet_m"][:] / 1e3, f["labels"][:]
        settings = f["metadata"].attrs["settings"]
    assert '"pt_min": 400.0' in settings
    assert jet_pt.min() >= 400.0 and jet_pt.max() < 800.0
    top, qcd = mass[labels == 1], mass[labels == 0]
    counts, edges = np.histogram(top, bins=np.arange(0, 400, 25))
    peak = edges[np.argmax(counts)] + 12.5
    assert 140 < peak < 220, peak  # the top-mass peak (shifted up a little by MPI/UE in R = 1.0)
    assert 150 < np.median(top) < 230 and np.median(qcd) < np.median(top) - 40


def test_atlas_reader_converts_units_and_both_weight_names(tmp_path):
    pt = np.array([[100.0, 50.0, 0.0]])
    eta, phi = np.array([[0.5, -1.0, 0.0]]), np.array([[0.3, 3.0, 0.0]])
    energy = pt * np.cosh(eta)
    for name in ("weights", "training_weights"):
        write_atlas_file(
            tmp_path / f"{name}.h5", pt, eta, phi, energy, np.array([1]), weight_key=name
        )
        out = JetFile(tmp_path / f"{name}.h5", n_constituents=4).read(0, 1)
        expected = [100 * np.cosh(0.5), 100 * np.cos(0.3), 100 * np.sin(0.3), 100 * np.sinh(0.5)]
        np.testing.assert_allclose(out["p4"][0, 0], expected, rtol=1e-6)
        assert out["p4"].shape == (1, 4, 4) and out["mask"].tolist() == [[True, True, False, False]]


def test_landscape_reader_reads_pandas_files(tmp_path):
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n, c = 7, 5
    p3 = rng.normal(size=(n, c, 3)) * 40
    energy = np.sqrt((p3**2).sum(-1) + 0.1)
    energy[:, 3:] = 0.0
    p3[:, 3:] = 0.0
    columns = {}
    for i in range(c):
        for k, v in zip(("E", "PX", "PY", "PZ"), (energy[:, i], *p3[:, i].T)):
            columns[f"{k}_{i}"] = v.astype(np.float32)
    columns["is_signal_new"] = np.arange(n) % 2
    pd.DataFrame(columns).to_hdf(tmp_path / "land.h5", key="table", mode="w")
    out = JetFile(tmp_path / "land.h5", n_constituents=8).read(0, n)
    assert out["p4"].shape == (n, 8, 4)
    np.testing.assert_allclose(out["p4"][:, :5, 0], energy, rtol=1e-6)
    np.testing.assert_allclose(out["p4"][:, :5, 1:], p3, rtol=1e-6)
    assert out["mask"].sum(1).tolist() == [3] * n
    assert out["target"].tolist() == [0, 1, 0, 1, 0, 1, 0]


def test_boost_acts_on_constituents_and_jet_axis_alike():
    out = JetFile(FIXTURE, 80).read(0, 16)
    batch = {"p4": torch.from_numpy(out["p4"]).double(), "mask": torch.from_numpy(out["mask"])}
    batch["jet_p4"] = (batch["p4"] * batch["mask"][..., None]).sum(1)
    lam = Lorentz(0.8).sample(16, generator=torch.Generator().manual_seed(0))
    moved = transform_batch(batch, lam, ["p4", "jet_p4"])
    with_axis = constituent_features(moved["p4"], moved["mask"], moved["jet_p4"])
    torch.testing.assert_close(with_axis, constituent_features(moved["p4"], moved["mask"]))
    torch.testing.assert_close(mass2(moved["jet_p4"]), mass2(batch["jet_p4"]), rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize(
    "edit, error, message",
    [
        (lambda f: f.__delitem__("fjet_clus_E"), KeyError, "missing dataset 'fjet_clus_E'"),
        (lambda f: f.__delitem__("weights"), KeyError, "'weights' \\(or 'training_weights'\\)"),
        (
            lambda f: _replace(f, "fjet_clus_eta", f["fjet_clus_eta"][:, :10]),
            ValueError,
            "'fjet_clus_eta' has shape \\(300, 10\\), expected \\(300, 80\\)",
        ),
        (
            lambda f: _set(f, "fjet_clus_E", 5, 0, np.nan),
            ValueError,
            "non-finite value in 'p4' of jet 5",
        ),
        (
            lambda f: _set(f, "fjet_clus_E", 9, 1, -3.0),
            ValueError,
            "negative constituent energy in jet 9",
        ),
    ],
)
def test_bad_files_name_the_file_key_and_jet(tmp_path, edit, error, message):
    path = tmp_path / "bad.h5"
    shutil.copy(FIXTURE, path)
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(error, match=message) as info:
        file = JetFile(path, 80)
        file.read(0, len(file))
    assert "bad.h5" in str(info.value)


def _replace(f, key, value):
    del f[key]
    f[key] = value


def _set(f, key, row, col, value):
    data = f[key][:]
    data[row, col] = value
    f[key][...] = data


def test_empty_jets_are_dropped_with_a_logged_count(tmp_path, caplog):
    path = tmp_path / "empty.h5"
    shutil.copy(FIXTURE, path)
    with h5py.File(path, "a") as f:
        pt = f["fjet_clus_pt"][:]
        pt[[3, 4]] = 0.0
        f["fjet_clus_pt"][...] = pt
    with caplog.at_level(logging.WARNING):
        out = JetFile(path, 80).read(0, 300)
    assert len(out["target"]) == 298 and "dropped 2 jets without constituents" in caplog.text


def test_missing_corrupt_and_truncated_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"generate_jets\.py"):
        JetFile(tmp_path / "nope.h5")
    (tmp_path / "junk.h5").write_bytes(b"not an hdf5 file at all" * 100)
    with pytest.raises(OSError, match=r"junk\.h5 \(corrupt or truncated\?\)"):
        JetFile(tmp_path / "junk.h5")
    data = FIXTURE.read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match=r"cut\.h5"):
        file = JetFile(tmp_path / "cut.h5", 80)
        file.read(0, len(file))


def make_module(**kwargs):
    module = JetDataModule(FIXTURE, n_constituents=64, batch_size=32, chunk_rows=64, **kwargs)
    module.setup()
    return module


def test_datamodule_batches_cover_each_split_once():
    module = make_module()
    rows = []
    for batch in module.train_dataloader():
        assert set(batch) == {"p4", "mask", "target", "weight", "jet_p4", "index"}
        assert batch["p4"].shape[1:] == (64, 4) and batch["p4"].dtype == torch.float32
        rows.append(batch["index"])
    rows = torch.cat(rows)  # each jet's row in the file, each selected row exactly once
    assert sorted(rows.tolist()) == np.flatnonzero(module.selected["train"]).tolist()
    assert len(rows) == 240
    test_rows = torch.cat([b["index"] for b in module.test_dataloader()])
    assert sorted(test_rows.tolist()) == np.flatnonzero(module.selected["test"]).tolist()
    evaluation_rows = torch.cat([b["index"] for b in module.evaluation_dataloader()])
    assert torch.equal(evaluation_rows, test_rows)  # one process: the same 30 jets


def test_pt_windows_make_an_extrapolation_split():
    module = make_module(train_pt=[None, 600], val_pt=[None, 600], test_pt=[600, None])
    for split, check in (("train", lambda pt: pt < 600), ("test", lambda pt: pt >= 600)):
        loader = module.train_dataloader() if split == "train" else module.test_dataloader()
        for batch in loader:
            pt = torch.hypot(batch["jet_p4"][:, 1], batch["jet_p4"][:, 2])
            assert check(pt).all()
    with pytest.raises(
        ValueError, match=r"the test split selects no jets .*pT window \[3000, None\]"
    ):
        make_module(test_pt=[3000, None])


def test_train_jets_and_a_partial_split_shrink_only_what_they_name():
    full = make_module()  # 300 jets: 240 / 30 / 30
    module = make_module(train_jets=100)
    train = np.flatnonzero(module.selected["train"])
    assert train.tolist() == np.flatnonzero(full.selected["train"])[:100].tolist()
    for split in ("val", "test"):
        assert (module.selected[split] == full.selected[split]).all()
    assert sum(len(b["target"]) for b in module.train_dataloader()) == 100
    part = make_module(split=[0.5, 0.1, 0.2])  # the last 60 rows are not used
    assert [int(part.selected[s].sum()) for s in ("train", "val", "test")] == [150, 30, 60]
    assert not (part.selected["train"] | part.selected["val"] | part.selected["test"])[240:].any()
    with pytest.raises(ValueError, match=r"train_jets=500 but the training split has only 240"):
        make_module(train_jets=500)
    with pytest.raises(ValueError, match=r"data\.train_jets must be a positive"):
        make_module(train_jets=0)
    with pytest.raises(ValueError, match=r"summing to at most 1; got \(0.8, 0.2, 0.2\)"):
        make_module(split=(0.8, 0.2, 0.2))


def test_memory_stays_bounded_on_a_ten_times_larger_file(tmp_path):
    big = tmp_path / "big.h5"
    with h5py.File(FIXTURE) as src, h5py.File(big, "w") as dst:
        for key in src:
            if key != "metadata":
                dst[key] = np.concatenate([src[key][:]] * 10)

    def peak(path):
        stream = JetStream(
            path, 80, np.ones(len(JetFile(path)), bool), 64, shuffle=True, chunk_rows=128
        )
        tracemalloc.start()
        rows = sum(len(b["target"]) for b in stream)
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return rows, size

    small_rows, small_peak = peak(FIXTURE)
    big_rows, big_peak = peak(big)
    assert (small_rows, big_rows) == (300, 3000)
    assert big_peak < 1.5 * small_peak  # memory follows the chunk size, not the file size


def test_top_data_config_reads_a_given_file(compose_cfg):
    import hydra

    cfg = compose_cfg(["data=top", f"data.path={FIXTURE}", "data.batch_size=50"])
    module = hydra.utils.instantiate(cfg.data)
    module.prepare_data()  # the file exists: nothing is generated
    module.setup()
    batch = next(iter(module.val_dataloader()))
    assert batch["p4"].shape == (30, 80, 4) and batch["mask"].any(1).all()


@pytest.mark.parametrize("num_workers", [0, 2])
def test_the_length_of_an_evaluation_loader_is_its_number_of_batches(num_workers):
    # Lightning stops an evaluation loop after len(loader) batches: an underestimate drops jets
    module = JetDataModule(
        FIXTURE, n_constituents=16, batch_size=16, chunk_rows=32, num_workers=num_workers
    )
    module.setup()
    for loader in (module.val_dataloader(), module.test_dataloader()):
        assert len(loader) == sum(1 for _ in loader)


@pytest.mark.parametrize("world, num_workers", [(2, 0), (3, 0), (2, 2)])
def test_shuffled_training_gives_every_rank_the_same_number_of_batches(
    monkeypatch, world, num_workers
):
    # chunks of unequal size (a pT window cuts them): each rank must still step len() times,
    # or DDP ranks fall out of lockstep (a rank's extra step waits forever in all-reduce)
    from seal.data import jet_datamodule

    module = JetDataModule(
        FIXTURE,
        n_constituents=16,
        batch_size=16,
        chunk_rows=48,
        train_pt=[None, 650],
        num_workers=num_workers,
    )
    module.setup()
    torch.manual_seed(0)  # seed_everything: the same initial seed on every rank
    loaders = [module.train_dataloader() for _ in range(world)]
    seen = []
    for epoch in range(2):
        rows_this_epoch = []
        for rank, loader in enumerate(loaders):  # each rank's loader, pass after pass
            monkeypatch.setattr(jet_datamodule, "rank_and_world", lambda r=rank: (r, world))
            batches = [b["index"] for b in loader]
            assert len(batches) == len(loader), (rank, epoch)
            rows_this_epoch.append(torch.cat(batches))
        counts = [len(r) for r in rows_this_epoch]
        selected = int(module.selected["train"].sum())
        # all ranks together see every selected row once; fewer than one padding row per shard
        union = set(torch.cat(rows_this_epoch).tolist())
        assert union == set(np.flatnonzero(module.selected["train"]).tolist())
        assert 0 <= sum(counts) - selected < world * max(1, num_workers)
        assert max(counts) - min(counts) <= 1
        seen.append(rows_this_epoch[0].tolist())
    assert seen[0] != seen[1]  # a new order every epoch


@pytest.mark.parametrize("num_workers", [0, 2])
def test_every_epoch_is_shuffled_anew_and_a_resumed_run_continues_the_sequence(num_workers):
    from types import SimpleNamespace

    # one chunk: only the order of rows inside it can change (persistent workers included)
    module = JetDataModule(FIXTURE, n_constituents=16, batch_size=32, num_workers=num_workers)
    module.setup()
    loader = module.train_dataloader()
    epochs = [torch.cat([b["index"] for b in loader]).tolist() for _ in range(3)]
    assert epochs[0] != epochs[1] != epochs[2] and sorted(epochs[0]) == sorted(epochs[2])
    # a run resumed at epoch 2 (the trainer says so) draws epoch 2's order, not epoch 0's
    resumed = JetDataModule(FIXTURE, n_constituents=16, batch_size=32, num_workers=num_workers)
    resumed.setup()
    resumed.trainer = SimpleNamespace(current_epoch=2)
    assert torch.cat([b["index"] for b in resumed.train_dataloader()]).tolist() == epochs[2]
