"""The nominal file and its variations, matched jet by jet (seal.data.systematics)."""

import json

import h5py
import numpy as np
import pytest
from conftest import FIXTURE_JETS, rewrite, with_shower_weights

from seal.data.atlas_layout import EVENT_NUMBER, EVENT_WEIGHTS
from seal.data.jets import JetFile
from seal.data.systematics import SystematicSet
from seal.generation.variations import VARIATIONS, write_variations

ROWS = np.arange(300)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("syst")
    write_variations(FIXTURE_JETS, out, progress=False)
    return out


def test_a_folder_of_variations_is_found_named_and_grouped(folder):
    systematics = SystematicSet(FIXTURE_JETS, folder)
    assert sorted(v.name for v in systematics.variations) == sorted(VARIATIONS)
    assert {v.group for v in systematics.variations} == {"detector"}


def test_jets_are_found_wherever_their_rows_are(folder, tmp_path):
    permutation = np.random.default_rng(0).permutation(300)
    rewrite(folder / "energy_scale_up.h5", tmp_path / "energy_scale_up.h5", rows=permutation)
    systematics = SystematicSet(FIXTURE_JETS, [tmp_path / "energy_scale_up.h5"])
    (variation,) = systematics.variations
    rows = np.arange(40, 260)
    found = systematics.match(rows, variation)
    np.testing.assert_array_equal(permutation[found], rows)  # the jet that was at `rows`
    varied, nominal = systematics.read(variation, found), JetFile(FIXTURE_JETS).read(40, 260)
    np.testing.assert_allclose(varied["p4"], nominal["p4"] * 1.01, rtol=3e-7, atol=1e-6)
    np.testing.assert_array_equal(varied["target"], nominal["target"])


def test_files_without_event_numbers_are_numbered_by_row(tmp_path):
    rewrite(FIXTURE_JETS, tmp_path / "old.h5", drop=(EVENT_NUMBER,))
    write_variations(tmp_path / "old.h5", tmp_path / "syst", names=["position"], progress=False)
    with h5py.File(tmp_path / "syst" / "position.h5") as f:
        np.testing.assert_array_equal(f[EVENT_NUMBER][:], ROWS)
    systematics = SystematicSet(tmp_path / "old.h5", tmp_path / "syst")
    np.testing.assert_array_equal(systematics.match(ROWS, systematics.variations[0]), ROWS)


def test_jets_missing_from_a_variation_are_counted_and_named(tmp_path):
    write_variations(FIXTURE_JETS, tmp_path, names=["efficiency"], rows=(0, 150), progress=False)
    systematics = SystematicSet(FIXTURE_JETS, [tmp_path / "efficiency.h5"])
    with h5py.File(FIXTURE_JETS) as f:
        numbers = f[EVENT_NUMBER][:]
    absent = int((~np.isin(numbers[150:], numbers[:150])).sum())  # the other jet may be there
    with pytest.raises(
        ValueError,
        match=rf"efficiency.h5: \d+ of 150 nominal jets have no match \({absent} with an event "
        "number absent there",
    ):
        systematics.match(np.arange(150, 300), systematics.variations[0])


def test_a_jet_whose_pt_moved_too_far_is_not_taken_for_the_same(folder, tmp_path):
    def double_first(key, data):
        if key == "fjet_pt":
            data = data.copy()
            data[7] *= 2
        return data

    rewrite(folder / "position.h5", tmp_path / "position.h5", change=double_first)
    systematics = SystematicSet(FIXTURE_JETS, [tmp_path / "position.h5"])
    with pytest.raises(
        ValueError,
        match=r"1 of 300 nominal jets have no match \(0 with an event number absent there, 0 "
        r"whose nearest jet is more than ΔR = 0.5 away, 1 whose nearest jet's pT differs by "
        r"more than 25%; first: nominal row 7",
    ):
        systematics.match(ROWS, systematics.variations[0])


def test_a_jet_whose_nearest_jet_points_elsewhere_is_not_taken_for_the_same(folder, tmp_path):
    # jet 7 absent in its direction (it failed the variation's selection, say): the event's
    # other jet, back to back, must not stand in for it
    def move_first(key, data):
        if key == "fjet_eta":
            data = data.copy()
            data[7] += 1.0
        return data

    rewrite(folder / "position.h5", tmp_path / "position.h5", change=move_first)
    systematics = SystematicSet(FIXTURE_JETS, [tmp_path / "position.h5"])
    with pytest.raises(
        ValueError,
        match=r"1 of 300 nominal jets have no match \(0 with an event number absent there, 1 "
        r"whose nearest jet is more than ΔR = 0.5 away, 0 whose .*first: nominal row 7",
    ):
        systematics.match(ROWS, systematics.variations[0])
    loose = SystematicSet(FIXTURE_JETS, [tmp_path / "position.h5"], dr_tolerance=1.5)
    assert loose.match(ROWS, loose.variations[0])[7] >= 0


