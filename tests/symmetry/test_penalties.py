import contextlib

import pytest
import torch
from tolerances import BF16, EXACT_F64, FINITE_DIFFERENCE_F64, LINEAR_DIFFERENCE_F64, ROUTES_F64

from seal.groups import Boosts, Group, Lorentz, Rotations, ZBoostZRotation, boost_matrix, inner
from seal.models import MLP
from seal.symmetry import dseal, gseal
from seal.testing import random_on_shell

F64 = torch.float64


def sum_of_masses(batch):
    m2 = torch.where(batch["mask"], inner(batch["p4"], batch["p4"]), 1.0)  # (B, N), pads → 1
    return (m2.sqrt() * batch["mask"]).sum(-1)


def pairwise_polynomial(batch):
    p = batch["p4"] * batch["mask"].unsqueeze(-1)
    products = inner(p.unsqueeze(2), p.unsqueeze(1)) / 1e4  # (B, N, N) of p_i·p_j
    return (products + 0.5 * products.square()).sum((1, 2))


def total_momentum(batch):
    return (batch["p4"] * batch["mask"].unsqueeze(-1)).sum(1)  # (B, 4)


def first_pz(batch):
    return batch["p4"][:, 0, 3]


class FixedZBoost(Group):
    """A 'group' that always returns the boost β = 0.6 ẑ (γ = 1.25, γβ = 0.75)."""

    name = "fixed"
    generator_indices = (2,)

    def _sample(self, n, generator):
        return boost_matrix(torch.tensor([0.0, 0.0, 0.6], dtype=F64)).expand(n, 4, 4)


@pytest.fixture
def batch():
    return random_on_shell(24, 6, seed=7)


@pytest.mark.parametrize("fn", [sum_of_masses, pairwise_polynomial])
@pytest.mark.parametrize("group", [Lorentz(0.95), Boosts(0.9), ZBoostZRotation(0.9), Rotations()])
def test_penalties_vanish_for_exactly_invariant_functions(fn, group, batch):
    scale = fn(batch).square().mean()
    assert gseal(fn, batch, group) <= 1e-10 * scale
    assert dseal(fn, batch, group) <= 1e-10 * scale


def test_penalties_vanish_for_a_covariant_vector(batch):
    scale = total_momentum(batch).square().sum(-1).mean()
    assert gseal(total_momentum, batch, Lorentz(0.95), output="vector") <= 1e-10 * scale
    assert dseal(total_momentum, batch, Lorentz(), output="vector") <= 1e-10 * scale
    # as a *scalar* the energy component is not invariant: the penalty sees it
    energy = lambda b: total_momentum(b)[:, 0]  # noqa: E731
    assert gseal(energy, batch, Lorentz(0.5)) > 1e-3 * scale


def test_dseal_closed_form_for_first_pz(batch):
    # ∂_a pz = (T_a p)_z: K_z → E, J_x → py, J_y → −px, the others 0
    p = batch["p4"][:, 0]
    expected = (p[:, 0].square() + p[:, 1].square() + p[:, 2].square()).mean()
    torch.testing.assert_close(dseal(first_pz, batch, Lorentz()), expected, **EXACT_F64)
    fd = dseal(first_pz, batch, Lorentz(), method="finite_difference", eps=1e-4)
    torch.testing.assert_close(fd, expected, **LINEAR_DIFFERENCE_F64)
    # the collider subgroup only has K_z and J_z
    torch.testing.assert_close(dseal(first_pz, batch, ZBoostZRotation()), p[:, 0].square().mean())


def test_gseal_closed_form_for_first_pz(batch):
    p = batch["p4"][:, 0]
    expected = (0.75 * p[:, 0] + 0.25 * p[:, 3]).square().mean()  # pz' − pz = γβE + (γ−1)pz
    torch.testing.assert_close(gseal(first_pz, batch, FixedZBoost()), expected, **EXACT_F64)


