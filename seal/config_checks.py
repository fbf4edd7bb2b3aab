"""Config problems found before any work starts, each naming its key.

* :func:`check_config` walks every ``_target_`` node of a composed config and checks each value
  against the target's signature: a key the target does not take, or a value of the wrong type
  (``trainer.max_epochs=1.5``, ``model.optimizer.lr=abc``), is an error naming the key, the value
  and what the target expects. Where the signature cannot tell (no annotation, a class the value
  could be converted to), nothing is said: the check never refuses a config the target accepts.
* :class:`OutputDirCheck`, a Hydra callback, turns an output folder that cannot be created into an
  exit with a message naming ``hydra.run.dir`` / ``hydra.sweep.dir`` (Hydra's own error is a bare
  OS error about some parent folder).
"""

import inspect
import os
import sys
import types
import typing
from pathlib import Path

from hydra.experimental.callback import Callback
from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf

from seal.files import folder_problem

RESERVED = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
SCALARS = (str, int, float, bool)


class ConfigError(ValueError):
    """One or more config values that the targets would reject."""


def check_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` listing every key whose value its target cannot take."""
    problems: list[str] = []
    symmetry = cfg.get("symmetry")
    if isinstance(symmetry, DictConfig) and "_target_" not in symmetry:
        problems.append(
            f"symmetry: {sorted(symmetry)} but no penalty (symmetry._target_): +constraint=… "
            f"and symmetry.* settings need a run with a symmetry treatment (symmetry=gsymm or "
            f"dsymm, or a top experiment's treatment=gsymm, dsymm, …)"
        )
    seed = cfg.get("seed")
    if "seed" in cfg and (isinstance(seed, bool) or not isinstance(seed, int)):
        problems.append(f"seed={seed!r}: must be a whole number (e.g. seed=1)")
    _walk(cfg, "", problems)
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))


def _walk(node, path: str, problems: list[str]) -> None:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            _check_node(node, path, problems)
        for key in node:
            if OmegaConf.is_missing(node, key) or key in RESERVED:
                continue
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                _walk(child, f"{path}.{key}" if path else str(key), problems)
    elif isinstance(node, ListConfig):
        for i, child in enumerate(node):
            _walk(child, f"{path}[{i}]", problems)


def _check_node(node: DictConfig, path: str, problems: list[str]) -> None:
    target_name = node._target_
    try:
        target = get_object(target_name) if isinstance(target_name, str) else target_name
        signature = inspect.signature(target)
    except (ImportError, AttributeError, ValueError, TypeError):
        return  # Hydra's own error names an unimportable target; builtins have no signature
    hints = _hints(target)
    parameters = signature.parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    for key in node:
        if key in RESERVED:
            continue
        full = f"{path}.{key}" if path else str(key)
        if key not in parameters or parameters[key].kind is inspect.Parameter.VAR_POSITIONAL:
            if not takes_any:
                named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                accepted = [n for n, p in parameters.items() if p.kind in named]
                problems.append(
                    f"{full}: {target_name} takes no argument {key!r} "
                    f"(it takes {', '.join(accepted)})"
                )
            continue
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if value is None or not isinstance(value, SCALARS):
            continue
        annotation = hints.get(key)
        if annotation is not None:
            if _matches(value, annotation) is False:
                problems.append(f"{full}={value!r}: {target_name} expects {_describe(annotation)}")
            continue
        default = parameters[key].default
        if isinstance(default, (int, float)) and isinstance(value, str):
            kind = "a boolean" if isinstance(default, bool) else "a number"
            problems.append(f"{full}={value!r}: {target_name} expects {kind} (default {default})")


def _hints(target) -> dict:
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # unresolvable forward references: check nothing rather than guess
        return {}


def _matches(value, annotation) -> bool | None:
    """Whether a scalar config value fits an annotation; None when it cannot be told."""
    if annotation is typing.Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        answers = [_matches(value, arg) for arg in typing.get_args(annotation)]
        if True in answers:
            return True
        return False if all(a is False for a in answers) else None
    if origin is typing.Literal:
        return any(type(value) is type(a) and value == a for a in typing.get_args(annotation))
    if origin in (list, tuple, dict, set):
        return False  # a scalar where a container is required
    if origin is not None:
        return None
    if annotation is type(None):
        return False  # value is not None here
    if annotation is bool:  # 0 and 1 pass for booleans in Python (and Lightning accepts them)
        return isinstance(value, bool) or value in (0, 1)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation in (os.PathLike, Path):
        return isinstance(value, str)
    if inspect.isclass(annotation):
        if isinstance(value, annotation):
            return True
        module = getattr(annotation, "__module__", "")
        # a tensor cannot come from a scalar; other classes may be built from one
        return False if module.startswith("torch") and annotation.__name__ == "Tensor" else None
    return None


def _describe(annotation) -> str:
    text = inspect.formatannotation(annotation)
    return text.replace("typing.", "").replace("NoneType", "None")


class OutputDirCheck(Callback):
    """Hydra callback: the run (or sweep) folder must be creatable, else an error naming it."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _creatable(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _creatable(config, "hydra.sweep.dir")


def _creatable(config: DictConfig, key: str) -> None:
    try:
        folder = Path(str(OmegaConf.select(config, key)))
    except Exception:  # an interpolation only Hydra's job context resolves: Hydra checks it
        return
    why = folder_problem(folder)
    if why is not None:
        # Hydra turns a callback's exception into a warning and goes on to fail on the folder
        # with a bare OS error: stop here instead, with the message that names the key
        sys.stderr.write(
            f"Error: {key}={folder} cannot be used as the output folder ({why}); choose a "
            f"writable folder, e.g. {key}=outputs/my_run or paths.log_dir=/scratch/$USER/seal\n"
        )
        raise SystemExit(1) from None


# the tagger configs that became backbones (model/backbone=…) and treatments (treatment=…)
RENAMED_MODELS = {
    "transformer_cpu": "`model/backbone=transformer` (with +experiment=top or any top_*)",
    "transformer": "`model/backbone=transformer model.net.backbone.size=published`",
    "torch_transformer": "`model/backbone=torch_transformer`",
    "pelican": "`model/backbone=pelican`",
    "hybrid": "`treatment=hybrid` (any backbone is its general subnet)",
}
# the model configs kept for the dimuon study whose top-tagging spelling changed
TOP_MODELS = {
    "invariant": "`model/backbone=invariant`",
    "lgatr": "`model/backbone=lgatr`",
    "lloca": "`treatment=lloca` (`treatment=lloca_refs` with reference vectors)",
}


def renamed_experiments(args: list[str]) -> list[str]:
    """A message for every renamed name on the command line: the ``*_extrap`` experiments (one
    overlay now) and the tagger configs that became backbones and treatments.

    Parameters
    ----------
    args : list of str
        The command line (``sys.argv[1:]``), e.g. ``["-m", "+experiment=top_gsymm_extrap"]`` or
        ``["+experiment=top_gsymm", "model=torch_transformer"]``.

    Returns
    -------
    list of str
        One line per old name, naming the new spelling; empty when there are none.
    """
    messages = []
    top = any(a.lstrip("+~").startswith("experiment=") and "top" in a for a in args)
    for arg in args:
        key, _, value = arg.lstrip("+~").partition("=")
        if key == "model" and value in RENAMED_MODELS:
            messages.append(f"model={value} is now {RENAMED_MODELS[value]}")
        elif key == "model" and top and value in TOP_MODELS:  # dimuon configs of that name
            messages.append(f"with a top experiment, model={value} is {TOP_MODELS[value]}")
        if key != "experiment":
            continue
        for name in value.strip("[]").split(","):
            if name.endswith("_extrap"):
                messages.append(
                    f"experiment {name} is now spelt `+experiment={name.removesuffix('_extrap')} "
                    f"+extrap=pt800` (one pT-extrapolation overlay for every top experiment, "
                    f"configs/extrap/pt800.yaml)"
                )
    return messages
