"""Generate top (tt̄ → hadrons) and QCD jets with Pythia 8 + FastJet into the ATLAS layout.

    python scripts/generate_jets.py --out data/jets.h5 --n-signal 10000 --n-background 10000 \\
        --pt-min 350 --pt-max 2500 --n-slices 20 [--detector] [--no-mpi] [--processes 8]

Interrupted runs resume: finished chunks are kept in OUT.chunks/ until the merge.
"""

from seal.generation.cli import generator_main
from seal.generation.jets import GeneratorConfig, generate

if __name__ == "__main__":
    generator_main(GeneratorConfig, generate, __doc__, "jets")
