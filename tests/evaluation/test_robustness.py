import pytest
import torch

from seal.data.toy import exact_truth, make_toy
from seal.evaluation.robustness import boost_scan, fixed_speed_boosts


@pytest.mark.parametrize("along", ["random", "z"])
def test_fixed_speed_boosts_have_exactly_that_speed(along):
    lam = fixed_speed_boosts(500, 0.7, along=along, seed=1)
    speed = lam[:, 1:, 0].norm(dim=-1) / lam[:, 0, 0]
    torch.testing.assert_close(speed, torch.full((500,), 0.7, dtype=torch.float64))
    if along == "z":
        assert torch.equal(lam[:, 1:3, 0], torch.zeros(500, 2, dtype=torch.float64))


def test_scan_of_the_truth_itself_is_flat_and_of_a_broken_model_is_not():
    data = make_toy(2000, seed=3, dtype=torch.float64)
    truth = lambda b: exact_truth(b["p4"])  # noqa: E731
    rows = boost_scan(truth, data, exact_truth, [0.0, 0.5, 0.9])
    assert [r["beta"] for r in rows] == [0.0, 0.5, 0.9]
    assert max(r["mse"] for r in rows) < 1e-20
    energy = lambda b: b["p4"][:, 0, 0]  # noqa: E731  (not invariant)
    mse = [r["mse"] for r in boost_scan(energy, data, exact_truth, [0.0, 0.5, 0.9])]
    assert mse[0] < mse[1] < mse[2]


def test_bad_scan_settings_are_rejected():
    with pytest.raises(ValueError, match=r"\|β\| = 1.0"):
        fixed_speed_boosts(3, 1.0)
    with pytest.raises(ValueError, match="unknown boost direction 'x'"):
        fixed_speed_boosts(3, 0.5, along="x")
