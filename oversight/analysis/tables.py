"""Tables: each setting against its family's baseline, and the CSV files."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oversight.analysis.group import Family
from oversight.analysis.load import COMPARED, METRICS
from oversight.analysis.stats import CI, Test, compare, holm


@dataclass
class Comparison:
    family: str
    setting: str
    baseline: str
    metric: str
    diff: float | None
    p: float
    p_holm: float = math.nan


def comparisons(f: Family, test: Test) -> list[Comparison]:
    """Each setting against the baseline on each compared metric; Holm over the whole family."""
    if f.baseline is None:
        return []
    out = []
    base = f.baseline.finished
    for s in f.settings:
        if s is f.baseline:
            continue
        for m in COMPARED:
            a = [r.value(m) for r in s.finished]
            b = [r.value(m) for r in base]
            ma, mb = _mean(a), _mean(b)
            diff = None if ma is None or mb is None else ma - mb
            out.append(Comparison(f.name, s.label, f.baseline.label, m, diff, compare(a, b, test)))
    for c, p in zip(out, holm([c.p for c in out]), strict=True):
        c.p_holm = p
    return out


def _mean(xs: Sequence[float | None]) -> float | None:
    v = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(v) / len(v) if v else None


def fmt_number(x: float | None, digits: int = 4) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}g}"


def write_csvs(
    out: Path,
    families: Sequence[Family],
    comps: Sequence[Comparison],
    gaps: dict[int, CI],
    n_resamples: int,
) -> None:
    with (out / "results.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["family", "setting", "baseline", "n_runs", "n_finished", "n_failed", "n_unfinished"]
            + [f"{m}_{x}" for m in METRICS for x in ("mean", "ci_low", "ci_high", "n")]
            + ["pgr_gold_beyond", "pgr_gold_beyond_ci_low", "pgr_gold_beyond_ci_high"]
        )
        for f in families:
            for s in f.settings:
                row: list[Any] = [
                    f.name,
                    s.label,
                    s is f.baseline,
                    len(s.runs),
                    len(s.finished),
                    sum(r.status == "failed" for r in s.runs),
                    sum(r.status == "unfinished" for r in s.runs),
                ]
                for m in METRICS:
                    ci = s.ci(m, n_resamples)
                    row += [
                        fmt_number(ci.mean, 10),
                        fmt_number(ci.low, 10),
                        fmt_number(ci.high, 10),
                        ci.n,
                    ]
                g = gaps[id(s)]
                row += [fmt_number(g.mean, 10), fmt_number(g.low, 10), fmt_number(g.high, 10)]
                w.writerow(row)
    with (out / "comparisons.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["family", "setting", "baseline", "metric", "mean_diff", "p_value", "p_holm"])
        for c in comps:
            w.writerow(
                [
                    c.family,
                    c.setting,
                    c.baseline,
                    c.metric,
                    fmt_number(c.diff, 10),
                    fmt_number(c.p, 10),
                ]
                + [fmt_number(c.p_holm, 10)]
            )
    with (out / "runs.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["family", "setting", "seed", "status", "source", "detail", *METRICS])
        for f in families:
            for s in f.settings:
                for r in s.runs:
                    vals = [fmt_number(r.value(m), 10) if r.summary else "" for m in METRICS]
                    w.writerow([f.name, s.label, r.seed, r.status, r.source, r.detail, *vals])
