"""Jets padded per batch (``data.padding=batch``, the default) against the fixed
``n_constituents`` slots: the same jets and masks, and — for every top network seal builds —
the same outputs and penalties."""

from pathlib import Path

import numpy as np
import pytest
import torch

from seal.data.jet_datamodule import JetDataModule, JetStream, trim_padding
from seal.data.jets import JetFile
from seal.groups import Lorentz
from seal.symmetry import SymmetryLoss

FIXTURE = Path(__file__).parent / "fixture_jets.h5"
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def streams(padding, n_constituents, **kwargs):
    file = JetFile(FIXTURE, n_constituents)
    selected = np.ones(len(file), dtype=bool)
    file.close()
    stream = JetStream(FIXTURE, n_constituents, selected, 64, padding=padding, seed=3, **kwargs)
    stream.set_epoch(1)
    return list(stream)


@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_end_at_their_longest_jet_with_the_same_jets_and_masks(shuffle):
    # the fixture stores 80 constituents: with 120 slots, 40 are padding in every jet
    fixed = streams("fixed", 120, shuffle=shuffle)
    trimmed = streams("batch", 120, shuffle=shuffle)
    assert len(fixed) == len(trimmed) == 5
    for a, b in zip(fixed, trimmed):
        width = int(a["mask"].sum(1).max())  # constituents are stored pT-ordered
        assert b["p4"].shape[1] == b["mask"].shape[1] == width <= 80
        assert torch.equal(b["mask"], a["mask"][:, :width])
        assert torch.equal(b["p4"], a["p4"][:, :width])
        assert not a["mask"][:, width:].any() and not a["p4"][:, width:].any()
        for key in ("target", "weight", "jet_p4", "index"):
            assert torch.equal(a[key], b[key])


def test_a_gap_in_the_mask_is_kept_and_only_all_padding_slots_are_cut():
    mask = np.array([[True, False, True, False, False], [True, True, False, False, False]])
    rows = {"p4": np.arange(40.0).reshape(2, 5, 4) * mask[..., None], "mask": mask}
    cut = trim_padding(rows)
    assert cut["mask"].tolist() == [[True, False, True], [True, True, False]]
    assert np.array_equal(cut["p4"], rows["p4"][:, :3])
    empty = trim_padding({"p4": np.zeros((2, 5, 4)), "mask": np.zeros((2, 5), dtype=bool)})
    assert empty["mask"].shape == (2, 1)


def test_bad_padding_is_named_before_any_data_is_read(tmp_path):
    with pytest.raises(ValueError, match=r"data.padding must be one of \['batch', 'fixed'\].*"):
        JetDataModule(tmp_path / "missing.h5", padding="dynamic")


def short_jets(n=24, slots=80, seed=0):
    """Fixture jets cut to 5–30 constituents in ``slots`` slots (the rest padding, as read)."""
    rows = JetFile(FIXTURE, slots).read(0, n)
    lengths = np.random.default_rng(seed).integers(5, 31, size=n)
    keep = np.arange(slots)[None, :] < lengths[:, None]
    rows["mask"] &= keep
    rows["p4"] = rows["p4"] * rows["mask"][..., None]
    batch = {k: torch.as_tensor(rows[k]) for k in ("p4", "mask", "jet_p4", "target")}
    return batch, int(lengths.max())


# every network of the top experiments and the wrapped backbones
NETWORKS = {
    "transformer": ["+experiment=top_baseline"],
    "invariant": ["+experiment=top_invariant"],
    "hybrid": ["+experiment=top_hybrid"],
    "torch_transformer": ["+experiment=top_baseline", "model/backbone=torch_transformer"],
    "part": ["+experiment=top_baseline", "model/backbone=part"],
    "particlenet": ["+experiment=top_baseline", "model/backbone=particlenet"],
    "lgatr_slim": ["+experiment=top_baseline", "model/backbone=lgatr_slim"],
    "lloca": ["+experiment=top_lloca"],
    "lgatr": ["+experiment=top_lgatr"],
    "pelican": ["+experiment=top_pelican"],
}


@pytest.mark.parametrize("name", NETWORKS)
def test_every_top_network_gives_the_same_outputs_and_penalties_per_batch_padded(name):
    from hydra import compose, initialize_config_dir
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = compose("train", overrides=NETWORKS[name])
    torch.manual_seed(0)
    try:
        net = instantiate(cfg.model.net).eval()
    except InstantiationException as error:
        if isinstance(error.__cause__, ImportError):
            pytest.skip(f"optional extra not installed: {error.__cause__}")
        raise
    fixed, width = short_jets()
    trimmed = fixed | {"p4": fixed["p4"][:, :width], "mask": fixed["mask"][:, :width]}
    assert width < 40 and trimmed["p4"].shape[1] == width
    with torch.no_grad():
        a, b = net(fixed), net(trimmed)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    for penalty in ("gsymm", "dsymm"):
        a, b = (
            SymmetryLoss(penalty, Lorentz(0.5), generator=torch.Generator().manual_seed(1))(
                net, batch
            ).detach()
            for batch in (fixed, trimmed)
        )
        # exactly invariant networks: both at rounding level (1e-11 and below)
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-9)
