"""Summarise a sweep: `python scripts/report.py outputs/<task>/multiruns/<date>`.

Writes report.csv, report.md and report_vs_beta.png into the sweep folder and prints the
table and the figure's path.
"""

import argparse
from pathlib import Path

from seal.reports.sweep import summarise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a Hydra multirun folder")
    args = parser.parse_args()
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a folder")
    table, figure = summarise(args.sweep_dir)
    print(table)
    print(f"table:  {args.sweep_dir / 'report.md'} (and report.csv)")
    print(f"figure: {figure}")


if __name__ == "__main__":
    main()