def test_gseal_equals_hand_computation_with_the_same_elements(batch):
    group = Lorentz(0.8)
    lam = group.sample(24, generator=torch.Generator().manual_seed(9))
    moved = torch.einsum("bij,bnj->bni", lam, batch["p4"])
    expected = (moved[:, 0, 3] - batch["p4"][:, 0, 3]).square().mean()
    value = gseal(first_pz, batch, group, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(value, expected, **EXACT_F64)


def test_dseal_vector_closed_form(batch):
    # f(p) = M p with M = diag(1, 1, 1, 0): D_a = M T_a p − T_a M p
    m = torch.diag(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=F64))
    fn = lambda b: b["p4"][:, 0] @ m.T  # noqa: E731
    gens = Lorentz().generators()
    p = batch["p4"][:, 0]
    d = torch.einsum("ij,ajk,bk->bai", m, gens, p) - torch.einsum("aij,jk,bk->bai", gens, m, p)
    expected = d.square().sum((1, 2)).mean()
    torch.testing.assert_close(dseal(fn, batch, Lorentz(), output="vector"), expected, **EXACT_F64)
    fd = dseal(fn, batch, Lorentz(), output="vector", method="finite_difference", eps=1e-4)
    torch.testing.assert_close(fd, expected, **LINEAR_DIFFERENCE_F64)


@pytest.mark.parametrize("output", ["scalar", "vector"])
def test_exact_dseal_agrees_with_finite_differences_on_an_mlp(output):
    batch = random_on_shell(16, 3, seed=2, max_momentum=1.0, masses=(0.1, 0.5), pad=False)
    model = MLP(n_particles=3, out_dim=1 if output == "scalar" else 4, width=32).double()
    exact = dseal(model, batch, Lorentz(), output=output)
    fd = dseal(model, batch, Lorentz(), output=output, method="finite_difference", eps=1e-5)
    assert exact > 1e-4
    torch.testing.assert_close(exact, fd, **FINITE_DIFFERENCE_F64)


def _param_gradient_check(penalty, model, seed=0):
    """Compare ∇θ penalty with a float64 central difference along a random direction."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(penalty(), params, allow_unused=True, materialize_grads=True)
    gen = torch.Generator().manual_seed(seed)
    direction = [torch.randn(p.shape, generator=gen, dtype=F64) for p in params]
    analytic = sum((g * d).sum() for g, d in zip(grads, direction))
    h = 1e-5
    values = []
    for sign in (1, -1):
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.add_(sign * h * d)
        values.append(penalty().detach())
        with torch.no_grad():
            for p, d in zip(params, direction):
                p.sub_(sign * h * d)
    numeric = (values[0] - values[1]) / (2 * h)
    torch.testing.assert_close(analytic, numeric, **FINITE_DIFFERENCE_F64)


@pytest.mark.parametrize("output", ["scalar", "vector"])
@pytest.mark.parametrize("method", ["exact", "finite_difference"])
@pytest.mark.parametrize("stochastic", [False, True])
@pytest.mark.parametrize("implementation", ["auto", "separate"])
def test_dseal_parameter_gradients_through_layernorm_and_attention(
    tiny_attention, output, method, stochastic, implementation
):
    # forward-mode AD got these gradients 15–99 % wrong (docs/design.md, traps): so every route
    # is checked against float64 finite differences of the parameter gradient
    batch = random_on_shell(6, 5, seed=3)
    model = tiny_attention(out_dim=1 if output == "scalar" else 4).double()
    options = dict(output=output, method=method, stochastic=stochastic)

    def penalty():
        generator = torch.Generator().manual_seed(2)
        return dseal(model, batch, Lorentz(), generator, implementation=implementation, **options)

    _param_gradient_check(penalty, model)


@pytest.mark.parametrize("output", ["scalar", "vector"])
def test_gseal_parameter_gradients(tiny_attention, output):
    batch = random_on_shell(6, 5, seed=4)
    model = tiny_attention(out_dim=1 if output == "scalar" else 4).double()

    def penalty():
        gen = torch.Generator().manual_seed(1)
        return gseal(model, batch, Lorentz(0.7), output=output, generator=gen)

    _param_gradient_check(penalty, model)


def test_dropout_masks_are_shared_between_the_compared_forwards(tiny_attention):
    batch = random_on_shell(8, 5, seed=5)
    model = tiny_attention(dropout=0.5).double().train()
    # identity elements: any difference could only come from different dropout masks
    for implementation in ("auto", "separate"):
        assert gseal(model, batch, Boosts(0.0), implementation=implementation).item() == 0.0
    exact = dseal(model, batch, Lorentz())
    fd = dseal(
        model, batch, Lorentz(), method="finite_difference", eps=1e-5, implementation="separate"
    )
    torch.testing.assert_close(exact, fd, **FINITE_DIFFERENCE_F64)
    assert exact > 0


class InvariantWithDropout(torch.nn.Module):
    """Exactly invariant features (masses, pair products) → MLP with dropout."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(2, 16), torch.nn.GELU(), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1)
        )

    def forward(self, batch):
        features = torch.stack([sum_of_masses(batch) / 10, pairwise_polynomial(batch) / 10], -1)
        return self.net(features).squeeze(-1)


