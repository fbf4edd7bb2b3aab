"""LightningModules (tasks); they never import seal.symmetry."""

from seal.tasks.regression import RegressionTask

__all__ = ["RegressionTask"]
