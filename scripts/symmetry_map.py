"""Map where a symmetry loss helps: `python scripts/symmetry_map.py SWEEP_DIR [...] --out DIR`.

The sweeps hold plain runs (`+experiment=toy_baseline`) and GSEAL/δSEAL runs over
`symmetry.weight` (and `symmetry.group.beta_max` for GSEAL), per `data.truth`, with seeds. Per
truth, writes `toy_map_<truth>.png` (heat maps of the test MSE relative to plain training,
nominal and with every test event boosted by |β| = 0.5, and δSEAL vs λ) and `toy_map.csv`.
"""

import argparse
from pathlib import Path

from seal.reports.maps import plot_map, ratios
from seal.reports.runs import find_runs
from seal.reports.tables import write_records

METRICS = [("test/mse", "nominal"), ("boost/mse@0.5", "|β| = 0.5")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="folders holding Hydra runs")
    parser.add_argument("--out", type=Path, required=True, help="where the figures go")
    args = parser.parse_args()
    runs = [run for folder in args.sweep_dirs for run in find_runs(folder)]
    rows = [row for metric, _ in METRICS for row in ratios(runs, metric)]
    if not rows:
        parser.error("no symmetry runs with a plain run on the same truth to compare against")
    args.out.mkdir(parents=True, exist_ok=True)
    write_records(args.out / "toy_map.csv", rows)
    for truth in sorted({row["truth"] for row in rows}):
        print("written:", plot_map(rows, truth, METRICS, args.out / f"toy_map_{truth}.png"))
    print("written:", args.out / "toy_map.csv")


if __name__ == "__main__":
    main()