def test_an_invariant_model_with_dropout_has_no_penalty(batch):
    model = InvariantWithDropout().double().train()
    scale = model(batch).square().mean()
    assert gseal(model, batch, Lorentz(0.9)) < 1e-20 * scale
    fd = dseal(model, batch, Lorentz(), method="finite_difference", eps=1e-4)
    assert fd < 1e-12 * scale  # finite-difference truncation only
    stochastic = dseal(
        model, batch, Lorentz(), method="finite_difference", eps=1e-4, stochastic=True
    )
    assert stochastic < 1e-12 * scale
    # unmatched masks would look like symmetry breaking
    joined = torch.cat([batch["p4"], batch["p4"]])
    y = model({"p4": joined, "mask": torch.cat([batch["mask"], batch["mask"]])})
    assert (y[:24] - y[24:]).square().mean() > 1e-3 * scale


CASES = [
    ("gsymm", {}),
    ("dsymm", {"method": "exact"}),
    ("dsymm", {"method": "exact", "stochastic": True}),
    ("dsymm", {"method": "finite_difference"}),
    ("dsymm", {"method": "finite_difference", "stochastic": True}),
]


@pytest.mark.parametrize("output", ["scalar", "vector"])
@pytest.mark.parametrize(("penalty", "options"), CASES)
def test_fused_and_separate_implementations_agree(tiny_attention, penalty, options, output):
    batch = random_on_shell(10, 5, seed=8)
    model = tiny_attention(out_dim=1 if output == "scalar" else 4).double()
    fn = gseal if penalty == "gsymm" else dseal

    def value(**kwargs):
        generator = torch.Generator().manual_seed(3)
        return fn(model, output=output, generator=generator, group=Lorentz(0.7), **kwargs)

    values = [
        value(batch=batch, fraction=0.5, implementation=impl, **options)
        for impl in ("fused", "separate")
    ]
    assert values[0] > 1e-4
    torch.testing.assert_close(values[0], values[1], **ROUTES_F64)
    # a fraction is the penalty of the first rows: ceil(0.5 · 10) = 5
    first = {k: v[:5] for k, v in batch.items()}
    torch.testing.assert_close(values[0], value(batch=first, **options), **ROUTES_F64)


@pytest.mark.parametrize("output", ["scalar", "vector"])
@pytest.mark.parametrize("method", ["exact", "finite_difference"])
def test_stochastic_dseal_is_unbiased(tiny_attention, method, output):
    batch = random_on_shell(4, 5, seed=9)
    model = tiny_attention(out_dim=1 if output == "scalar" else 4).double()
    options = dict(output=output, method=method, eps=1e-5)
    full = dseal(model, batch, Lorentz(), **options)
    generator = torch.Generator().manual_seed(0)
    measure = method == "finite_difference"  # values only: no graphs for 400 draws
    with torch.no_grad() if measure else contextlib.nullcontext():
        draws = torch.stack(
            [
                dseal(
                    model, batch, Lorentz(), generator, stochastic=True, measure=measure, **options
                ).detach()
                for _ in range(400)
            ]
        )
    sigma = draws.std() / len(draws) ** 0.5
    assert abs(draws.mean() - full) < 3 * sigma, (draws.mean(), full, sigma)
    assert sigma < 0.1 * full  # a real test: the estimate is informative
    assert draws.std() > 1e-3 * full  # and the directions really are random


def test_penalties_leave_the_global_rng_alone(tiny_attention):
    batch = random_on_shell(8, 5, seed=5)
    model = tiny_attention(dropout=0.5).double().train()
    state = torch.get_rng_state()
    gseal(model, batch, Lorentz(0.5), generator=torch.Generator().manual_seed(0))
    dseal(model, batch, Lorentz())
    dseal(model, batch, Lorentz(), method="finite_difference")
    assert torch.equal(torch.get_rng_state(), state)


