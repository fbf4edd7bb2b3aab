"""The post-training evaluation of one run: tagging metrics and figures, robustness scans
(metric vs applied boost), the symmetry spectrum, and the HEP-style plots they share."""
