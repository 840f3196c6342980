"""The order-statistic bound on a high quantile: against scipy's binomial, and its coverage by simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from workbook.tuning import bounds
from workbook.tuning.analysis import TuningInputError


@pytest.mark.parametrize("n, p", [(10, 0.5), (100, 0.3), (2995, 0.999), (5000, 0.999), (20_000, 0.999),
                                  (300, 0.99), (1, 0.2), (50, 0.02)])
def test_binomial_cdf_matches_scipy(n, p):
    # GIVEN scipy's binomial distribution as the oracle
    for k in sorted({0, 1, n // 3, n // 2, int(n * p), int(n * p) + 1, n - 2, n - 1, n}):
        if k < 0:
            continue
        # WHEN our exact log-space sum computes the CDF, THEN it agrees to floating-point accuracy
        assert bounds.binomial_cdf(k, n, p) == pytest.approx(stats.binom.cdf(k, n, p), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n", [2995, 3000, 4000, 10_000, 50_000, 250_000])
@pytest.mark.parametrize("quantile, level", [(0.999, 0.95), (0.99, 0.95), (0.999, 0.99)])
def test_rank_is_the_smallest_with_enough_coverage_per_scipy(n, quantile, level):
    # GIVEN n durations WHEN the rank of the bounding order statistic is chosen
    k = bounds.order_statistic_rank(n, quantile, level)
    if n < bounds.min_samples(quantile, level):
        assert k is None
        return
    # THEN P(Binomial(n, q) <= k - 1) reaches the level (scipy), and one rank lower does not
    assert stats.binom.cdf(k - 1, n, quantile) >= level
    assert stats.binom.cdf(k - 2, n, quantile) < level


def test_min_samples_for_p999_at_95_percent_is_2995():
    # GIVEN the known closed form: the maximum bounds the quantile when 1 - q^n >= level
    assert bounds.min_samples(0.999, 0.95) == 2995
    assert 1 - 0.999 ** 2995 >= 0.95 > 1 - 0.999 ** 2994
    assert bounds.min_samples(0.99, 0.95) == 299
    # THEN below it there is no bound, at it the bound is the maximum
    assert bounds.order_statistic_rank(2994) is None
    assert bounds.order_statistic_rank(2995) == 2995


def test_bound_covers_the_true_p999_in_at_least_95_percent_of_repeats():
    # GIVEN a known distribution (lognormal: its p99.9 is exp(mu + sigma z_0.999)) and 4,000 samples per repeat
    rng = np.random.default_rng(20261127)
    mu, sigma, n, repeats = math.log(120.0), 0.6, 4000, 2000
    true_p999 = math.exp(mu + sigma * stats.norm.ppf(0.999))
    k = bounds.order_statistic_rank(n)
    # WHEN the bound is the k-th smallest of each repeat
    samples = rng.lognormal(mu, sigma, size=(repeats, n))
    kth = np.partition(samples, k - 1, axis=1)[:, k - 1]
    coverage = float(np.mean(kth >= true_p999))
    # THEN it covers the true p99.9 in at least 95% of repeats, and as often as the binomial says it should
    exact = stats.binom.cdf(k - 1, n, 0.999)
    assert coverage >= 0.95
    assert abs(coverage - exact) < 3 * math.sqrt(exact * (1 - exact) / repeats)


def test_the_sample_p999_is_not_a_bound_at_small_n():
    # GIVEN 500 samples, the case: numpy's p99.9 is about the maximum
    rng = np.random.default_rng(7)
    mu, sigma = math.log(120.0), 0.6
    true_p999 = math.exp(mu + sigma * stats.norm.ppf(0.999))
    misses = 0
    for _ in range(500):
        sample = rng.lognormal(mu, sigma, 500)
        misses += float(np.quantile(sample, 0.999)) < true_p999
        # WHEN the rule is asked for a bound THEN it says there is none, and how many more it needs
        bound = bounds.quantile_upper_bound(sample)
        assert not bound.exists and bound.missing == 2495
    # AND the point estimate falls short of the true p99.9 in a large share of repeats
    assert misses / 500 > 0.3


def test_quantile_upper_bound_describes_itself_and_drops_nans():
    values = [float(i) for i in range(1, 3001)] + [float("nan")]
    bound = bounds.quantile_upper_bound(values)
    assert bound.samples == 3000 and bound.exists and bound.bound_ms == 3000.0
    assert "95% upper bound on the p99.9" in bound.describe()
    assert "too few" in bounds.quantile_upper_bound([1.0, 2.0]).describe()


@pytest.mark.parametrize("quantile, level", [(1.0, 0.95), (0.0, 0.95), (0.999, 1.0), (0.999, -0.1)])
def test_bad_quantile_or_level_is_bad_input(quantile, level):
    with pytest.raises(TuningInputError, match="strictly between 0 and 1"):
        bounds.quantile_upper_bound([1.0], quantile, level)
