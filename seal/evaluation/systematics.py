"""Systematic uncertainties of a tagger's metrics, evaluated the ATLAS way on the test jets.

For every variation v of the test jets — seal's detector variations made in memory, or ATLAS v2
variation files matched jet by jet, and the generator-weight variations of the nominal file (the
same jets weighted by ``EventInfo_mcEventWeights[:, i] / [:, 0]``) — and every metric R (the AUC
and the background rejection 1/ε_B at ε_S = 0.5 and 0.3), with the nominal jets' labels:

* the relative shift of a variation: δ_v = |R_v / R_nom − 1|;
* an up/down pair (``<name>_up``, ``<name>_down``) counts once, as max(δ_up, δ_down);
* a group (``detector``, ``modelling``, …) is the sum in quadrature of its members;
* the total is the sum in quadrature of the groups.

This is the recipe of the ATLAS open-data ``calc.py`` as the peer tagging frameworks combine it
(relative shifts of the rejection, the larger of each up/down pair, quadrature sums). Every
number has a bootstrap error from one resampling of the *matched* test jets: a resample draws
jets with replacement and uses the same counts for the nominal and every variation, so their
correlation is kept (the shifts are far more precise than the metrics themselves), and each
quantity above — maxima and quadrature sums included — is computed on every resample; the error
is the standard deviation over the resamples.
"""

import csv
import functools
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from seal.data.systematics import Variation
from seal.data.variations import GROUP, VARIATIONS, VariationSettings
from seal.evaluation.plots import hep_style, save, subplots, tex, title
from seal.metrics.bootstrap import RESAMPLES, SEED, count_blocks, resampled_tagging_metrics, spread
from seal.metrics.tagging import classes, tagging_metrics

log = logging.getLogger(__name__)
METRICS = ("rej@0.5", "rej@0.3", "auc")
LABELS = {"rej@0.5": "1/ε_B at ε_S = 0.5", "rej@0.3": "1/ε_B at ε_S = 0.3", "auc": "AUC"}
BATCH_KEYS = ("p4", "mask", "target", "weight", "jet_p4", "index")


def components(variations) -> list[tuple[str, str, list[str]]]:
    """(component, group, member variations): ``x_up`` and ``x_down`` form the component ``x``;
    every other variation is its own component."""
    names = {v.name: v.group for v in variations}
    out, seen = [], set()
    for name, group in names.items():
        if name in seen:
            continue
        stem, _, side = name.rpartition("_")
        partner = f"{stem}_{'down' if side == 'up' else 'up'}" if side in ("up", "down") else None
        if partner in names and names[partner] == group:
            out.append((stem, group, sorted([name, partner], key=lambda n: not n.endswith("up"))))
            seen.update((name, partner))
        else:
            out.append((name, group, [name]))
            seen.add(name)
    return out


def combine(nominal: dict, varied: dict, parts) -> dict:
    """Relative uncertainties of every variation, component, group and the total, for each
    metric: ``{name: {metric: value}}`` (values or arrays of resamples alike)."""
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):  # inf/inf: a resample without
        for name, metrics in varied.items():  # background passing (its spread is then inf)
            out[name] = {m: np.abs(metrics[m] / nominal[m] - 1.0) for m in METRICS}
    groups: dict[str, dict] = {}
    for component, group, members in parts:
        out[component] = {
            m: functools.reduce(np.maximum, [out[v][m] for v in members]) for m in METRICS
        }
        squares = groups.setdefault(group, {m: 0.0 for m in METRICS})
        for m in METRICS:
            squares[m] = squares[m] + out[component][m] ** 2
    for group, squares in groups.items():
        out[f"group:{group}"] = {m: np.sqrt(squares[m]) for m in METRICS}
    out["total"] = {m: np.sqrt(sum(out[f"group:{g}"][m] ** 2 for g in groups)) for m in METRICS}
    return out


