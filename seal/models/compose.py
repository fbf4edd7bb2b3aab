"""Backbone × treatment: the network a run trains, and the pairs that cannot mean anything.

``configs/model/tagger.yaml`` builds ``treated(backbone, canonicalise=..., hybrid=...)``; the
backbone comes from ``model/backbone=...``, the rest from ``treatment=...`` (which also picks the
symmetry penalty and the augmentation). A network declares exact symmetry with an
``exact_symmetry`` attribute: a sentence saying why (``None``: not exactly symmetric).
"""

from torch import nn

from seal.models.hybrid import HybridNet
from seal.models.lloca import LLoCaTagger


class TreatmentError(ValueError):
    """A backbone × treatment pair that cannot mean anything; the message says why."""


def exact_symmetry(net: nn.Module) -> str | None:
    """Why ``net`` is exactly Lorentz-symmetric (invariant logits), or ``None``."""
    return getattr(net, "exact_symmetry", None)


def treated(
    backbone: nn.Module, canonicalise: dict | None = None, hybrid: dict | None = None
) -> nn.Module:
    """The backbone itself, or LLoCa around it, or the hybrid with it as the general subnet.

    Parameters
    ----------
    backbone : nn.Module
        Any network on the batch dict (``model/backbone=...``).
    canonicalise : dict, optional
        :class:`~seal.models.lloca.LLoCaTagger`'s options (``treatment=lloca*``).
    hybrid : dict, optional
        :class:`~seal.models.HybridNet`'s options with its ``invariant`` subnet
        (``treatment=hybrid``).

    Raises
    ------
    TreatmentError
        Both at once, or either around a backbone that is already exactly symmetric.
    """
    if canonicalise is not None and hybrid is not None:
        raise TreatmentError(
            "model.net.canonicalise and model.net.hybrid are both set: a treatment is one of "
            "them (treatment=lloca* or treatment=hybrid)"
        )
    why = exact_symmetry(backbone)
    if canonicalise is not None:
        if why:
            raise TreatmentError(
                f"LLoCa around {type(backbone).__name__} means nothing: {why}, so canonicalising "
                f"its input changes no output. Use treatment=none with this backbone, or LLoCa "
                f"around a backbone that is not symmetric (transformer, part, particlenet)"
            )
        return LLoCaTagger(backbone, **dict(canonicalise))
    if hybrid is not None:
        if why:
            raise TreatmentError(
                f"the hybrid around {type(backbone).__name__} means nothing: it mixes an invariant "
                f"subnet with a general one, and this backbone is not general: {why}. Use "
                f"treatment=none with it"
            )
        options = dict(hybrid)
        try:
            return HybridNet(invariant=options.pop("invariant"), general=backbone, **options)
        except TypeError as error:  # a backbone without encode(batch) and latent_dim
            raise TreatmentError(f"treatment=hybrid cannot use this backbone: {error}") from error
    return backbone


def check_treatment(net: nn.Module, symmetry, augment) -> None:
    """Refuse a symmetry penalty or a boost augmentation on an exactly symmetric network.

    Raises
    ------
    TreatmentError
        Naming the network, why it is symmetric and what to do.
    """
    why = exact_symmetry(net)
    if not why:
        return
    name = type(net).__name__
    if symmetry is not None:
        raise TreatmentError(
            f"a symmetry penalty on {name} means nothing: {why}, so the penalty is zero up to "
            f"rounding and λ changes nothing. Use treatment=none with this backbone, or break "
            f"its symmetry first (reference vectors: treatment=lloca_refs_gsymm; spurions: "
            f"model.net.backbone.beam_reference=lightlike for L-GATr-slim, "
            f"model.net.backbone.beam_spurion=lightlike for L-GATr)"
        )
    if augment is not None:
        raise TreatmentError(
            f"boost augmentation of {name} means nothing: {why}, so a boosted jet gives the "
            f"same output. Use treatment=none with this backbone"
        )
