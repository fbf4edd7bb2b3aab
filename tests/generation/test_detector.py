import awkward as ak
import numpy as np

from seal.generation.detector import ETA_MAX, emulate, emulate_event


def massless(pt, eta, phi):
    return [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)]


def test_cells_merge_smear_threshold_and_acceptance():
    p = np.array(
        [
            massless(100.0, 0.52, 0.31),
            massless(50.0, 0.53, 0.32),  # same cell
            massless(80.0, -1.0, 2.0),  # its own cell
            massless(0.01, 1.5, -1.0),  # far below the 0.5 GeV threshold
            massless(30.0, 3.0, 0.0),  # outside |η| < 2.5
        ]
    )
    energies = []
    for seed in range(400):
        cells = emulate_event(p, np.random.default_rng(seed))
        assert len(cells) == 2
        m2 = cells[:, 3] ** 2 - (cells[:, :3] ** 2).sum(1)
        np.testing.assert_allclose(m2, 0.0, atol=1e-6 * cells[:, 3].max() ** 2)  # massless
        energies.append(np.sort(cells[:, 3]))
    energies = np.array(energies)
    true = np.sort([p[:2, 3].sum(), p[2, 3]])
    np.testing.assert_allclose(energies.mean(0), true, rtol=0.01)  # unbiased smearing
    expected_sigma = true * np.sqrt(0.5**2 / true + 0.03**2)
    np.testing.assert_allclose(energies.std(0), expected_sigma, rtol=0.15)
    assert ETA_MAX == 2.5


def test_awkward_interface_keeps_the_event_structure():
    events = ak.Array(
        [
            {"px": [10.0, 0.0], "py": [0.0, 20.0], "pz": [1.0, 2.0], "E": [10.1, 20.2]},
            {"px": [], "py": [], "pz": [], "E": []},
        ]
    )
    cells = emulate(events, np.random.default_rng(0))
    assert ak.num(cells).tolist() == [2, 0] and set(cells.fields) == {"px", "py", "pz", "E"}


def test_a_batch_of_events_gives_the_cells_of_each_event_alone():
    rng = np.random.default_rng(1)
    events = [rng.normal(0, 30, (n, 3)) for n in (5, 0, 12)]
    events = [np.c_[e, np.linalg.norm(e, axis=1) + 1.0] for e in events]  # E > |p|
    batch = ak.Array([{f: e[:, i] for i, f in enumerate(("px", "py", "pz", "E"))} for e in events])
    cells = emulate(batch, np.random.default_rng(7))
    one = np.random.default_rng(7)  # the same stream, drawn event after event
    for i, event in enumerate(events):
        expected = emulate_event(event, one)
        got = np.stack([ak.to_numpy(cells[i][f]) for f in ("px", "py", "pz", "E")], axis=-1)
        np.testing.assert_array_equal(got.reshape(-1, 4), expected.reshape(-1, 4))
