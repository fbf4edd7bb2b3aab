"""Cross-run reports: read finished run folders, tabulate them with one table builder
(:mod:`seal.reports.tables`) and plot them. Used by ``scripts/report.py``, ``scripts/compare.py``,
``scripts/symmetry_map.py`` and ``scripts/results/summarise.py``."""
