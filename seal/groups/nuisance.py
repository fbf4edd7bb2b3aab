"""Groups of nuisance transformations: the energy scale, and products with Lorentz subgroups.

A calorimeter's energy-scale uncertainty multiplies every (massless) cluster's four-momentum by
one factor, ``p → s p``: a dilation, a one-parameter group whose generator is the identity
matrix, and which commutes with every Lorentz transformation. It fits the same contract as the
Lorentz subgroups (``generators() → (k, 4, 4)``, ``sample(n) → (n, 4, 4)``), so GSEAL (a random
scale), δSEAL (its generator), augmentation and the spectrum take it unchanged; a
:class:`ProductGroup` penalises along Lorentz and energy-scale directions together.
"""

import math

import torch

from seal.groups.subgroups import _F64, Group, _draw


class EnergyScale(Group):
    """Every four-momentum of an example times one factor ``s``: ``Λ = s·1``.

    Parameters
    ----------
    shift_max : float
        GSEAL's range: ``ln s`` uniform in ``[−ln(1 + shift_max), ln(1 + shift_max)]``, so a
        scale and its inverse are equally likely (0.05: s between 0.952 and 1.05).

    Notes
    -----
    Generator: the 4×4 identity (``d(s p)/ds`` at ``s = 1`` is ``p``), named ``S``. An output
    that is a four-momentum scales with it (δSEAL's vector form compares ``∂_S f`` with ``f``).
    """

    name = "energy_scale"
    generator_names = ("S",)

    def __init__(self, shift_max: float = 0.05):
        if not (isinstance(shift_max, int | float) and math.isfinite(shift_max) and shift_max >= 0):
            raise ValueError(
                f"energy_scale: shift_max must be a finite number >= 0 (0.05 = ±5 %); "
                f"got {shift_max!r}"
            )
        self.shift_max = float(shift_max)

    def generators(self, dtype: torch.dtype = _F64, device=None) -> torch.Tensor:
        return torch.eye(4, dtype=dtype, device=device)[None]

    def log_scales(self, n: int, generator=None) -> torch.Tensor:
        """``ln s`` of ``n`` draws, float64 (n,)."""
        return (2.0 * _draw((n,), generator) - 1.0) * math.log1p(self.shift_max)

    def _sample(self, n, generator):
        s = torch.exp(self.log_scales(n, generator))
        return s[:, None, None] * torch.eye(4, dtype=_F64, device=s.device)


class ProductGroup(Group):
    """The direct product of groups whose elements commute: one element of each, multiplied.

    At most one factor may be a Lorentz subgroup; the others must be central (the energy scale),
    so that the product of samples is an element of the product group and its generators are the
    factors' generators together.

    Parameters
    ----------
    factors : Group
        E.g. ``ProductGroup(Lorentz(0.5), EnergyScale(0.05))`` (seven generators: Kx … Jz, S).
    """

    def __init__(self, *factors: Group):
        if len(factors) == 1 and isinstance(factors[0], list | tuple):
            factors = tuple(factors[0])  # Hydra passes one list
        if len(factors) < 2 or not all(isinstance(f, Group) for f in factors):
            raise ValueError(
                f"ProductGroup needs at least two groups; got {[type(f).__name__ for f in factors]}"
            )
        names = [f.name for f in factors]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # the same generators twice: δSEAL would count them double
            raise ValueError(f"ProductGroup: {twice} given more than once in {'+'.join(names)}")
        lorentz = [f.name for f in factors if not isinstance(f, EnergyScale)]
        if len(lorentz) > 1:
            raise ValueError(
                f"ProductGroup: {lorentz} do not commute; combine one Lorentz subgroup with the "
                f"energy scale (e.g. lorentz+energy_scale)"
            )
        self.factors = tuple(factors)

    @property
    def name(self) -> str:
        return "+".join(f.name for f in self.factors)

    @property
    def generator_names(self) -> tuple[str, ...]:
        return tuple(n for f in self.factors for n in f.generator_names)

    def generators(self, dtype: torch.dtype = _F64, device=None) -> torch.Tensor:
        return torch.cat([f.generators(dtype, device) for f in self.factors])

    def _sample(self, n, generator):
        out = self.factors[0]._sample(n, generator)
        for factor in self.factors[1:]:
            out = out @ factor._sample(n, generator)
        return out
