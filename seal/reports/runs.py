"""Finished runs read back from their folders: settings (task, loss, λ, β_max, model, overrides)
and ``metrics.json``. A run is any folder holding ``.hydra/config.yaml``; it counts as finished
when it also holds ``metrics.json`` (failed runs are listed as such, not dropped)."""

import json
from pathlib import Path

import hydra
from omegaconf import OmegaConf


def _penalty_name(penalty) -> str:
    """``gsymm``/``dsymm``/...: a penalty name, or the ``name`` of its ``_target_`` class."""
    if not OmegaConf.is_config(penalty):
        return str(penalty)
    target = str(penalty.get("_target_", ""))
    try:
        return str(getattr(hydra.utils.get_class(target), "name", target.rsplit(".", 1)[-1]))
    except (ImportError, ValueError):
        return target.rsplit(".", 1)[-1]


def _loss_type(cfg) -> str:
    if cfg.get("symmetry"):
        return _penalty_name(cfg.symmetry.penalty)
    if cfg.get("data") and cfg.data.get("augment"):
        return "augment"
    return "none"


def _class_name(node) -> str:
    name = str(node.get("_target_", "")).rsplit(".", 1)[-1]
    if node.get("beam_reference") or node.get("time_reference"):  # broken by references
        name += "+references"
    return name


def _model_name(cfg) -> str:
    """The network's class name (``model.net._target_``, else ``model._target_``); for a
    backbone × treatment pair (``seal.models.compose.treated``) the wrapper's, with the backbone
    in brackets unless it is the constituent transformer (the name earlier runs had):
    ``LLoCaTagger+references[ParTTagger]``, ``ParTTagger``, ``LLoCaTagger``."""
    model = cfg.get("model") or {}
    net = model.get("net") or model
    if not str(net.get("_target_", "")).endswith("compose.treated"):
        return _class_name(net)
    backbone = _class_name(net.backbone)
    if net.get("canonicalise") is not None:
        wrapper = _class_name({"_target_": "LLoCaTagger", **net.canonicalise})
    elif net.get("hybrid") is not None:
        wrapper = "HybridNet"
    else:
        return backbone
    return wrapper if backbone == "ConstituentTransformer" else f"{wrapper}[{backbone}]"


# overrides already shown in their own columns (task, weight, beta_max) or grouped over (seed)
SHOWN = {
    "experiment",
    "symmetry.weight",
    "symmetry.group.beta_max",
    "symmetry.constraint.target",
    "seed",
}


def _overrides(run_dir: Path) -> dict:
    """The run's command-line overrides (``.hydra/overrides.yaml``) as key → value strings."""
    path = run_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return {}
    listed = OmegaConf.to_container(OmegaConf.load(path), resolve=False)  # keep ${…} as text
    pairs = (str(o).split("=", 1) for o in listed if "=" in str(o))
    return {k.lstrip("+~"): v.replace(" ", "") for k, v in pairs}


def load_run(run_dir: Path) -> dict:
    """Settings (task, loss type, λ — or the constraint's target ε, with λ "" —, β_max) and
    metrics of one Hydra run folder."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    symm = cfg.get("symmetry") or {}
    loss = _loss_type(cfg)
    row = {
        "run": run_dir.name,
        "path": str(run_dir),
        "task": str(cfg.get("task_name", "")) + str(cfg.get("name_suffix") or ""),
        "loss": loss,
        "weight": "" if not symm or symm.get("weight") is None else symm.get("weight"),
        "target": OmegaConf.select(symm, "constraint.target", default="") if symm else "",
        "beta_max": OmegaConf.select(symm, "group.beta_max", default="") if loss == "gsymm" else "",
        "status": "finished" if (run_dir / "metrics.json").exists() else "failed",
        "model": _model_name(cfg),
        "n_train": cfg.data.get("n_train") or "",
        "seed": cfg.get("seed", ""),
    }
    if loss == "augment":
        row["beta_max"] = cfg.data.augment.get("beta_max", "")
    row["overrides"] = _overrides(run_dir)
    row["seed"] = row["overrides"].get("seed", row["seed"])
    if cfg.data.get("test_pt") is not None:
        row["test_pt"] = "–".join("" if v is None else f"{v:g}" for v in cfg.data.test_pt)
    metrics = (
        json.loads((run_dir / "metrics.json").read_text()) if row["status"] == "finished" else {}
    )
    return {**row, "metrics": metrics}


def find_runs(sweep_dir: Path) -> list[dict]:
    runs = [load_run(p.parent.parent) for p in sorted(sweep_dir.rglob(".hydra/config.yaml"))]
    if not runs:
        raise FileNotFoundError(
            f"no Hydra runs (folders with .hydra/config.yaml) under {sweep_dir}"
        )
    return sorted(runs, key=lambda r: (r["task"], r["loss"], str(r["weight"]), str(r["beta_max"])))


def varying(runs: list[dict]) -> list[str]:
    """Overrides whose value differs between runs (and are not shown otherwise)."""
    keys = sorted({k for run in runs for k in run["overrides"]} - SHOWN)
    return [k for k in keys if len({run["overrides"].get(k, "") for run in runs}) > 1]