class SystematicsEvaluation:
    """The systematic uncertainties of one run's metrics (see the module docstring).

    Parameters
    ----------
    variations : "auto", str or list
        ``auto``: seal's detector variations of the test jets, made in memory
        (:mod:`seal.data.variations`, sizes from ``settings``); otherwise a folder of ATLAS v2
        variation files or a list of them, matched to the test jets.
    settings : mapping, optional
        ``scale``, ``resolution``, ``position``, ``efficiency``, ``seed`` of the ``auto``
        variations.
    pt_tolerance : float
        For files: how far a matched jet's pT may be from the nominal's (a fraction).
    batch_size : int
        Jets per forward pass over the varied jets. 128 by default: on CPU the transformer,
        LLoCa and L-GATr all run fastest there, 1.8–2.6× faster per jet than at 2048
        (``make bench BENCH_ARGS="--only systematics"``); raise it on a GPU.
    jets : int, optional
        Evaluate on the first this many test jets by row (all if null), and on as many of a
        two-point sample's: every variation costs a forward pass over them, and the correlated
        bootstrap keeps the shifts precise on fewer jets than the metrics need.
    two_point : mapping, optional
        ``{name: file}``: other samples of the same selection (another hadronisation or
        shower: ``generate_jets.py --alternative``), each evaluated on its own test split as a
        whole (δ = |R_alt / R_nom − 1|, group ``modelling``; their bootstrap is independent of
        the nominal's: different jets).
    """

    def __init__(
        self,
        variations="auto",
        settings=None,
        pt_tolerance=0.25,
        batch_size=128,
        two_point=None,
        jets=None,
    ):
        if jets is not None and (not isinstance(jets, int) or isinstance(jets, bool) or jets < 100):
            raise ValueError(
                f"evaluation.systematics.jets must be ≥ 100 test jets or null (all); got {jets!r}"
            )
        self.jets = jets
        if isinstance(variations, str | Path):
            variations = str(variations)
        elif variations is not None and not isinstance(variations, list | tuple):
            variations = list(variations)  # a ListConfig
        if variations is None or variations == "" or variations == []:
            raise ValueError(
                "evaluation.systematics.variations must be 'auto', a folder or a list of files "
                "(to switch the systematics off: evaluation.systematics=null)"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"evaluation.systematics.batch_size must be ≥ 1; got {batch_size!r}")
        self.variations = (
            variations if isinstance(variations, str) else [str(v) for v in variations]
        )
        self.settings = dict(settings) if isinstance(settings, Mapping) else settings
        self.pt_tolerance, self.batch_size = pt_tolerance, batch_size
        if self.settings is not None:  # bad sizes are named now, not after training
            VariationSettings(**self.settings)
        if not isinstance(pt_tolerance, int | float) or not 0 < pt_tolerance < 1:
            raise ValueError(
                f"evaluation.systematics.pt_tolerance must be in (0, 1); got {pt_tolerance!r}"
            )
        if isinstance(self.variations, str):
            paths = [] if self.variations == "auto" else [self.variations]
        else:
            paths = self.variations
        missing = [p for p in paths if not Path(p).exists()]
        if missing:
            raise FileNotFoundError(
                f"evaluation.systematics.variations: {missing} not found (make variation files "
                f"with scripts/make_variations.py, or use 'auto')"
            )
        if two_point is not None and not isinstance(two_point, Mapping):
            raise ValueError(
                f"evaluation.systematics.two_point must map names to files "
                f"(two_point.hadronisation=/path/alt.h5); got {two_point!r}"
            )
        self.two_point = {str(k): str(v) for k, v in (two_point or {}).items()}
        self._check_names([Variation(name, GROUP, None) for name in VARIATIONS])
        missing = {k: v for k, v in self.two_point.items() if not Path(v).exists()}
        if missing:
            raise FileNotFoundError(
                f"evaluation.systematics.two_point: {missing} not found (make an alternative "
                f"sample with scripts/generate_jets.py --alternative hadronisation|shower)"
            )

    def _check_names(self, variations) -> None:
        """A two-point sample's name must not be a variation's, a pair's or a group's (their
        metrics would overwrite each other)."""
        reserved = {v.name for v in variations} | {c for c, _, _ in components(variations)}
        reserved |= {v.group for v in variations} | {"total", "modelling"}
        clash = sorted(reserved & set(self.two_point))
        if clash:
            raise ValueError(
                f"evaluation.systematics.two_point: {clash} already name a variation, pair or "
                f"group ({sorted(reserved)}); give the two-point sample another name"
            )

    def __call__(self, module, datamodule, nominal, out_dir: Path, figures: dict, run_name=""):
        """``nominal``: the test jets' (logits, labels, weights, pT, index) of the nominal pass.
        Returns the ``syst/…`` metrics; writes systematics.csv and .png."""
        start = time.perf_counter()
        if not hasattr(datamodule, "systematic_set"):
            log.info(
                "systematics: %s has no variations to offer; skipped", type(datamodule).__name__
            )
            return {}
        try:
            systematic_set = datamodule.systematic_set(
                self.variations, self.settings, self.pt_tolerance
            )
        except ValueError as error:
            if self.variations == "auto" and "ATLAS layout" in str(error):
                log.warning("systematics skipped: %s", error)
                return {}
            raise
        try:
            return self._evaluate(
                systematic_set, module, datamodule, nominal, out_dir, figures, run_name, start
            )
        finally:
            systematic_set.close()  # the nominal file is not left open after the run

    def _evaluate(
        self, systematic_set, module, datamodule, nominal, out_dir, figures, run_name, start
    ):
        order = np.argsort(nominal[4], kind="stable")[: self.jets]  # the first rows, whatever
        logits, labels, weights, _, index = (x if x is None else x[order] for x in nominal)
        if len(np.unique(classes(labels))) < 2:
            log.warning("systematics skipped: the test jets are not of both classes")
            return {}
        self._check_names(systematic_set.variations)  # now with the file's weight names
        device = next(module.parameters()).device
        scores = {}
        for variation in systematic_set.variations:
            arrays = systematic_set.arrays(variation, index)
            if not np.array_equal(arrays["target"], labels):
                raise ValueError(
                    f"systematics: the labels of variation {variation.name!r} differ from the "
                    f"nominal test jets' ({int((arrays['target'] != labels).sum())} jets)"
                )
            if variation.weight_index is not None:  # the same jets, other weights: no forward
                scores[variation.name] = (logits, arrays["weight"])
            else:
                predicted = _predict(module, arrays, self.batch_size, device)
                scores[variation.name] = (predicted, weights)
        others = {}  # two-point samples: (scores, labels, weights) of their own test jets
        for name, path in self.two_point.items():
            arrays = datamodule.alternative_test_arrays(path)
            arrays = {k: v[: self.jets] for k, v in arrays.items()}  # as many as the nominal
            others[name] = (
                _predict(module, arrays, self.batch_size, device),
                arrays["target"],
                arrays["weight"],
            )
        two_point = [Variation(name, "modelling", Path(p)) for name, p in self.two_point.items()]
        parts = components([*systematic_set.variations, *two_point])
        values = self._values(logits, labels, weights, scores, others, parts)
        errors = self._errors(logits, labels, weights, scores, others, parts)
        seconds = time.perf_counter() - start
        metrics = {"syst/seconds": seconds}
        for name, by_metric in values["relative"].items():
            key = name.replace("group:", "")
            for m in METRICS:
                metrics[f"syst/{key}/{m}"] = float(by_metric[m])
                metrics[f"syst/{key}/{m}_err"] = errors[name][m]
        rows = _rows(
            values, errors, [*systematic_set.variations, *two_point], parts, self.two_point
        )
        _write(out_dir / "systematics.csv", rows)
        path = out_dir / "systematics.png"
        figures["systematics"] = (_plot(rows, path, run_name, len(labels)), path)
        total = metrics["syst/total/rej@0.5"], metrics["syst/total/rej@0.5_err"]
        log.info(
            "systematics: %d variations of %d test jets in %.1f s; total relative uncertainty of "
            "1/ε_B at ε_S = 0.5: %.2f ± %.2f %%",
            len(scores),
            len(labels),
            seconds,
            100 * total[0],
            100 * total[1],
        )
        return metrics

    @staticmethod
    def _values(logits, labels, weights, scores, others, parts) -> dict:
        nominal = tagging_metrics(labels, logits, weights)
        varied = {name: tagging_metrics(labels, s, w) for name, (s, w) in scores.items()}
        varied |= {name: tagging_metrics(y, s, w) for name, (s, y, w) in others.items()}
        return {"nominal": nominal, "varied": varied, "relative": combine(nominal, varied, parts)}

    @staticmethod
    def _errors(logits, labels, weights, scores, others, parts) -> dict:
        """Matched variations resample with the nominal's counts; a two-point sample (other
        jets) with its own, independent ones."""
        blocks = []
        own = [
            count_blocks(len(y), RESAMPLES, SEED + 1 + i)
            for i, (_, y, _) in enumerate(others.values())
        ]
        for counts, *other_counts in zip(count_blocks(len(labels), RESAMPLES, SEED), *own):
            nominal = resampled_tagging_metrics(labels, logits, weights, counts)
            varied = {
                name: resampled_tagging_metrics(labels, s, w, counts)
                for name, (s, w) in scores.items()
            }
            for (name, (s, y, w)), c in zip(others.items(), other_counts):
                varied[name] = resampled_tagging_metrics(y, s, w, c)
            blocks.append(combine(nominal, varied, parts))
        return {
            name: {m: spread(np.concatenate([b[name][m] for b in blocks])) for m in METRICS}
            for name in blocks[0]
        }


