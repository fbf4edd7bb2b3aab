"""Event generation: Pythia 8 + FastJet jets and dimuons, the calorimeter emulation, the ATLAS
writer, chunked generation over processes and submitit, and the command line. Runs before
training, on any CPU; loads no torch."""