def test_another_sample_is_refused_as_a_variation(folder, tmp_path):
    rewrite(folder / "position.h5", tmp_path / "position.h5")
    with h5py.File(tmp_path / "position.h5", "a") as f:
        settings = json.loads(f["metadata"].attrs["nominal_settings"])
        f["metadata"].attrs["nominal_settings"] = json.dumps({**settings, "pt_max": 1200.0})
    with pytest.raises(
        ValueError,
        match=r"not a variation of .*fixture_jets.h5 — another sample \(generator settings "
        r"differ: pt_max 800.0 here, 1200.0 there\)",
    ):
        SystematicSet(FIXTURE_JETS, [tmp_path / "position.h5"])


def test_bad_sets_are_named(folder, tmp_path):
    rewrite(folder / "position.h5", tmp_path / "noweights.h5", drop=("weights",))
    with pytest.raises(
        KeyError, match=r"noweights.h5: missing dataset 'weights' \(or 'training_weights'\)"
    ):
        SystematicSet(FIXTURE_JETS, [tmp_path / "noweights.h5"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        FileNotFoundError,
        match=r"no variation files in .*empty \(make them with scripts/make_variations.py\)",
    ):
        SystematicSet(FIXTURE_JETS, tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        SystematicSet(FIXTURE_JETS, tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"variation\(s\) \['position'\] given twice"):
        SystematicSet(FIXTURE_JETS, [folder / "position.h5", folder / "position.h5"])
    with pytest.raises(ValueError, match=r"pt_tolerance must be in \(0, 1\); got 2"):
        SystematicSet(FIXTURE_JETS, folder, pt_tolerance=2)
    for bad in (0, -1.0, float("nan"), float("inf"), "0.4"):
        with pytest.raises(ValueError, match=r"dr_tolerance must be a finite ΔR > 0; got"):
            SystematicSet(FIXTURE_JETS, folder, dr_tolerance=bad)
    with pytest.raises(FileNotFoundError, match=r"missing\.h5 does not exist"):
        SystematicSet(FIXTURE_JETS, [tmp_path / "missing.h5"])


def test_auto_variations_are_the_files_of_the_same_rows_made_in_memory(tmp_path):
    rows = np.array([31, 40, 77, 120, 199])  # the files: rows 31 to 199 (--rows 31:200)
    write_variations(FIXTURE_JETS, tmp_path, rows=(31, 200), progress=False)
    from_files, in_memory = SystematicSet(FIXTURE_JETS, tmp_path), SystematicSet(FIXTURE_JETS)
    assert [v.name for v in in_memory.variations] == list(VARIATIONS)
    for variation in in_memory.variations:
        (on_disk,) = [v for v in from_files.variations if v.name == variation.name]
        a, b = in_memory.arrays(variation, rows), from_files.arrays(on_disk, rows)
        np.testing.assert_array_equal(a["index"], rows)  # the nominal rows, in memory
        np.testing.assert_array_equal(b["index"], rows - 31)  # the rows of the files
        for key in ("p4", "mask", "jet_p4", "target", "weight"):
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{variation.name}: {key}")


def test_generator_weight_variations_reweight_the_nominal_jets(tmp_path):
    weights = with_shower_weights(tmp_path / "w.h5")
    systematics = SystematicSet(tmp_path / "w.h5")
    modelling = [v for v in systematics.variations if v.group == "modelling"]
    assert [(v.name, v.weight_index) for v in modelling] == [("isr_up", 1), ("isr_down", 2)]
    rows = np.array([5, 17, 230])
    varied, nominal = systematics.arrays(modelling[1], rows), JetFile(FIXTURE_JETS).read(0, 300)
    np.testing.assert_array_equal(varied["p4"], nominal["p4"][rows])
    np.testing.assert_allclose(
        varied["weight"], nominal["weight"][rows] * weights[rows, 2], rtol=1e-6
    )


def test_bad_generator_weights_are_named(tmp_path):
    with_shower_weights(tmp_path / "w.h5")
    with h5py.File(tmp_path / "w.h5", "a") as f:
        f["metadata"].attrs["mc_weight_names"] = json.dumps(["baseline", "isr_up"])  # 2 of 3
    with pytest.raises(
        ValueError,
        match=r"EventInfo_mcEventWeights of shape \(300, 3\) needs .* one name per column",
    ):
        SystematicSet(tmp_path / "w.h5")
    with_shower_weights(tmp_path / "z.h5")
    with h5py.File(tmp_path / "z.h5", "a") as f:
        f[EVENT_WEIGHTS][4, 0] = 0.0
    systematics = SystematicSet(tmp_path / "z.h5")
    with pytest.raises(
        ValueError, match=r"EventInfo_mcEventWeights of row 4 is not finite or has a zero baseline"
    ):
        systematics.arrays(systematics.variations[-1], ROWS)
    with_shower_weights(tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5", "a") as f:
        f[EVENT_WEIGHTS][9, 1] = -0.5  # isr_up of row 9
    systematics = SystematicSet(tmp_path / "n.h5")
    isr_up, isr_down = (v for v in systematics.variations if v.group == "modelling")
    with pytest.raises(
        ValueError,
        match=r"variation 'isr_up' gives 1 of the 300 jets a negative weight \(first: row 9\); "
        r"the tagging metrics need weights ≥ 0",
    ):
        systematics.arrays(isr_up, ROWS)
    systematics.arrays(isr_down, ROWS)  # the other column is fine
