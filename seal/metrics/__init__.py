"""Metrics the tasks compute during validation and test: ROC, AUC, rejections, bootstrap errors."""
