"""The recommendation rules, one per setting: memory from usage, architecture, timeout (with its bound and floors).

Each rule takes measured numbers (REPORT rows or durations) and returns the setting with the
reason a reader sees. ``workbook.tuning.recommend`` applies them per function; the ``workbook
tune`` command applies the same ones.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from infra import specs
from infra.config import Settings
from workbook.analysis.aggregate import duration_percentiles
from workbook.analysis.cost import invocation_cost
from workbook.telemetry.aggregate import Aggregates
from workbook.tuning.analysis import TuningError, TuningInputError
from workbook.tuning.bounds import QuantileBound, TopDurations, order_statistic_rank, quantile_upper_bound, top_needed
from workbook.tuning.decide import Status
from workbook.tuning.defaults import (
    MAX_ARM64_P95_SLOWDOWN_PCT,
    MEMORY_HEADROOM_PCT,
    TIMEOUT_BOUND_LEVEL,
    TIMEOUT_FALLBACK_HEADROOM_PCT,
    TIMEOUT_FALLBACK_QUANTILE,
    TIMEOUT_HEADROOM_PCT,
    TIMEOUT_MIN_S,
    TIMEOUT_QUANTILE,
)
from workbook.tuning.floors import TimeoutFloor, queue_of, timeout_floor

__all__ = ["ArchitectureRecommendation", "MemoryUsageRecommendation", "TimeoutRecommendation",
           "durations_quantile", "recommend_architecture", "recommend_memory_from_usage", "ranks_for_timeout",
           "recommend_timeout", "timeout_durations",
           "top_for_timeout"]


@dataclass
class MemoryUsageRecommendation:
    memory_mb: int
    max_used_mb: float
    p99_used_mb: float
    headroom_pct: float
    invocations: int
    reason: str


def recommend_memory_from_usage(
    reports: pd.DataFrame, headroom_pct: float = MEMORY_HEADROOM_PCT, floor_mb: int = specs.MEMORY_MIN_MB,
    step_mb: int = 64,
) -> MemoryUsageRecommendation:
    """Memory that keeps ``headroom_pct`` above the peak max-memory-used of the REPORTs.

    Works from any amount of data (hours, not Compute Optimizer's 14 days) and at any size
    up to 10,240 MB (Compute Optimizer stops at 1,792 MB). Rounded up to ``step_mb``.
    """
    used = reports["max_memory_used_mb"].dropna().astype(float) if len(reports) else pd.Series([], dtype=float)
    if used.empty:
        raise TuningError("no REPORT lines with Max Memory Used: run traffic first or widen the time range")
    peak = float(used.max())
    needed = peak * (1 + headroom_pct / 100.0)
    memory = int(min(max(math.ceil(needed / step_mb) * step_mb, floor_mb), specs.MEMORY_MAX_MB))
    oom = int((reports.get("status") == "out_of_memory").sum()) if "status" in reports else 0
    reason = f"peak {peak:.0f} MB over {len(used)} invocations + {headroom_pct:.0f}% headroom"
    if oom:
        configured = float(reports["memory_size_mb"].max())
        memory = int(min(max(memory, math.ceil(configured * 1.5 / step_mb) * step_mb), specs.MEMORY_MAX_MB))
        reason += f"; {oom} out-of-memory invocations, so at least 1.5x the configured {configured:.0f} MB"
    if needed > specs.MEMORY_MAX_MB:
        reason += f"; needs {needed:.0f} MB, above Lambda's {specs.MEMORY_MAX_MB} MB limit"
    return MemoryUsageRecommendation(memory, peak, float(used.quantile(0.99)), headroom_pct, len(used), reason)


@dataclass
class ArchitectureRecommendation:
    architecture: str
    x86_cost_usd: float
    arm64_cost_usd: float
    x86_p95_ms: float
    arm64_p95_ms: float
    reason: str


def recommend_architecture(
    x86_durations_ms: Sequence[float],
    arm64_durations_ms: Sequence[float],
    memory_mb: int,
    *,
    region: str = "us-east-1",
    max_p95_slowdown_pct: float = MAX_ARM64_P95_SLOWDOWN_PCT,
) -> ArchitectureRecommendation:
    """arm64 when it is cheaper per invocation and its p95 is no more than ``max_p95_slowdown_pct`` slower."""
    if not len(x86_durations_ms) or not len(arm64_durations_ms):
        raise TuningInputError("compare architectures with durations measured on both x86_64 and arm64")
    x86 = np.asarray(x86_durations_ms, float)
    arm = np.asarray(arm64_durations_ms, float)
    x86_cost = invocation_cost(float(np.mean(np.ceil(x86))), memory_mb, "x86_64", region)
    arm_cost = invocation_cost(float(np.mean(np.ceil(arm))), memory_mb, "arm64", region)
    x86_p95, arm_p95 = float(np.percentile(x86, 95)), float(np.percentile(arm, 95))
    slower = (arm_p95 / x86_p95 - 1) * 100 if x86_p95 > 0 else 0.0
    if arm_cost < x86_cost and slower <= max_p95_slowdown_pct:
        choice = "arm64"
        reason = f"arm64 costs {100 * (1 - arm_cost / x86_cost):.0f}% less per invocation; p95 {slower:+.0f}%"
    else:
        choice = "x86_64"
        reason = (f"x86_64: arm64 p95 is {slower:+.0f}% (limit {max_p95_slowdown_pct:.0f}%)" if arm_cost < x86_cost
                  else "x86_64 is cheaper per invocation on the measured durations")
    return ArchitectureRecommendation(choice, x86_cost, arm_cost, x86_p95, arm_p95, reason)


@dataclass
class TimeoutRecommendation:
    """The timeout rule's answer: a status, the value, and the bound, floor and ceiling behind it."""

    timeout_s: int
    current_s: int
    status: Status
    confidence: float
    samples: int
    bound: QuantileBound
    floor: TimeoutFloor
    visibility_timeout_s: int | None
    queue: str | None
    reason: str
    needed: str = ""

    @property
    def changed(self) -> bool:
        return self.status is Status.RECOMMEND and self.timeout_s != self.current_s

    @property
    def cap_s(self) -> int:
        return self.floor.ceiling_s

    @property
    def p999_ms(self) -> float:
        return float("nan") if self.bound.observed_ms is None else self.bound.observed_ms


def recommend_timeout(
    durations_ms: Sequence[float] | TopDurations,
    function_key: str,
    *,
    settings: Settings,
    floor: TimeoutFloor | None = None,
    headroom_pct: float = TIMEOUT_HEADROOM_PCT,
    quantile: float = TIMEOUT_QUANTILE,
    level: float = TIMEOUT_BOUND_LEVEL,
    timed_out: int = 0,
) -> TimeoutRecommendation:
    """The one timeout rule, from the durations of successful invocations (all of them, or their ``TopDurations``).

    The timeout is the ``level`` upper confidence bound on the ``quantile`` of the durations (an
    order statistic: distribution-free), plus ``headroom_pct``, rounded up to seconds; never below
    the floor (the function's own downstream retry budgets, batch and slowest worst-case input; see
    ``workbook.tuning.floors``) nor above the trigger's ceiling. The status:

    * ``insufficient-data`` when the durations are too few for the bound (2,995 for p99.9 at 95%):
      the reason shows what a p99 bound with ``TIMEOUT_FALLBACK_HEADROOM_PCT`` headroom would
      give, as a provisional figure, never as a recommendation; the current timeout is kept;
    * ``keep`` when the rule lands on the current timeout, or invocations timed out in the window
      (the durations cannot see past the current timeout);
    * ``recommend`` otherwise. A raise to the floor needs no data: the stack's own budgets say so.

    For SQS consumers the queue's visibility timeout must stay at least 6x the function's timeout
    (AWS guidance); ``visibility_timeout_s`` is set when the current one is too small.
    """
    current_s = settings.function(function_key).timeout_s
    values = durations_ms if isinstance(durations_ms, TopDurations) else np.asarray([float(d) for d in durations_ms if d == d])
    bound = quantile_upper_bound(values, quantile, level)
    if floor is None:
        p99 = durations_quantile(values, 0.99) if values.size else None
        floor = timeout_floor(settings, function_key, per_record_p99_ms=p99)
    ceiling = floor.ceiling_s
    floor_s = min(floor.seconds, ceiling)
    conflict = (f"; the floor {floor.seconds} s is above the {ceiling} s ceiling ({floor.ceiling_reason}): "
                f"shorten the budget behind it ({floor.binding.reason})" if floor.above_ceiling else "")

    def result(timeout: int, status: Status, confidence: float, reason: str, needed: str = "") -> TimeoutRecommendation:
        queue, visibility = None, None
        queue = queue_of(function_key)
        if queue and status is Status.RECOMMEND:
            needed_visibility = specs.VISIBILITY_TIMEOUT_FACTOR * timeout
            if getattr(settings.params, queue).visibility_timeout_s < needed_visibility:
                visibility = needed_visibility
                reason += f"; {queue}.visibility_timeout_s >= 6 x {timeout} s = {needed_visibility} s"
        return TimeoutRecommendation(timeout, current_s, status, confidence, int(values.size), bound, floor,
                                     visibility, queue, reason + conflict, needed)

    if current_s < floor_s:
        return result(floor_s, Status.RECOMMEND, 1.0,
                      f"raise to the floor: the current {current_s} s would cut the function's own retries "
                      f"({floor.describe()})")
    if timed_out:
        return result(current_s, Status.KEEP, level,
                      f"{timed_out:,} invocation(s) timed out at the current {current_s} s: their durations are "
                      "unknown, so no bound can lower it; find out why first")
    if values.size == 0:
        return result(current_s, Status.INSUFFICIENT_DATA, 0.0,
                      "no successful invocation in the window: no duration to bound",
                      f"{bound.needed:,} successful invocations")
    if not bound.exists:
        return result(current_s, Status.INSUFFICIENT_DATA, 1.0 - quantile ** values.size,
                      f"{bound.describe()}; the largest of them, {values.max():,.0f} ms, bounds the "
                      f"{_name(quantile)} with only {1.0 - quantile ** values.size:.0%} confidence"
                      f"{_provisional(values, headroom_pct, floor_s, ceiling, level)}",
                      f"{bound.missing:,} more invocations (the rule needs {bound.needed:,})")
    from_bound = math.ceil(bound.bound_ms * (1 + headroom_pct / 100.0) / 1000.0 - 1e-9)
    timeout = int(min(max(from_bound, floor_s, TIMEOUT_MIN_S), ceiling))
    if timeout == floor_s and floor_s > from_bound:
        basis = f"the floor binds at {floor_s} s ({floor.binding.kind})"
    elif timeout == ceiling and from_bound > ceiling:
        basis = f"capped at {ceiling} s ({floor.ceiling_reason})"
    else:
        basis = f"above the {floor_s} s floor"
    why = f"{bound.describe()} + {headroom_pct:.0f}% headroom = {from_bound} s; {basis}"
    if timeout == current_s:
        return result(current_s, Status.KEEP, level, f"the rule lands on the current {current_s} s: {why}")
    return result(timeout, Status.RECOMMEND, level, why)


def durations_quantile(values: np.ndarray | TopDurations, q: float) -> float:
    """numpy's linear ``q`` quantile of all the durations, or of all those a ``TopDurations`` stands for."""
    return values.quantile(q) if isinstance(values, TopDurations) else float(np.quantile(values, q))


def _name(quantile: float) -> str:
    return "p" + f"{quantile * 100:.3f}".rstrip("0").rstrip(".")


def _provisional(values: np.ndarray | TopDurations, headroom_pct: float, floor_s: int, ceiling: int, level: float) -> str:
    """The fallback's figure: a bound on the lower quantile with the larger headroom (never recommended)."""
    fallback = quantile_upper_bound(values, TIMEOUT_FALLBACK_QUANTILE, level)
    if not fallback.exists:
        return ""
    seconds = math.ceil(fallback.bound_ms * (1 + TIMEOUT_FALLBACK_HEADROOM_PCT / 100.0) / 1000.0 - 1e-9)
    provisional = min(max(seconds, floor_s, TIMEOUT_MIN_S), ceiling)
    return (f"; provisional only: the {level:.0%} bound on the {_name(TIMEOUT_FALLBACK_QUANTILE)} "
            f"({fallback.bound_ms:,.0f} ms) + {TIMEOUT_FALLBACK_HEADROOM_PCT:.0f}% headroom, within the floor and "
            f"ceiling, would give {provisional} s")


#: The most top durations fetched to make the floor's p99 exact too (1% of the successes); above it the
#: p99 is Logs Insights' over all the window's invocations (``timeout_durations``).
TOP_P99_CAP = 10_000


def top_for_timeout(n: int) -> int:
    """How many of the longest of ``n`` successful durations ``recommend_timeout`` reads: its bound and p99.9
    (and, when that needs at most ``TOP_P99_CAP``, the floor's p99 and the provisional p99 bound); the
    aggregate route asks Logs Insights for that many. About n / 1,000 at volume."""
    everything = top_needed(n, (TIMEOUT_QUANTILE, TIMEOUT_FALLBACK_QUANTILE, 0.99), TIMEOUT_BOUND_LEVEL)
    return everything if everything <= TOP_P99_CAP else top_needed(n, (TIMEOUT_QUANTILE,), TIMEOUT_BOUND_LEVEL)


def ranks_for_timeout(n: int) -> set[int]:
    """The ranks from the top (1 = the longest) ``recommend_timeout`` reads of ``n`` durations at volume: the
    maximum, the p99.9 bound's order statistic and the two around the p99.9 (numpy's linear quantile)."""
    rank = order_statistic_rank(n, TIMEOUT_QUANTILE, TIMEOUT_BOUND_LEVEL)
    position = (n - 1) * TIMEOUT_QUANTILE
    wanted = {1, n - math.floor(position), n - math.ceil(position)}
    return wanted | ({n - rank + 1} if rank is not None else set(range(1, n + 1)))


def timeout_durations(agg: Aggregates, function: str) -> TopDurations:
    """The aggregate route's input to ``recommend_timeout`` for one function: its top successful durations,
    their count, and Insights' window p99 for the floor when the top does not reach the p99."""
    p99 = duration_percentiles(agg, (99,))
    p99 = p99.loc[p99["function"] == function, "value"]
    return TopDurations(agg.top_durations(function), agg.successes(function),
                        {0.99: float(p99.iloc[0])} if len(p99) else {}, dict(agg.top_ranks.get(function, {})))
