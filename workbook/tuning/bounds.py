"""Distribution-free upper confidence bounds on a high quantile, by order statistics (pure).

For ``n`` independent durations, the ``k``-th smallest, ``X_(k)``, lies above the true
``q``-quantile exactly when fewer than ``k`` durations fall at or below that quantile, so
``P(X_(k) >= x_q) >= P(Binomial(n, q) <= k - 1)``, whatever the distribution. The bound is the
smallest ``k`` that makes this at least the confidence level. It exists only when ``n`` is large
enough that even the sample maximum qualifies: ``1 - q**n >= level``, which for p99.9 at 95% is
2,995 durations (``min_samples``). With fewer, the largest value seen is no bound at all.

The binomial tail is summed exactly in log space (no scipy); the tests check it against
``scipy.stats.binom`` and check the bound's coverage by simulation.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from workbook.tuning.analysis import TuningInputError

__all__ = ["QuantileBound", "TopDurations", "binomial_cdf", "min_samples", "order_statistic_rank", "quantile_upper_bound",
           "top_needed"]


def _check(quantile: float, level: float) -> None:
    if not 0.0 < quantile < 1.0:
        raise TuningInputError(f"quantile {quantile!r} must be strictly between 0 and 1, like 0.999")
    if not 0.0 < level < 1.0:
        raise TuningInputError(f"confidence level {level!r} must be strictly between 0 and 1, like 0.95")


def _log_pmf(j: int, n: int, p: float) -> float:
    """log P(Binomial(n, p) = j)."""
    if p <= 0.0:
        return 0.0 if j == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if j == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
            + j * math.log(p) + (n - j) * math.log1p(-p))


def binomial_cdf(k: int, n: int, p: float) -> float:
    """``P(Binomial(n, p) <= k)``, exact to floating point (log-space sum of the shorter tail)."""
    if n < 0 or not 0.0 <= p <= 1.0:
        raise TuningInputError(f"binomial_cdf needs n >= 0 and 0 <= p <= 1, got n={n}, p={p}")
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    mean = n * p
    # Sum the tail that does not contain the mean: fewer terms, no cancellation.
    if k < mean:
        terms = [_log_pmf(j, n, p) for j in range(k + 1)]
        return min(1.0, _sum_exp(terms))
    terms = [_log_pmf(j, n, p) for j in range(k + 1, n + 1)]
    return max(0.0, 1.0 - _sum_exp(terms))


def _sum_exp(log_terms: Sequence[float]) -> float:
    top = max(log_terms)
    if top == -math.inf:
        return 0.0
    return math.exp(top) * math.fsum(math.exp(t - top) for t in log_terms)


def min_samples(quantile: float = 0.999, level: float = 0.95) -> int:
    """The fewest durations for which an upper ``level`` bound on the ``quantile`` exists (the maximum)."""
    _check(quantile, level)
    return math.ceil(math.log(1.0 - level) / math.log(quantile) - 1e-12)


def order_statistic_rank(n: int, quantile: float = 0.999, level: float = 0.95) -> int | None:
    """The smallest 1-based rank ``k`` with ``P(Binomial(n, quantile) <= k - 1) >= level``; None when none exists.

    Walks down from ``k = n`` adding the upper tail ``P(Binomial >= k)`` in log space, and stops
    where that tail would pass ``1 - level``: about ``n (1 - q) + z sqrt(n q (1 - q))`` steps.
    """
    _check(quantile, level)
    if n < 1:
        return None
    alpha = 1.0 - level
    log_alpha = math.log(alpha)
    log_p, log_q = math.log(quantile), math.log1p(-quantile)
    log_term = n * log_p                    # log P(Binomial = n)
    log_tail = log_term                     # log P(Binomial >= n)
    if log_tail > log_alpha:
        return None                         # even the maximum is no bound: n is too small
    k = n
    while k > 1:
        # P(Binomial = k - 1) from P(Binomial = k): times k / (n - k + 1) * (1 - q) / q
        log_term += math.log(k) - math.log(n - k + 1) + log_q - log_p
        next_tail = np.logaddexp(log_tail, log_term)
        if next_tail > log_alpha:
            break
        log_tail = float(next_tail)
        k -= 1
    return k


@dataclass(frozen=True)
class QuantileBound:
    """An upper confidence bound on a duration quantile, or why there is none."""

    quantile: float
    level: float
    samples: int
    needed: int
    rank: int | None
    bound_ms: float | None
    observed_ms: float | None       # the empirical quantile (numpy's), for the reader

    @property
    def exists(self) -> bool:
        return self.bound_ms is not None

    @property
    def missing(self) -> int:
        """How many more durations the bound needs (0 when it exists)."""
        return max(self.needed - self.samples, 0)

    def describe(self) -> str:
        name = _quantile_name(self.quantile)
        if self.bound_ms is None:
            return (f"{self.samples:,} invocations: too few for a {self.level:.0%} bound on the {name} "
                    f"(the rule needs {self.needed:,})")
        return (f"{self.level:.0%} upper bound on the {name}: {self.bound_ms:,.0f} ms, the {_ordinal(self.rank)} "
                f"smallest of {self.samples:,} durations")


@dataclass(frozen=True)
class TopDurations:
    """The longest durations of ``size`` (their ``top_ms``, longest first): all the bound needs at production volume.

    The aggregate route asks Logs Insights for these (``sort duration desc | limit k``) instead of every
    duration. The bound, the maximum and a quantile are exact when the order statistics they read are
    among the top (``top_needed`` says how many that takes); otherwise ``quantile`` raises.
    """

    top_ms: np.ndarray
    size: int
    #: quantiles known otherwise (from Logs Insights' ``pct``), for those the top does not reach: {0.99: ms}
    known: dict[float, float] = field(default_factory=dict)
    #: single order statistics known otherwise, by rank from the top (1 = the longest): the aggregate route's
    #: counted search (``workbook.telemetry.order_stats``) gives these instead of the whole top at volume
    ranks: dict[int, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        top = np.sort(np.asarray(self.top_ms, dtype=float)[~np.isnan(np.asarray(self.top_ms, dtype=float))])[::-1]
        object.__setattr__(self, "top_ms", top)
        if top.size > self.size:
            raise TuningInputError(f"{top.size} top durations cannot come from {self.size} invocations")

    def __len__(self) -> int:
        return self.size

    def max(self) -> float:
        return float(self.top_ms[0]) if self.top_ms.size else float(self.ranks.get(1, float("nan")))

    def ascending(self, rank: int) -> float:
        """The ``rank``-th smallest (1-based) duration; raises when it is neither among the top nor in ``ranks``."""
        from_top = self.size - rank
        if from_top >= self.top_ms.size and from_top + 1 in self.ranks:
            return float(self.ranks[from_top + 1])
        if not 0 <= from_top < self.top_ms.size:
            raise TuningInputError(f"the {rank}-th smallest of {self.size:,} durations is not among the "
                                   f"{self.top_ms.size:,} longest fetched: fetch top_needed(...) of them")
        return float(self.top_ms[from_top])

    def scaled(self, factor: float) -> TopDurations:
        """Every duration times ``factor`` (> 0: the order is kept), as the raw route scales its array."""
        return TopDurations(self.top_ms * factor, self.size, {q: v * factor for q, v in self.known.items()},
                            {r: v * factor for r, v in self.ranks.items()})

    def quantile(self, q: float) -> float:
        """numpy's default (linear) quantile of all ``size`` durations, from the top (else ``known[q]``)."""
        position = (self.size - 1) * q
        low, high = math.floor(position), math.ceil(position)
        if self.size - 1 - low >= self.top_ms.size and q in self.known:
            return float(self.known[q])
        lo, hi = self.ascending(low + 1), self.ascending(high + 1)
        return lo + (hi - lo) * (position - low)


