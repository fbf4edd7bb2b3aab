"""docs/design.md's "Adding a penalty" example, run exactly as it stands in the document."""

import re
from pathlib import Path

import pytest
import torch

from seal.symmetry import SymmetryLoss
from seal.symmetry.gseal import transform_entry

DESIGN = Path(__file__).resolve().parents[2] / "docs" / "design.md"


@pytest.fixture(scope="module")
def example() -> dict:
    section = DESIGN.read_text().split("### Adding a penalty", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)
    namespace: dict = {"__name__": "design_example"}
    exec(compile(code, str(DESIGN), "exec"), namespace)
    return namespace


def test_the_example_penalty_sees_invariance_and_its_breaking(example):
    invariant, broken = example["invariant_penalty"], example["broken_penalty"]
    assert invariant.dtype == torch.float64 and invariant.dim() == 0
    assert float(invariant) < 1e-20  # log m² is exactly boost invariant (float64 rounding)
    assert float(broken) > 1e-3


def test_the_example_penalty_equals_a_hand_written_reference(example):
    # the same two group elements per example, drawn from a generator in the same state
    batch, group = example["batch"], example["Boosts"](beta_max=0.5)
    model = example["Energy"]()
    loss = SymmetryLoss(
        example["PairGSEAL"](), group=group, generator=torch.Generator().manual_seed(3)
    )
    value = loss(model, batch)
    draw = torch.Generator().manual_seed(3)
    outs = []
    for _ in range(2):
        lam = group.sample(len(batch["p4"]), generator=draw)
        outs.append(model({**batch, "p4": transform_entry(batch, "p4", lam)}))
    torch.testing.assert_close(value, (outs[0] - outs[1]).square().mean(), rtol=1e-12, atol=0)


def test_the_example_penalty_trains_through_the_callback_unedited(example):
    # a class and nothing else: the callback schedules it, logs it and adds it to the loss
    from test_callback import fit, make_module

    from seal.symmetry import SymmetryRegularizer

    regulariser = SymmetryRegularizer(example["PairGSEAL"](), group="boosts", weight=1.0)
    trainer, _ = fit(make_module(), [regulariser], max_steps=3)
    logged = trainer.callback_metrics["train/symm_loss"]
    assert trainer.global_step == 3 and torch.isfinite(logged) and float(logged) > 0
