"""Comparative analysis of a sweep: a table you can trust, significance tests and plots.

    python -m oversight.analysis multirun/judge_competence/2026-01-01_12-00-00
    python -m oversight.analysis multirun/                       # many sweeps, grouped by preset
    python -m oversight.analysis sqlite:///multirun/judge_competence/2026-01-01_12-00-00/store.db
    python -m oversight.analysis postgresql+psycopg://me@dbhost/oversight --out analysis/
    python -m oversight.analysis DIR --baseline competence=2 --test mannwhitney

It reads every run (a run folder's `summary.json` and `metrics.jsonl`, or the store's tables),
groups runs into *families* (the Hydra preset, `experiment=...`, and its size) and, within a
family, into *settings* (runs whose configs differ only in the seed). The swept keys are the
config keys that differ between a family's settings. It writes into the output folder:

- `results.csv`: one row per setting: mean and 95% percentile-bootstrap CI over seeds of the
  final held-out metrics; `comparisons.csv`: each setting against the family's baseline;
  `runs.csv`: every run with its status;
- `report.md`: the same tables, the failed and unfinished runs, and the plots;
- PNG plots per family: held-out gold accuracy and proxy reward over training; final gold
  accuracy and sycophancy against judge competence (when competence was swept); judge cost per
  label; for over-optimisation sweeps, per proxy (the settings sharing a reward model, e.g. a
  label budget), gold and proxy gain against d = sqrt(KL) with the fitted d (alpha - beta log d)
  curve (Gao et al. 2022), whose alpha, beta (with s.e.), peak d* and gold there, and the proxy's
  Spearman correlation with gold, are in the report, which says whose labels trained the proxy.

Failed runs and runs without a summary (still running, or killed) are listed, never dropped
silently; statistics use finished runs only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from oversight.analysis.report import analyze
from oversight.analysis.stats import TEST_NAMES
from oversight.errors import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="oversight-analyze",
        description="Tables, tests and plots for a sweep: a run/sweep folder or a store URL.",
    )
    p.add_argument("source", help="a sweep folder (or a folder of sweeps), or a store URL")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: SOURCE/analysis for a folder, ./analysis for a URL)",
    )
    p.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the setting to compare against, e.g. competence=2 or judge=oracle (repeatable; "
        "default: each family's first setting)",
    )
    p.add_argument(
        "--test",
        choices=sorted(TEST_NAMES),
        default="welch",
        help="welch (default): Welch's t-test; mannwhitney: Mann-Whitney U",
    )
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    args = p.parse_args(argv)
    out = args.out or (Path("analysis") if "://" in args.source else Path(args.source) / "analysis")
    try:
        res = analyze(args.source, out, args.baseline, args.test, args.resamples)
    except (FileNotFoundError, ValueError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = res["runs"]
    n_ok = sum(r.status == "finished" for r in runs)
    print(f"{len(runs)} runs ({n_ok} finished) in {len(res['families'])} families -> {out}/")
    for name in ("report.md", "results.csv", "comparisons.csv", "runs.csv"):
        print(f"  {out / name}")
    for names in res["plots"].values():
        for n in names:
            print(f"  {out / n}")
    return 0
