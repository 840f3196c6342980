"""The power-tuning analysis, as aws-lambda-power-tuning defines it: numbers in, a choice out.

It reproduces the tool (alexcasalboni/aws-lambda-power-tuning, ``lambda/utils.js`` and
``lambda/analyzer.js``) exactly, and makes no AWS call:

* the average is a trimmed mean: sort, drop ``int(n * discard_top_bottom)`` values at each end;
* the cost of a value is ``ceil(average ms) * base cost per ms at 128 MB * (memory / 128)``;
* the strategies are a table (``STRATEGIES``): ``cost`` picks the cheapest (ties: the faster),
  ``speed`` the fastest (ties: the cheaper), ``balanced`` minimises
  ``w * cost / max cost + (1 - w) * duration / max duration``.

Beyond it: p95 and errors per value, and the request charge the tool leaves out (priced from the
workbook's own dated price table).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from infra.specs import MEMORY_MIN_MB
from workbook.analysis.cost import region_prices
from workbook.errors import BadInput, WorkbookError

__all__ = ["STRATEGIES", "AnalysisResult", "Strategy", "TuningError", "analyze", "base_cost_per_ms", "choose",
           "compute_price", "request_price", "trimmed_mean"]

# aws-lambda-power-tuning's base cost per ms at 128 MB (its template's ``baseCosts``): the tool's
# numbers are reproduced with the tool's own constants.
POWER_TUNING_BASE_COSTS = {
    "x86_64": {"ap-east-1": 2.9e-9, "af-south-1": 2.8e-9, "me-south-1": 2.6e-9, "eu-south-1": 2.4e-9,
               "ap-northeast-3": 2.7e-9, "default": 2.1e-9},
    "arm64": {"default": 1.7e-9},
}


class TuningError(WorkbookError):
    """Power tuning could not run or could not decide; the message says why."""


class TuningInputError(TuningError, BadInput):
    """A tuning argument is invalid (power values, payload, budget); nothing was invoked."""


class Strategy(str, Enum):
    """What the power-tuning choice optimises."""

    COST = "cost"
    SPEED = "speed"
    BALANCED = "balanced"




def base_cost_per_ms(region: str = "us-east-1", architecture: str = "x86_64") -> float:
    """aws-lambda-power-tuning's price of 1 ms at 128 MB for a region and architecture."""
    try:
        table = POWER_TUNING_BASE_COSTS[architecture]
    except KeyError:
        raise TuningInputError(f"unsupported architecture {architecture!r}; use x86_64 or arm64") from None
    return table.get(region, table["default"])




def trimmed_mean(durations_ms: Sequence[float], discard_top_bottom: float = 0.2) -> float:
    """The power-tuning average: sort, drop ``int(n * discard)`` values at each end, mean the rest."""
    values = sorted(float(v) for v in durations_ms)
    if not values:
        return 0.0
    discard = int(len(values) * discard_top_bottom)
    kept = values[discard : len(values) - discard] if discard > 0 else values
    total = 0.0
    for value in kept:  # left-to-right like Array.reduce, so the float sum is bit-identical
        total += value
    return total / (len(values) - 2 * discard)


def compute_price(base_cost: float, memory_mb: float, duration_ms: float, min_ram_mb: int = MEMORY_MIN_MB) -> float:
    """``ceil(duration) * base cost * (memory / 128)``, in the same order of operations as the tool."""
    return math.ceil(duration_ms) * base_cost * (memory_mb / min_ram_mb)


@dataclass
class AnalysisResult:
    """The power-tuning choice and the per-memory table behind it.

    ``table`` columns: memory_mb, invocations, errors, average_duration_ms (trimmed mean),
    p95_duration_ms, average_cost_usd (the tool's), request_cost_usd, cost_with_requests_usd,
    total_cost_usd (sum over the measured invocations), balanced_value.
    """

    memory_mb: int
    strategy: str
    balanced_weight: float
    average_duration_ms: float
    average_cost_usd: float
    table: pd.DataFrame
    memory_mb_with_requests: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "memory_mb": self.memory_mb,
            "strategy": self.strategy,
            "average_duration_ms": self.average_duration_ms,
            "average_cost_usd": self.average_cost_usd,
            "memory_mb_with_requests": self.memory_mb_with_requests,
            "table": self.table.to_dict(orient="records"),
        }


