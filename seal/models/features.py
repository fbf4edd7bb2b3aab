"""Per-constituent jet features, computed from four-momenta inside the model's forward.

Because the features are a function of ``p4`` (and optionally ``jet_p4``), transforming the
four-momenta *is* the whole group action on the model input.
"""

import torch

FEATURE_NAMES = ("log_pt", "log_e", "log_pt_rel", "log_e_rel", "deta", "dphi", "dr")
_TINY = 1e-12


def _pt_eta_phi(p: torch.Tensor):
    """(..., 4) → pT, η, φ, each (...). Assumes no zero-pT entries (callers substitute)."""
    pt = torch.sqrt((p[..., 1].square() + p[..., 2].square()).clamp_min(_TINY))
    eta = torch.asinh(p[..., 3] / pt)
    phi = torch.atan2(p[..., 2], p[..., 1])
    return pt, eta, phi


def constituent_features(
    p4: torch.Tensor, mask: torch.Tensor, jet_p4: torch.Tensor | None = None
) -> torch.Tensor:
    """The 7 inputs per constituent: log pT, log E, log pT/pT_jet, log E/E_jet, Δη, Δφ, ΔR.

    Parameters
    ----------
    p4 : Tensor, shape (B, N, 4)
        Constituent four-momenta (E, px, py, pz) in GeV, zero-padded.
    mask : Tensor, shape (B, N), bool
        Valid constituents.
    jet_p4 : Tensor, shape (B, 4), optional
        The jet axis; default the sum of the valid constituents.

    Returns
    -------
    Tensor, shape (B, N, 7)
        Δφ wrapped to (−π, π]; padded slots are exactly 0, and every value and gradient is
        finite there (padded slots are replaced by a harmless momentum before any log/sqrt).
    """
    valid = mask.unsqueeze(-1)  # (B, N, 1)
    placeholder = p4.new_tensor([1.0, 1.0, 0.0, 0.0])
    p = torch.where(valid, p4, placeholder)  # (B, N, 4): no zero momenta left
    if jet_p4 is None:
        jet_p4 = (p4 * valid).sum(1)  # (B, 4)
    pt, eta, phi = _pt_eta_phi(p)
    jet_pt, jet_eta, jet_phi = (t.unsqueeze(-1) for t in _pt_eta_phi(jet_p4))  # (B, 1) each
    energy = p[..., 0].clamp_min(_TINY)
    jet_energy = jet_p4[..., 0].clamp_min(_TINY).unsqueeze(-1)
    deta = eta - jet_eta
    dphi = torch.atan2(torch.sin(phi - jet_phi), torch.cos(phi - jet_phi))
    dr = torch.sqrt((deta.square() + dphi.square()).clamp_min(_TINY))
    features = torch.stack(
        (
            torch.log(pt),
            torch.log(energy),
            torch.log(pt / jet_pt),
            torch.log(energy / jet_energy),
            deta,
            dphi,
            dr,
        ),
        dim=-1,
    )  # (B, N, 7)
    return torch.where(valid, features, torch.zeros_like(features))
