"""Samplable groups: the full Lorentz group, pure boosts, SO(3) and the collider subgroup.

Every group has ``generators() -> (k, 4, 4)`` (the directions δSEAL differentiates along) and
``sample(n, generator=None, dtype=float64, device=None) -> (n, 4, 4)`` (the elements GSEAL
compares under). Samples are drawn and built in float64, then cast.
"""

import math

import torch

from seal.groups.lorentz import boost_unchecked, generators, rotation_matrix

_F64 = torch.float64
MAGNITUDE_LAWS = ("uniform", "beta2", "volume")


def _draw(shape, generator) -> torch.Tensor:
    device = generator.device if generator is not None else None
    return torch.rand(shape, generator=generator, dtype=_F64, device=device)


def _normal(shape, generator) -> torch.Tensor:
    device = generator.device if generator is not None else None
    return torch.randn(shape, generator=generator, dtype=_F64, device=device)


def sample_speed(n: int, beta_max: float, magnitude: str, generator=None) -> torch.Tensor:
    """|β| in [0, β_max), shape (n,): ``uniform`` in |β|, ``beta2`` uniform in β²,
    ``volume`` uniform in the β-ball (|β|³ uniform)."""
    u = _draw((n,), generator)
    power = {"uniform": 1.0, "beta2": 2.0, "volume": 3.0}[magnitude]
    return beta_max * u ** (1.0 / power)


