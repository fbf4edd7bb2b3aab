"""Detector systematic variations of a jet file, as the ATLAS top-tagging open data v2 lays them
out: OUT/nominal.h5 and one OUT/<variation>.h5 per variation, the same jets, matched by
EventInfo_mcEventNumber (seal.generation.variations says what each variation does).

    python scripts/make_variations.py --nominal data/top_window.h5 --out data/top_window_syst \\
        [--rows 10000:26000] [--scale 0.01] [--resolution 0.05] [--position 0.01] \\
        [--efficiency 0.02] [--only energy_scale_up,energy_scale_down] [--force]

A variation file already in OUT is kept (an interrupted run resumes), unless --force.
"""

import argparse
import dataclasses
import logging
import sys
import time
from pathlib import Path

from seal.generation.variations import VARIATIONS, VariationSettings, write_variations


def rows(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--rows must be START:STOP (e.g. 10000:26000); got {text!r}"
        ) from None
    return a, b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--nominal", type=Path, required=True, help="ATLAS-layout jet file")
    parser.add_argument("--out", type=Path, required=True, help="folder for the files")
    parser.add_argument("--rows", type=rows, default=None, help="START:STOP rows (default all)")
    parser.add_argument(
        "--only", default=",".join(VARIATIONS), help=f"comma-separated, of {', '.join(VARIATIONS)}"
    )
    parser.add_argument("--force", action="store_true", help="rewrite files already in OUT")
    for field in dataclasses.fields(VariationSettings):
        parser.add_argument(
            f"--{field.name}",
            type=type(field.default),
            default=field.default,
            help=f"default {field.default}",
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.nominal.exists():
        parser.error(f"--nominal {args.nominal} does not exist")
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in VARIATIONS]
    if unknown:
        parser.error(f"--only: unknown variation(s) {unknown}; choose from {list(VARIATIONS)}")
    try:
        settings = VariationSettings(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(VariationSettings)}
        )
    except ValueError as error:
        parser.error(str(error).replace("variation setting ", "--"))
    start = time.perf_counter()
    try:
        paths = write_variations(
            args.nominal, args.out, settings, names, args.rows, force=args.force
        )
    except (KeyError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(paths)} files to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
