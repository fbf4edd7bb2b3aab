"""After training a tagger: ROC, metrics vs a boost of the test jets, output shift, pT bins."""

import csv
import logging
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from seal.callbacks.loggers import log_results
from seal.evaluation.plots import plot_curves, plot_panels, plot_shift_histograms
from seal.evaluation.robustness import DEFAULT_BETAS, check_betas, fixed_speed_boosts
from seal.evaluation.spectrum import plot_spectrum, residuals, spectrum
from seal.evaluation.systematics import SystematicsEvaluation
from seal.groups import make_group, transform_batch
from seal.metrics.bootstrap import tagging_errors
from seal.metrics.tagging import SIGNAL_EFFICIENCIES, classes, roc, tagging_metrics

log = logging.getLogger(__name__)


def _test_batches(datamodule):
    """Every test jet once: the datamodule's unsharded evaluation loader where it has one."""
    return getattr(datamodule, "evaluation_dataloader", datamodule.test_dataloader)()


def _write_predictions(path, index, labels, weights, logits, boosted, beta) -> None:
    """``predictions.csv``: per test jet its file row, label, weight and σ(output), nominal and
    with the test boost of |β| = ``beta`` (matched by row)."""
    order = np.argsort(boosted["index"], kind="stable")
    position = order[np.searchsorted(boosted["index"], index, sorter=order)].clip(
        max=len(order) - 1
    )
    if not np.array_equal(boosted["index"][position], index):
        raise RuntimeError("the boosted pass saw other test jets than the nominal one")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["index", "label", "weight", "score", f"score_boost@{beta:g}"])
        scores = _sigmoid(logits.astype(np.float64))  # float64: no ties from saturation
        moved = _sigmoid(boosted["logits"][position].astype(np.float64))
        for row in zip(index, labels, weights, scores, moved):
            writer.writerow([int(row[0]), int(row[1]), *(f"{v:.17g}" for v in row[2:])])


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class TaggingEvaluation:
    """Evaluate a tagger on the test split; writes CSVs and PNGs into the run folder.

    * ``roc.csv/png``: ε_S vs 1/ε_B (log axis) on the nominal test set;
    * ``boost_scan.csv/png``: AUC, accuracy and rejections with every test jet's constituents
      (and axis) boosted by a fixed |β| in a random direction (features recomputed by the model);
    * ``output_shift.csv/png``: |σ(f(Λx)) − σ(f(x))| per jet at |β| = ``shift_beta``;
    * ``pt_bins.csv/png``: metrics in bins of jet pT (for extrapolation studies);
    * ``spectrum.png``: the symmetry spectrum (``spectrum/Kx`` … ``spectrum/Jz`` with errors, and
      ``spectrum/S``, the energy scale, by default) along the generators of ``spectrum_group``,
      on the first ``spectrum_jets`` test jets (all if null: each jet costs a backward per
      generator, which for an expensive network can match the training time);
    * ``predictions.csv``: per test jet its file row (``index``), label, weight and score
      σ(output), nominal and at |β| = ``shift_beta`` — for your own ROC, pT or systematics plots;
    * ``mixing.csv/png`` (hybrid models only): the weight on the invariant subnet in deciles of
      the conditioning variable — how much symmetry the model chose, and where;
    * ``systematics.csv/png``: the relative systematic uncertainty of AUC and 1/ε_B at ε_S = 0.5
      and 0.3 per variation, up/down pair, group and in total, with correlated bootstrap errors
      (``systematics``: the options of :class:`~seal.evaluation.systematics.SystematicsEvaluation`,
      null for none).

    Returns metrics ``boost/auc@β``, ``boost/rej@0.3@β``, ``shift/median@β``, ``shift/p90@β``,
    ``ptbin/auc@lo-hi``, ``syst/<variation|pair|group|total>/<metric>``, and for hybrids
    ``mixing/w_inv_mean``.
    """

    def __init__(
        self,
        betas=DEFAULT_BETAS,
        shift_beta=0.5,
        pt_bins=(400, 600, 800, 1000, 1200),
        seed=1,
        spectrum_jets=None,
        systematics: dict | None = None,
        spectrum_group: str = "lorentz+energy_scale",
    ):
        self.betas = check_betas(betas)
        self.shift_beta = check_betas([shift_beta])[0]
        self.pt_bins, self.seed = [float(b) for b in pt_bins], seed
        if spectrum_jets is not None and int(spectrum_jets) < 2:  # a variance needs two jets
            raise ValueError(
                f"evaluation.spectrum_jets must be ≥ 2 (the spectrum divides by the output's "
                f"variance over the jets) or null; got {spectrum_jets!r}"
            )
        self.spectrum_jets = None if spectrum_jets is None else int(spectrum_jets)
        try:  # the generators of the spectrum: the Lorentz six and the energy scale, S
            self.spectrum_group = make_group(spectrum_group)
        except ValueError as error:
            raise ValueError(f"evaluation.spectrum_group: {error}") from None
        self.systematics = None if systematics is None else SystematicsEvaluation(**systematics)
        if len(self.pt_bins) < 2 or any(a >= b for a, b in zip(self.pt_bins, self.pt_bins[1:])):
            raise ValueError(f"evaluation.pt_bins must be ≥ 2 increasing edges; got {pt_bins}")

    @torch.no_grad()
    def _predict(self, module, datamodule) -> dict:
        """One pass over the test jets: for each batch the nominal output and the output at
        every scanned |β| (and ``shift_beta``). Returns ``{β: (logits, labels, weights, pT,
        index)}``, β = 0 the nominal set. Each batch's boosts are drawn from ``seed`` + its
        position, so every model sees the same boosted test set."""
        device = next(module.parameters()).device
        betas = sorted({0.0, *self.betas, self.shift_beta})
        columns = {beta: ([], [], [], [], []) for beta in betas}
        for i, batch in enumerate(_test_batches(datamodule)):
            batch = {k: v.to(device) for k, v in batch.items()}
            for beta in betas:
                boosted = batch
                if beta:
                    lam = fixed_speed_boosts(len(batch["p4"]), beta, seed=self.seed + i)
                    boosted = transform_batch(batch, lam.to(device), ["p4", "jet_p4"])
                logits, labels, weights, pts, index = columns[beta]
                logits.append(module(boosted).float().cpu())
                labels.append(boosted["target"].cpu())
                weights.append(boosted["weight"].cpu())
                pts.append(torch.hypot(boosted["jet_p4"][:, 1], boosted["jet_p4"][:, 2]).cpu())
                index.append(
                    boosted["index"].cpu() if "index" in boosted else torch.full_like(pts[-1], -1)
                )
        out = {}
        for beta, (logits, labels, weights, pts, index) in columns.items():
            index = torch.cat(index).long().numpy()
            if (index < 0).any():  # no file rows in the batches: the position in the test split
                index = np.arange(len(index))
            out[beta] = [torch.cat(x).numpy() for x in (logits, labels, weights, pts)] + [index]
        return out

    def __call__(
        self, module, datamodule, out_dir: Path, loggers=(), step: int = 0, run_name: str = ""
    ) -> dict:
        module.eval()
        self.run_name = run_name  # the first line of every figure title
        datamodule.setup("test")
        scan = self._predict(module, datamodule)
        logits, labels, weights, pt, index = scan[0.0]
        figures, metrics = {}, {}
        figures["roc"] = self._roc(labels, logits, weights, out_dir)
        metrics.update(self._boost_scan(scan, out_dir, figures))
        shifted = {"index": scan[self.shift_beta][4], "logits": scan[self.shift_beta][0]}
        _write_predictions(
            out_dir / "predictions.csv", index, labels, weights, logits, shifted, self.shift_beta
        )
        metrics.update(self._pt_bins(labels, logits, weights, pt, out_dir, figures))
        metrics.update(self._spectrum(module, datamodule, out_dir, figures))
        if self.systematics is not None:
            metrics.update(
                self.systematics(module, datamodule, scan[0.0], out_dir, figures, run_name)
            )
        if hasattr(getattr(module, "net", None), "mixing"):
            metrics.update(self._mixing(module.net, datamodule, out_dir, figures))
        net = getattr(module, "net", None)
        if hasattr(net, "without_references") and net.references:  # LLoCa + references
            metrics.update(self._reference_shift(module, datamodule, logits, out_dir, figures))
        log_results(loggers, metrics, figures, step)
        for figure, _ in figures.values():
            plt.close(figure)
        return metrics

    def _roc(self, labels, logits, weights, out_dir):
        eps_b, eps_s = roc(labels, logits, weights)
        keep = eps_b > 0
        _write_csv(out_dir / "roc.csv", [{"eps_s": s, "eps_b": b} for s, b in zip(eps_s, eps_b)])
        path = out_dir / "roc.png"
        fig = plot_curves(
            {"test": (eps_s[keep], 1 / eps_b[keep])},
            path,
            "signal efficiency ε_S",
            "background rejection 1/ε_B",
            "ROC (test jets)",
            marker=None,
            run_name=self.run_name,
        )
        return fig, path

    def _boost_scan(self, scan: dict, out_dir, figures) -> dict:
        """Metrics vs |β| with bootstrap errors, and the per-jet output shift at ``shift_beta``."""
        rows, metrics = [], {}
        for beta in self.betas:
            logits, labels, weights, _, _ = scan[beta]
            row = {"beta": beta, **_metrics_with_errors(labels, logits, weights)}
            rows.append(row)
            for name in ("auc", "rej@0.3"):
                metrics[f"boost/{name}@{beta:g}"] = row[name]
                metrics[f"boost/{name}@{beta:g}_err"] = row[f"{name}_err"]
        # the same jets in the same order in every column of the scan
        shift = np.abs(_sigmoid(scan[self.shift_beta][0]) - _sigmoid(scan[0.0][0]))
        _write_csv(out_dir / "boost_scan.csv", rows)
        betas = [r["beta"] for r in rows]
        auc = {"AUC": (betas, [r["auc"] for r in rows], [r["auc_err"] for r in rows])}
        rejection = {
            f"ε_S = {e}": (betas, [r[f"rej@{e}"] for r in rows], [r[f"rej@{e}_err"] for r in rows])
            for e in SIGNAL_EFFICIENCIES
        }
        path = out_dir / "boost_scan.png"
        fig = plot_panels(
            [(auc, "AUC", False), (rejection, "background rejection 1/ε_B", True)],
            path,
            "boost |β| of every test jet (random directions)",
            "tagging vs boost (bootstrap errors)",
            run_name=self.run_name,
        )
        figures["boost_scan"] = (fig, path)
        metrics[f"shift/median@{self.shift_beta:g}"] = float(np.median(shift))
        metrics[f"shift/p90@{self.shift_beta:g}"] = float(np.quantile(shift, 0.9))
        _write_csv(out_dir / "output_shift.csv", [{"shift": float(s)} for s in shift])
        path = out_dir / "output_shift.png"
        fig = plot_shift_histograms(
            {"test jets": shift},
            path,
            f"|σ(f(Λx)) − σ(f(x))| at |β| = {self.shift_beta:g}",
            "output shift under a boost",
            self.run_name,
        )
        figures["output_shift"] = (fig, path)
        return metrics

    def _pt_bins(self, labels, logits, weights, pt, out_dir, figures):
        rows, metrics = [], {}
        for lo, hi in zip(self.pt_bins[:-1], self.pt_bins[1:]):
            inside = (pt >= lo) & (pt < hi)
            if len(np.unique(classes(labels[inside]))) < 2:
                log.warning(
                    "evaluation.pt_bins: the bin %g–%g GeV holds %d test jets, not both "
                    "classes (test jets span %.0f–%.0f GeV): no metrics for it",
                    lo,
                    hi,
                    int(inside.sum()),
                    pt.min(),
                    pt.max(),
                )
                continue
            metrics_in = _metrics_with_errors(labels[inside], logits[inside], weights[inside])
            row = {"pt_lo": lo, "pt_hi": hi, "jets": int(inside.sum()), **metrics_in}
            rows.append(row)
            for name in ("auc", "rej@0.3"):
                metrics[f"ptbin/{name}@{lo:g}-{hi:g}"] = row[name]
                metrics[f"ptbin/{name}@{lo:g}-{hi:g}_err"] = row[f"{name}_err"]
        if rows:
            _write_csv(out_dir / "pt_bins.csv", rows)
            path = out_dir / "pt_bins.png"
            centres = [(r["pt_lo"] + r["pt_hi"]) / 2 for r in rows]
            widths = [(r["pt_hi"] - r["pt_lo"]) / 2 for r in rows]
            panels = [
                (
                    {
                        "test jets": (
                            centres,
                            [r[name] for r in rows],
                            [r[f"{name}_err"] for r in rows],
                            widths,
                        )
                    },
                    label,
                    logy,
                )
                for name, label, logy in (
                    ("auc", "AUC", False),
                    ("rej@0.3", "1/ε_B at ε_S = 0.3", True),
                )
            ]
            fig = plot_panels(
                panels,
                path,
                "jet pT [GeV]",
                "tagging in jet-pT bins (bootstrap errors; bars span the bin)",
                line=False,
                run_name=self.run_name,
            )
            figures["pt_bins"] = (fig, path)
        return metrics

    def _spectrum(self, module, datamodule, out_dir, figures) -> dict:
        """The trained tagger's symmetry spectrum (its logit) on the test jets."""
        device = next(module.parameters()).device

        def batches():  # the first ``spectrum_jets`` test jets (derivatives cost a backward each)
            seen = 0
            for batch in _test_batches(datamodule):
                if self.spectrum_jets is not None:
                    batch = {k: v[: self.spectrum_jets - seen] for k, v in batch.items()}
                yield {k: v.to(device) for k, v in batch.items()}
                seen += len(batch["p4"])
                if self.spectrum_jets is not None and seen >= self.spectrum_jets:
                    return

        group = self.spectrum_group
        r, y = residuals(module, batches(), "scalar", group=group)
        bars = {"model": spectrum(r, y, names=group.generator_names)}
        path = out_dir / "spectrum.png"
        fig = plot_spectrum(bars, path, "symmetry spectrum of the logit", self.run_name)
        figures["spectrum"] = (fig, path)
        return bars["model"]

    @torch.no_grad()
    def _reference_shift(self, module, datamodule, logits, out_dir, figures) -> dict:
        """|σ(f(x)) − σ(f(x) without the reference vectors)| per test jet (same weights): how
        much the tagger leans on the references that break its invariance."""
        device = next(module.parameters()).device
        with module.net.without_references():
            bare = [
                module({k: v.to(device) for k, v in b.items()}).detach().float().cpu()
                for b in _test_batches(datamodule)
            ]
        shift = np.abs(_sigmoid(torch.cat(bare).numpy()) - _sigmoid(logits))
        _write_csv(out_dir / "reference_shift.csv", [{"shift": float(x)} for x in shift])
        path = out_dir / "reference_shift.png"
        fig = plot_shift_histograms(
            {"test jets": shift},
            path,
            "|σ(f(x)) − σ(f(x) without the reference vectors)|",
            "output change when the references are removed",
            run_name=self.run_name,
        )
        figures["reference_shift"] = (fig, path)
        mean, error = float(shift.mean()), float(shift.std(ddof=1) / np.sqrt(len(shift)))
        return {
            "references/shift_mean": mean,
            "references/shift_mean_err": error,
            "references/shift_median": float(np.median(shift)),
        }

    @torch.no_grad()
    def _mixing(self, net, datamodule, out_dir, figures):
        device = next(net.parameters()).device
        w_inv, cond = [], []
        for batch in _test_batches(datamodule):
            batch = {k: v.to(device) for k, v in batch.items()}
            w_inv.append(net.mixing(batch)[:, 0].float().cpu())
            cond.append(net.condition_value(batch).float().cpu())
        w_inv, cond = torch.cat(w_inv).numpy(), torch.cat(cond).numpy()
        edges = np.unique(np.quantile(cond, np.linspace(0, 1, 11)))
        index = np.clip(np.digitize(cond, edges) - 1, 0, len(edges) - 2)
        rows = [
            {
                "cond_lo": edges[i],
                "cond_hi": edges[i + 1],
                "events": int((index == i).sum()),
                "cond_median": float(np.median(cond[index == i])),
                "w_inv_mean": float(w_inv[index == i].mean()),
                "w_inv_std": float(w_inv[index == i].std()),
            }
            for i in range(len(edges) - 1)
            if (index == i).any()
        ]
        _write_csv(out_dir / "mixing.csv", rows)
        path = out_dir / "mixing.png"
        curve = {"mean w_inv": ([r["cond_median"] for r in rows], [r["w_inv_mean"] for r in rows])}
        fig = plot_curves(
            curve,
            path,
            f"{net.condition} [GeV] (median of each test decile)",
            "weight on the invariant subnet",
            "hybrid: symmetry chosen",
            logy=False,
            run_name=self.run_name,
        )
        figures["mixing"] = (fig, path)
        return {"mixing/w_inv_mean": float(w_inv.mean())}


def _metrics_with_errors(labels, logits, weights) -> dict:
    """Tagging metrics and their bootstrap errors (``<name>_err``)."""
    return {**tagging_metrics(labels, logits, weights), **tagging_errors(labels, logits, weights)}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
