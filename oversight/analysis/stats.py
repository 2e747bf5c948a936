"""The statistics behind `oversight.analysis`: small pure functions, each tested on known values.

- `bootstrap_ci`: mean over seeds with a percentile-bootstrap confidence interval.
- `compare`: two-sided p-value of a two-sample test (Welch's t-test or Mann-Whitney U).
- `holm`: Holm-Bonferroni adjusted p-values (family-wise error control).
- `fit_gold_curve`: Gao et al.'s (2022) over-optimisation law gold(d) = d (alpha - beta log d).
- `spearman`: rank correlation of two paired series (the proxy with gold along training).
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np
from scipy import optimize, stats

Test = Literal["welch", "mannwhitney"]
TEST_NAMES: dict[str, str] = {
    "welch": "Welch's t-test (two-sided, unequal variances)",
    "mannwhitney": "Mann-Whitney U test (two-sided, exact for small samples)",
}


def _clean(values: Sequence[float | None]) -> np.ndarray:
    """Finite values only: a missing metric (e.g. an empty bucket) is left out, not zero."""
    x = np.array([v for v in values if v is not None], dtype=float)
    return x[np.isfinite(x)]


def _constant(x: np.ndarray) -> bool:
    """All equal, up to float rounding (0.1 + 0.2 vs 0.3 must not read as variance)."""
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())))


@dataclass(frozen=True)
class CI:
    mean: float | None
    low: float | None
    high: float | None
    n: int

    def fmt(self, digits: int = 3) -> str:
        if self.mean is None:
            return "–"
        if self.low is None or self.high is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def bootstrap_ci(
    values: Sequence[float | None],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> CI:
    """Mean and percentile-bootstrap CI of the mean (resampling seeds with replacement).

    Percentile rather than BCa: with the 2-5 seeds of a sweep BCa's jackknife acceleration is
    itself too noisy to trust, and percentile intervals stay inside the observed range.
    With fewer than two values there is no interval (low and high are None).
    """
    x = _clean(values)
    if len(x) == 0:
        return CI(None, None, None, 0)
    mean = float(x.mean())
    if len(x) < 2:
        return CI(mean, None, None, 1)
    if _constant(x):  # every seed agrees: the interval is the point (scipy would warn)
        return CI(mean, mean, mean, len(x))
    res = stats.bootstrap(
        (x,),
        np.mean,
        confidence_level=confidence,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return CI(mean, float(ci.low), float(ci.high), len(x))


def pgr(
    setting: Sequence[float | None],
    floor: Sequence[float | None],
    ceiling: Sequence[float | None],
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> CI:
    """Performance gap recovered (Burns et al. 2023): (setting - floor) / (ceiling - floor) of the
    means over seeds, with a percentile-bootstrap CI that resamples each group's seeds on its own.

    Undefined (mean None) where the gap is within its own noise: when the bootstrap interval of
    ceiling - floor reaches zero, or a group has no value. `n` counts the setting's seeds.
    """
    xs, xf, xc = _clean(setting), _clean(floor), _clean(ceiling)
    if min(len(xs), len(xf), len(xc)) == 0:
        return CI(None, None, None, len(xs))
    rng = np.random.default_rng(seed)

    def means(x: np.ndarray) -> np.ndarray:
        return x[rng.integers(len(x), size=(n_resamples, len(x)))].mean(axis=1)

    ms, mf, mc = means(xs), means(xf), means(xc)
    tail = (1.0 - confidence) / 2 * 100
    gap_low = float(np.percentile(mc - mf, tail))
    if xc.mean() - xf.mean() <= 0 or gap_low <= 0:
        return CI(None, None, None, len(xs))
    ratio = (ms - mf) / (mc - mf)  # resampled gaps near zero widen the tails, as they should
    value = float((xs.mean() - xf.mean()) / (xc.mean() - xf.mean()))
    low, high = np.percentile(ratio, [tail, 100 - tail])
    return CI(value, float(low), float(high), len(xs))


def compare(a: Sequence[float | None], b: Sequence[float | None], test: Test = "welch") -> float:
    """Two-sided p-value for "a and b come from the same distribution"; NaN when untestable.

    Untestable: fewer than two values on a side, or (Welch) no variance on either side, where
    the t statistic is undefined.
    """
    x, y = _clean(a), _clean(b)
    if len(x) < 2 or len(y) < 2:
        return math.nan
    if test not in TEST_NAMES:
        raise ValueError(f"unknown test {test!r}; use one of {sorted(TEST_NAMES)}")
    if test == "welch" and _constant(x) and _constant(y):
        return math.nan
    with warnings.catch_warnings():
        # One side equal in every seed (e.g. a rate that stays at 0) is a fine sample, but scipy
        # warns of "catastrophic cancellation" computing its (zero) variance.
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        if test == "welch":
            return float(stats.ttest_ind(x, y, equal_var=False).pvalue)
        return float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order. NaNs (tests not run) stay NaN
    and do not count towards the number of hypotheses."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))  # step-down, kept monotone
        out[i] = running
    return out


def gold_curve(d: np.ndarray | float, alpha: float, beta: float) -> np.ndarray:
    """Gao et al.'s RL law: gold(d) - gold(0) = d (alpha - beta log d), with d = sqrt(KL)."""
    d = np.asarray(d, dtype=float)
    safe = np.where(d > 0, d, 1.0)
    return np.where(d > 0, d * (alpha - beta * np.log(safe)), 0.0)  # d log d -> 0 as d -> 0


