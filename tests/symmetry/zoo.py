"""Networks a user brings: stock PyTorch layers with functional dropout, batch statistics and
batch coupling, next to seal's own models. Each maps the batch dict to one logit per jet."""

import torch
import torch.nn.functional as F
from torch import nn

from seal.models import (
    MLP,
    ConstituentTransformer,
    HybridNet,
    InvariantNet,
    TorchTransformerTagger,
    constituent_features,
)

DIM = 16


class Embedded(nn.Module):
    """Constituent features → width 16; subclasses add the part under test."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(7, DIM)
        self.head = nn.Linear(DIM, 1)

    def features(self, batch):
        return self.embed(constituent_features(batch["p4"], batch["mask"]))  # (B, N, D)

    def pool(self, x, batch):
        w = batch["mask"].unsqueeze(-1).to(x.dtype)
        return self.head((x * w).sum(1) / w.sum(1)).squeeze(-1)  # (B,)


class StockAttention(Embedded):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(DIM, 4, dropout=0.5, batch_first=True)

    def forward(self, batch):
        x = self.features(batch)
        out, _ = self.attn(x, x, x, key_padding_mask=~batch["mask"], need_weights=False)
        return self.pool(x + out, batch)


class StockEncoderLayer(Embedded):
    def __init__(self, batch_first: bool = True):
        super().__init__()
        self.batch_first = batch_first
        self.layer = nn.TransformerEncoderLayer(DIM, 4, 32, dropout=0.5, batch_first=batch_first)

    def forward(self, batch):
        x = self.features(batch)
        if self.batch_first:
            return self.pool(self.layer(x, src_key_padding_mask=~batch["mask"]), batch)
        out = self.layer(x.transpose(0, 1), src_key_padding_mask=~batch["mask"])  # (N, B, D)
        return self.pool(out.transpose(0, 1), batch)


class StockEncoder(Embedded):
    """``nn.TransformerEncoder``, sequence-first (the stock default)."""

    def __init__(self):
        super().__init__()
        layer = nn.TransformerEncoderLayer(DIM, 4, 32, dropout=0.5)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)

    def forward(self, batch):
        x = self.features(batch).transpose(0, 1)  # (N, B, D)
        return self.pool(
            self.encoder(x, src_key_padding_mask=~batch["mask"]).transpose(0, 1), batch
        )


class FunctionalDropout(Embedded):
    def forward(self, batch):
        return self.pool(F.dropout(self.features(batch).tanh(), 0.5, self.training), batch)


class ModuleDropout(Embedded):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.5)

    def forward(self, batch):
        return self.pool(self.drop(self.features(batch).tanh()), batch)


class PooledBatchNorm(Embedded):
    """``nn.BatchNorm1d`` on the pooled jet embedding."""

    def __init__(self):
        super().__init__()
        self.norm = nn.BatchNorm1d(DIM)

    def forward(self, batch):
        w = batch["mask"].unsqueeze(-1).to(torch.float64)
        pooled = (self.features(batch) * w).sum(1) / w.sum(1)  # (B, D)
        return self.head(self.norm(pooled).tanh()).squeeze(-1)


class FunctionalBatchNorm(PooledBatchNorm):
    """``F.batch_norm`` on buffers of its own (no BatchNorm module to find by type)."""

    def __init__(self):
        super().__init__()
        del self.norm
        self.register_buffer("mean", torch.zeros(DIM))
        self.register_buffer("var", torch.ones(DIM))

    def forward(self, batch):
        w = batch["mask"].unsqueeze(-1).to(torch.float64)
        pooled = (self.features(batch) * w).sum(1) / w.sum(1)
        normed = F.batch_norm(pooled, self.mean, self.var, training=self.training, momentum=0.1)
        return self.head(normed.tanh()).squeeze(-1)


class BatchCentred(Embedded):
    """Normalises over the batch with plain tensor code: ``x - x.mean(0)``."""

    def forward(self, batch):
        w = batch["mask"].unsqueeze(-1).to(torch.float64)
        pooled = (self.features(batch) * w).sum(1) / w.sum(1)
        return self.head((pooled - pooled.mean(0)).tanh()).squeeze(-1)


class SpectralNormed(Embedded):
    """``spectral_norm``: deterministic, but every training forward advances its power
    iteration (buffers ``_u``, ``_v``) and reads it back."""

    def __init__(self):
        super().__init__()
        self.mix = nn.utils.parametrizations.spectral_norm(nn.Linear(DIM, DIM))

    def forward(self, batch):
        return self.pool(self.mix(self.features(batch)).tanh(), batch)


def lgatr_tagger():
    from seal.models.lgatr import LGATrTagger

    return LGATrTagger(blocks=1, hidden_mv=4, hidden_s=8)


def part_tagger():
    from seal.models.part import ParTTagger

    return ParTTagger(heads=1, layers=1, embed_dims=[16], pair_dims=[8], dropout=0.5)


def particlenet_tagger():
    from seal.models.particlenet import ParticleNetTagger

    return ParticleNetTagger(convs=[[3, [8, 8]], [3, [16, 16]]], fcs=[[16, 0.5]])


def lgatr_slim_tagger(references: bool = True):
    from seal.models.lgatr import LGATrSlimTagger

    refs = dict(beam_reference="lightlike", time_reference=True) if references else {}
    return LGATrSlimTagger(blocks=1, hidden_v=4, hidden_s=8, heads=2, dropout=0.5, **refs)


def lloca_refs():
    from seal.models.lloca import LLoCaTagger

    backbone = ConstituentTransformer(dim=DIM, depth=1, heads=2, ff_dim=DIM, dropout=0.5)
    return LLoCaTagger(backbone, hidden=8, beam_reference="lightlike", time_reference=True)


# name → (factory, module that makes the fused route inexact (None: fused is exact),
#          module that couples the examples (None: independent))
ZOO = {
    "MultiheadAttention": (StockAttention, "attn (MultiheadAttention)", None),
    "TransformerEncoderLayer": (StockEncoderLayer, "layer.self_attn (MultiheadAttention)", None),
    "TransformerEncoderLayer, seq-first": (
        lambda: StockEncoderLayer(batch_first=False),
        "layer.self_attn",
        None,
    ),
    "TransformerEncoder, seq-first": (StockEncoder, "encoder.layers.0.self_attn", None),
    "F.dropout": (FunctionalDropout, "FunctionalDropout.forward", None),
    "nn.Dropout": (ModuleDropout, "drop (Dropout)", None),
    "nn.BatchNorm1d": (PooledBatchNorm, "norm (BatchNorm1d)", "norm (BatchNorm1d)"),
    "F.batch_norm": (
        FunctionalBatchNorm,
        "FunctionalBatchNorm.forward",
        "FunctionalBatchNorm.forward",
    ),
    "x - x.mean(0)": (BatchCentred, "BatchCentred.forward", "BatchCentred.forward"),
    "spectral_norm": (SpectralNormed, "mix.parametrizations.weight.0._u", None),
    "seal ConstituentTransformer": (
        lambda: ConstituentTransformer(dim=DIM, depth=1, heads=2, ff_dim=DIM, dropout=0.5),
        "blocks.0 (EncoderBlock.forward)",
        None,
    ),
    "seal TorchTransformerTagger": (
        lambda: TorchTransformerTagger(dim=DIM, depth=1, heads=2, ff_dim=DIM, dropout=0.5),
        "encoder.layers.0.self_attn",
        None,
    ),
    "seal MLP": (lambda: MLP(n_particles=6, width=16, dropout=0.5), "Dropout", None),
    "seal InvariantNet": (
        lambda: InvariantNet(hidden=8, latent_dim=8, max_particles=6),
        None,
        None,
    ),
    "seal HybridNet": (
        lambda: HybridNet(
            InvariantNet(hidden=8, latent_dim=8, max_particles=6),
            ConstituentTransformer(dim=DIM, depth=1, heads=2, ff_dim=DIM, dropout=0.5),
            latent_dim=8,
        ),
        "EncoderBlock",
        None,
    ),
    "L-GATr": (lgatr_tagger, None, None),
    # the backbones of model/backbone=... that seal wraps from lloca and lgatr
    "ParT": (
        part_tagger,
        "part.attention (LLoCaAttention.forward)",
        "part.embed.input_bn (BatchNorm1d)",
    ),
    "ParticleNet": (particlenet_tagger, "net.fc.0.2 (Dropout)", "net.bn_fts (BatchNorm1d)"),
    "L-GATr-slim + references": (
        lgatr_slim_tagger,
        "net.blocks.0.attention.dropout (SlimDropout)",
        None,
    ),
    "L-GATr-slim": (
        lambda: lgatr_slim_tagger(references=False),
        "net.blocks.0.attention.dropout (SlimDropout)",
        None,
    ),
    "LLoCa + references": (lloca_refs, "backbone", None),
}
# packages the optional extras bring
NEEDS = {"L-GATr": "lgatr", "L-GATr-slim + references": "lgatr", "L-GATr-slim": "lgatr"}
NEEDS |= {"ParT": "lloca", "ParticleNet": "lloca", "LLoCa + references": "lloca"}
# exact δSEAL needs a second derivative that torch lacks for an operation (lloca's segment_reduce)
NO_SECOND_DERIVATIVE = {"LLoCa + references"}
