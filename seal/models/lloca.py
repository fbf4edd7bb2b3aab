"""LLoCa (Lorentz local canonicalisation, ``pip install 'seal[lloca]'``) around any seal network:
an equivariant Frames-Net predicts one Lorentz frame per jet, the constituents are transformed
into it, and the unchanged backbone sees only frame-independent momenta, so its output is
exactly Lorentz-invariant — the exact counterpart of the soft symmetry loss on the same backbone.
"""

import torch
from torch import nn

INSTALL_HINT = (
    "model=lloca needs the `lloca` package, which is an optional extra: "
    "pip install 'seal[lloca]'  (or: pip install lloca==2.0.0)"
)
BEAM_REFERENCES = {  # lloca's and L-GATr's beam spurions, as four-vectors (E, px, py, pz)
    "lightlike": (1.0, 0.0, 0.0, 1.0),
    "timelike": (2.0**0.5, 0.0, 0.0, 1.0),
    "spacelike": (0.0, 0.0, 0.0, 1.0),
}


def _import_lloca():
    try:
        from lloca.equivectors import MLPVectors
        from lloca.utils.polar_decomposition import polar_decomposition, restframe_boost
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return MLPVectors, polar_decomposition, restframe_boost


def reference_vectors(beam: str | None, time: bool) -> torch.Tensor:
    """(R, 4) symmetry-breaking reference vectors: the beam (both directions) and the time axis.

    With none the canonicalised network is Lorentz-invariant; the beam alone keeps rotations
    about and boosts along the beam (``spacelike`` also boosts across it), beam + time keep
    rotations about the beam — the LHC's residual symmetry.
    """
    if beam is not None and beam not in BEAM_REFERENCES:
        raise ValueError(
            f"model.net.beam_reference={beam!r} is not one of {sorted(BEAM_REFERENCES)} or null"
        )
    rows = []
    if beam is not None:
        e, _, _, z = BEAM_REFERENCES[beam]
        rows += [(e, 0.0, 0.0, z), (e, 0.0, 0.0, -z)]
    if time:
        rows.append((1.0, 0.0, 0.0, 0.0))
    return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)


