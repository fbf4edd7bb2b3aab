"""Particle Transformer (ParT, Qu, Li & Qu, arXiv 2202.03772) from ``lloca``
(``pip install 'seal-hep[lloca]'``), wrapped to the batch contract.

Why lloca's ParT and not weaver-core's: lloca's ``ParticleTransformer`` is weaver-core's
code with a frames argument — with identity frames and scalar attention it is the same network,
layer for layer — and it is what LLoCa-ParT (the exact counterpart seal compares SEAL with) is
built from. It is already seal's ``lloca`` extra, so ParT adds no dependency; weaver-core would
bring uproot, awkward and its training framework for one module.
"""

import functools

import torch
from torch import nn

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.sizes import preset

INSTALL_HINT = (
    "model/backbone=part needs the `lloca` package (its ParticleTransformer), an optional extra: "
    "pip install 'seal-hep[lloca]'  (or: pip install lloca==2.0.0)"
)
# width = 16 scalar channels per head × heads; the published size is ParT's top-tagging model
SIZES = {
    "cpu": dict(heads=4, layers=2, cls_layers=1, embed_dims=(64,), pair_dims=(32, 32), ffn=2),
    "published": dict(
        heads=8, layers=8, cls_layers=2, embed_dims=(128, 512, 128), pair_dims=(64, 64, 64), ffn=4
    ),
}
# a padded slot's momentum inside ParT's pair features (E, px, py, pz) in GeV: never a real
# constituent's, never zero (zero pT has an infinite derivative there); its pairs are masked
PLACEHOLDER = (2.0, 1.0, 0.0, 0.0)


def _import_part():
    try:
        from lloca.backbone import particletransformer
        from lloca.framesnet.frames import Frames
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return particletransformer, Frames


