import math

import numpy as np
import pytest
import torch

from seal.groups import Lorentz
from seal.metrics.tagging import background_efficiency_at, roc, tagging_metrics
from seal.models import ConstituentTransformer
from seal.symmetry import dseal
from seal.testing import random_on_shell

# signal scores {0.9, 0.7, 0.6}, background {0.8, 0.4, 0.3}
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.4, 0.3])
LABELS = np.array([1, 0, 1, 1, 0, 0])


def test_unweighted_small_roc_by_hand():
    m = tagging_metrics(LABELS, SCORES - 0.5)
    assert m["auc"] == pytest.approx(7 / 9)  # 7 of the 9 (signal, background) pairs ordered
    assert m["acc"] == pytest.approx(5 / 6)  # logit > 0 ⇔ score > 0.5: only 0.8 (QCD) is wrong
    # ε_S = 0.3 lies on the first segment, before any background passes: 1/ε_B = inf
    assert math.isinf(m["rej@0.3"])
    # ε_S = 0.5 lies between (ε_S, ε_B) = (1/3, 1/3) and (2/3, 1/3): ε_B = 1/3
    assert m["rej@0.5"] == pytest.approx(3.0)
    # ε_S = 0.8 lies between (2/3, 1/3) and (1, 1/3): still 1/3
    assert m["rej@0.8"] == pytest.approx(3.0)


def test_weighted_roc_and_interpolation_by_hand():
    weights = np.array([1.0, 3.0, 1.0, 2.0, 1.0, 1.0])  # background weights 3, 1, 1 (total 5)
    eps_b, eps_s = roc(LABELS, SCORES, weights)
    # signal total 4: after 0.9 → ε_S 1/4; after 0.7 → 2/4; after 0.6 → 4/4
    # background: after 0.8 → ε_B 3/5; after 0.4 → 4/5; after 0.3 → 1
    assert background_efficiency_at(eps_b, eps_s, 0.25) == pytest.approx(0.0)
    assert background_efficiency_at(eps_b, eps_s, 0.5) == pytest.approx(0.6)
    # between (ε_S, ε_B) = (1/2, 3/5) and (1, 3/5)
    assert background_efficiency_at(eps_b, eps_s, 0.8) == pytest.approx(0.6)
    # the ROC runs (ε_B, ε_S) = (0, 1/4) → (3/5, 1/4) → (3/5, 1/2): 3/5 in between
    assert background_efficiency_at(eps_b, eps_s, 0.3125) == pytest.approx(0.6)
    m = tagging_metrics(LABELS, SCORES, weights)
    # weighted AUC: pairs weighted by w_s·w_b: (0.9: 1·5) + (0.7: 1·2) + (0.6: 2·2) = 11 of 4·5
    assert m["auc"] == pytest.approx(11 / 20)
    assert m["rej@0.5"] == pytest.approx(1 / 0.6)


def test_tied_scores_interpolate_along_the_diagonal_segment():
    eps_b, eps_s = roc(np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.5, 0.1]))
    # (ε_S, ε_B): (1/2, 0) → (1, 1/2) in one step; ε_S = 3/4 is halfway
    assert background_efficiency_at(eps_b, eps_s, 0.75) == pytest.approx(0.25)


def test_soft_labels_count_by_the_class_they_lean_to():
    smoothed = np.where(LABELS == 1, 0.9, 0.1)  # label smoothing: the same classes
    assert tagging_metrics(smoothed, SCORES - 0.5) == tagging_metrics(LABELS, SCORES - 0.5)
    # 0.5 is background: signal scores {3, 2} above background {0, 1} (2/3 if 0.5 were signal)
    labels = np.array([0.6, 0.5, 0.2, 0.51])
    assert tagging_metrics(labels, np.array([3.0, 0.0, 1.0, 2.0]))["auc"] == 1.0


def test_metrics_need_both_classes():
    with pytest.raises(ValueError, match="both signal and background"):
        tagging_metrics(np.ones(4), np.arange(4.0))


def test_exact_dseal_through_the_transformer_matches_finite_differences():
    batch = random_on_shell(6, 10, seed=3, max_momentum=300.0)
    net = ConstituentTransformer(dim=16, depth=2, heads=2, ff_dim=16, dropout=0.0).double().eval()
    exact = dseal(net, batch, Lorentz())
    fd = dseal(net, batch, Lorentz(), method="finite_difference", eps=1e-5)
    assert exact > 0
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=0)
