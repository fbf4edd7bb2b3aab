import pytest
import torch

from seal.data.augment import BoostAugmentation
from seal.data.toy import (
    ToyDataModule,
    covariant_truth,
    exact_truth,
    make_toy,
    make_truth,
    sample_momenta,
    spurion_truth,
)
from seal.groups import Lorentz, ZBoostZRotation, mass2
from seal.testing import assert_covariant, assert_invariant

F64 = torch.float64


@pytest.fixture(params=[1, 3], ids=["N=1", "N=3"])
def batch(request):
    p4 = sample_momenta(200, request.param, "uniform", seed=4)
    return {"p4": p4, "mask": torch.ones(200, request.param, dtype=torch.bool)}


def test_exact_truth_is_m4_plus_15m2_for_one_particle():
    p = torch.tensor([[[0.4, 0.1, -0.2, 0.05]]], dtype=F64)
    m2 = 0.16 - 0.01 - 0.04 - 0.0025
    torch.testing.assert_close(exact_truth(p), torch.tensor([m2**2 + 15 * m2], dtype=F64))


def test_exact_truth_is_exactly_invariant(batch):
    assert_invariant(lambda b: exact_truth(b["p4"]), batch, Lorentz(0.95), atol=1e-12, rtol=1e-12)


def test_spurion_truth_is_broken_but_keeps_the_beam_rotations(batch):
    truth = lambda b: spurion_truth(b["p4"])  # noqa: E731
    with pytest.raises(AssertionError):
        assert_invariant(truth, batch, Lorentz(0.5))
    # s = (0, 0, 0, ε) is untouched by rotations about z (the subgroup with β_max = 0)
    assert_invariant(truth, batch, ZBoostZRotation(0.0), atol=1e-12, rtol=1e-12)
    # and the breaking is small: the spurion terms are O(1e-2) of the truth
    gap = (spurion_truth(batch["p4"]) - exact_truth(batch["p4"])).abs().max()
    assert 1e-4 < gap < 0.05


def test_covariant_truth_transforms_as_a_four_vector(batch):
    assert_covariant(
        lambda b: covariant_truth(b["p4"]), batch, Lorentz(0.95), atol=1e-11, rtol=1e-11
    )


def test_on_shell_sampler_gives_massive_particles():
    p4 = sample_momenta(1000, 2, "on_shell", seed=0)
    m = mass2(p4).sqrt()
    assert (m > 0.0499).all() and (m < 0.3001).all() and (p4[..., 0] > 0).all()


def test_splits_are_seeded_distinct_and_reproducible():
    a, b = (
        ToyDataModule(n_train=10, n_val=10, n_test=10),
        ToyDataModule(n_train=10, n_val=10, n_test=10),
    )
    a.setup(), b.setup()
    assert torch.equal(a.splits["train"]["p4"], b.splits["train"]["p4"])
    assert not torch.equal(a.splits["train"]["p4"], a.splits["val"]["p4"])
    batch = next(iter(a.train_dataloader()))
    assert batch["p4"].shape == (10, 1, 4) and batch["target"].shape == (10,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_train": -1}, "data.n_train must be a positive"),
        ({"n_val": 0}, "data.n_val"),
        ({"sampler": "gaussian"}, "unknown toy sampler"),
        ({"truth": "x"}, "unknown toy truth 'x'"),
        ({"batch_size": 0}, "data.batch_size must be >= 1"),
    ],
)
def test_bad_toy_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToyDataModule(**kwargs)


def test_augmentation_moves_inputs_and_keeps_or_transforms_targets():
    torch.manual_seed(0)
    scalar = make_toy(64, 2, seed=1, dtype=F64)
    out = BoostAugmentation("lorentz", beta_max=0.8)(scalar)
    assert not torch.allclose(out["p4"], scalar["p4"])
    torch.testing.assert_close(mass2(out["p4"]), mass2(scalar["p4"]))
    assert torch.equal(out["target"], scalar["target"])  # invariant truth: target kept
    vector = make_toy(64, 2, seed=1, truth=make_truth("covariant"), dtype=F64)
    out = BoostAugmentation("lorentz", beta_max=0.8, output="vector")(vector)
    torch.testing.assert_close(out["target"], covariant_truth(out["p4"]))  # still the truth


def test_evaluation_loaders_share_rows_over_ranks_without_repeats(monkeypatch):
    from seal.data.tensordict import EpochSampler, loader

    data = {"x": torch.arange(7.0)}
    seen = []
    for rank in (0, 1):
        monkeypatch.setattr(EpochSampler, "_world", staticmethod(lambda r=rank: (r, 2)))
        batches = loader(data, batch_size=2)
        seen += [int(v) for batch in batches for v in batch["x"]]
        assert len(batches.sampler) == (4 if rank == 0 else 3)  # rows 0,2,4,6 and 1,3,5
    assert sorted(seen) == list(range(7))  # every row once: no padding repeats
