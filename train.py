"""Train one configuration: `python train.py +experiment=toy_gsymm [key=value ...]`.

`-m` sweeps (`symmetry.weight=0,1,100`), `launcher=joblib|slurm`, `hparams_search=toy_optuna`.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from seal.train import run  # imported here so `--help` and config errors come fast

    metrics = run(cfg)
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        raise KeyError(
            f"optimized_metric {name!r} is not among the run's metrics: {sorted(metrics)}"
        )
    return metrics[name]


if __name__ == "__main__":
    import sys

    from seal.config_checks import renamed_experiments

    if renamed := renamed_experiments(sys.argv[1:]):
        sys.exit("\n".join(renamed))
    main()
