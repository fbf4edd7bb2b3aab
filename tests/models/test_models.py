import pytest
import torch
from tolerances import EXACT_F64

from seal.models import MLP, ConstituentTransformer
from seal.testing import random_on_shell

F64 = torch.float64


def small_transformer():
    return ConstituentTransformer(dim=32, depth=2, heads=4, ff_dim=32, dropout=0.1).double().eval()


def test_transformer_ignores_padding_and_order():
    batch = random_on_shell(5, 7, seed=1)
    model = small_transformer()
    out = model(batch)
    assert out.shape == (5,)
    # more zero padding
    padded = {
        "p4": torch.cat((batch["p4"], torch.zeros(5, 4, 4, dtype=F64)), 1),
        "mask": torch.cat((batch["mask"], torch.zeros(5, 4, dtype=torch.bool)), 1),
    }
    torch.testing.assert_close(model(padded), out, **EXACT_F64)
    # constituents permuted (padding moved to the front too)
    perm = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    permuted = {"p4": batch["p4"][:, perm], "mask": batch["mask"][:, perm]}
    torch.testing.assert_close(model(permuted), out, **EXACT_F64)


def test_mlp_shapes_and_errors():
    batch = random_on_shell(3, 2, seed=0, dtype=torch.float32)
    assert MLP(n_particles=2)(batch).shape == (3,)
    assert MLP(n_particles=2, out_dim=4)(batch).shape == (3, 4)
    with pytest.raises(ValueError, match=r"built for 1 four-vectors .* shape \(3, 2, 4\)"):
        MLP(n_particles=1)(batch)
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        MLP(activation="swish")


def test_transformer_rejects_bad_head_count():
    with pytest.raises(ValueError, match="width 30 is not divisible by the number of heads 4"):
        ConstituentTransformer(dim=30, heads=4)