def analyze(
    durations_by_memory: Mapping[int, Sequence[float]],
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    discard_top_bottom: float = 0.2,
    *,
    errors_by_memory: Mapping[int, int] | None = None,
    base_cost: float | None = None,
    region: str = "us-east-1",
    architecture: str = "x86_64",
    request_price_usd: float | None = None,
) -> AnalysisResult:
    """Choose a memory size from ``{memory_mb: [duration_ms, ...]}`` as aws-lambda-power-tuning does.

    Pass billed durations (the tool reads ``Billed Duration``) to reproduce its numbers. Values
    with no durations are left out, as the tool does. ``discard_top_bottom`` is clamped to
    0..0.4 and ``balanced_weight`` to 0..1, as the tool does.
    """
    strategy = Strategy(strategy)
    weight = min(max(float(balanced_weight), 0.0), 1.0)
    discard = min(max(float(discard_top_bottom), 0.0), 0.4)
    base = base_cost if base_cost is not None else base_cost_per_ms(region, architecture)
    errors_by_memory = errors_by_memory or {}
    if request_price_usd is None:
        request_price_usd = request_price(region)
    rows = []
    for memory, durations in durations_by_memory.items():
        durations = [float(d) for d in durations]
        average = trimmed_mean(durations, discard)
        rows.append({
            "memory_mb": int(memory),
            "invocations": len(durations) + int(errors_by_memory.get(memory, 0)),
            "errors": int(errors_by_memory.get(memory, 0)),
            "average_duration_ms": average,
            "p95_duration_ms": float(np.percentile(durations, 95)) if durations else float("nan"),
            "average_cost_usd": compute_price(base, memory, average),
            "total_cost_usd": sum(compute_price(base, memory, d) for d in durations),
        })
    stats = [row for row in rows if row["average_duration_ms"]]  # the tool drops empty results
    if not stats:
        raise TuningError("no durations to analyse: every memory value has no successful invocation")
    for row in rows:
        row["request_cost_usd"] = request_price_usd
        row["cost_with_requests_usd"] = row["average_cost_usd"] + request_price_usd
    chosen = choose(stats, strategy, weight, "average_cost_usd")
    with_requests = choose(stats, strategy, weight, "cost_with_requests_usd")
    max_cost = max(row["average_cost_usd"] for row in stats)
    max_duration = max(row["average_duration_ms"] for row in stats)
    for row in rows:
        row["balanced_value"] = (
            weight * row["average_cost_usd"] / max_cost + (1 - weight) * row["average_duration_ms"] / max_duration
            if row["average_duration_ms"] else float("nan")
        )
    table = pd.DataFrame(rows).sort_values("memory_mb", kind="stable").reset_index(drop=True)
    return AnalysisResult(
        memory_mb=chosen["memory_mb"],
        strategy=strategy.value,
        balanced_weight=weight,
        average_duration_ms=chosen["average_duration_ms"],
        average_cost_usd=chosen["average_cost_usd"],
        table=table,
        memory_mb_with_requests=with_requests["memory_mb"],
    )


def _by_cost(stats: list[dict], cost_key: str, weight: float) -> list[dict]:
    return sorted(stats, key=lambda s: (s[cost_key], s["average_duration_ms"]))


def _by_speed(stats: list[dict], cost_key: str, weight: float) -> list[dict]:
    return sorted(stats, key=lambda s: (s["average_duration_ms"], s[cost_key]))


def _by_balance(stats: list[dict], cost_key: str, weight: float) -> list[dict]:
    max_cost = max(s[cost_key] for s in stats)
    max_duration = max(s["average_duration_ms"] for s in stats)
    return sorted(
        stats, key=lambda s: weight * s[cost_key] / max_cost + (1 - weight) * s["average_duration_ms"] / max_duration)


#: Each strategy orders the measured values, best first (the tool's ``analyzer.js``). Python's sort is
#: stable like V8's, so equal keys keep the order of the power values.
STRATEGIES: dict[Strategy, Callable[[list[dict], str, float], list[dict]]] = {
    Strategy.COST: _by_cost,
    Strategy.SPEED: _by_speed,
    Strategy.BALANCED: _by_balance,
}


def choose(stats: list[dict], strategy: Strategy, weight: float, cost_key: str = "average_cost_usd") -> dict:
    """The best of ``stats`` (rows with memory_mb, average_duration_ms and ``cost_key``) for ``strategy``."""
    return STRATEGIES[Strategy(strategy)](stats, cost_key, weight)[0]


def request_price(region: str = "us-east-1") -> float:
    """The price of one request in USD, from the workbook's dated price table."""
    return float(region_prices(region)["requests_per_million"]) / 1_000_000
