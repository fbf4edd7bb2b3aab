"""Evaluation: robustness scans (metric vs applied boost), metrics and plots."""
