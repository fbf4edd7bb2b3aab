"""The proper orthochronous Lorentz group SO⁺(1,3) acting on (E, px, py, pz).

Everything here is built in float64 and cast to the caller's dtype at the end. A group element is
a ``(..., 4, 4)`` matrix acting on the left: ``p' = Λ p``.
"""

import torch

_F64 = torch.float64


def generators(dtype: torch.dtype = _F64, device=None) -> torch.Tensor:
    """Lie-algebra generators of SO⁺(1,3) in the vector representation.

    Returns
    -------
    Tensor, shape (6, 4, 4)
        ``K_x, K_y, K_z`` (boosts) then ``J_x, J_y, J_z`` (rotations), so that
        ``expm(θ K_z)`` is the boost with rapidity θ along +z (velocity β = tanh θ, see
        :func:`boost_matrix`) and ``expm(φ J_z)`` rotates (px, py) anticlockwise by φ.
        Boosts are symmetric, rotations antisymmetric; ``[J_x, J_y] = J_z``,
        ``[K_x, K_y] = −J_z``, ``[J_x, K_y] = K_z``.
    """
    gens = torch.zeros(6, 4, 4, dtype=_F64)
    for axis in range(3):
        gens[axis, 0, axis + 1] = gens[axis, axis + 1, 0] = 1.0  # K: mixes E with p_axis
    for axis, (i, j) in enumerate(((2, 3), (3, 1), (1, 2))):  # J_x: (py, pz), J_y: (pz, px), ...
        gens[3 + axis, i, j] = -1.0
        gens[3 + axis, j, i] = 1.0
    return gens.to(dtype=dtype, device=device)


def _check_velocity(beta: torch.Tensor) -> None:
    speed = torch.linalg.vector_norm(beta.detach().to(_F64), dim=-1)
    bad = ~torch.isfinite(speed) | (speed >= 1.0)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        value = beta.detach()[index].tolist()
        raise ValueError(
            f"boost velocity must be finite with |β| < 1; got β = {value} "
            f"(|β| = {float(speed[index])}) at index {index}"
        )


def _cross_matrix(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) → (..., 3, 3) matrix ``[v]×`` with ``[v]× u = v × u``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    rows = (zero, -z, y, z, zero, -x, -y, x, zero)
    return torch.stack(rows, dim=-1).unflatten(-1, (3, 3))


def boost_unchecked(beta: torch.Tensor) -> torch.Tensor:
    """:func:`boost_matrix` without the |β| < 1 check (for samplers whose range is guaranteed)."""
    beta = beta.to(_F64)
    b2 = (beta * beta).sum(-1, keepdim=True)  # (..., 1)
    gamma = torch.rsqrt(1.0 - b2)
    lam = beta.new_zeros(*beta.shape[:-1], 4, 4)
    lam[..., 0, 0] = gamma[..., 0]
    lam[..., 0, 1:] = gamma * beta
    lam[..., 1:, 0] = gamma * beta
    # (γ − 1)/β² written as γ²/(γ + 1): finite at β = 0
    outer = beta.unsqueeze(-1) * beta.unsqueeze(-2)  # (..., 3, 3)
    coef = (gamma * gamma / (gamma + 1.0)).unsqueeze(-1)  # (..., 1, 1)
    lam[..., 1:, 1:] = torch.eye(3, dtype=_F64, device=beta.device) + coef * outer
    return lam


def boost_matrix(beta: torch.Tensor) -> torch.Tensor:
    """Pure boost that gives a particle at rest the velocity β.

    Parameters
    ----------
    beta : Tensor, shape (..., 3)
        Velocity in units of c, every |β| < 1.

    Returns
    -------
    Tensor, shape (..., 4, 4), float64
        ``[[γ, γβᵀ], [γβ, 1 + (γ−1) ββᵀ/β²]]``.

    Raises
    ------
    ValueError
        If any |β| ≥ 1 or a component is not finite; the message names the value and index.
    """
    beta = torch.as_tensor(beta)
    if beta.shape[-1:] != (3,):
        raise ValueError(f"boost velocity must have shape (..., 3); got {tuple(beta.shape)}")
    _check_velocity(beta)
    return boost_unchecked(beta)


