"""Detector variations of a jet file (seal.generation.variations, scripts/make_variations.py):
each variation does what it says on the committed fixture, the files carry the jets' event
numbers, settings and labels, and bad input is named before anything is written."""

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import FIXTURE_JETS

from seal.data.atlas_layout import CONSTITUENT_KEYS, EVENT_NUMBER, JET_KEYS
from seal.generation.variations import VARIATIONS, VariationSettings, vary, write_variations

ROOT = Path(__file__).resolve().parents[2]


def read(path) -> dict:
    with h5py.File(path) as f:
        return {k: f[k][:] for k in f if k != "metadata"}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    out = tmp_path_factory.mktemp("syst")
    write_variations(FIXTURE_JETS, out, VariationSettings(seed=3), progress=False)
    nominal = read(out / "nominal.h5")
    return out, nominal, {name: read(out / f"{name}.h5") for name in VARIATIONS}


def mass2(a, jet, k) -> float:
    e, pt, eta = (float(a[key][jet, k]) for key in ("fjet_clus_E", "fjet_clus_pt", "fjet_clus_eta"))
    return e * e - (pt * np.cosh(eta)) ** 2


def four_vectors(a) -> np.ndarray:
    pt, eta, phi, e = (a[k].astype(np.float64) for k in CONSTITUENT_KEYS)
    return np.stack((pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e), -1)


def test_the_nominal_file_is_the_source_and_every_file_carries_numbers_labels_weights(files):
    out, nominal, varied = files
    source = read(FIXTURE_JETS)
    assert nominal.keys() == source.keys()
    for key in source:
        np.testing.assert_array_equal(nominal[key], source[key], err_msg=key)
    for name, v in varied.items():
        for key in (EVENT_NUMBER, "labels", "weights"):
            np.testing.assert_array_equal(v[key], source[key], err_msg=f"{name}: {key}")
        with h5py.File(out / f"{name}.h5") as f:
            meta = f["metadata"].attrs
            assert meta["variation"] == name and meta["group"] == "detector"
            assert json.loads(meta["variation_settings"])["seed"] == 3
            assert json.loads(meta["nominal_rows"]) == [0, 300]
            assert json.loads(meta["nominal_settings"])["seed"] == 7  # the generator's, kept


@pytest.mark.parametrize("name, factor", [("energy_scale_up", 1.01), ("energy_scale_down", 0.99)])
def test_the_energy_scale_multiplies_every_constituent_and_the_stored_part_of_the_jet(
    files, name, factor
):
    _, nominal, varied = files
    v = varied[name]
    for key in ("fjet_clus_pt", "fjet_clus_E"):
        np.testing.assert_allclose(v[key], nominal[key] * factor, rtol=2e-7)
    for key in ("fjet_clus_eta", "fjet_clus_phi"):
        np.testing.assert_array_equal(v[key], nominal[key])
    # the jet moves by its stored constituents' change: (factor − 1) × their sum
    stored = (four_vectors(nominal) * (nominal["fjet_clus_pt"] > 0)[..., None]).sum(1)
    pt = nominal["fjet_pt"].astype(np.float64)
    expected = np.hypot(
        *(
            np.stack((pt * np.cos(nominal["fjet_phi"]), pt * np.sin(nominal["fjet_phi"])), -1)
            + (factor - 1) * stored[:, :2]
        ).T
    )
    np.testing.assert_allclose(v["fjet_pt"], expected, rtol=2e-6)
    complete = nominal["fjet_clus_pt"][:, -1] == 0  # every constituent stored: exactly ×factor
    assert complete.sum() > 100
    for key in ("fjet_pt", "fjet_m"):
        np.testing.assert_allclose(v[key][complete], nominal[key][complete] * factor, rtol=2e-5)


