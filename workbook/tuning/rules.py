"""The recommendation rules, one per setting: memory from usage, architecture, timeout.

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
from workbook.analysis.cost import invocation_cost
from workbook.tuning.analysis import TuningError, TuningInputError
from workbook.tuning.defaults import (
    MAX_ARM64_P95_SLOWDOWN_PCT,
    MEMORY_HEADROOM_PCT,
    MIN_TIMEOUT_SAMPLES,
    TIMEOUT_HEADROOM_PCT,
    TIMEOUT_MIN_S,
)

__all__ = ["ArchitectureRecommendation", "MemoryUsageRecommendation", "TimeoutRecommendation",
           "recommend_architecture", "recommend_memory_from_usage", "recommend_timeout"]


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
    timeout_s: int
    p999_ms: float
    cap_s: int
    visibility_timeout_s: int | None
    queue: str | None
    reason: str
    changed: bool = True


# Why a function's timeout is capped: its trigger's own limit.
_TIMEOUT_CAPS_S = {
    "http-api": (30, "API Gateway HTTP API integrations time out at 30 s"),
    "authorizer": (30, "an HTTP API authorizer must answer within the 30 s integration limit"),
}
_QUEUE_OF_TRIGGER = {"sqs": "task_queue", "sns-via-sqs": "notification_queue"}


def recommend_timeout(
    durations_ms: Sequence[float],
    function_key: str,
    *,
    settings: Settings,
    headroom_pct: float = TIMEOUT_HEADROOM_PCT,
    minimum_s: int = TIMEOUT_MIN_S,
    min_samples: int = MIN_TIMEOUT_SAMPLES,
) -> TimeoutRecommendation:
    """The one timeout rule: p99.9 duration + ``headroom_pct``, rounded up to seconds, capped by the trigger.

    With fewer than ``min_samples`` durations the p99.9 is really the sample's maximum, so the
    current timeout is kept (``changed`` is False) and the reason says how many are needed. For
    SQS consumers the queue's visibility timeout must stay at least 6x the function's timeout
    (AWS guidance); ``visibility_timeout_s`` is set when the current one is too small.
    """
    spec = specs.spec(function_key)
    current_s = settings.function(function_key).timeout_s
    values = np.asarray([d for d in durations_ms if d == d], dtype=float)
    if values.size == 0:
        raise TuningInputError(f"no durations for {function_key}: cannot recommend a timeout from no data")
    p999 = float(np.quantile(values, 0.999))
    cap, why = _TIMEOUT_CAPS_S.get(spec.trigger.value, (specs.TIMEOUT_MAX_S, "Lambda's 900 s maximum"))
    if values.size < min_samples:
        return TimeoutRecommendation(current_s, p999, cap, None, None,
                                     f"keep: only {values.size} invocations; a timeout needs at least {min_samples} "
                                     "for its p99.9", changed=False)
    timeout = int(min(max(math.ceil(p999 * (1 + headroom_pct / 100.0) / 1000.0), minimum_s), cap))
    reason = f"p99.9 {p999:.0f} ms + {headroom_pct:.0f}% headroom"
    if p999 * (1 + headroom_pct / 100.0) / 1000.0 > cap:
        reason += f", capped at {cap} s ({why})"
    queue = _QUEUE_OF_TRIGGER.get(spec.trigger.value)
    visibility = None
    if queue:
        needed = specs.VISIBILITY_TIMEOUT_FACTOR * timeout
        current = getattr(settings.params, queue).visibility_timeout_s
        if current < needed:
            visibility = needed
            reason += f"; {queue}.visibility_timeout_s >= 6 x {timeout} s = {needed} s"
    return TimeoutRecommendation(timeout, p999, cap, visibility, queue, reason, changed=timeout != current_s)
