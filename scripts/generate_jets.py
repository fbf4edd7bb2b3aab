"""Generate top (tt̄ → hadrons) and QCD jets with Pythia 8 + FastJet into the ATLAS layout.

    python scripts/generate_jets.py --out data/jets.h5 --n-signal 10000 --n-background 10000 \\
        --pt-min 350 --pt-max 2500 --n-slices 20 [--detector] [--no-mpi] [--processes 8]

Interrupted runs resume: finished chunks are kept in OUT.chunks/ until the merge.
"""

import argparse
import dataclasses
from pathlib import Path

from seal.data.generate import GeneratorConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output HDF5 file")
    parser.add_argument("--processes", type=int, default=None, help="parallel Pythias (all cores)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    for field in dataclasses.fields(GeneratorConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            kind = int if field.type in (int, "int") else float
            parser.add_argument(flag, type=kind, default=field.default)
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        parser.exit(0, f"{args.out} exists; --force to regenerate\n")
    cfg = GeneratorConfig(
        **{f.name: getattr(args, f.name) for f in dataclasses.fields(GeneratorConfig)}
    )
    summary = generate(cfg, args.out, args.processes)
    print(
        f"wrote {args.out}: {summary['jets_generated']} jets in {summary['seconds']:.0f} s, "
        f"{summary['jets_per_s']:.1f} jets/s ({summary['jets_per_s_per_core']:.1f} per core)"
    )


if __name__ == "__main__":
    main()
