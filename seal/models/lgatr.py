"""L-GATr (the Lorentz-equivariant geometric-algebra transformer, ``pip install 'seal-hep[lgatr]'``)
wrapped to the batch contract, so it trains with the same task, data and evaluation."""

import torch
from torch import nn

from seal.models.sizes import preset

# published: L-GATr's top-tagging network (Spinner et al., arXiv 2405.14806)
SIZES = {
    "cpu": dict(blocks=2, hidden_mv=8, hidden_s=16, heads=4),
    "published": dict(blocks=12, hidden_mv=16, hidden_s=32, heads=8),
}

INSTALL_HINT = (
    "L-GATr and L-GATr-slim (model/backbone=lgatr or lgatr_slim, model=lgatr) need the `lgatr` "
    "package, an optional extra: pip install 'seal-hep[lgatr]'  (or: pip install lgatr)"
)


def _import_lgatr():
    try:
        import lgatr
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return lgatr


class LGATrTagger(nn.Module):
    """Four-momenta embedded as L-GATr vectors → L-GATr blocks → invariant scalar per particle
    → masked mean → one logit.

    Without spurions the network is exactly Lorentz-invariant; ``beam_spurion`` (``xyplane``,
    ``lightlike``, ``spacelike``, ``timelike``) and ``time_spurion`` add reference multivectors
    as extra channels of every particle, which break the symmetry down to the LHC subgroup.

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: 2 blocks, 8 multivector and 16 scalar channels, 4 heads; ``published``: the
        top-tagging L-GATr's 12 blocks, 16 and 32 channels, 8 heads.
    blocks, hidden_mv, hidden_s, heads
        Depth, multivector and scalar channels, attention heads (each overrides the preset).
    beam_spurion : str or None
        A beam reference that breaks the invariance (``xyplane``, ``lightlike``, ...).
    time_spurion : bool
        The time axis as a second symmetry-breaking reference.
    scale : float
        GeV; momenta are divided by it before embedding.
    """

    def __init__(
        self,
        blocks: int | None = None,
        hidden_mv: int | None = None,
        hidden_s: int | None = None,
        heads: int | None = None,
        beam_spurion: str | None = None,
        time_spurion: bool = False,
        scale: float = 100.0,
        size: str = "cpu",
    ):
        super().__init__()
        lgatr = _import_lgatr()
        o = preset(
            SIZES,
            size,
            "LGATrTagger",
            blocks=blocks,
            hidden_mv=hidden_mv,
            hidden_s=hidden_s,
            heads=heads,
        )
        blocks, hidden_mv, hidden_s, heads = o["blocks"], o["hidden_mv"], o["hidden_s"], o["heads"]
        self.use_spurions = beam_spurion is not None or time_spurion
        n_spurions = lgatr.get_num_spurions(beam_spurion, time_spurion) if self.use_spurions else 0
        self.spurion_args = {"beam_spurion": beam_spurion, "add_time_spurion": time_spurion}
        self.net = lgatr.LGATr(
            num_blocks=blocks,
            in_mv_channels=1 + n_spurions,
            out_mv_channels=1,
            hidden_mv_channels=hidden_mv,
            in_s_channels=0,
            out_s_channels=0,
            hidden_s_channels=hidden_s,
            attention={"num_heads": heads},
            mlp={},
        )
        self.scale = scale
        self.exact_symmetry = (
            None if self.use_spurions else "L-GATr without spurions is Lorentz-invariant"
        )

    def forward(self, batch: dict) -> torch.Tensor:
        lgatr = _import_lgatr()  # a module object is not kept on the nn.Module (deepcopy/pickle)
        p4, mask = batch["p4"], batch["mask"]
        mv = lgatr.embed_vector(p4 / self.scale).unsqueeze(-2)  # (B, N, 1, 16)
        if self.use_spurions:
            spurions = lgatr.get_spurions(**self.spurion_args, device=p4.device, dtype=p4.dtype)
            mv = torch.cat((mv, spurions.expand(*mv.shape[:2], -1, -1)), dim=-2)  # (B,N,1+S,16)
        out_mv, _ = self.net(mv, attn_mask=mask[:, None, None, :])  # (B, N, 1, 16)
        scalar = lgatr.extract_scalar(out_mv)[..., 0, 0]  # (B, N)
        weights = mask.to(scalar.dtype)
        return (scalar * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B,)


N_INVARIANTS = 3


