"""Backbone × treatment: every pair composes; the allowed ones train one step on the fixture, the
others are refused before work with a message that says why (both axes discovered from configs)."""

import math

import pytest
from conftest import CONFIG_DIR
from hydra.errors import InstantiationException
from test_experiments import top_tiny

from seal.models.compose import TreatmentError
from seal.symmetry.routes import RouteError
from seal.train import run

BACKBONES = sorted(p.stem for p in (CONFIG_DIR / "model" / "backbone").glob("*.yaml"))
TREATMENTS = sorted(p.stem for p in (CONFIG_DIR / "treatment").glob("*.yaml"))
# exactly Lorentz-invariant as configured (no references, no spurions): only `none` means anything
EXACT = {"invariant", "lgatr", "lgatr_slim", "pelican"}
# BatchNorm couples a training batch's examples: exact δSEAL is refused (finite differences work)
COUPLED = {"part", "particlenet"}
NEEDS = {"lgatr": "lgatr", "lgatr_slim": "lgatr", "part": "lloca", "particlenet": "lloca"}
NEEDS |= {"pelican": "lloca"}


def refusal(backbone: str, treatment: str):
    """(error type, words the message must contain) for a pair seal must refuse, else None."""
    if backbone in EXACT and treatment != "none":
        return TreatmentError, "means nothing"
    if backbone in COUPLED and treatment == "dsymm":
        return RouteError, "method=finite_difference"
    return None


def test_axes_are_discovered():
    assert {"transformer", "part", "particlenet", "lgatr_slim", "lgatr", "pelican"} <= set(
        BACKBONES
    )
    assert {"none", "augment", "gsymm", "dsymm", "hybrid", "lloca", "lloca_refs_gsymm"} <= set(
        TREATMENTS
    )


PAIRS = [(b, t) for b in BACKBONES for t in TREATMENTS]


@pytest.mark.parametrize(("backbone", "treatment"), PAIRS, ids=[f"{b}-{t}" for b, t in PAIRS])
def test_pair_trains_one_step_or_is_refused(backbone, treatment, compose_cfg, tmp_path):
    for package in {NEEDS.get(backbone), "lloca" if "lloca" in treatment else None} - {None}:
        pytest.importorskip(package, reason=f"the optional extra seal-hep[{package}] is missing")
    overrides = ["+experiment=top", f"model/backbone={backbone}", f"treatment={treatment}"]
    overrides += [*top_tiny(backbone, treatment), "test=false"]
    cfg = compose_cfg(overrides)
    cfg.evaluation = None  # the evaluation of one run is test_experiments' business
    assert cfg.task_name == f"top_{backbone}_{treatment}"
    expected = refusal(backbone, treatment)
    if expected is not None:
        error, words = expected
        with pytest.raises((error, InstantiationException), match=words) as raised:
            run(cfg)
        if raised.type is InstantiationException:  # Hydra wraps errors raised while building
            assert isinstance(raised.value.__cause__, error)
        assert not list(tmp_path.rglob("*.ckpt"))  # refused before any step
        return
    metrics = run(cfg)
    assert metrics["trainer/global_step"] >= 1 and math.isfinite(metrics["val/loss"])
    if cfg.symmetry is not None:
        assert math.isfinite(metrics["train/symm_loss"]) and metrics["train/symm_loss"] >= 0


def test_a_named_experiment_with_another_pair_says_so(compose_cfg, caplog):
    cfg = compose_cfg(
        [
            "+experiment=top_gsymm",
            "model/backbone=torch_transformer",
            *top_tiny("torch_transformer", "gsymm"),
            "test=false",
        ]
    )
    cfg.evaluation = None
    assert list(cfg.tags) == ["top", "torch_transformer", "gsymm"]  # what it trains
    run(cfg)
    assert (
        "top_gsymm stands for transformer/gsymm, but this run trains torch_transformer/gsymm"
        in caplog.text
    )


@pytest.mark.parametrize(
    ("treatment", "outputs"),
    [("none", ["spectrum"]), ("lloca_refs", ["reference_shift"]), ("hybrid", ["mixing"])],
)
def test_the_evaluation_runs_on_part_pairs(treatment, outputs, compose_cfg, tmp_path):
    """ParT's symmetry spectrum is finite (its pair features have a finite derivative), LLoCa-ParT
    + references reports its reference dependence, the hybrid around ParT its mixing."""
    pytest.importorskip("lloca")
    overrides = ["+experiment=top", "model/backbone=part", f"treatment={treatment}"]
    metrics = run(compose_cfg([*overrides, *top_tiny("part", treatment)]))
    for name in outputs:
        assert (tmp_path / f"{name}.png").exists(), name
    spectrum = [metrics[f"spectrum/{g}"] for g in ("Kx", "Ky", "Kz", "Jx", "Jy", "Jz")]
    assert all(math.isfinite(s) for s in spectrum) and max(spectrum) > 0
    if treatment == "lloca_refs":
        assert 0 < metrics["references/shift_mean"] < 1
    if treatment == "hybrid":
        assert 0 < metrics["mixing/w_inv_mean"] < 1
