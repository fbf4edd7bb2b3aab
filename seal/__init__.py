"""seal: Symmetry EncourAging Losses — soft Lorentz-symmetry constraints for any network.

The distribution is ``seal-hep`` on the package index (``seal`` there is an unrelated project);
the import name is ``seal``. Importing this package loads nothing else: ``seal.groups`` and
``seal.symmetry`` need only torch, the rest of the rooms are listed in ``docs/design.md``.
"""

__version__ = "0.3.0"
