"""The one table builder of every cross-run report: runs grouped into rows, cells of value ± error.

A cell summarises the runs of one row for one metric key: a single run gives its value and its
bootstrap error over the test events (``<key>_err`` in its ``metrics.json``); several runs (seeds)
give the mean and the sample standard deviation over them. How numbers are written is the
caller's (``Style``); the rule is the same in ``scripts/report.py``, ``scripts/compare.py`` and
``scripts/results/summarise.py``.
"""

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


def values(runs: list[dict], key: str) -> list[float]:
    """The finite values of metric ``key`` over the runs that have it."""
    found = (float(r["metrics"][key]) for r in runs if key in r.get("metrics", {}))
    return [v for v in found if np.isfinite(v)]


def estimate(runs: list[dict], key: str, bootstrap: bool = True) -> tuple[float, float]:
    """(value, error) of metric ``key`` over ``runs``.

    Parameters
    ----------
    runs : list of dict
        Runs as :func:`seal.reports.runs.load_run` returns them.
    key : str
        A metric key of ``metrics.json``.
    bootstrap : bool
        For a single run, return its bootstrap error (``<key>_err``); else NaN.

    Returns
    -------
    (float, float)
        Several values: their mean and sample standard deviation (the spread over seeds); one
        run: its value and its bootstrap error (NaN when it has none or ``bootstrap`` is false);
        none: (NaN, NaN).
    """
    found = values(runs, key)
    if len(found) > 1:
        return float(np.mean(found)), float(np.std(found, ddof=1))
    if not found:
        return np.nan, np.nan
    error = runs[0]["metrics"].get(f"{key}_err") if bootstrap and len(runs) == 1 else None
    return found[0], float(error) if isinstance(error, (int, float)) else np.nan


def seed_count(runs: list[dict]) -> int:
    """How many distinct seeds ``runs`` were trained with."""
    return len({str(r["seed"]) for r in runs})


def seed_note(runs: list[dict]) -> str:
    """``n seeds``, or ``n runs, m seeds`` where runs repeat a seed."""
    seeds = seed_count(runs)
    return f"{seeds} seeds" if seeds == len(runs) else f"{len(runs)} runs, {seeds} seeds"


@dataclass(frozen=True)
class Style:
    """How a cell writes its numbers.

    Parameters
    ----------
    value, error : callable
        ``float → str`` for the value (or mean) and for its error.
    missing : str
        A cell without any value.
    bootstrap_mark : str
        Appended to a single run's ``value ± bootstrap error`` (e.g. ``ᵇ``).
    note_seeds : bool
        Append ``(n seeds)`` to a mean over several runs.
    bootstrap : bool
        Show a single run's bootstrap error (false: only a spread over seeds is an error).
    """

    value: Callable[[float], str] = lambda x: f"{x:.4g}"
    error: Callable[[float], str] = lambda x: f"{x:.2g}"
    missing: str = "–"
    bootstrap_mark: str = ""
    note_seeds: bool = False
    bootstrap: bool = True

    def cell(self, runs: list[dict], key: str) -> str:
        """``value ± error`` of ``key`` over ``runs`` (see :func:`estimate`)."""
        value, error = estimate(runs, key, self.bootstrap)
        if not np.isfinite(value):
            return self.missing
        text = self.value(value)
        if np.isfinite(error):
            text += f" ± {self.error(error)}"
            if len(values(runs, key)) > 1:
                text += f" ({seed_note(runs)})" if self.note_seeds else ""
            else:
                text += self.bootstrap_mark
        return text


def fixed(digits: int, kind: str = "f") -> Callable[[float], str]:
    """A number with ``digits`` after the point (``kind="e"``: in scientific notation)."""
    return lambda x: f"{x:.{digits}{kind}}"


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """The same table as CSV."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def write_records(path: Path, records: list[dict]) -> None:
    """Dict rows as CSV, with the union of their keys (in first-seen order) as columns."""
    fields = list(dict.fromkeys(k for record in records for k in record))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(records)
