import matplotlib.pyplot as plt
import numpy as np
from conftest import TINY

from seal.evaluation.plots import log_bins, plot_panels, plot_shift_histograms, tex
from seal.train import run_name


def test_shift_bins_are_logarithmic_from_the_smallest_shift_up_to_one():
    edges = log_bins([np.array([0.0, 3e-5, 0.2]), np.array([0.5])], per_decade=4)
    assert len(edges) == 5 * 4 + 1
    np.testing.assert_allclose(edges[[0, -1]], [1e-5, 1.0], rtol=1e-12)
    ratios = edges[1:] / edges[:-1]
    np.testing.assert_allclose(ratios, 10**0.25)  # equal widths on a log axis
    # a shift of 1e-3 and one of 1e-1 land in different bins (50 linear bins put both in the first)
    assert np.digitize(1e-3, edges) != np.digitize(1e-1, edges)


def test_figures_carry_the_run_name_and_variants_overlay(tmp_path):
    name = "top_gsymm symmetry.weight=0.1 seed=2"
    fig = plot_shift_histograms(
        {"baseline": np.logspace(-3, -1, 20), "gsymm": np.r_[0, 1e-5]},
        tmp_path / "shift.png",
        "shift",
        "output shift",
        name,
    )
    ax = fig.axes[0]
    assert ax.get_title(loc="left").startswith(name) and ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("baseline: median") and "1 at 0" in labels[1]
    fig = plot_panels(
        [
            ({"a": ([0, 0.5], [0.9, 0.8], [0.01, 0.02])}, "AUC", False),
            ({"a": ([0, 0.5], [30, 20], [3, np.inf])}, "1/ε_B", True),
        ],
        tmp_path / "scan.png",
        "|β|",
        "scan",
        run_name=name,
    )
    assert len(fig.axes) == 2 and name in fig.axes[0].get_title(loc="left")
    assert (tmp_path / "scan.png").stat().st_size > 0
    assert tex("1/ε_B at ε_S = 0.3") == r"1/$\varepsilon_B$ at $\varepsilon_S$ = 0.3"
    # a run name with ${…} overrides is shown as typed, not parsed as math text
    fig = plot_panels(
        [({"a": ([0], [1])}, "y", False)],
        tmp_path / "dollar.png",
        "x",
        "t",
        run_name="toy a=${x_y_z} b=${now:%H-%M}",
    )
    assert "${x_y_z}" in fig.axes[0].get_title(loc="left").replace("\\$", "$")


def test_run_name_is_the_task_and_its_overrides(compose_cfg):
    cfg = compose_cfg(["+experiment=toy_gsymm", *TINY[:2], "symmetry.weight=3"])
    assert run_name(cfg) == "toy_gsymm data.n_train=32 data.n_val=32 symmetry.weight=3"


def test_points_past_the_colour_cycle_take_another_marker(tmp_path):
    curves = {f"model {i}": ([1.0 + i], [2.0 * i + 1], [0.1], [0.1]) for i in range(25)}
    fig = plot_panels([(curves, "1/ε_B", False)], tmp_path / "p.png", "uncertainty", line=False)
    points = [(c.lines[0].get_color(), c.lines[0].get_marker()) for c in fig.axes[0].containers]
    assert len(points) == 25 and len(set(points)) == 25  # no two models look alike
    assert (tmp_path / "p.png").exists()
    plt.close(fig)
