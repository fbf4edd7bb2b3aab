"""Loggers: a CSV logger that keeps earlier rows on resume, and evaluation results sent to
whatever Lightning loggers a run has."""

import csv
from pathlib import Path

from pytorch_lightning.loggers import CSVLogger as LightningCSVLogger
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment
from pytorch_lightning.utilities import rank_zero_only


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing ``metrics.csv`` when it starts; this one appends
    to it (a resumed run keeps the rows of the epochs before the interruption), taking the
    existing header as its columns so that new columns widen the file instead of failing."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(set(header))


class CSVLogger(LightningCSVLogger):
    """:class:`pytorch_lightning.loggers.CSVLogger` that appends to an earlier run's
    ``metrics.csv`` in the same folder (``ckpt_path=auto`` resumes) instead of deleting it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment

    @rank_zero_only
    def drop_rows_from(self, step: int) -> int:
        """Remove the rows logged at ``step`` or later (a resumed run logs them again: they
        belong to the part of the earlier run after its checkpoint); returns how many."""
        path = Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE
        if not path.is_file():
            return 0
        with open(path, newline="") as file:
            reader = csv.DictReader(file)
            header, rows = reader.fieldnames or [], list(reader)
        kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < step]
        if len(kept) < len(rows):
            temporary = path.with_suffix(".tmp")
            with open(temporary, "w", newline="") as file:
                writer = csv.DictWriter(file, fieldnames=header)
                writer.writeheader()
                writer.writerows(kept)
            temporary.replace(path)
        return len(rows) - len(kept)


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
