"""Evaluate finished runs' best checkpoints again, under changed settings (no training).

    python scripts/evaluate.py RUN_DIR [RUN_DIR ...] --out OUT [KEY=VALUE ...]

Each run's saved config (``RUN_DIR/.hydra/config.yaml``) with the overrides applied builds the
data, the model and the evaluation; the run's best checkpoint (``best_checkpoint`` in its
``metrics.json``) is tested and evaluated, and OUT/<sweep>_<run>/ receives a run folder that the
reports read like any other (``.hydra/``, ``metrics.json``, predictions and figures). Use it to
test on a larger split than a run was made with, e.g. docs/results.md's strongest taggers:

    python scripts/evaluate.py outputs/results/equivariant/* --out outputs/results/large_test \\
        "data.split=[0.16,0.04,0.8]" "evaluation.betas=[0.0]" evaluation.shift_beta=0.0

Training-side settings (data.split's first two fractions, max_jets, n_constituents, the
training and validation pT windows, train_jets, the model) must stay as trained: the checkpoint
has to load, and a test split that overlaps the training jets is no test. The script refuses
them changed, and runs that did not finish (no or an incomplete metrics.json), naming the run,
before it evaluates any. A tagging run made before
``evaluation.systematics`` existed gets today's default (seal's detector variations of its test
jets); ``evaluation.systematics=null`` skips them, ``evaluation.systematics.variations=FOLDER``
takes variation files.
"""

import argparse
import json
import logging
import warnings
from pathlib import Path

import hydra
import pytorch_lightning as pl
import yaml
from omegaconf import OmegaConf
from tqdm import tqdm

from seal.config_checks import check_config
from seal.train import run_name, scalars

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

# testing needs the weights only; the training callbacks' state in the checkpoint is not used
warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`")


# data settings the checkpoint was trained under: changing one tests other rows than the run's
# test split (max_jets re-cuts the file, so the fractions fall on other rows, training rows
# among them) or feeds the network another input (n_constituents)
TRAINED_DATA = ("max_jets", "n_constituents", "train_pt", "val_pt", "train_jets")


def finished_metrics(run_dir: Path) -> dict:
    """The run's ``metrics.json``, refused (naming the folder and what to do) for a run folder
    that is not one, did not finish, or has lost its best checkpoint."""
    if not (run_dir / ".hydra" / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir}: not a Hydra run folder (no .hydra/config.yaml)")
    path = run_dir / "metrics.json"
    trained = json.loads(path.read_text()) if path.exists() else {"status": "crashed"}
    if trained.get("status") in ("incomplete", "crashed"):
        why = "metrics.json says incomplete" if path.exists() else "no metrics.json"
        raise FileNotFoundError(
            f"{run_dir}: the run did not finish ({why}); finish it (the same command with "
            f"ckpt_path=auto) or leave it out"
        )
    best = trained.get("best_checkpoint")
    if not best or not Path(best).exists():
        raise FileNotFoundError(f"{run_dir}: its best checkpoint {best!r} is missing")
    return trained


def evaluate(run_dir: Path, overrides: list[str], out: Path) -> dict:
    trained = finished_metrics(run_dir)
    best = trained["best_checkpoint"]
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    evaluation = cfg.get("evaluation") or {}
    if str(evaluation.get("_target_", "")).endswith("TaggingEvaluation") and (
        "systematics" not in evaluation
    ):  # a run made before the systematics: today's default (evaluation.systematics=null: none)
        default = OmegaConf.load(CONFIGS / "evaluation" / "tagging.yaml").systematics
        cfg.evaluation.systematics = default
    before = list(cfg.data.get("split") or [])
    trained_data = {k: cfg.data.get(k) for k in TRAINED_DATA}
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(overrides))
    after = list(cfg.data.get("split") or [])
    if before[:2] != after[:2]:
        raise ValueError(
            f"{run_dir}: data.split {after} changes the training/validation "
            f"fractions {before[:2]} the checkpoint was trained on"
        )
    for key, value in trained_data.items():
        if cfg.data.get(key) != value:
            raise ValueError(
                f"{run_dir}: data.{key}={cfg.data.get(key)} differs from the {value} the "
                f"checkpoint was trained with: the test would no longer be the run's own test "
                f"split (or its input); evaluate with the trained value"
            )
    cfg.paths.output_dir = str(out)
    check_config(cfg)
    out.mkdir(parents=True, exist_ok=True)
    (out / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, out / ".hydra" / "config.yaml")
    listed = run_dir / ".hydra" / "overrides.yaml"  # what the reports group and label runs by
    trained_overrides = yaml.safe_load(listed.read_text()) if listed.exists() else []
    (out / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(trained_overrides + overrides))

    pl.seed_everything(cfg.seed, workers=True)
    datamodule = hydra.utils.instantiate(cfg.data)
    module = hydra.utils.instantiate(cfg.model)
    evaluation = hydra.utils.instantiate(cfg.evaluation)
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.test(module, datamodule=datamodule, ckpt_path=best, verbose=False)
    metrics = {k: v for k, v in trained.items() if not k.startswith(("test/", "boost/", "syst/"))}
    metrics.update(scalars(trainer.callback_metrics))
    metrics.update(
        evaluation(
            module,
            datamodule,
            out,
            (),
            trained.get("trainer/global_step", 0),
            run_name=run_name(cfg),
        )
    )
    metrics.update(best_checkpoint=best, evaluated_from=str(run_dir), evaluated_with=overrides)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "items",
        nargs="+",
        metavar="RUN_DIR|KEY=VALUE",
        help="finished run folders and config changes",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the new run folders")
    args = parser.parse_intermixed_args()
    overrides = [item for item in args.items if "=" in item]
    prefixed = [item for item in overrides if item.startswith(("+", "~"))]
    if prefixed:
        parser.error(f"{prefixed}: write KEY=VALUE here (no + or ~: every key may be set)")
    runs = [Path(item) for item in args.items if "=" not in item]
    runs = [r for r in runs if (r / ".hydra" / "config.yaml").exists()]  # skip multirun.yaml…
    if not runs:
        parser.error("no run folders (with .hydra/config.yaml) among the arguments")
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {args.out} is a file: give a folder for the new run folders")
    for run_dir in runs:  # every run checked before the first is evaluated
        try:
            finished_metrics(run_dir)
        except FileNotFoundError as error:
            parser.error(str(error))
    for run_dir in tqdm(runs, desc="evaluating", unit="run"):
        metrics = evaluate(run_dir, overrides, args.out / f"{run_dir.parent.name}_{run_dir.name}")
        tqdm.write(
            f"{run_dir}: test AUC {metrics['test/auc']:.4f}, "
            f"1/ε_B@0.3 {metrics['test/rej@0.3']:.1f}"
        )


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main()