def test_resolution_smears_each_constituent_by_the_set_width(files):
    _, nominal, varied = files
    present = nominal["fjet_clus_pt"] > 0
    # constituents are re-sorted: compare the multisets of energies jet by jet via E/pT = cosh η
    v = varied["energy_resolution"]
    ratio = v["fjet_clus_E"].sum(1) / nominal["fjet_clus_E"].sum(1)
    assert 0.995 < np.median(ratio) < 1.005
    single = np.sort(v["fjet_clus_E"][present.sum(1) > 0], axis=1)  # sanity: non-negative
    assert (single >= 0).all()
    # the per-constituent factor: pair constituents by (η, φ), which the smearing keeps
    factors = []
    for jet in range(50):
        keep = present[jet]
        a = {
            (round(float(e), 4), round(float(p), 4)): x
            for e, p, x in zip(
                nominal["fjet_clus_eta"][jet][keep],
                nominal["fjet_clus_phi"][jet][keep],
                nominal["fjet_clus_E"][jet][keep],
            )
        }
        m = v["fjet_clus_pt"][jet] > 0
        for e, p, x in zip(
            v["fjet_clus_eta"][jet][m], v["fjet_clus_phi"][jet][m], v["fjet_clus_E"][jet][m]
        ):
            factors.append(x / a[(round(float(e), 4), round(float(p), 4))])
    factors = np.array(factors)
    assert (
        len(factors) > 2000
        and abs(factors.std() - 0.05) < 0.005
        and abs(factors.mean() - 1) < 0.005
    )


def test_position_shifts_eta_and_phi_and_keeps_energy_and_mass(files):
    _, nominal, _ = files
    block = {k: nominal[k][:40] for k in (*CONSTITUENT_KEYS, *JET_KEYS)}
    order_free = vary(block, "position", VariationSettings(position=0.02), np.random.default_rng(0))
    # the same draws without re-sorting: reconstruct by matching energies (distinct floats)
    present = block["fjet_clus_pt"] > 0
    shifts_eta, shifts_phi = [], []
    for jet in range(40):
        index = {float(e): i for i, e in enumerate(block["fjet_clus_E"][jet]) if present[jet, i]}
        for i in np.flatnonzero(order_free["fjet_clus_pt"][jet] > 0):
            j = index[float(order_free["fjet_clus_E"][jet, i])]
            shifts_eta.append(order_free["fjet_clus_eta"][jet, i] - block["fjet_clus_eta"][jet, j])
            d = order_free["fjet_clus_phi"][jet, i] - block["fjet_clus_phi"][jet, j]
            shifts_phi.append((d + np.pi) % (2 * np.pi) - np.pi)

            # the energy (matched above) and the mass are kept (the fixture's hadrons have mass)
            scale = float(block["fjet_clus_E"][jet, j]) ** 2
            assert abs(mass2(order_free, jet, i) - mass2(block, jet, j)) < 1e-6 * scale
    assert abs(np.std(shifts_eta) - 0.02) < 0.002 and abs(np.std(shifts_phi) - 0.02) < 0.002


def test_efficiency_removes_the_set_fraction_and_the_jet_loses_exactly_them(files):
    _, nominal, varied = files
    v = varied["efficiency"]
    before, after = (nominal["fjet_clus_pt"] > 0).sum(), (v["fjet_clus_pt"] > 0).sum()
    lost = 1 - after / before
    assert abs(lost - 0.02) < 5 * np.sqrt(0.02 * 0.98 / before)
    pt = v["fjet_clus_pt"]
    assert (np.diff(pt, axis=1) <= 0).all()  # pT-ordered again, padding last
    removed = (four_vectors(nominal) * (nominal["fjet_clus_pt"] > 0)[..., None]).sum(1) - (
        four_vectors(v) * (pt > 0)[..., None]
    ).sum(1)

    def jet(a):  # (px, py) of the jet
        return np.stack(
            (a["fjet_pt"] * np.cos(a["fjet_phi"]), a["fjet_pt"] * np.sin(a["fjet_phi"])), -1
        )

    np.testing.assert_allclose(
        jet(nominal) - jet(v), removed[:, :2], atol=2e-6 * nominal["fjet_pt"].max()
    )


def test_a_jet_never_loses_its_last_constituent(files):
    _, nominal, _ = files
    block = {k: nominal[k][:50] for k in (*CONSTITUENT_KEYS, *JET_KEYS)}
    settings = VariationSettings(efficiency=0.999)
    v = vary(block, "efficiency", settings, np.random.default_rng(0))
    present = block["fjet_clus_pt"] > 0
    drawn = np.random.default_rng(0).random(present.shape) >= 0.999  # the draws vary() made
    emptied = ~(drawn & present).any(1)
    assert emptied.sum() > 40 and present.sum(1).min() > 1  # almost every jet would be empty
    left = (v["fjet_clus_pt"] > 0).sum(1)
    np.testing.assert_array_equal(left, np.where(emptied, 1, (drawn & present).sum(1)))
    for key in CONSTITUENT_KEYS:  # the emptied keep their leading constituent as it was
        np.testing.assert_array_equal(v[key][emptied, 0], block[key][emptied, 0])


