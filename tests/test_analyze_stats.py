"""The statistics of `oversight.analysis` on values whose answers are known by hand."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from oversight.analysis.stats import bootstrap_ci, compare, fit_gold_curve, gold_curve, holm


def exact_bootstrap_quantiles(x: list[float], q: tuple[float, float]) -> tuple[float, float]:
    """Percentiles of the mean over all n^n equally likely resamples (exact bootstrap)."""
    means = [float(np.mean(c)) for c in itertools.product(x, repeat=len(x))]
    return tuple(np.quantile(means, q))  # type: ignore[return-value]


def test_bootstrap_ci_of_three_seeds_is_their_range() -> None:
    # Each extreme resample (all three the same seed) has probability 1/27 > 2.5%, so the
    # 2.5% and 97.5% percentiles of the bootstrap means are exactly the smallest and largest.
    ci = bootstrap_ci([0.1, 0.2, 0.3])
    assert ci.mean == pytest.approx(0.2)
    assert (ci.low, ci.high, ci.n) == (pytest.approx(0.1), pytest.approx(0.3), 3)


def test_bootstrap_ci_matches_the_exact_bootstrap() -> None:
    x = [0.0, 0.1, 0.4, 0.5, 1.0]  # 5^5 = 3125 resamples: enumerable
    lo, hi = exact_bootstrap_quantiles(x, (0.025, 0.975))
    ci = bootstrap_ci(x, n_resamples=50_000)
    assert ci.low == pytest.approx(lo, abs=0.02)
    assert ci.high == pytest.approx(hi, abs=0.02)
    assert ci.low < ci.mean < ci.high


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_ci([]).mean is None
    one = bootstrap_ci([0.7])
    assert (one.mean, one.low, one.high, one.n) == (0.7, None, None, 1)
    same = bootstrap_ci([0.5, 0.5, 0.5])
    assert (same.low, same.high) == (0.5, 0.5)
    # a missing metric (an empty bucket gives None) is left out, not counted as zero
    assert bootstrap_ci([None, 0.2, 0.4]).n == 2
    assert bootstrap_ci([1.0, 2.0, 3.0], seed=1) == bootstrap_ci([1.0, 2.0, 3.0], seed=1)


def test_welch_known_p_value() -> None:
    # t = -3 / sqrt(1/3 + 1/3) = -3.674 on 4 degrees of freedom: p = 0.02131 (two-sided)
    assert compare([1, 2, 3], [4, 5, 6], "welch") == pytest.approx(0.021311641, rel=1e-6)
    assert math.isnan(compare([0.1 + 0.2, 0.3], [0.3, 0.3]))  # rounding is not variance
    # unequal variances: the Welch-Satterthwaite df by hand, not the pooled test's 6
    a, b = np.array([1.0, 2, 3, 4]), np.array([2.0, 6, 10, 14])
    va, vb = a.var(ddof=1) / 4, b.var(ddof=1) / 4
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 3)
    assert df == pytest.approx(3.3735, abs=1e-3)
    assert compare(a, b, "welch") == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)


def test_mann_whitney_known_p_value() -> None:
    # complete separation of 3 vs 3: exact two-sided p = 2 / C(6, 3) = 0.1
    assert compare([1, 2, 3], [4, 5, 6], "mannwhitney") == pytest.approx(0.1)


def test_untestable_comparisons_are_nan() -> None:
    assert math.isnan(compare([1.0], [2.0, 3.0]))  # one seed
    assert math.isnan(compare([0.0, 0.0], [0.0, 0.0], "welch"))  # no variance anywhere
    with pytest.raises(ValueError):
        compare([1, 2], [3, 4], "chi2")  # type: ignore[arg-type]


def test_holm_known_values() -> None:
    # sorted: 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone: 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    out = holm([0.01, math.nan, 0.04])  # a test not run does not count
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1]) and out[2] == pytest.approx(0.04)


def test_gold_curve_fit_recovers_known_coefficients() -> None:
    d = np.linspace(0.2, 6.0, 25)
    gain = gold_curve(d, 0.30, 0.12)
    fit = fit_gold_curve(d, gain)
    assert fit is not None
    assert fit.alpha == pytest.approx(0.30, abs=1e-6)
    assert fit.beta == pytest.approx(0.12, abs=1e-6)
    assert fit.d_peak == pytest.approx(math.exp(0.30 / 0.12 - 1))
    noisy = fit_gold_curve(d, gain + np.random.default_rng(0).normal(0, 0.01, len(d)))
    assert noisy is not None and noisy.beta == pytest.approx(0.12, abs=0.02)
    assert noisy.beta_se > 0
    assert gold_curve(0.0, 1.0, 1.0) == 0.0  # d log d -> 0: no NaN at the base model
    assert fit_gold_curve([0.0, 1.0], [0.0, 0.1]) is None  # too few points
