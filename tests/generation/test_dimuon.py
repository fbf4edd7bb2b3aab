"""The dimuon generator (Z vs γ* → μμ), its smearing, reweighting, file checks and DataModule."""

import h5py
import numpy as np
import pytest
import torch
from conftest import FIXTURE_DIMUON

from seal.data.dimuon_datamodule import DimuonDataModule, read_dimuon
from seal.generation.atlas import flatten_weights
from seal.generation.dimuon import (
    MUON_MASS,
    DimuonConfig,
    generate_dimuon,
    leading_pt,
    smear_transverse,
)


def on_shell_muons(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 40, size=(n, 2, 3))
    energy = np.sqrt(MUON_MASS**2 + (p**2).sum(-1, keepdims=True))
    p4 = np.concatenate((energy, p), -1)
    pt = np.hypot(p4[..., 1], p4[..., 2])
    return np.take_along_axis(p4, np.argsort(-pt, 1)[..., None], 1)  # leading first


def mass2(p4):
    return p4[..., 0] ** 2 - (p4[..., 1:] ** 2).sum(-1)


def test_smearing_keeps_mass_pz_and_direction_and_has_the_stated_width():
    p4 = on_shell_muons(200_000)
    out = smear_transverse(p4, 0.1, np.random.default_rng(1))
    np.testing.assert_array_equal(out[..., 3], p4[..., 3])  # pz untouched
    np.testing.assert_allclose(mass2(out), MUON_MASS**2, rtol=0, atol=1e-9)
    phi, phi_out = np.arctan2(p4[..., 2], p4[..., 1]), np.arctan2(out[..., 2], out[..., 1])
    np.testing.assert_allclose(phi_out, phi, atol=1e-12)
    pt, pt_out = np.hypot(p4[..., 1], p4[..., 2]), np.hypot(out[..., 1], out[..., 2])
    shift = (pt_out - pt)[:, 0] / pt[:, 0]  # the leading muon: never floored at 10 σ
    assert abs(shift.mean()) < 3 * 0.1 / np.sqrt(len(shift))
    assert shift.std() == pytest.approx(0.1, rel=0.01)
    assert (pt_out >= 0.05 * pt - 1e-12).all()
    np.testing.assert_allclose(smear_transverse(p4, 0.0, np.random.default_rng(2)), p4, rtol=1e-14)


def test_fixture_is_a_real_generation_with_reweighted_background():
    data = read_dimuon(FIXTURE_DIMUON)
    with h5py.File(FIXTURE_DIMUON) as f:
        true = f["p4_true"][:]
    p4, labels, weights = data["p4"], data["labels"], data["weights"]
    assert p4.shape == (2000, 2, 4) and labels.sum() == 1000
    np.testing.assert_array_equal(p4[..., 3], true[..., 3])
    np.testing.assert_allclose(mass2(p4), mass2(true), atol=1e-6)  # float64 file
    assert not np.allclose(p4, true)  # it is smeared
    pair = true.sum(1)
    mass = np.sqrt(mass2(pair))
    assert (mass < 120).all() and (mass > 60).mean() > 0.95  # below: photons radiated off muons
    assert np.median(mass[labels == 1]) == pytest.approx(91.2, abs=1.5)  # the Z peak
    assert np.median(mass[labels == 0]) < 85  # the γ* spectrum falls
    np.testing.assert_array_equal(weights, flatten_weights(leading_pt(p4), labels, bins=40))
    assert (weights[labels == 1] == 1).all() and weights[labels == 0].mean() == pytest.approx(1)


def test_generation_is_deterministic_and_resumes(tmp_path):
    cfg = DimuonConfig(n_signal=60, n_background=40, chunk_events=30, seed=3)
    assert len(cfg.chunks()) == 4
    a = generate_dimuon(cfg, tmp_path / "a.h5", processes=2)
    assert a["made"] == 100
    with h5py.File(tmp_path / "a.h5") as f:
        first = {k: f[k][:] for k in ("p4", "p4_true", "labels")}
    generate_dimuon(cfg, tmp_path / "b.h5", processes=1)
    with h5py.File(tmp_path / "b.h5") as f:
        for key, value in first.items():
            np.testing.assert_array_equal(f[key][:], value, err_msg=key)


def test_config_and_file_errors(tmp_path):
    with pytest.raises(ValueError, match="need 0 < mass_min < mass_max"):
        DimuonConfig(mass_min=120, mass_max=60)
    with pytest.raises(FileNotFoundError, match=r"generate_dimuon\.py"):
        read_dimuon(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["p4"] = np.zeros((3, 2, 4))
        f["labels"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"bad\.h5: missing key\(s\) \['weights'\]"):
        read_dimuon(bad)
    with h5py.File(bad, "a") as f:
        f["weights"] = np.ones(3)
        f["p4"][1, 0, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite value in 'p4' of event 1"):
        read_dimuon(bad)
    with h5py.File(bad, "a") as f:
        del f["p4"]
        f["p4"] = np.zeros((3, 2, 3))
    with pytest.raises(ValueError, match=r"'p4' has shape \(3, 2, 3\)"):
        read_dimuon(bad)
    module = DimuonDataModule(FIXTURE_DIMUON, n_train=1500, n_val=300, n_test=300)
    with pytest.raises(ValueError, match=r"has 2000 events; data\.n_train"):
        module.setup()


def test_datamodule_splits_nest_and_do_not_overlap():
    small = DimuonDataModule(FIXTURE_DIMUON, n_train=100, n_val=200, n_test=500, batch_size=64)
    large = DimuonDataModule(FIXTURE_DIMUON, n_train=1000, n_val=200, n_test=500, batch_size=64)
    small.setup(), large.setup()
    torch.testing.assert_close(small.splits["train"]["p4"], large.splits["train"]["p4"][:100])
    torch.testing.assert_close(small.splits["test"]["p4"], large.splits["test"]["p4"])
    train = {tuple(r) for r in large.splits["train"]["p4"].flatten(1).tolist()}
    test = {tuple(r) for r in large.splits["test"]["p4"].flatten(1).tolist()}
    assert not train & test
    batch = next(iter(large.train_dataloader()))
    assert batch["p4"].shape == (64, 2, 4) and batch["mask"].all()
    torch.testing.assert_close(batch["jet_p4"], batch["p4"].sum(1))
