"""Generate Z → μμ (signal) and γ* → μμ (background) with Pythia 8, smeared and reweighted.

    python scripts/generate_dimuon.py --out data/dimuon.h5 --n-signal 75000 --n-background 75000 \\
        [--smear 0.1] [--mass-min 60 --mass-max 120] [--processes 8]

Interrupted runs resume: finished chunks are kept in OUT.chunks/ until the merge.
"""

from seal.generation.cli import generator_main
from seal.generation.dimuon import DimuonConfig, generate_dimuon

if __name__ == "__main__":
    generator_main(DimuonConfig, generate_dimuon, __doc__, "events")
