"""Compare models across sweeps: `python scripts/compare.py SWEEP_DIR [SWEEP_DIR ...] [--out DIR]`.

Every folder under the given ones that holds a Hydra run (`.hydra/config.yaml`) is read; the
Markdown table (compare.md), a CSV (compare.csv) and figures go to --out (default: the first
folder), and the table is printed.
"""

import argparse
from pathlib import Path

from seal.reports.compare import compare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dirs", type=Path, nargs="+", help="folders holding Hydra runs")
    parser.add_argument("--out", type=Path, default=None, help="where to write (first folder)")
    args = parser.parse_args()
    for folder in args.sweep_dirs:
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder")
    out = args.out or args.sweep_dirs[0]
    print(compare(args.sweep_dirs, out))
    print(f"written: {out / 'compare.md'}, {out / 'compare.csv'} and PNG figures")


if __name__ == "__main__":
    main()
