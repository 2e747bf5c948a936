"""Sweep analysis: runs from folders or a store -> settings and families -> tables, tests, plots
and a report (`python -m oversight.analysis PATH`). Pure statistics are in `stats`."""
