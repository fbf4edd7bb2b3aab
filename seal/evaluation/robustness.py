"""Test error as a function of a boost applied to the test inputs.

A model that learned an invariant (or covariant) truth should keep its error flat as the test
set is boosted; an unconstrained model's error grows with |β|.
"""

import torch

from seal.groups import boost_matrix, transform_batch

ALONG = ("random", "z")


def fixed_speed_boosts(n: int, beta: float, along: str = "random", seed: int = 0) -> torch.Tensor:
    """``n`` boosts of speed exactly ``beta``, shape (n, 4, 4) float64.

    ``along="random"``: directions uniform on the sphere; ``"z"``: ±z with equal probability.
    """
    if along not in ALONG:
        raise ValueError(f"unknown boost direction {along!r}; choose one of {ALONG}")
    gen = torch.Generator().manual_seed(seed)
    if along == "random":
        direction = torch.randn(n, 3, generator=gen, dtype=torch.float64)
        direction = direction / direction.norm(dim=-1, keepdim=True)
    else:
        direction = torch.zeros(n, 3, dtype=torch.float64)
        direction[:, 2] = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    return boost_matrix(beta * direction)  # validates 0 <= beta < 1


@torch.no_grad()
def boost_scan(predict, data: dict, truth, betas, along="random", seed=0, batch_size=4096):
    """Error of ``predict`` on ``data`` boosted by each speed in ``betas``.

    Parameters
    ----------
    predict : callable
        Batch dict → predictions shaped like ``truth``'s output.
    data : dict
        Test set as a batch dict with ``p4`` (n, N, 4) (and ``mask``).
    truth : callable
        ``p4`` (n, N, 4) → target, evaluated on the *boosted* momenta, so broken and
        covariant truths are handled like invariant ones.
    betas : sequence of float
        Test speeds, each in [0, 1).
    along, seed
        Boost directions (see :func:`fixed_speed_boosts`); the same seed gives every model
        the same boosted test set.

    Returns
    -------
    list of dict
        Per β: ``beta``, ``mse`` (mean over examples of the squared error summed over output
        components) and ``rel_rmse`` (√(mse / mean‖target‖²)).
    """
    n = len(data["p4"])
    rows = []
    for beta in betas:
        lam = fixed_speed_boosts(n, float(beta), along, seed)
        moved = transform_batch(data, lam, ["p4"])
        sq_err, sq_target = 0.0, 0.0
        for start in range(0, n, batch_size):
            part = {k: v[start : start + batch_size] for k, v in moved.items()}
            target = truth(part["p4"].double())
            err = predict(part).double() - target
            sq_err += err.square().reshape(len(err), -1).sum(-1).sum().item()
            sq_target += target.square().reshape(len(target), -1).sum(-1).sum().item()
        mse = sq_err / n
        rows.append({"beta": float(beta), "mse": mse, "rel_rmse": (sq_err / sq_target) ** 0.5})
    return rows