def jet_invariants(p4: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per particle, three Lorentz invariants of it and its jet J = Σ p (the masked sum):
    log(1 + p·J), log(1 + J²) and log(1 + p²), in the units of ``p4`` ((B, N, 4) → (B, N, 3)).

    Each is a function of Minkowski products of momenta only, so a network fed them stays exactly
    invariant; the logarithms bring p·J (from almost 0 to thousands in units of 100 GeV) to the
    order of one. Products are clamped at 0 from below (rounding can make p² of a massless
    particle slightly negative); padded particles get zeros.
    """
    metric = p4.new_tensor([1.0, -1.0, -1.0, -1.0])
    weights = mask.to(p4.dtype).unsqueeze(-1)
    jet = (p4 * weights).sum(-2, keepdim=True)  # (B, 1, 4)
    p_jet = (p4 * jet * metric).sum(-1)  # (B, N)
    jet_mass2 = (jet * jet * metric).sum(-1).expand_as(p_jet)
    mass2 = (p4 * p4 * metric).sum(-1)
    out = torch.stack([p_jet, jet_mass2, mass2], dim=-1).clamp_min(0.0).log1p()
    return out * weights


# L-GATr's top-tagging depth and heads; the slim channel widths are seal's choice (lgatr ships
# no TopLandscape configuration for the slim network)
SLIM_SIZES = {
    "cpu": dict(blocks=2, hidden_v=16, hidden_s=64, heads=4),  # 89 k, as the other CPU nets
    "published": dict(blocks=12, hidden_v=32, hidden_s=128, heads=8),
}


class LGATrSlimTagger(nn.Module):
    """L-GATr-slim (``lgatr.LGATrSlim``: Lorentz vectors and scalars instead of multivectors)
    on ``batch["p4"]`` → one invariant scalar per particle → masked mean → one logit.

    The scalar inputs are Lorentz invariants of each particle and its jet (:func:`jet_invariants`):
    the slim layers pass vector information to the scalars only through the attention weights
    and the joint norm, so a constant scalar input (as first wrapped) left the output nearly
    constant on jets of almost collinear, almost massless constituents — 2 of 3 seeds stayed at
    chance. With ``invariants=False`` the scalar input is a constant 1 again.

    Without references the network is exactly Lorentz-invariant (a soft penalty, augmentation or
    LLoCa around it is refused as meaningless). ``beam_reference`` / ``time_reference`` add the
    same four-vectors as LLoCa's references (:func:`seal.models.lloca.reference_vectors`) as
    extra vector channels of every particle, which breaks the symmetry to the subgroup fixing
    them.

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: 2 blocks, 16 vector and 64 scalar channels, 4 heads (89 k parameters, the order
        of the other CPU backbones); ``published``: 12 blocks
        and 8 heads (L-GATr's top-tagging depth), 32 vector and 128 scalar channels.
    blocks, hidden_v, hidden_s, heads
        Override the preset.
    dropout : float, optional
        lgatr's dropout in the blocks.
    beam_reference : None | "lightlike" | "timelike" | "spacelike"
    time_reference : bool
    scale : float
        GeV; momenta (and nothing else) are divided by it.
    invariants : bool
        Feed :func:`jet_invariants` as the scalar inputs (default) instead of a constant.
    """

    def __init__(
        self,
        size: str = "cpu",
        blocks: int | None = None,
        hidden_v: int | None = None,
        hidden_s: int | None = None,
        heads: int | None = None,
        dropout: float | None = None,
        beam_reference: str | None = None,
        time_reference: bool = False,
        scale: float = 100.0,
        invariants: bool = True,
    ):
        super().__init__()
        from seal.models.lloca import reference_vectors

        lgatr = _import_lgatr()
        o = preset(
            SLIM_SIZES,
            size,
            "LGATrSlimTagger",
            blocks=blocks,
            hidden_v=hidden_v,
            hidden_s=hidden_s,
            heads=heads,
        )
        self.references = reference_vectors(beam_reference, time_reference).tolist()
        self.net = lgatr.LGATrSlim(
            num_blocks=o["blocks"],
            in_v_channels=1 + len(self.references),
            out_v_channels=1,
            hidden_v_channels=o["hidden_v"],
            in_s_channels=N_INVARIANTS if invariants else 1,  # the slim layers need scalars
            out_s_channels=1,
            hidden_s_channels=o["hidden_s"],
            num_heads=o["heads"],
            dropout_prob=dropout,
        )
        self.scale = scale
        self.invariants = invariants
        self.exact_symmetry = (
            None if self.references else "L-GATr-slim without references is Lorentz-invariant"
        )

    def forward(self, batch: dict) -> torch.Tensor:
        dtype = self.net.linear_in.weight_v.dtype
        p4, mask = batch["p4"].to(dtype), batch["mask"].bool()
        b, n, _ = p4.shape
        vectors = (p4 / self.scale).unsqueeze(-2)  # (B, N, 1, 4)
        if self.references:
            refs = p4.new_tensor(self.references).expand(b, n, -1, -1)  # (B, N, R, 4)
            vectors = torch.cat((vectors, refs), dim=-2)
        if self.invariants:
            scalars = jet_invariants(vectors[..., 0, :], mask)  # (B, N, 3)
        else:
            scalars = p4.new_ones(b, n, 1)
        _, out = self.net(vectors, scalars, attn_mask=mask[:, None, None, :])  # (B, N, 1)
        weights = mask.to(out.dtype)
        return (out[..., 0] * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B,)