class LLoCaTagger(nn.Module):
    """Global LLoCa canonicalisation of ``backbone``.

    lloca's Frames-Net (``MLPVectors``: one equivariant edge convolution over all constituent
    pairs of a jet) predicts three vectors per constituent; their jet average gives one frame
    ``L`` per jet by lloca's polar decomposition, with ``L(Λp) = L(p) Λ⁻¹``. The backbone reads
    ``L p`` (and ``L jet_p4``) and is not changed: any seal network that takes the batch dict
    works. Local (per-particle) frames would need lloca's tensorial attention inside the
    backbone, i.e. a different backbone, so seal uses the exact global special case.

    Numerics (each measured on generated jets; see the tests):

    * the Frames-Net reads the jet in its rest frame ``B``, as lloca advises for boosted inputs
      (in the lab frame the frame boosts ran to γ = 10⁵ and training diverged within 4 steps);
      ``B(ΛJ) = W B(J) Λ⁻¹`` with a rotation ``W`` that the Frames-Net follows, so this is exact;
    * frames and canonical momenta are computed in float64 (in float32 the frame's γ ~ 50
      cancellations moved the output by as much as its spread);
    * the canonical jet is nearly at rest, where the backbone's jet-axis features (Δη, Δφ) are
      ill-conditioned; a fixed boost along x with ``handoff_gamma`` hands it over moving again.
      A fixed transformation keeps the output exactly invariant.

    Parameters
    ----------
    backbone : nn.Module — the network to canonicalise (e.g. ConstituentTransformer).
    hidden, layers : width and hidden layers of the Frames-Net's edge MLP.
    beam_reference : None | "lightlike" | "timelike" | "spacelike" — beam vectors (±z) added as
        extra particles of the Frames-Net: the frames, hence the output, are then only invariant
        under the subgroup that fixes them (lloca's own symmetry breaking).
    time_reference : bool — add the time axis (1, 0, 0, 0) as a reference too.
    handoff_gamma : float — γ ≥ 1 of the fixed boost along x after the canonical frame.
    scale : float — GeV; momenta are divided by it inside the Frames-Net only.
    """

    def __init__(
        self,
        backbone: nn.Module,
        hidden: int = 32,
        layers: int = 2,
        beam_reference: str | None = None,
        time_reference: bool = False,
        handoff_gamma: float = 5.0,
        anchor: str = "leading",
        scale: float = 100.0,
    ):
        super().__init__()
        mlp_vectors, *_ = _import_lloca()
        if anchor not in ("leading", "mean"):
            raise ValueError(f"model.net.anchor={anchor!r} is not 'leading' or 'mean'")
        self.anchor = anchor
        if not handoff_gamma >= 1.0:
            raise ValueError(f"model.net.handoff_gamma={handoff_gamma} must be ≥ 1 (a Lorentz γ)")
        self.register_buffer("references", reference_vectors(beam_reference, time_reference))
        self.equivectors = mlp_vectors(n_vectors=3, num_scalars=1 if len(self.references) else 0,
                                       hidden_channels=hidden, num_layers_mlp=layers)  # fmt: skip
        beta = (1.0 - 1.0 / handoff_gamma**2) ** 0.5
        handoff = torch.eye(4, dtype=torch.float64)
        handoff[0, 0] = handoff[1, 1] = handoff_gamma
        handoff[0, 1] = handoff[1, 0] = handoff_gamma * beta
        self.register_buffer("handoff", handoff, persistent=False)
        self.backbone, self.scale, self._standardised = backbone, scale, False
        if hasattr(backbone, "latent_dim"):  # so that a hybrid can take this as its general net
            self.latent_dim = backbone.latent_dim

    def frames(self, p4: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, 4, 4) float64: one Lorentz frame per jet, ``L(Λp) = L(p) Λ⁻¹`` for every Λ that
        fixes the references (all Λ without them), the hand-off boost included."""
        _, polar_decomposition, restframe_boost = _import_lloca()
        b, n, _ = p4.shape
        counts = mask.sum(1)  # (B,)
        if bool((counts == 0).any()):
            raise ValueError("LLoCaTagger: a jet without constituents has no frame")
        p64 = p4.double()
        rest = restframe_boost((p64 * mask.unsqueeze(-1)).sum(1))  # (B, 4, 4)
        nodes = torch.einsum("bij,bnj->bni", rest, p64) / self.scale  # (B, N, 4)
        rest_energy = torch.where(mask, nodes[..., 0], -1.0)  # invariant: p·J / m_J
        refs = self.references.double()  # (R, 4)
        r = len(refs)
        scalars = torch.zeros(b, n + r, 0, dtype=p4.dtype, device=p4.device)
        if r:  # the references go into the rest frame with the jet, as flagged extra particles
            nodes = torch.cat((nodes, torch.einsum("bij,rj->bri", rest, refs)), dim=1)
            scalars = torch.zeros(b, n + r, 1, dtype=p4.dtype, device=p4.device)
            scalars[:, n:] = 1.0  # an invariant flag
            mask = torch.cat((mask, mask.new_ones(b, r)), dim=1)
        sizes = mask.sum(1)
        ptr = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)))  # (B+1,)
        # float64 momenta, model-dtype scalars: lloca then takes the pair masses and the pair
        # vectors in float64 and only the MLP in the model's precision (its float64 option)
        nodes, scalars = nodes[mask], scalars[mask]  # (P, 4), (P, S), jet by jet
        if not self._standardised:  # lloca standardises its pair masses from a first batch
            if not bool(self.equivectors.block.edge_inited):  # (or the checkpoint did)
                self.equivectors.init_standardization(nodes, ptr)
            self._standardised = True
        vecs = self.equivectors(nodes, scalars=scalars, ptr=ptr).double()  # (P, 3, 4)
        if self.anchor == "mean":
            jet_of = torch.repeat_interleave(torch.arange(b, device=p4.device), sizes)
            chosen = vecs.new_zeros(b, 3, 4).index_add_(0, jet_of, vecs) / sizes[:, None, None]
        else:  # the constituent with the most energy in the jet's rest frame (an invariant)
            chosen = vecs[ptr[:-1] + rest_energy.argmax(1)]  # (B, 3, 4)
        net = polar_decomposition(chosen[:, 0], chosen[:, 1:])  # (B, 4, 4)
        return self.handoff.double() @ net @ rest  # (a .float() of the module casts buffers)

    def canonical(self, batch: dict) -> dict:
        """The batch with ``p4`` (and ``jet_p4``) in each jet's frame; other keys unchanged."""
        p4, mask = batch["p4"], batch["mask"]
        frames = self.frames(p4, mask)  # (B, 4, 4) float64
        out = dict(batch)
        p = torch.einsum("bij,bnj->bni", frames, p4.double()) * mask.unsqueeze(-1)
        out["p4"] = p.to(p4.dtype)
        if batch.get("jet_p4") is not None:
            jet = torch.einsum("bij,bj->bi", frames, batch["jet_p4"].double())
            out["jet_p4"] = jet.to(p4.dtype)
        return out

    def encode(self, batch: dict) -> torch.Tensor:
        return self.backbone.encode(self.canonical(batch))

    def forward(self, batch: dict) -> torch.Tensor:
        return self.backbone(self.canonical(batch))
