import numpy as np
from test_compare import fake_run

from seal.reports.maps import plot_map, ratios
from seal.reports.runs import find_runs


def gsymm(weight, beta_max):
    return {
        "penalty": {"_target_": "seal.symmetry.GSEAL"},
        "weight": weight,
        "group": {"_target_": "seal.groups.Lorentz", "beta_max": beta_max},
    }


def test_ratios_divide_by_plain_training_on_the_same_truth_and_spread_over_seeds(tmp_path):
    i = 0
    for truth, base in (("exact", 2.0), ("spurion", 4.0)):
        for seed, noise in ((1, -0.1), (2, 0.1)):  # plain runs: mean = base
            fake_run(
                tmp_path / str(i),
                "toy_baseline",
                "MLP",
                {"test/mse": base + noise},
                seed=seed,
                overrides=[f"data.truth={truth}"],
            )
            i += 1
        for seed, value in ((1, 1.0), (2, 1.2), (3, 1.4)):
            fake_run(
                tmp_path / str(i),
                "toy_gsymm",
                "MLP",
                {"test/mse": value * base / 2},
                gsymm(10.0, 0.5),
                seed=seed,
                overrides=[f"data.truth={truth}"],
            )
            i += 1
    rows = ratios(find_runs(tmp_path), "test/mse")
    assert [(r["truth"], r["lambda"], r["beta_max"], r["seeds"]) for r in rows] == [
        ("exact", 10.0, 0.5, 3),
        ("spurion", 10.0, 0.5, 3),
    ]
    for row in rows:  # (1.0, 1.2, 1.4) × base/2 over base: ratios 0.5, 0.6, 0.7
        np.testing.assert_allclose(row["ratio"], 0.6)
        np.testing.assert_allclose(row["spread"], 0.1)
    path = plot_map(rows, "exact", [("test/mse", "nominal")], tmp_path / "map.png")
    assert path.stat().st_size > 0