def top_needed(n: int, quantiles: Sequence[float], level: float) -> int:
    """How many of the longest of ``n`` durations give, exactly, each quantile's bound and numpy quantile."""
    if n < 1:
        return 0
    need = 1
    for q in quantiles:
        rank = order_statistic_rank(n, q, level)
        need = max(need, n if rank is None else n - rank + 1, n - math.floor((n - 1) * q))
    return min(need, n)


def quantile_upper_bound(durations_ms: Sequence[float] | TopDurations, quantile: float = 0.999,
                         level: float = 0.95) -> QuantileBound:
    """The order-statistic upper ``level`` bound on the ``quantile`` of ``durations_ms`` (NaNs dropped)."""
    _check(quantile, level)
    if isinstance(durations_ms, TopDurations):
        n = durations_ms.size
        rank = order_statistic_rank(n, quantile, level) if n else None
        return QuantileBound(quantile, level, n, min_samples(quantile, level), rank,
                             durations_ms.ascending(rank) if rank is not None else None,
                             durations_ms.quantile(quantile) if n else None)
    values = np.sort(np.asarray([d for d in durations_ms if d == d], dtype=float))
    n = int(values.size)
    needed = min_samples(quantile, level)
    observed = float(np.quantile(values, quantile)) if n else None
    rank = order_statistic_rank(n, quantile, level) if n else None
    bound = float(values[rank - 1]) if rank is not None else None
    return QuantileBound(quantile, level, n, needed, rank, bound, observed)


def _quantile_name(quantile: float) -> str:
    text = f"{quantile * 100:.3f}".rstrip("0").rstrip(".")
    return f"p{text}"


def _ordinal(k: int | None) -> str:
    if k is None:
        return "-"
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k:,}{suffix}"
