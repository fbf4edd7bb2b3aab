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


def test_tagging_spectrum_reads_only_the_first_spectrum_jets(monkeypatch, tmp_path):
    import seal.evaluation.tagging as tagging
    from seal.models import ConstituentTransformer

    seen = []

    def recording(module, batches, output, group):
        batches = list(batches)
        seen.extend(len(b["p4"]) for b in batches)
        return residuals(module, batches, output, group=group)

    class Data:  # three test batches of 4 jets
        def evaluation_dataloader(self):
            return [random_on_shell(4, 5, seed=i, dtype=torch.float32) for i in range(3)]

        test_dataloader = evaluation_dataloader

    monkeypatch.setattr(tagging, "residuals", recording)
    net = ConstituentTransformer(dim=8, depth=1, heads=2, ff_dim=8, dropout=0.0)
    evaluation = tagging.TaggingEvaluation(spectrum_jets=5)
    evaluation.run_name = "test"  # set by __call__
    metrics = evaluation._spectrum(net, Data(), tmp_path, {})
    assert seen == [4, 1] and metrics["spectrum/Kx"] > 0
    seen.clear()
    evaluation.spectrum_jets = None
    evaluation._spectrum(net, Data(), tmp_path, {})
    assert seen == [4, 4, 4]  # null: every test jet
    for jets in (0, 1):
        with pytest.raises(ValueError, match=rf"spectrum_jets must be ≥ 2 .* or null; got {jets}"):
            tagging.TaggingEvaluation(spectrum_jets=jets)


class LogMass(torch.nn.Module):
    """log m of the summed constituents: Lorentz invariant, ∂/∂(log scale) = 1 exactly."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, batch):
        p = (batch["p4"] * batch["mask"].unsqueeze(-1)).sum(1)
        return 0.5 * torch.log(p[:, 0] ** 2 - (p[:, 1:] ** 2).sum(-1)) + self.dummy


def test_the_tagging_spectrum_gains_the_energy_scale(tmp_path):
    import seal.evaluation.tagging as tagging

    class Data:
        def evaluation_dataloader(self):
            return [random_on_shell(64, 5, seed=i, dtype=torch.float64) for i in range(2)]

        test_dataloader = evaluation_dataloader

    net = LogMass()
    evaluation = tagging.TaggingEvaluation()  # spectrum_group: lorentz+energy_scale
    evaluation.run_name = "test"
    metrics = evaluation._spectrum(net, Data(), tmp_path, {})
    with torch.no_grad():
        log_mass = torch.cat([net(b) for b in Data().evaluation_dataloader()]).numpy()
    # the residual along S is (∂_s log m)² = 1 per jet: the bar is 1 / var(log m)
    assert metrics["spectrum/S"] == pytest.approx(1 / log_mass.var(), rel=1e-9)
    for g in GENERATOR_NAMES:
        assert metrics[f"spectrum/{g}"] < 1e-18, g  # invariant mass: no Lorentz bar
    evaluation = tagging.TaggingEvaluation(spectrum_group="lorentz")
    evaluation.run_name = "test"
    assert "spectrum/S" not in evaluation._spectrum(net, Data(), tmp_path, {})
    with pytest.raises(ValueError, match=r"evaluation\.spectrum_group: unknown group 'scale'"):
        tagging.TaggingEvaluation(spectrum_group="lorentz+scale")


def test_a_non_finite_derivative_is_said_not_hidden(caplog):
    # √(Σ (p_i − p_j)²) over every pair: finite output, 0/0 derivative at i = j
    def pair_distances(batch):
        p4 = batch["p4"]
        return (p4[:, :, None] - p4[:, None, :]).square().sum(-1).sqrt().mean((1, 2))

    batch = random_on_shell(6, 3, seed=1)
    with caplog.at_level("WARNING", logger="seal.evaluation.spectrum"):
        r, y = residuals(pair_distances, [batch])
    assert np.isfinite(y).all() and not np.isfinite(r).all()
    assert "not finite for 6 of 6 test examples" in caplog.text


def test_a_spectrum_without_a_positive_bar_is_still_drawn(tmp_path):
    from seal.evaluation.spectrum import plot_spectrum

    for value in (0.0, float("nan")):  # exactly invariant; no variance to divide by
        bars = {f"spectrum/{g}": value for g in GENERATOR_NAMES}
        bars |= {f"spectrum/{g}_err": value for g in GENERATOR_NAMES}
        fig = plot_spectrum({"model": bars}, tmp_path / "s.png", "spectrum")
        assert (tmp_path / "s.png").exists() and fig.axes[0].get_yscale() == "linear"