@dataclass(frozen=True)
class CurveFit:
    alpha: float
    beta: float
    alpha_se: float
    beta_se: float
    n: int

    @property
    def d_peak(self) -> float | None:
        """Where the fitted gold peaks (d* = exp(alpha / beta - 1)); None if it never turns."""
        if self.beta <= 0:
            return None
        with np.errstate(over="ignore"):
            return float(np.exp(self.alpha / self.beta - 1.0))

    @property
    def gain_at_peak(self) -> float | None:
        """The fitted gold gain at d*: beta d* (there log d* = alpha / beta - 1)."""
        d = self.d_peak
        return None if d is None else self.beta * d


def fit_gold_curve(d: Sequence[float], gain: Sequence[float]) -> CurveFit | None:
    """Least-squares fit of gain = d (alpha - beta log d) (scipy `curve_fit`).

    `gain` is gold minus the base model's gold. None when there are fewer than three points
    with d > 0 (two parameters need at least one degree of freedom) or the fit fails.
    """
    dd, gg = np.asarray(d, dtype=float), np.asarray(gain, dtype=float)
    ok = np.isfinite(dd) & np.isfinite(gg) & (dd > 0)
    dd, gg = dd[ok], gg[ok]
    if len(dd) < 3 or np.ptp(dd) == 0:
        return None
    try:
        (alpha, beta), cov = optimize.curve_fit(
            lambda x, a, b: gold_curve(x, a, b), dd, gg, p0=(0.0, 0.0)
        )
    except (RuntimeError, ValueError):
        return None
    se = np.sqrt(np.clip(np.diag(cov), 0, None)) if np.all(np.isfinite(cov)) else [math.nan] * 2
    return CurveFit(float(alpha), float(beta), float(se[0]), float(se[1]), len(dd))


def spearman(x: Sequence[float | None], y: Sequence[float | None]) -> float | None:
    """Spearman's rank correlation of paired values (`scipy.stats.spearmanr`), over the pairs
    where both are finite; None with fewer than three pairs or a constant side (undefined)."""
    pairs = [
        (a, b)
        for a, b in zip(x, y, strict=True)
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
    ]
    if len(pairs) < 3:
        return None
    xa, ya = np.array(pairs, dtype=float).T
    if _constant(xa) or _constant(ya):
        return None
    return float(stats.spearmanr(xa, ya).statistic)


# ---- agreement between raters (the human study) -------------------------------------------
def cohen_kappa(x: Sequence[str], y: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None where undefined."""
    n = len(x)
    if n == 0 or n != len(y):
        return None
    po = sum(a == b for a, b in zip(x, y, strict=True)) / n
    cx, cy = Counter(x), Counter(y)
    pe = sum(cx[c] * cy[c] for c in set(cx) | set(cy)) / (n * n)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def fleiss_kappa(ratings: Sequence[Sequence[str]]) -> float | None:
    """Fleiss' kappa over items each rated by two or more raters (counts may differ per item).

    With a varying number of raters per item, each item's agreement is taken over its own
    rater pairs and category shares over all ratings (the usual generalisation).
    """
    rows = [r for r in ratings if len(r) >= 2]
    if not rows:
        return None
    p_items = []
    totals: Counter[str] = Counter()
    for r in rows:
        c = Counter(r)
        n = len(r)
        totals.update(c)
        p_items.append((sum(v * v for v in c.values()) - n) / (n * (n - 1)))
    n_all = sum(totals.values())
    pe = sum((v / n_all) ** 2 for v in totals.values())
    po = sum(p_items) / len(p_items)
    return None if pe >= 1.0 else (po - pe) / (1.0 - pe)


def percent_agreement(ratings: Sequence[Sequence[str]]) -> float | None:
    """Share of agreeing rater pairs, averaged over items with two or more ratings."""
    per_item = []
    for r in ratings:
        pairs = list(combinations(r, 2))
        if pairs:
            per_item.append(sum(a == b for a, b in pairs) / len(pairs))
    return sum(per_item) / len(per_item) if per_item else None
