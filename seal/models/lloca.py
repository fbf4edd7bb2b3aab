"""LLoCa (Lorentz local canonicalisation, ``pip install 'seal-hep[lloca]'``) around any network:
an equivariant Frames-Net predicts one Lorentz frame per jet, the constituents are transformed
into it, and the unchanged backbone sees only frame-independent momenta, so its output is
exactly Lorentz-invariant — the exact counterpart of the soft symmetry loss on the same backbone.
"""

import contextlib

import torch
from torch import nn

INSTALL_HINT = (
    "LLoCa (treatment=lloca*, model=lloca) needs the `lloca` package, an optional extra: "
    "pip install 'seal-hep[lloca]'  (or: pip install lloca==2.0.0)"
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

    With none the canonicalised network is Lorentz-invariant. A ``lightlike`` or ``timelike``
    beam pair is fixed only by rotations about the beam (the time axis then adds nothing); a
    ``spacelike`` pair also by boosts across it (SO(1,2)), and with the time axis only by the
    rotations. No choice keeps boosts along the beam.
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
    pairs of a jet) predicts three vectors per constituent; those of one anchor (the constituent
    with the most energy in the jet's rest frame, an invariant choice) give one frame ``L`` per
    jet by lloca's polar decomposition, with ``L(Λp) = L(p) Λ⁻¹``. The backbone reads ``L p``
    (and ``L jet_p4``) and is not changed: any seal network that takes the batch dict works.
    Local (per-particle) frames would need lloca's tensorial attention inside the backbone, i.e.
    a different backbone, so seal uses the exact global special case.

    Numerics (each choice fixes a failure measured on generated jets; see the tests):

    * the Frames-Net reads the jet in its rest frame ``B``, as lloca advises for boosted inputs
      (in the lab frame the frame boosts ran to γ = 10⁵ and training diverged within 4 steps);
      ``B(ΛJ) = W B(J) Λ⁻¹`` with a rotation ``W`` that the Frames-Net follows, so this is exact;
    * it reads every constituent plus ε times the jet's four-velocity (``regulator``, exactly
      covariant): collinear massless pairs otherwise have pair masses lost in float32 rounding;
    * frames and canonical momenta are computed in float64;
    * the anchor's vectors, not the jet mean (``anchor="mean"``): averaging over the jet makes
      the three vectors nearly parallel and the frame ill-conditioned.

    Together these took the float32 output change under a |β| = 0.5 boost from the size of the
    output's spread to 3 × 10⁻⁴ of it. Jets need ≥ 4 constituents (2 for ``anchor="mean"``) for
    a unique frame; with fewer lloca regularises with random noise.

    Parameters
    ----------
    backbone : nn.Module
        The network to canonicalise (e.g. ConstituentTransformer).
    hidden, layers
        Width and hidden layers of the Frames-Net's edge MLP.
    beam_reference : None | "lightlike" | "timelike" | "spacelike"
        Beam vectors (±z) added as
        extra particles of the Frames-Net: the frames, hence the output, are then only invariant
        under the subgroup that fixes them (lloca's own symmetry breaking; see
        :func:`reference_vectors`).
    time_reference : bool
        Add the time axis (1, 0, 0, 0) as a reference too.
    handoff_gamma : float
        γ ≥ 1 of a fixed boost along x after the frame (1: none).
    anchor : "leading" | "mean"
        Whose vectors make the frame.
    regulator : float
        ε, in units of ``scale``.
    scale : float
        GeV; momenta are divided by it inside the Frames-Net only.
    """

    def __init__(
        self,
        backbone: nn.Module,
        hidden: int = 32,
        layers: int = 2,
        beam_reference: str | None = None,
        time_reference: bool = False,
        handoff_gamma: float = 1.0,
        anchor: str = "leading",
        regulator: float = 0.01,
        scale: float = 100.0,
    ):
        super().__init__()
        mlp_vectors, *_ = _import_lloca()
        if anchor not in ("leading", "mean"):
            raise ValueError(f"model.net.anchor={anchor!r} is not 'leading' or 'mean'")
        if not handoff_gamma >= 1.0:
            raise ValueError(f"model.net.handoff_gamma={handoff_gamma} must be ≥ 1 (a Lorentz γ)")
        if not regulator >= 0.0:
            raise ValueError(f"model.net.regulator={regulator} must be ≥ 0")
        # plain Python values, made into float64 tensors on the input's device at every call:
        # as buffers, a .half()/.to(bfloat16) of the module would round them off the group
        self.references = reference_vectors(beam_reference, time_reference).tolist()
        self.anchor, self.handoff_gamma, self.regulator = anchor, handoff_gamma, regulator
        self.equivectors = mlp_vectors(
            n_vectors=3,
            num_scalars=1 if self.references else 0,
            hidden_channels=hidden,
            num_layers_mlp=layers,
        )
        self.backbone, self.scale, self._use_references = backbone, scale, True
        self.exact_symmetry = (
            None
            if self.references
            else "LLoCa canonicalisation without reference vectors is Lorentz-invariant"
        )
        if hasattr(backbone, "latent_dim"):  # so that a hybrid can take this as its general net
            self.latent_dim = backbone.latent_dim

    def _handoff(self, like: torch.Tensor) -> torch.Tensor:
        g = self.handoff_gamma
        gb = (g * g - 1.0) ** 0.5  # γβ
        return like.new_tensor([[g, gb, 0, 0], [gb, g, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])

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
        # + ε × the jet's four-velocity ((1, 0, 0, 0) here): exactly covariant, and it gives
        # collinear massless pairs a mass floor (their m_ij drowned in float32 rounding)
        nodes = nodes + nodes.new_tensor([self.regulator, 0.0, 0.0, 0.0])
        r = len(self.references) if self._use_references else 0
        dtype = next(self.equivectors.parameters()).dtype  # the Frames-Net MLP's precision
        flags = 1 if self.references else 0  # the flag channel stays, 0 for every constituent
        scalars = torch.zeros(b, n + r, flags, dtype=dtype, device=p4.device)
        if r:  # the references go into the rest frame with the jet, as flagged extra particles
            refs = p64.new_tensor(self.references)  # (R, 4)
            nodes = torch.cat((nodes, torch.einsum("bij,rj->bri", rest, refs)), dim=1)
            scalars[:, n:] = 1.0  # an invariant flag
            mask = torch.cat((mask, mask.new_ones(b, r)), dim=1)
        sizes = mask.sum(1)
        ptr = torch.cat((sizes.new_zeros(1), sizes.cumsum(0)))  # (B+1,)
        # float64 momenta, model-dtype scalars: lloca then takes the pair masses and the pair
        # vectors in float64 and only the MLP in the model's precision (its float64 option)
        dense_mask, nodes, scalars = mask, nodes[mask], scalars[mask]  # (P, 4), (P, S)
        # lloca standardises its pair masses from a first batch (or the checkpoint has them);
        # checked on every call: a forward with scratch buffers (seal's symmetry probe) must
        # not leave the real ones unset
        if not bool(self.equivectors.block.edge_inited):
            self.equivectors.init_standardization(nodes, ptr)
        vecs = self.equivectors(nodes, scalars=scalars, ptr=ptr).double()  # (P, 3, 4)
        dense = vecs.new_zeros(b, dense_mask.shape[1], 3, 4)
        dense[dense_mask] = vecs  # back to the slots, so masks with holes index correctly
        if self.anchor == "mean":
            chosen = dense.sum(1) / sizes[:, None, None]
        else:  # the constituent with the most energy in the jet's rest frame (an invariant)
            chosen = dense[torch.arange(b, device=p4.device), rest_energy.argmax(1)]  # (B, 3, 4)
        net = polar_decomposition(chosen[:, 0], chosen[:, 1:])  # (B, 4, 4)
        return self._handoff(net) @ net @ rest

    @contextlib.contextmanager
    def without_references(self):
        """Inside, the Frames-Net sees the jet without its reference vectors (the same weights):
        the frames, hence the output, are then Lorentz-invariant. How much the output moves
        is how much the trained tagger leans on the references (the evaluation's
        ``references/shift``)."""
        self._use_references = False
        try:
            yield self
        finally:
            self._use_references = True

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
