"""The statistics of `oversight.analysis` on values whose answers are known by hand."""

from __future__ import annotations

import itertools
import math
from typing import Any, cast

import numpy as np
import pytest
from scipy import stats

from oversight.analysis.stats import (
    bootstrap_ci,
    cohen_kappa,
    compare,
    fit_gold_curve,
    fleiss_kappa,
    gold_curve,
    holm,
    percent_agreement,
    pgr,
    spearman,
)


def exact_bootstrap_quantiles(x: list[float], q: tuple[float, float]) -> tuple[float, float]:
    """Percentiles of the mean over all n^n equally likely resamples (exact bootstrap)."""
    means = [float(np.mean(c)) for c in itertools.product(x, repeat=len(x))]
    lo, hi = np.quantile(means, q)
    return float(lo), float(hi)


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
        compare([1, 2], [3, 4], cast(Any, "chi2"))  # not a Test: rejected at run time


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


def test_gold_curve_fit_recovers_the_law_from_noisy_paths() -> None:
    """Five seeds' paths drawn from the law with noise: alpha, beta within 10% and within three
    standard errors (so the SEs are honest too), and the peak where d (alpha - beta log d) turns."""
    alpha, beta = 0.10, 0.05  # d* = e: rises, peaks at gain beta e = 0.136, falls by d = 6
    rng = np.random.default_rng(0)
    d = np.concatenate([np.sort(rng.uniform(0.1, 6.0, 15)) for _ in range(5)])
    fit = fit_gold_curve(d, gold_curve(d, alpha, beta) + rng.normal(0, 0.01, len(d)))
    assert fit is not None and fit.n == 75
    for est, se, true in ((fit.alpha, fit.alpha_se, alpha), (fit.beta, fit.beta_se, beta)):
        assert 0 < se < 0.1 * true
        assert est == pytest.approx(true, rel=0.1) and abs(est - true) < 3 * se
    assert fit.d_peak == pytest.approx(math.exp(fit.alpha / fit.beta - 1))
    assert fit.d_peak == pytest.approx(math.e, rel=0.1)
    assert fit.gain_at_peak == pytest.approx(float(gold_curve(fit.d_peak, fit.alpha, fit.beta)))
    assert fit.gain_at_peak == pytest.approx(beta * math.e, rel=0.1)
    # gold that only falls (biased labels): beta <= 0, no peak
    falling = fit_gold_curve(d, gold_curve(d, -0.2, -0.05))
    assert falling is not None and falling.d_peak is None and falling.gain_at_peak is None


def test_spearman_known_values() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)  # ranks, not values
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks (1, 2, 3, 4) vs (2, 1, 4, 3): 1 - 6 * 4 / (4 * 15) = 0.6
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    assert spearman([1, 2, None, 3, math.nan], [1, 2, 5, 3, 4]) == pytest.approx(1.0)  # pairs
    assert spearman([1, 2], [1, 2]) is None  # too few pairs
    assert spearman([1, 2, 3], [0.5, 0.5, 0.5]) is None  # a constant side: undefined


def test_cohen_kappa_known_values() -> None:
    assert cohen_kappa(list("abab"), list("abab")) == pytest.approx(1.0)  # perfect
    # agreement exactly at chance: po = 1/2, pe = (2*2 + 2*2) / 16 = 1/2
    assert cohen_kappa(list("aabb"), list("abab")) == pytest.approx(0.0)
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> po = 0.7,
    # pe = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = (0.7 - 0.5) / 0.5 = 0.4
    x = ["y"] * 25 + ["n"] * 25
    y = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(x, y) == pytest.approx(0.4)
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["a"], ["a", "b"]) is None  # not the same items
    assert cohen_kappa(list("aaa"), list("aaa")) is None  # one label only: pe = 1


def test_fleiss_kappa_known_values() -> None:
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)  # perfect
    # every item split: po = 0, pe = 1/2 -> kappa = -1
    assert fleiss_kappa([["a", "b"], ["a", "b"]]) == pytest.approx(-1.0)
    # raters per item differ: p = (9 - 3) / 6 = 1 and 0, po = 1/2; shares 4/5, 1/5:
    # pe = 0.68 -> kappa = (0.5 - 0.68) / 0.32; an item with one rating is left out
    mixed = [["a", "a", "a"], ["a", "b"], ["c"]]
    assert fleiss_kappa(mixed) == pytest.approx(-0.5625)
    # Fleiss (1971) as on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    ratings = [[c for c, k in zip("12345", row, strict=True) for _ in range(k)] for row in counts]
    assert fleiss_kappa(ratings) == pytest.approx(0.20993, abs=1e-5)
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([["a"], ["b"]]) is None  # no item with two ratings
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None  # one label only: pe = 1


def test_percent_agreement_known_values() -> None:
    assert percent_agreement([["a", "a"], ["b", "b", "b"]]) == pytest.approx(1.0)
    assert percent_agreement([["a", "b"], ["a", "b"]]) == pytest.approx(0.0)
    # pairs (a,a) (a,b) (a,b): 1/3; (c,c): 1; the single rating has no pair -> mean 2/3
    assert percent_agreement([["a", "a", "b"], ["x"], ["c", "c"]]) == pytest.approx(2 / 3)
    assert percent_agreement([["a"]]) is None
    assert percent_agreement([]) is None


def test_pgr_is_the_share_of_the_gap_with_a_bootstrap_interval():
    exact = pgr([0.5, 0.5], [0.3, 0.3], [0.7, 0.7])
    assert exact.mean == pytest.approx(0.5) and exact.low == exact.high == pytest.approx(0.5)
    noisy = pgr([0.45, 0.55, 0.5], [0.28, 0.32, 0.3], [0.69, 0.71, 0.7])
    assert noisy.mean == pytest.approx(0.5) and noisy.n == 3
    assert noisy.low < 0.5 < noisy.high
    assert pgr([0.7], [0.3], [0.7]).mean == pytest.approx(1.0)  # one seed each: a point
    assert pgr([0.1, 0.1], [0.3, 0.3], [0.7, 0.7]).mean == pytest.approx(-0.5)  # below the floor


def test_pgr_is_undefined_when_the_gap_is_within_its_noise():
    assert pgr([0.5, 0.5], [0.3, 0.5], [0.35, 0.45]).mean is None  # no gap on average
    assert pgr([0.5, 0.5], [0.7, 0.7], [0.3, 0.3]).mean is None  # ceiling below the floor
    # a positive mean gap whose interval reaches zero
    assert pgr([0.5, 0.5, 0.5], [0.2, 0.6, 0.4], [0.35, 0.65, 0.45]).mean is None
    assert pgr([0.5], [], [0.7]).mean is None  # no floor run