@torch.no_grad()
def _predict(module, arrays: dict, batch_size: int, device) -> np.ndarray:
    out = []
    for a in range(0, len(arrays["p4"]), batch_size):
        batch = {
            k: torch.from_numpy(np.ascontiguousarray(arrays[k][a : a + batch_size])).to(device)
            for k in BATCH_KEYS
        }
        out.append(module(batch).float().cpu())
    return torch.cat(out).numpy()


def _rows(values, errors, variations, parts, two_point=()) -> list[dict]:
    """systematics.csv: one row per variation (or two-point sample), up/down pair, group and
    the total."""
    groups = {v.name: v.group for v in variations}
    rows = []

    def row(kind, name, group, key):
        entry = {"kind": kind, "name": name, "group": group}
        for m in METRICS:
            if kind in ("variation", "two-point"):
                entry[m] = float(values["varied"][name][m])
            elif kind == "total":
                entry[m] = float(values["nominal"][m])  # the nominal metric on the total's row
            else:
                entry[m] = ""
            entry[f"{m}_rel"] = float(values["relative"][key][m])
            entry[f"{m}_rel_err"] = errors[key][m]
        rows.append(entry)

    for name in groups:
        row("two-point" if name in two_point else "variation", name, groups[name], name)
    for component, group, members in parts:
        if len(members) > 1:
            row("pair", component, group, component)
    for group in dict.fromkeys(groups.values()):
        row("group", group, group, f"group:{group}")
    row("total", "total", "", "total")
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _plot(rows, path, run_name, n_jets):
    """Relative uncertainty per variation, pair, group and the total (%), one panel a metric."""
    fig, axes = subplots(len(METRICS), width=4.4, height=0.42 * len(rows) + 1.8)
    shown = rows[::-1]  # the variations on top, the total at the bottom
    with hep_style():
        for ax, m in zip(axes, METRICS):
            y = np.arange(len(shown))
            values = [100 * r[f"{m}_rel"] for r in shown]
            errors = [
                100 * r[f"{m}_rel_err"] if math.isfinite(r[f"{m}_rel_err"]) else 0 for r in shown
            ]
            colours = [
                {"total": "black", "group": "grey", "pair": "C1"}.get(r["kind"], "C0")
                for r in shown
            ]
            ax.barh(y, values, xerr=errors, color=colours, alpha=0.8, capsize=2)
            names = [r["name"] if r["kind"] != "group" else f"{r['name']} (group)" for r in shown]
            ax.set_yticks(y, names if ax is axes[0] else [""] * len(y), fontsize=9)
            ax.set_xlabel(tex(f"relative uncertainty of {LABELS[m]} [%]"), fontsize=10)
            ax.set_xlim(left=0)  # |shifts|: the errors are a spread, not a sign
            ax.minorticks_off()
            ax.grid(alpha=0.3, axis="x")
        title(
            axes[0],
            f"systematic uncertainties ({n_jets} test jets; bootstrap errors, correlated)",
            run_name,
        )
    save(fig, path)
    return fig
