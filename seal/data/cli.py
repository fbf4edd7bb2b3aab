"""The command line shared by the generator scripts: one flag per config field."""

import argparse
import dataclasses
from pathlib import Path

from seal.data.chunks import Interrupted


def generator_main(config_cls, generate, doc: str, unit: str) -> None:
    """Parse ``--out``, ``--processes``, ``--force`` and every field of ``config_cls``; run
    ``generate(cfg, out, processes)`` (a summary with ``made``/``seconds``/``per_s``/
    ``per_s_per_core``) unless ``out`` exists."""
    parser = argparse.ArgumentParser(
        description=doc.splitlines()[0],
        epilog=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    parser.add_argument("--processes", type=int, default=None, help="parallel Pythias (all cores)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    fields = dataclasses.fields(config_cls)
    for field in fields:
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = int if field.type in (int, "int") else float
            parser.add_argument(flag, type=kind, default=field.default)
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.exit(0, f"{args.out} exists; --force to regenerate\n")
    cfg = config_cls(**{f.name: getattr(args, f.name) for f in fields})
    try:
        summary = generate(cfg, args.out, args.processes)
    except Interrupted as stop:  # the chunks are kept and the resume command was printed
        raise SystemExit(128 + stop.signum) from None
    print(
        f"wrote {args.out}: {summary['made']} {unit} in {summary['seconds']:.0f} s, "
        f"{summary['per_s']:.1f} {unit}/s ({summary['per_s_per_core']:.1f} per core)"
    )
