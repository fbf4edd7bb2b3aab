"""LightningModules (tasks); they never import seal.symmetry."""

from seal.tasks.regression import RegressionTask
from seal.tasks.tagging import TaggingTask

__all__ = ["RegressionTask", "TaggingTask"]