def test_penalties_reach_every_parameter(tiny_attention):
    batch = random_on_shell(8, 5, seed=6)
    model = tiny_attention().double()
    # both penalties compare outputs, so biases that only shift the output cancel: the last
    # layer's bias and the block's final bias (nothing nonlinear follows it)
    constant_shifts = {"head.bias", "block.ff.2.bias"}
    penalties = (
        gseal(model, batch, Lorentz(0.5)),
        dseal(model, batch, Lorentz()),
        dseal(model, batch, Lorentz(), stochastic=True),
    )
    for penalty in penalties:
        model.zero_grad()
        penalty.backward()
        assert penalty.dim() == 0
        # (float64: a fused forward sums the cancelling terms in another order than rounding-free)
        reached = {
            n
            for n, p in model.named_parameters()
            if p.grad is not None and p.grad.abs().max() > 1e-12
        }
        assert reached == {n for n, _ in model.named_parameters()} - constant_shifts


def test_jet_p4_is_transformed_when_present(batch):
    def jet_pz(b):
        return b["jet_p4"][:, 3]

    assert gseal(jet_pz, batch, Lorentz(0.5)) > 0

    # the jet axis moves with the constituents: a function comparing them is invariant
    def jet_minus_sum(b):
        return inner(b["jet_p4"] - total_momentum(b), torch.tensor([1.0, 2, 3, 4], dtype=F64))

    assert gseal(jet_minus_sum, batch, Lorentz(0.9)) < 1e-20
    assert dseal(jet_minus_sum, batch, Lorentz()) < 1e-20


def test_bad_inputs_raise_clear_errors(batch):
    nan_batch = {**batch, "p4": batch["p4"].clone()}
    nan_batch["p4"][3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"batch\['p4'\] has a non-finite .* \(3, 1, 2\)"):
        gseal(sum_of_masses, nan_batch, Lorentz(0.5))
    with pytest.raises(ValueError, match=r"batch\['p4'\] has a non-finite"):
        dseal(sum_of_masses, nan_batch, Lorentz())
    with pytest.raises(KeyError, match=r"batch\['constituents'\].*'jet_p4', 'mask', 'p4'"):
        gseal(sum_of_masses, batch, Lorentz(0.5), key="constituents")
    with pytest.raises(ValueError, match=r"output='vector' needs model outputs of shape \(B, 4\)"):
        gseal(sum_of_masses, batch, Lorentz(0.5), output="vector")
    with pytest.raises(ValueError, match="unknown output kind 'tensor'"):
        dseal(sum_of_masses, batch, Lorentz(), output="tensor")
    with pytest.raises(ValueError, match="unknown δSEAL method 'forward'"):
        dseal(sum_of_masses, batch, Lorentz(), method="forward")
    with pytest.raises(ValueError, match=r"fraction of the batch must be in \(0, 1\]; got 0"):
        gseal(sum_of_masses, batch, Lorentz(0.5), fraction=0)
    with pytest.raises(ValueError, match="unknown δSEAL reduction 'max'"):
        dseal(sum_of_masses, batch, Lorentz(), reduction="max")
    with pytest.raises(ValueError, match="unknown penalty implementation 'vmap'"):
        dseal(sum_of_masses, batch, Lorentz(), implementation="vmap")


def test_bf16_autocast_penalties_match_float32(tiny_attention):
    # boosted inputs are built in float32 with autocast off; only the network runs in bf16
    batch = random_on_shell(64, 8, seed=11, dtype=torch.float32)
    model = tiny_attention()
    generator = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    fp32 = gseal(model, batch, Lorentz(0.5), generator=generator())
    exact32 = dseal(model, batch, Lorentz())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = gseal(model, batch, Lorentz(0.5), generator=generator())
        exact16 = dseal(model, batch, Lorentz())
        with pytest.raises(RuntimeError, match=r"finite-difference δSEAL .*bfloat16 autocast"):
            dseal(model, batch, Lorentz(), method="finite_difference")
    # bf16 keeps 8 bits of mantissa: ~0.4 % per operation, a few % on a difference of outputs
    torch.testing.assert_close(bf16, fp32, **BF16)
    torch.testing.assert_close(exact16, exact32, **BF16)


def test_compiled_models_replay_dropout(tiny_attention, batch):
    invariant = torch.compile(InvariantWithDropout().double().train(), backend="aot_eager")
    assert gseal(invariant, batch, Lorentz(0.9)) < 1e-20
    attention = torch.compile(tiny_attention(dropout=0.5).double().train(), backend="aot_eager")
    assert gseal(attention, batch, Boosts(0.0)).item() == 0.0