def test_files_do_not_depend_on_the_block_size_and_finished_ones_are_kept(tmp_path, files):
    _, _, varied = files
    write_variations(
        FIXTURE_JETS,
        tmp_path,
        VariationSettings(seed=3),
        ["energy_resolution"],
        block_rows=7,
        progress=False,
    )
    again = read(tmp_path / "energy_resolution.h5")
    for key in again:
        np.testing.assert_array_equal(again[key], varied["energy_resolution"][key], err_msg=key)
    stamp = (tmp_path / "energy_resolution.h5").stat().st_mtime_ns
    write_variations(
        FIXTURE_JETS, tmp_path, VariationSettings(seed=4), ["energy_resolution"], progress=False
    )
    assert (tmp_path / "energy_resolution.h5").stat().st_mtime_ns == stamp  # kept: resumes


def test_a_row_range_writes_only_those_rows(tmp_path):
    write_variations(
        FIXTURE_JETS, tmp_path, names=["energy_scale_up"], rows=(100, 160), progress=False
    )
    v, source = read(tmp_path / "energy_scale_up.h5"), read(FIXTURE_JETS)
    np.testing.assert_array_equal(v[EVENT_NUMBER], source[EVENT_NUMBER][100:160])
    np.testing.assert_allclose(v["fjet_clus_E"], source["fjet_clus_E"][100:160] * 1.01, rtol=2e-7)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(scale=0.0), r"scale must be in \(0, 1\).*got 0.0"),
        (dict(scale=float("nan")), "scale must be.*got nan"),
        (dict(efficiency=1.0), r"efficiency must be in \[0, 1\).*got 1.0"),
        (dict(resolution=-0.1), "resolution must be.*got -0.1"),
        (dict(position="0.01"), "position must be.*got '0.01'"),
    ],
)
def test_bad_settings_are_named(settings, message):
    with pytest.raises(ValueError, match=message):
        VariationSettings(**settings)


def test_bad_requests_are_named_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"unknown variation\(s\) \['jes_up'\]"):
        write_variations(FIXTURE_JETS, tmp_path / "a", names=["jes_up"])
    with pytest.raises(ValueError, match=r"rows \[250, 400\) are not inside the 300 rows"):
        write_variations(FIXTURE_JETS, tmp_path / "b", rows=(250, 400))
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(KeyError, match=r"other.h5: not an ATLAS-layout jet file \(missing"):
        write_variations(other, tmp_path / "c")
    assert not any((tmp_path / d).exists() for d in "abc")


def test_the_command_line_writes_the_set_and_names_bad_flags(tmp_path):
    script = [sys.executable, str(ROOT / "scripts" / "make_variations.py")]
    done = subprocess.run(
        [
            *script,
            "--nominal",
            str(FIXTURE_JETS),
            "--out",
            str(tmp_path),
            "--only",
            "position",
            "--position",
            "0.02",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nominal.h5", "position.h5"]
    with h5py.File(tmp_path / "position.h5") as f:
        assert json.loads(f["metadata"].attrs["variation_settings"])["position"] == 0.02
    for flags, message in [
        (["--efficiency", "1.5"], r"--efficiency must be in \[0, 1\)"),
        (["--only", "jes"], r"--only: unknown variation\(s\) \['jes'\]"),
        (["--rows", "10-20"], "--rows must be START:STOP"),
    ]:
        bad = subprocess.run(
            [*script, "--nominal", str(FIXTURE_JETS), "--out", str(tmp_path / "x"), *flags],
            capture_output=True,
            text=True,
        )
        assert bad.returncode == 2 and re.search(message, bad.stderr), bad.stderr
    missing = subprocess.run(
        [*script, "--nominal", str(tmp_path / "none.h5"), "--out", str(tmp_path / "y")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "none.h5 does not exist" in missing.stderr