def rotation_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Spatial rotation ``expm(Σ_i θ_i J_i)`` embedded in 4×4 (E is untouched).

    Parameters
    ----------
    axis_angle : Tensor, shape (..., 3)
        Rotation axis times angle in radians (right-hand rule).

    Returns
    -------
    Tensor, shape (..., 4, 4), float64
        Rodrigues' formula ``1 + sin θ [n]× + (1 − cos θ) [n]×²`` in the spatial block.
    """
    axis_angle = torch.as_tensor(axis_angle).to(_F64)
    if axis_angle.shape[-1:] != (3,):
        raise ValueError(f"axis_angle must have shape (..., 3); got {tuple(axis_angle.shape)}")
    if not torch.isfinite(axis_angle).all():
        raise ValueError("axis_angle contains NaN or infinite values")
    theta = torch.linalg.vector_norm(axis_angle, dim=-1, keepdim=True)  # (..., 1)
    unit = axis_angle / theta.clamp_min(torch.finfo(_F64).tiny)
    k = _cross_matrix(unit)  # (..., 3, 3)
    s, c = torch.sin(theta).unsqueeze(-1), torch.cos(theta).unsqueeze(-1)  # (..., 1, 1)
    eye3 = torch.eye(3, dtype=_F64, device=axis_angle.device)
    lam = axis_angle.new_zeros(*axis_angle.shape[:-1], 4, 4)
    lam[..., 0, 0] = 1.0
    lam[..., 1:, 1:] = eye3 + s * k + (1.0 - c) * (k @ k)
    return lam


def transform(
    p4: torch.Tensor, lam: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Apply one group element per example: ``p'_n = Λ p_n``.

    Parameters
    ----------
    p4 : Tensor, shape (B, N, 4) or (B, 4)
        Four-vectors; particles of an example share that example's Λ.
    lam : Tensor, shape (B, 4, 4)
        Group elements (any float dtype; cast to ``p4.dtype``).
    mask : Tensor, shape (B, N), bool (or 0/1), optional
        Valid particles. Padded rows (False) are returned unchanged, so zero padding stays
        exactly zero whatever Λ is.

    Returns
    -------
    Tensor, same shape and dtype as ``p4``.
    """
    lam = lam.to(dtype=p4.dtype, device=p4.device)
    if p4.dim() == 2:
        return torch.einsum("bij,bj->bi", lam, p4)
    out = torch.einsum("bij,bnj->bni", lam, p4)  # (B, N, 4)
    if mask is not None:
        out = torch.where(mask.unsqueeze(-1).bool(), out, p4)
    return out


def check_four_vectors(p4: torch.Tensor, name: str = "p4") -> None:
    """Raise ``ValueError`` naming ``name`` if ``p4`` is not ``(..., 4)`` or not finite."""
    if not isinstance(p4, torch.Tensor):
        raise TypeError(f"batch[{name!r}] must be a tensor; got {type(p4).__name__}")
    if p4.dim() < 2 or p4.shape[-1] != 4:
        raise ValueError(
            f"batch[{name!r}] must have shape (B, N, 4) or (B, 4); got {tuple(p4.shape)}"
        )
    finite = torch.isfinite(p4)
    if not finite.all():
        index = tuple(int(i) for i in (~finite).nonzero()[0])
        raise ValueError(
            f"batch[{name!r}] has a non-finite momentum component {p4[index].item()} "
            f"at index {index}"
        )


def transform_batch(batch: dict, lam: torch.Tensor, keys) -> dict:
    """Return a shallow copy of ``batch`` with every four-vector entry in ``keys`` transformed.

    ``batch["mask"]`` (if present) marks the valid particles of ``(B, N, 4)`` entries; other
    entries (target, weight, ...) are shared, not copied.
    """
    out = dict(batch)
    for key in keys:
        out[key] = transform(batch[key], lam, batch.get("mask") if batch[key].dim() == 3 else None)
    return out
