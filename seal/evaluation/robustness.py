"""Test error as a function of a boost applied to the test inputs.

A model that learned an invariant (or covariant) truth should keep its error flat as the test
set is boosted; an unconstrained model's error grows with |β|.
"""

import csv
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from seal.callbacks.loggers import log_results
from seal.evaluation.plots import plot_curves
from seal.evaluation.spectrum import model_and_truth, plot_spectrum
from seal.groups import boost_matrix, transform_batch
from seal.metrics.bootstrap import mean_error

ALONG = ("random", "z")
METRIC_PREFIX = {"random": "boost", "z": "zboost"}
DEFAULT_BETAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def fixed_speed_boosts(n: int, beta: float, along: str = "random", seed: int = 0) -> torch.Tensor:
    """``n`` boosts of speed exactly ``beta``, shape (n, 4, 4) float64.

    ``along="random"``: directions uniform on the sphere; ``"z"``: ±z with equal probability.
    """
    if along not in ALONG:
        raise ValueError(f"unknown boost direction {along!r}; choose one of {ALONG}")
    gen = torch.Generator().manual_seed(seed)
    if along == "random":
        direction = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        direction = direction / direction.norm(dim=-1, keepdim=True)
    else:
        direction = torch.zeros(n, 3, dtype=torch.float64)
        direction[:, 2] = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return boost_matrix(beta * direction)  # validates 0 <= beta < 1


@torch.no_grad()
def boost_scan(predict, data: dict, truth, betas, along="random", seed=0, batch_size=4096):
    """Error of ``predict`` on ``data`` boosted by each speed in ``betas``.

    Parameters
    ----------
    predict : callable
        Batch dict → predictions shaped like ``truth``'s output.
    data : dict
        Test set as a batch dict with ``p4`` (n, N, 4) (and ``mask``).
    truth : callable
        ``p4`` (n, N, 4) → target, evaluated on the *boosted* momenta, so broken and
        covariant truths are handled like invariant ones.
    betas : sequence of float
        Test speeds, each in [0, 1).
    along, seed
        Boost directions (see :func:`fixed_speed_boosts`); the same seed gives every model
        the same boosted test set.

    Returns
    -------
    list of dict
        Per β: ``beta``, ``mse`` (mean over examples of the squared error summed over output
        components), its bootstrap error ``mse_err`` and ``rel_rmse`` (√(mse / mean‖target‖²)).
    """
    n = len(data["p4"])
    rows = []
    for beta in betas:
        lam = fixed_speed_boosts(n, float(beta), along, seed)
        moved = transform_batch(data, lam, ["p4"])
        per_example, sq_target = [], 0.0
        for start in range(0, n, batch_size):
            part = {k: v[start : start + batch_size] for k, v in moved.items()}
            target = truth(part["p4"].double())
            err = predict(part).double() - target
            per_example.append(err.square().reshape(len(err), -1).sum(-1))  # (batch,)
            sq_target += target.square().reshape(len(target), -1).sum(-1).sum().item()
        per_example = torch.cat(per_example).numpy()
        mse = float(per_example.mean())
        rows.append(
            {
                "beta": float(beta),
                "mse": mse,
                "mse_err": mean_error(per_example),
                "rel_rmse": (mse * n / sq_target) ** 0.5,
            }
        )
    return rows


def check_betas(betas) -> list[float]:
    """The test speeds as floats, each finite and in [0, 1) (else ``ValueError`` naming it)."""
    values = [float(b) for b in betas]
    for b in values:
        if not (0.0 <= b < 1.0) or not math.isfinite(b):
            raise ValueError(f"evaluation betas must lie in [0, 1); got |β| = {b} in {values}")
    return values


class RegressionRobustness:
    """After training: test error vs a boost of the test set (random directions and along z).

    Writes ``robustness.csv`` and ``robustness.png`` in the run directory, logs
    ``boost/mse@β`` and ``zboost/mse@β`` with their bootstrap errors (``boost/mse@β_err``) and
    ``rel_rmse``, and returns them. The targets of the
    boosted set come from the datamodule's ``truth_fn``, so broken and covariant truths are
    scored against what the truth really is on the boosted inputs.
    """

    def __init__(self, betas=DEFAULT_BETAS, directions=ALONG, seed=1, batch_size=4096):
        self.betas = check_betas(betas)
        for along in directions:
            if along not in ALONG:
                raise ValueError(f"unknown boost direction {along!r}; choose from {ALONG}")
        self.directions, self.seed, self.batch_size = tuple(directions), seed, batch_size

    def __call__(
        self, module, datamodule, out_dir: Path, loggers=(), step: int = 0, run_name: str = ""
    ) -> dict:
        module.eval()
        device = next(module.parameters()).device

        def predict(batch):
            return module({k: v.to(device) for k, v in batch.items()}).cpu()

        datamodule.setup("test")
        test = datamodule.splits["test"]
        rows, metrics = [], {}
        for along in self.directions:
            for row in boost_scan(
                predict, test, datamodule.truth_fn, self.betas, along, self.seed, self.batch_size
            ):
                rows.append({"direction": along, **row})
                key = f"{METRIC_PREFIX[along]}/{{}}@{row['beta']:g}"
                for name in ("mse", "rel_rmse"):
                    metrics[key.format(name)] = row[name]
                metrics[key.format("mse") + "_err"] = row["mse_err"]  # <key>_err
        with open(out_dir / "robustness.csv", "w", newline="") as f:
            fields = ["direction", "beta", "mse", "mse_err", "rel_rmse"]
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        curves = {
            f"boosts: {along}": (
                [r["beta"] for r in rows if r["direction"] == along],
                [r["mse"] for r in rows if r["direction"] == along],
                [r["mse_err"] for r in rows if r["direction"] == along],
            )
            for along in self.directions
        }
        path = out_dir / "robustness.png"
        fig = plot_curves(
            curves,
            path,
            "boost |β| of every test example",
            "test MSE",
            "test MSE vs boost (bootstrap errors)",
            run_name=run_name,
        )
        figures = {"robustness": (fig, path)}
        output = "vector" if test["target"].dim() == 2 else "scalar"
        found, bars = model_and_truth(module, test, datamodule.truth_fn, output, self.batch_size)
        metrics.update(found)
        path = out_dir / "spectrum.png"
        fig = plot_spectrum(bars, path, "symmetry spectrum (test set)", run_name)
        figures["spectrum"] = (fig, path)
        log_results(loggers, metrics, figures, step)
        for figure, _ in figures.values():
            plt.close(figure)
        return metrics
