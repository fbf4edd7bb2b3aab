"""CUDA paths (``gpu`` marker: skipped in CI and wherever no GPU is present; `pytest -m gpu`)."""

import pytest
import torch
from conftest import TOP_TINY

from seal.groups import Lorentz
from seal.models import ConstituentTransformer
from seal.symmetry import SymmetryLoss
from seal.testing import random_on_shell
from seal.train import run

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("penalty", ["gsymm", "dsymm"])
def test_bf16_penalty_agrees_with_fp32(penalty):
    torch.manual_seed(0)
    net = ConstituentTransformer(dim=64, depth=2, heads=4, ff_dim=128, dropout=0.0).cuda()
    batch = {
        k: v.cuda()
        for k, v in random_on_shell(64, 30, seed=1, max_momentum=200.0, dtype=torch.float32).items()
    }
    values = {}
    for name, enabled in (("fp32", False), ("bf16", True)):
        generator = torch.Generator().manual_seed(3)  # group elements drawn on CPU, as in training
        loss_fn = SymmetryLoss(penalty, Lorentz(0.5), generator=generator)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=enabled):
            values[name] = float(loss_fn(net, batch))
    assert values["fp32"] > 0
    assert values["bf16"] == pytest.approx(values["fp32"], rel=0.05), values


@pytest.mark.parametrize(
    "experiment",
    ["top_baseline", "top_gsymm", "top_dsymm", "top_augment", "top_invariant", "top_hybrid"],
)
def test_each_top_experiment_trains_on_the_gpu(compose_cfg, experiment):
    net = [] if experiment in ("top_invariant", "top_hybrid") else TOP_TINY[-2:]
    metrics = run(compose_cfg([f"+experiment={experiment}", *TOP_TINY[:-2], *net, "trainer=gpu"]))
    assert metrics["trainer/global_step"] >= 1 and 0 <= metrics["test/auc"] <= 1


@pytest.mark.parametrize("experiment", ["top_gsymm", "top_dsymm"])
def test_inductor_compile_on_the_gpu_stops_recompiling(compose_cfg, experiment):
    import torch._dynamo
    from test_train import _CompiledFrames

    torch._dynamo.reset()
    frames = _CompiledFrames()
    run(
        compose_cfg(
            [
                f"+experiment={experiment}",
                *TOP_TINY,
                "trainer=gpu",
                "model.compile=true",
                "trainer.max_epochs=3",
                "test=false",
            ]
        ),
        callbacks=[frames],
    )
    first, *later = frames.per_epoch
    assert later[-1] - first <= 2, frames.per_epoch
