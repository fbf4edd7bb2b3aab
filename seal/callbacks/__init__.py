"""Callbacks and logger glue that run while Lightning trains (never the symmetry penalty: that
is :class:`seal.symmetry.SymmetryRegularizer`)."""
