"""The symmetry spectrum: per-generator derivatives of a trained output, normalised."""

import numpy as np
import pytest
import torch
from tolerances import EXACT_F64

from seal.data.toy import make_toy, make_truth
from seal.evaluation.spectrum import GENERATOR_NAMES, residuals, spectrum
from seal.testing import random_on_shell


def first_pz(batch):
    return batch["p4"][:, 0, 3]


def test_closed_form_for_the_first_particles_pz():
    batch = random_on_shell(400, 3, seed=2)
    r, y = residuals(first_pz, [batch])
    p = batch["p4"][:, 0].numpy()
    # ∂_a pz = (T_a p)_z: K_z → E, J_x → p_y, J_y → −p_x; K_x, K_y, J_z leave p_z alone
    expected = np.stack([0 * p[:, 0], 0 * p[:, 0], p[:, 0], p[:, 2], p[:, 1], 0 * p[:, 0]], 1)
    np.testing.assert_allclose(r, expected**2, **EXACT_F64)
    metrics = spectrum(r, y)
    for a, name in enumerate(GENERATOR_NAMES):
        value = (expected[:, a] ** 2).mean() / p[:, 3].var()
        assert metrics[f"spectrum/{name}"] == pytest.approx(value, rel=1e-12, abs=1e-300)
    assert metrics["spectrum/Kz_err"] > 0 and metrics["spectrum/Kx_err"] == 0.0


def test_the_spurion_truth_shows_exactly_where_it_breaks_the_symmetry():
    data = make_toy(2000, n_particles=2, seed=3, dtype=torch.float64)
    found = {}
    for name in ("exact", "spurion"):
        truth = make_truth(name)
        found[name] = spectrum(*residuals(lambda b, t=truth: t(b["p4"]), [data]))
    for g in GENERATOR_NAMES:
        assert found["exact"][f"spectrum/{g}"] < 1e-20  # invariant along every generator
    broken = {"Kz", "Jx", "Jy"}  # the directions that move p_z, which P·s reads
    for g in GENERATOR_NAMES:
        value = found["spurion"][f"spectrum/{g}"]
        assert (value > 1e-8) if g in broken else (value < 1e-20), (g, value)