def finite_pair_features(xi: torch.Tensor, xj: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """ParT's four pair features ``(ln m²_ij, ln kT, ln z, ln ΔR)``, the same values as lloca's
    ``pairwise_lv_fts_pp(num_outputs=4)`` (bit for bit), with a finite input derivative.

    lloca takes ``sqrt(ΔR²)`` and then clamps it to ``eps``: on the ``i = j`` pair ΔR² = 0, the
    clamp makes the feature constant, but autograd multiplies its zero by the square root's
    infinite slope — NaN. Here the root is taken only where ΔR² > 0 (the slope is 0 elsewhere,
    which is the true derivative of the clamped feature), so exact δSEAL and the symmetry spectrum
    are finite on ParT.

    Parameters
    ----------
    xi, xj : Tensor, shape (B, 4, ...)
        Momenta in ParT's order ``(px, py, pz, E)``, broadcastable against each other.
    """
    part, _ = _import_part()
    pti, rapi, phii = part.to_ptrapphim(xi, False, eps=None).split((1, 1, 1), dim=1)
    ptj, rapj, phij = part.to_ptrapphim(xj, False, eps=None).split((1, 1, 1), dim=1)
    lnm2 = torch.log(part.to_m2(xi + xj, eps=eps))
    r2 = part.delta_r2(rapi, phii, rapj, phij)
    apart = r2 > 0
    delta = torch.where(apart, torch.where(apart, r2, torch.ones_like(r2)).sqrt(), 0.0)
    lndelta = torch.log(delta.clamp(min=eps))
    ptmin = torch.minimum(pti, ptj)
    lnkt = torch.log((ptmin * delta).clamp(min=eps))
    lnz = torch.log((ptmin / (pti + ptj).clamp(min=eps)).clamp(min=eps))
    return torch.cat((lnm2, lnkt, lnz, lndelta), dim=1)


class ParTTagger(nn.Module):
    """ParT on ``batch["p4"]``: the 7 constituent features of
    :func:`~seal.models.features.constituent_features` per particle and ParT's pairwise
    interaction features (ln m², ln kT, ln z, ln ΔR) per pair, both computed from ``p4`` in
    ``forward`` (so a boost of ``p4`` reaches them), → ParT's blocks with the pair features as
    attention bias → class-token blocks → one logit.

    ParT's BatchNorm (input and pair embeddings) couples the examples of a training batch:
    exact δSEAL is refused there and δSEAL runs by finite differences (``treatment=dsymm_fd``).

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: 2 blocks of width 64 (4 heads), pair embedding (32, 32), 1 class block, about
        0.1 M parameters; ``published``: ParT's top-tagging size (8 blocks, width 128, 8 heads,
        embedding (128, 512, 128), pair embedding (64, 64, 64), 2 class blocks; 2.1 M).
    heads, layers, cls_layers, embed_dims, pair_dims, ffn
        Override the preset: heads (16 channels each), blocks, class-token blocks, the particle
        embedding MLP (its last entry must be 16 × heads), the pair embedding, the feed-forward
        ratio.
    dropout : float
        ParT's dropout in the particle blocks (0.1 in the paper).
    finite_pair_gradients : bool
        Use :func:`finite_pair_features` (same values, finite derivative); false: lloca's own
        function, whose derivative is NaN on the i = j pairs (exact δSEAL is then refused).
    use_jet_p4 : bool
        Take the jet axis of the particle features from ``batch["jet_p4"]``.
    """

    def __init__(
        self,
        size: str = "cpu",
        heads: int | None = None,
        layers: int | None = None,
        cls_layers: int | None = None,
        embed_dims: tuple | None = None,
        pair_dims: tuple | None = None,
        ffn: int | None = None,
        dropout: float = 0.1,
        finite_pair_gradients: bool = True,
        use_jet_p4: bool = False,
    ):
        super().__init__()
        part, _ = _import_part()
        o = preset(
            SIZES,
            size,
            "ParTTagger",
            heads=heads,
            layers=layers,
            cls_layers=cls_layers,
            embed_dims=embed_dims,
            pair_dims=pair_dims,
            ffn=ffn,
        )
        width = 16 * o["heads"]
        if tuple(o["embed_dims"])[-1] != width:
            raise ValueError(
                f"ParTTagger: embed_dims={list(o['embed_dims'])} must end with 16 × heads = "
                f"{width} (ParT's attention width)"
            )
        drops = dict(dropout=dropout, attn_dropout=dropout, activation_dropout=dropout)
        self.part = part.ParticleTransformer(
            input_dim=len(FEATURE_NAMES),
            attn_reps="16x0n",  # scalars only: with identity frames this is ParT's attention
            num_heads=o["heads"],
            num_layers=o["layers"],
            num_cls_layers=o["cls_layers"],
            embed_dims=tuple(o["embed_dims"]),
            pair_embed_dims=tuple(o["pair_dims"]),
            ffn_ratio=o["ffn"],
            block_params=drops,
            fc_params=None,  # the class token out; the head below makes the logit
        )
        if finite_pair_gradients:
            original = self.part.pair_embed.pairwise_lv_fts  # partial(pairwise_lv_fts_pp, ...)
            self.part.pair_embed.pairwise_lv_fts = functools.partial(
                finite_pair_features, eps=original.keywords["eps"]
            )
        self.head = nn.Linear(width, 1)
        self.latent_dim, self.use_jet_p4 = width, use_jet_p4

    def pair_inputs(self, batch: dict):
        """``(x, v, mask)`` as ParT reads them: features (B, 7, N), momenta (B, 4, N) in
        ``(px, py, pz, E)`` with padded slots at :data:`PLACEHOLDER`, mask (B, 1, N)."""
        dtype = self.head.weight.dtype
        p4, mask = batch["p4"].to(dtype), batch["mask"].bool()
        jet_p4 = batch["jet_p4"].to(dtype) if self.use_jet_p4 else None
        x = constituent_features(p4, mask, jet_p4).transpose(1, 2)
        safe = torch.where(mask.unsqueeze(-1), p4, p4.new_tensor(PLACEHOLDER))
        return x, safe[..., [1, 2, 3, 0]].transpose(1, 2), mask.unsqueeze(1)

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, 16 × heads): ParT's normalised class token."""
        _, frames_cls = _import_part()
        x, v, mask = self.pair_inputs(batch)
        frames = frames_cls(is_identity=True, shape=mask.shape[::2], device=x.device, dtype=x.dtype)
        return self.part(x, frames, v=v, mask=mask)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encode(batch)).squeeze(-1)
