"""Data: toy generators, jet data, DataModules (never imports seal.symmetry)."""
