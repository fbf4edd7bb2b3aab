"""Send evaluation results to whatever Lightning loggers a run has."""

from pathlib import Path

from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger


def log_results(loggers, metrics: dict, figures: dict, step: int = 0) -> None:
    """Log scalar ``metrics`` to every logger and ``figures`` (name → matplotlib figure saved
    at a path: ``{name: (figure, path)}``) as TensorBoard images or wandb images."""
    for logger in loggers:
        logger.log_metrics(metrics, step=step)
        for name, (figure, path) in figures.items():
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure(name, figure, global_step=step)
            elif isinstance(logger, WandbLogger):
                logger.log_image(key=name, images=[str(Path(path))], step=step)
