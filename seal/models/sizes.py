"""``size``: one knob per backbone — ``cpu`` (the default: trains on a laptop's cores in minutes)
or ``published`` (the size of the paper the backbone comes from, for GPU runs). An argument given
explicitly wins over the preset. The backbone configs all say ``size: cpu``; as a class,
:class:`~seal.models.ConstituentTransformer` alone defaults to ``published`` (the SEAL study's
size, which its constructor gave before the presets existed)."""

SIZES = ("cpu", "published")


def preset(presets: dict, size: str, owner: str, **given) -> dict:
    """``given`` with every ``None`` replaced by ``presets[size]``'s value.

    Raises
    ------
    ValueError
        ``size`` is not one of :data:`SIZES`, naming the backbone.
    """
    if size not in presets:
        raise ValueError(
            f"{owner}: size={size!r} is not one of {sorted(presets)} "
            f"(model.net.backbone.size=cpu for CPU runs, =published for the paper's size)"
        )
    return {key: presets[size][key] if value is None else value for key, value in given.items()}
