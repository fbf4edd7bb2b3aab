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
