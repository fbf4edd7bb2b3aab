"""L-GATr (the Lorentz-equivariant geometric-algebra transformer, ``pip install 'seal-hep[lgatr]'``)
wrapped to the batch contract, so it trains with the same task, data and evaluation."""

import torch
from torch import nn

INSTALL_HINT = (
    "model=lgatr needs the `lgatr` package, which is an optional extra: "
    "pip install 'seal-hep[lgatr]'  (or: pip install lgatr)"
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
    blocks, hidden_mv, hidden_s, heads
        Depth, multivector and scalar channels, attention heads.
    beam_spurion : str or None
        A beam reference that breaks the invariance (``xyplane``, ``lightlike``, ...).
    time_spurion : bool
        The time axis as a second symmetry-breaking reference.
    scale : float
        GeV; momenta are divided by it before embedding.
    """

    def __init__(
        self,
        blocks: int = 2,
        hidden_mv: int = 8,
        hidden_s: int = 16,
        heads: int = 4,
        beam_spurion: str | None = None,
        time_spurion: bool = False,
        scale: float = 100.0,
    ):
        super().__init__()
        lgatr = _import_lgatr()
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