def uniform_rotation(n: int, generator=None) -> torch.Tensor:
    """Haar-uniform SO(3) rotations, shape (n, 4, 4), from normalised Gaussian quaternions."""
    q = _normal((n, 4), generator)
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    r = torch.stack(
        (
            1 - 2 * (y * y + z * z),
            2 * (x * y - w * z),
            2 * (x * z + w * y),
            2 * (x * y + w * z),
            1 - 2 * (x * x + z * z),
            2 * (y * z - w * x),
            2 * (x * z - w * y),
            2 * (y * z + w * x),
            1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).unflatten(-1, (3, 3))
    lam = q.new_zeros(n, 4, 4)
    lam[:, 0, 0] = 1.0
    lam[:, 1:, 1:] = r
    return lam


GENERATOR_NAMES = ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz")  # of lorentz.generators(), in order


class Group:
    """Base class: a subgroup of SO⁺(1,3) given by generator indices and a sampler (groups of
    other transformations of the four-momenta override :meth:`generators` and
    ``generator_names``: :mod:`seal.groups.nuisance`)."""

    name = "group"
    generator_indices: tuple[int, ...] = ()

    @property
    def generator_names(self) -> tuple[str, ...]:
        """One short name per generator, in the order of :meth:`generators` (``Kx`` … ``Jz``)."""
        return tuple(GENERATOR_NAMES[i] for i in self.generator_indices)

    def generators(self, dtype: torch.dtype = _F64, device=None) -> torch.Tensor:
        """Lie-algebra basis of this subgroup, shape (k, 4, 4) (see :func:`lorentz.generators`)."""
        return generators(dtype, device)[list(self.generator_indices)]

    def sample(self, n: int, generator=None, dtype: torch.dtype = _F64, device=None):
        """Draw ``n`` elements, shape (n, 4, 4).

        Drawn on ``generator``'s device (CPU when None, from the global RNG), in float64,
        then moved to ``device`` and cast to ``dtype``.
        """
        if n < 0:
            raise ValueError(f"number of samples must be >= 0; got {n}")
        return self._sample(n, generator).to(dtype=dtype, device=device)

    def _sample(self, n: int, generator) -> torch.Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class _BetaBall(Group):
    def __init__(self, beta_max: float = 0.5, magnitude: str = "uniform"):
        if not (0.0 <= beta_max < 1.0) or not math.isfinite(beta_max):
            raise ValueError(f"beta_max must satisfy 0 <= beta_max < 1; got {beta_max}")
        if magnitude not in MAGNITUDE_LAWS:
            raise ValueError(f"unknown magnitude law {magnitude!r}; choose one of {MAGNITUDE_LAWS}")
        self.beta_max = float(beta_max)
        self.magnitude = magnitude

    def _boosts(self, n: int, generator) -> torch.Tensor:
        direction = _normal((n, 3), generator)
        direction = direction / torch.linalg.vector_norm(direction, dim=-1, keepdim=True)
        speed = sample_speed(n, self.beta_max, self.magnitude, generator)
        return boost_unchecked(direction * speed.unsqueeze(-1))


class Boosts(_BetaBall):
    """Pure boosts with velocity in the ball |β| < ``beta_max``.

    Parameters
    ----------
    beta_max : float
        Radius of the velocity ball, 0 ≤ β_max < 1.
    magnitude : {"uniform", "beta2", "volume"}
        Law of |β|: uniform in |β|, uniform in β², or uniform in the ball's volume.
        The direction is uniform on the sphere.
    """

    name = "boosts"
    generator_indices = (0, 1, 2)

    def _sample(self, n, generator):
        return self._boosts(n, generator)


class Lorentz(_BetaBall):
    """Proper orthochronous Lorentz group: Λ = R·B, R Haar-uniform in SO(3), B from
    :class:`Boosts` (same parameters). Generators: all six."""

    name = "lorentz"
    generator_indices = (0, 1, 2, 3, 4, 5)

    def _sample(self, n, generator):
        return uniform_rotation(n, generator) @ self._boosts(n, generator)


class Rotations(Group):
    """SO(3) acting on the momenta, Haar-uniform samples; generators J_x, J_y, J_z."""

    name = "rotations"
    generator_indices = (3, 4, 5)

    def _sample(self, n, generator):
        return uniform_rotation(n, generator)


class ZBoostZRotation(_BetaBall):
    """The collider subgroup: boosts along the beam (z) times rotations about it.

    Parameters
    ----------
    beta_max, magnitude
        As for :class:`Boosts`, applied to |β_z|; the sign of β_z is uniform.

    Notes
    -----
    The rotation angle φ is uniform in [0, 2π). Generators: K_z, J_z.
    """

    name = "zboost_zrotation"
    generator_indices = (2, 5)

    def _sample(self, n, generator):
        speed = sample_speed(n, self.beta_max, self.magnitude, generator)
        sign = torch.where(_draw((n,), generator) < 0.5, -1.0, 1.0)
        beta = torch.zeros(n, 3, dtype=_F64, device=speed.device)
        beta[:, 2] = sign * speed
        phi = 2 * math.pi * _draw((n,), generator)
        axis_angle = torch.zeros(n, 3, dtype=_F64, device=speed.device)
        axis_angle[:, 2] = phi
        return rotation_matrix(axis_angle) @ boost_unchecked(beta)


GROUPS = {g.name: g for g in (Lorentz, Boosts, Rotations, ZBoostZRotation)}


def make_group(
    name: str, beta_max: float = 0.5, magnitude: str = "uniform", shift_max: float = 0.05
) -> Group:
    """Build a group by name: ``lorentz``, ``boosts``, ``rotations``, ``zboost_zrotation``,
    ``energy_scale``, or a product such as ``lorentz+energy_scale``.

    ``beta_max`` and ``magnitude`` are ignored by ``rotations``, which has no boosts;
    ``shift_max`` is the energy scale's range (:class:`~seal.groups.nuisance.EnergyScale`).
    """
    from seal.groups.nuisance import EnergyScale, ProductGroup

    names = [*sorted(GROUPS), "energy_scale"]
    parts = str(name).split("+")
    for part in parts:
        if part not in names:
            raise ValueError(
                f"unknown group {part!r}{f' in {name!r}' if len(parts) > 1 else ''}; choose one "
                f"of {names}, or a product such as 'lorentz+energy_scale'"
            )
    if len(parts) > 1:
        return ProductGroup(*(make_group(p, beta_max, magnitude, shift_max) for p in parts))
    if name == "energy_scale":
        return EnergyScale(shift_max)
    cls = GROUPS[name]
    if cls is Rotations:
        return cls()
    return cls(beta_max=beta_max, magnitude=magnitude)
