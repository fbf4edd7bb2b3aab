"""ParticleNet (Qu & Gouskos, arXiv 1902.08570: dynamic-graph EdgeConv over the jet's
constituents) from ``lloca`` (``pip install 'seal-hep[lloca]'``), wrapped to the batch contract.

lloca's ``ParticleNet`` is weaver-core's with a frames argument; with identity frames and scalar
features it is the original network (the same extra as seal's ParT, see :mod:`seal.models.part`).
"""

import torch
from torch import nn

from seal.models.features import FEATURE_NAMES, constituent_features
from seal.models.sizes import preset

INSTALL_HINT = (
    "model/backbone=particlenet needs the `lloca` package (its ParticleNet), an optional extra: "
    "pip install 'seal-hep[lloca]'  (or: pip install lloca==2.0.0)"
)
# (k, channels) per EdgeConv block and (width, dropout) per dense layer; published = the paper's
# top tagger (366 k parameters: without weaver's later fusion block, which brings it to 572 k)
SIZES = {
    "cpu": dict(convs=((8, (32, 32, 32)), (8, (64, 64, 64))), fcs=((64, 0.1),), fusion=False),
    "published": dict(
        convs=((16, (64, 64, 64)), (16, (128, 128, 128)), (16, (256, 256, 256))),
        fcs=((256, 0.1),),
        fusion=False,
    ),
}


def _import_particlenet():
    try:
        from lloca.backbone.particlenet import ParticleNet
        from lloca.framesnet.frames import Frames
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return ParticleNet, Frames


class ParticleNetTagger(nn.Module):
    """ParticleNet on ``batch["p4"]``: the 7 constituent features of
    :func:`~seal.models.features.constituent_features` (computed from ``p4`` in ``forward``),
    the first graph built from (Δη, Δφ) to the jet axis, later ones from the learnt features;
    EdgeConv blocks → fusion → masked mean → dense layers → one logit.

    BatchNorm throughout couples the examples of a training batch: exact δSEAL is refused and
    δSEAL runs by finite differences (``treatment=dsymm_fd``).

    Parameters
    ----------
    size : "cpu" | "published"
        ``cpu``: two EdgeConv blocks (k = 8; 32 and 64 channels), one dense layer of 64;
        ``published``: the paper's three blocks (k = 16; 64, 128, 256 channels), dense 256.
    convs, fcs
        Override the preset: ``[[k, [channels, ...]], ...]`` and ``[[width, dropout], ...]``.
    fusion : bool, optional
        weaver-core's fusion block (a 1×1 convolution over every block's output) before the
        pooling; the paper's network has none (the presets' choice).
    use_jet_p4 : bool
        Take the jet axis from ``batch["jet_p4"]``.
    """

    def __init__(
        self,
        size: str = "cpu",
        convs=None,
        fcs=None,
        fusion: bool | None = None,
        use_jet_p4: bool = False,
    ):
        super().__init__()
        particlenet, _ = _import_particlenet()
        o = preset(SIZES, size, "ParticleNetTagger", convs=convs, fcs=fcs, fusion=fusion)
        convs = [(int(k), tuple(int(c) for c in channels)) for k, channels in o["convs"]]
        fcs = [(int(width), float(drop)) for width, drop in o["fcs"]]
        reps = [f"{len(FEATURE_NAMES)}x0n"] + [f"{c[-1]}x0n" for _, c in convs[:-1]]
        self.net = particlenet(
            input_dims=len(FEATURE_NAMES),
            hidden_reps_list=reps,  # scalars only: identity frames leave them unchanged
            num_classes=1,
            conv_params=convs,
            fc_params=fcs,
            use_fusion=bool(o["fusion"]),
        )
        self.use_jet_p4, self.latent_dim = use_jet_p4, fcs[-1][0]

    def encode(self, batch: dict) -> torch.Tensor:
        """(B, last dense width): what the final linear layer reads (so ParticleNet can be the
        hybrid's general subnet)."""
        latent = []
        hook = self.net.fc[-1].register_forward_pre_hook(lambda _, args: latent.append(args[0]))
        try:
            self(batch)
        finally:
            hook.remove()
        return latent[0]

    def forward(self, batch: dict) -> torch.Tensor:
        _, frames_cls = _import_particlenet()
        dtype = self.net.fc[-1].weight.dtype
        p4, mask = batch["p4"].to(dtype), batch["mask"].bool()
        jet_p4 = batch["jet_p4"].to(dtype) if self.use_jet_p4 else None
        features = constituent_features(p4, mask, jet_p4).transpose(1, 2)  # (B, 7, N)
        deta_dphi = [FEATURE_NAMES.index("deta"), FEATURE_NAMES.index("dphi")]
        points = features[:, deta_dphi]  # (B, 2, N)
        b, n = mask.shape
        frames = frames_cls(is_identity=True, shape=(b * n,), device=p4.device, dtype=dtype)
        out = self.net(points, features, frames, mask=mask.unsqueeze(1).to(dtype))
        return out.squeeze(-1)
