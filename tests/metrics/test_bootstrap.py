"""Bootstrap errors: the vectorised resampled metrics are the metrics, resample by resample."""

import time

import numpy as np
import pytest

from seal.metrics.bootstrap import (
    mean_error,
    resample_counts,
    resampled_tagging_metrics,
    tagging_errors,
)
from seal.metrics.tagging import tagging_metrics


def sample(n=600, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.5).astype(float)
    scores = rng.normal(size=n) + 1.2 * labels
    if ties:
        scores = np.round(scores, 1)  # many equal scores, signal and background mixed
    weights = rng.uniform(0.2, 2.0, n)
    return labels, scores, weights


@pytest.mark.parametrize("ties", [False, True])
def test_each_resample_gives_exactly_the_metrics_of_its_events(ties):
    labels, scores, weights = sample(ties=ties)
    counts = resample_counts(len(scores), resamples=5, seed=1)
    resampled = resampled_tagging_metrics(labels, scores, weights, counts)
    for r in range(5):
        # the same events, repeated as often as drawn, through the reference implementation
        index = np.repeat(np.arange(len(scores)), counts[r])
        expected = tagging_metrics(labels[index], scores[index], weights[index])
        for name, value in expected.items():
            assert resampled[name][r] == pytest.approx(value, rel=1e-10), (name, r)


def test_errors_shrink_like_one_over_root_n_and_are_seeded():
    small = tagging_errors(*sample(n=400, seed=2))
    large = tagging_errors(*sample(n=6400, seed=2))
    assert set(small) == {"auc_err", "acc_err", "rej@0.3_err", "rej@0.5_err", "rej@0.8_err"}
    assert 2.5 < small["auc_err"] / large["auc_err"] < 6.5  # √16 = 4
    assert tagging_errors(*sample(n=400, seed=2)) == small  # the same seed, the same errors


def test_mean_error_matches_the_standard_error():
    values = np.random.default_rng(3).normal(size=4000)
    expected = values.std(ddof=1) / np.sqrt(len(values))
    assert mean_error(values) == pytest.approx(expected, rel=0.15)  # 200 resamples: ±10 %


def test_two_hundred_resamples_of_ten_thousand_jets_take_seconds_not_minutes():
    labels, scores, weights = sample(n=10_000, seed=4)
    start = time.perf_counter()
    tagging_errors(labels, scores, weights)
    assert time.perf_counter() - start < 5.0
