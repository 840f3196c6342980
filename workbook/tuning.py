"""Power tuning: measure a function at several memory sizes and recommend memory, timeout and
architecture, written back as a patch to ``params/<env>.yaml``.

The analysis (``analyze``) reproduces aws-lambda-power-tuning (alexcasalboni/aws-lambda-power-tuning,
``lambda/utils.js`` and ``lambda/analyzer.js``) exactly:

* the average is a trimmed mean: sort, drop ``int(n * discard_top_bottom)`` values at each end;
* the cost of a value is ``ceil(average ms) * base cost per ms at 128 MB * (memory / 128)``;
* ``cost`` picks the cheapest (ties: the faster), ``speed`` the fastest (ties: the cheaper),
  ``balanced`` minimises ``w * cost / max cost + (1 - w) * duration / max duration``.

Beyond it: p95 and errors per value, the request charge the tool leaves out, a fitted
duration-versus-memory model with a confidence, adaptive tuning that needs fewer invocations,
memory from max-memory-used headroom (above 1,792 MB too), arm64 versus x86_64, and timeouts.

Running: ``run_power_tuning(invoker, ...)`` drives any ``Invoker`` (the ``AwsLambdaInvoker``
below, or the local sandbox's). Infrastructure as code stays the source of truth: the AWS
invoker only creates temporary versions and aliases, deletes them and restores the memory.
"""
from __future__ import annotations

import argparse
import base64
import difflib
import json
import math
import re
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from workbook.errors import WorkbookError

if TYPE_CHECKING:  # pragma: no cover
    from infra.config import Settings

__all__ = [
    "Strategy",
    "InvocationResult",
    "Invoker",
    "AnalysisResult",
    "TuningRun",
    "TuningError",
    "DurationModel",
    "ParamsPatch",
    "analyze",
    "trimmed_mean",
    "generate_payloads",
    "run_power_tuning",
    "adaptive_power_tuning",
    "bootstrap_confidence",
    "fit_duration_model",
    "recommend_memory_from_usage",
    "recommend_architecture",
    "recommend_timeout",
    "recommend_for_env",
    "params_patch",
    "AwsLambdaInvoker",
    "register",
]

# aws-lambda-power-tuning's base cost per ms at 128 MB (its template's ``baseCosts``).
POWER_TUNING_BASE_COSTS = {
    "x86_64": {"ap-east-1": 2.9e-9, "af-south-1": 2.8e-9, "me-south-1": 2.6e-9, "eu-south-1": 2.4e-9,
               "ap-northeast-3": 2.7e-9, "default": 2.1e-9},
    "arm64": {"default": 1.7e-9},
}
MIN_RAM_MB = 128
DEFAULT_POWER_VALUES = (128, 256, 512, 1024, 1536, 3008)
ONE_VCPU_MB = 1769           # Lambda gives one full vCPU at 1,769 MB
MAX_MEMORY_MB = 10_240
REQUEST_PRICE_USD = 0.20 / 1_000_000


class Strategy(str, Enum):
    """What the power-tuning choice optimises."""

    COST = "cost"
    SPEED = "speed"
    BALANCED = "balanced"


class TuningError(WorkbookError):
    """Power tuning could not run or could not decide; the message says why."""


def base_cost_per_ms(region: str = "us-east-1", architecture: str = "x86_64") -> float:
    """aws-lambda-power-tuning's price of 1 ms at 128 MB for a region and architecture."""
    try:
        table = POWER_TUNING_BASE_COSTS[architecture]
    except KeyError:
        raise TuningError(f"unsupported architecture {architecture!r}; use x86_64 or arm64") from None
    return table.get(region, table["default"])


# ---------------------------------------------------------------------------------------------
# The reference analysis.
# ---------------------------------------------------------------------------------------------
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


def compute_price(base_cost: float, memory_mb: float, duration_ms: float, min_ram_mb: int = MIN_RAM_MB) -> float:
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
    request_price_usd: float = REQUEST_PRICE_USD,
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
    chosen = _choose(stats, strategy, weight, "average_cost_usd")
    with_requests = _choose(stats, strategy, weight, "cost_with_requests_usd")
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


def _choose(stats: list[dict], strategy: Strategy, weight: float, cost_key: str) -> dict:
    # Python's sort is stable like V8's, so equal keys keep the order of the power values.
    if strategy is Strategy.COST:
        return sorted(stats, key=lambda s: (s[cost_key], s["average_duration_ms"]))[0]
    if strategy is Strategy.SPEED:
        return sorted(stats, key=lambda s: (s["average_duration_ms"], s[cost_key]))[0]
    max_cost = max(s[cost_key] for s in stats)
    max_duration = max(s["average_duration_ms"] for s in stats)
    return sorted(
        stats, key=lambda s: weight * s[cost_key] / max_cost + (1 - weight) * s["average_duration_ms"] / max_duration
    )[0]


def generate_payloads(num: int, payload: Any) -> list[Any]:
    """``num`` payloads: the same one, or ``[{"payload": ..., "weight": w}, ...]`` spread by weight."""
    if isinstance(payload, list) and payload and all(isinstance(p, dict) and p.get("weight") and "payload" in p for p in payload):
        if num < len(payload):
            raise TuningError(f"You have {len(payload)} payloads and only num={num}; increase num")
        total = sum(p["weight"] for p in payload)
        out: list[Any] = []
        for index, item in enumerate(payload):
            how_many = math.floor(item["weight"] * num / total)
            if how_many < 1:
                raise TuningError("invalid payload weight: num is too small for the smallest weight")
            if index == len(payload) - 1:
                how_many = num - len(out)
            out.extend([item["payload"]] * how_many)
        return out
    return [payload] * num


# ---------------------------------------------------------------------------------------------
# Running: the invoker protocol and the runner.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InvocationResult:
    """What one invocation reports (from its REPORT line)."""

    duration_ms: float
    billed_duration_ms: float
    init_duration_ms: float | None = None
    max_memory_used_mb: float | None = None
    error: str | None = None


@runtime_checkable
class Invoker(Protocol):
    """Something power tuning can drive: AWS (``AwsLambdaInvoker``) or the local sandbox.

    * ``set_memory(mb)`` configures the function with ``mb`` MB and returns when invocations
      will run with it. Calling it again, even with the same value, must start fresh
      execution environments (on AWS: a new version), so ``only_cold_starts`` can rely on it.
    * ``invoke(payload)`` runs one invocation synchronously and returns its figures; a
      function error is reported in ``InvocationResult.error``, not raised.
    * ``cleanup()`` removes whatever tuning created and restores the original memory. The
      runner always calls it, failures included.
    """

    def set_memory(self, memory_mb: int) -> None: ...

    def invoke(self, payload: Any) -> InvocationResult: ...

    def cleanup(self) -> None: ...


@dataclass
class TuningRun:
    """A power-tuning run: the analysis, and every invocation measured."""

    analysis: AnalysisResult
    invocations: pd.DataFrame
    strategy: str
    power_values: list[int]

    @property
    def memory_mb(self) -> int:
        return self.analysis.memory_mb


def run_power_tuning(
    invoker: Invoker,
    power_values: Sequence[int] = DEFAULT_POWER_VALUES,
    num: int = 10,
    payload: Any = None,
    *,
    parallel: bool = False,
    only_cold_starts: bool = False,
    discard_top_bottom: float | None = None,
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    base_cost: float | None = None,
    region: str = "us-east-1",
    architecture: str = "x86_64",
    max_workers: int | None = None,
) -> TuningRun:
    """Measure ``num`` invocations at each memory value and analyse them like aws-lambda-power-tuning.

    ``payload`` is one payload or weighted payloads (``[{"payload": ..., "weight": n}]``).
    ``parallel`` runs the ``num`` invocations of a value at once. ``only_cold_starts`` calls
    ``set_memory`` before each invocation so every one runs on a fresh environment; it
    defaults ``discard_top_bottom`` to 0, as the tool does. Durations analysed are the billed
    ones, as the tool reads them. ``invoker.cleanup()`` always runs.
    """
    if num < 1:
        raise TuningError(f"num must be at least 1, got {num}")
    values = [int(v) for v in power_values]
    if not values:
        raise TuningError("power_values is empty; give at least one memory size in MB")
    for value in values:
        if not MIN_RAM_MB <= value <= MAX_MEMORY_MB:
            raise TuningError(f"power value {value} MB is outside Lambda's {MIN_RAM_MB}..{MAX_MEMORY_MB} MB")
    if discard_top_bottom is None:
        discard_top_bottom = 0.0 if only_cold_starts else 0.2
    payloads = generate_payloads(num, payload)
    records: list[dict] = []
    try:
        for value in values:
            records.extend(_measure(invoker, value, payloads, parallel, only_cold_starts, max_workers))
    finally:
        invoker.cleanup()
    invocations = pd.DataFrame.from_records(records, columns=[
        "memory_mb", "index", "duration_ms", "billed_duration_ms", "init_duration_ms", "max_memory_used_mb", "error"])
    analysis = analyze_invocations(
        invocations, strategy=strategy, balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom,
        base_cost=base_cost, region=region, architecture=architecture, power_values=values,
    )
    return TuningRun(analysis=analysis, invocations=invocations, strategy=Strategy(strategy).value, power_values=values)


def _measure(invoker: Invoker, value: int, payloads: list, parallel: bool, only_cold: bool, max_workers: int | None) -> list[dict]:
    def record(index: int, result: InvocationResult) -> dict:
        return {
            "memory_mb": value, "index": index, "duration_ms": result.duration_ms,
            "billed_duration_ms": result.billed_duration_ms, "init_duration_ms": result.init_duration_ms,
            "max_memory_used_mb": result.max_memory_used_mb, "error": result.error,
        }

    if not only_cold:
        invoker.set_memory(value)
    if parallel and not only_cold:
        with ThreadPoolExecutor(max_workers=max_workers or len(payloads)) as pool:
            results = list(pool.map(invoker.invoke, payloads))
        return [record(i, r) for i, r in enumerate(results)]
    out = []
    for index, payload in enumerate(payloads):
        if only_cold:
            invoker.set_memory(value)
        out.append(record(index, invoker.invoke(payload)))
    return out


def analyze_invocations(
    invocations: pd.DataFrame,
    *,
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    discard_top_bottom: float = 0.2,
    duration_column: str = "billed_duration_ms",
    power_values: Sequence[int] | None = None,
    **kwargs: Any,
) -> AnalysisResult:
    """``analyze`` over an invocations frame (memory_mb, billed_duration_ms, error)."""
    ok = invocations[invocations["error"].isna()]
    values = list(power_values) if power_values is not None else sorted(invocations["memory_mb"].unique())
    durations = {int(v): ok.loc[ok["memory_mb"] == v, duration_column].astype(float).tolist() for v in values}
    errors = invocations[invocations["error"].notna()].groupby("memory_mb").size().to_dict()
    return analyze(durations, strategy, balanced_weight, discard_top_bottom, errors_by_memory=errors, **kwargs)


# ---------------------------------------------------------------------------------------------
# Beyond the tool: a duration model, adaptive tuning.
# ---------------------------------------------------------------------------------------------
@dataclass
class DurationModel:
    """``duration_ms = a + b / min(memory_mb, cap_mb)``: a fixed part plus a CPU-bound part.

    Lambda's CPU share grows with memory up to one vCPU at 1,769 MB (a single-threaded
    handler gains nothing beyond); ``cap_mb`` is 1,769 for that shape or 10,240 when the
    measurements keep improving past it (multi-threaded work).
    """

    a_ms: float
    b_ms_mb: float
    cap_mb: int
    residual_sd_ms: float
    r_squared: float
    covariance: np.ndarray
    dof: int
    measured: dict[int, float]

    def predict(self, memory_mb: float | Sequence[float]) -> np.ndarray:
        m = np.minimum(np.asarray(memory_mb, dtype=float), self.cap_mb)
        return self.a_ms + self.b_ms_mb / m

    def interval(self, memory_mb: Sequence[float], level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Confidence interval of the mean duration at each memory (normal/t approximation)."""
        m = np.minimum(np.asarray(memory_mb, dtype=float), self.cap_mb)
        design = np.column_stack([np.ones_like(m), 1.0 / m])
        se = np.sqrt(np.einsum("ij,jk,ik->i", design, self.covariance, design))
        z = _t_quantile(level, self.dof)
        mean = self.predict(memory_mb)
        return mean - z * se, mean + z * se


def _t_quantile(level: float, dof: int) -> float:
    """Two-sided Student-t quantile (a small table; numpy has none and scipy is not a dependency)."""
    if level != 0.95:
        from statistics import NormalDist

        return NormalDist().inv_cdf(0.5 + level / 2)
    table = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
             10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}
    if dof <= 0:
        return float("inf")
    for limit in sorted(table):
        if dof <= limit:
            return table[limit]
    return 1.96


def fit_duration_model(durations_by_memory: Mapping[int, Sequence[float]], discard_top_bottom: float = 0.2) -> DurationModel:
    """Least-squares fit of ``a + b / min(m, cap)`` to every measured duration (trimmed per value).

    Both caps (1,769 and 10,240 MB) are fitted; the one with the smaller residual wins.
    Needs at least two memory values with data.
    """
    xs, ys = [], []
    measured: dict[int, float] = {}
    for memory, durations in durations_by_memory.items():
        values = sorted(float(d) for d in durations)
        if not values:
            continue
        k = int(len(values) * discard_top_bottom)
        kept = values[k : len(values) - k] if k > 0 else values
        measured[int(memory)] = float(np.mean(kept))
        xs.extend([float(memory)] * len(kept))
        ys.extend(kept)
    if len(measured) < 2:
        raise TuningError("the duration model needs measurements at two memory values at least")
    x, y = np.asarray(xs), np.asarray(ys)
    best = None
    for cap in (ONE_VCPU_MB, MAX_MEMORY_MB):
        design = np.column_stack([np.ones_like(x), 1.0 / np.minimum(x, cap)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        residuals = y - design @ coef
        sse = float(residuals @ residuals)
        if best is None or sse < best[0] - 1e-9:
            best = (sse, cap, coef, design)
    sse, cap, coef, design = best
    dof = max(len(y) - 2, 1)
    sigma2 = sse / dof
    try:
        covariance = sigma2 * np.linalg.inv(design.T @ design)
    except np.linalg.LinAlgError:
        covariance = np.full((2, 2), np.inf)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - sse / total if total > 0 else 1.0
    return DurationModel(float(coef[0]), float(coef[1]), int(cap), math.sqrt(sigma2), r2, covariance, dof, measured)


@dataclass
class ModelRecommendation:
    """A recommendation from the fitted model, with its confidence (0..1)."""

    memory_mb: int
    confidence: float
    predicted: pd.DataFrame
    model: DurationModel


def recommend_from_model(
    durations_by_memory: Mapping[int, Sequence[float]],
    power_values: Sequence[int],
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    discard_top_bottom: float = 0.2,
    *,
    base_cost: float | None = None,
    bootstrap: int = 200,
    seed: int = 0,
) -> ModelRecommendation:
    """Predict every power value from the measured ones and choose as ``analyze`` would.

    Confidence is the share of bootstrap refits (resampling each value's durations) that
    choose the same memory.
    """
    model = fit_duration_model(durations_by_memory, discard_top_bottom)
    values = [int(v) for v in power_values]
    base = base_cost if base_cost is not None else base_cost_per_ms()

    def choose(m: DurationModel) -> int:
        predicted = {v: [float(max(m.predict(v), 1.0))] for v in values}
        return analyze(predicted, strategy, balanced_weight, 0.0, base_cost=base).memory_mb

    choice = choose(model)
    rng = np.random.default_rng(seed)
    agree = 0
    samples = {k: np.asarray(v, dtype=float) for k, v in durations_by_memory.items() if len(v)}
    for _ in range(bootstrap):
        resampled = {k: rng.choice(v, size=len(v), replace=True) for k, v in samples.items()}
        try:
            agree += choose(fit_duration_model(resampled, discard_top_bottom)) == choice
        except TuningError:
            continue
    lo, hi = model.interval(values)
    predicted = pd.DataFrame({
        "memory_mb": values,
        "predicted_duration_ms": model.predict(values),
        "low_ms": lo,
        "high_ms": hi,
        "measured_duration_ms": [model.measured.get(v, float("nan")) for v in values],
    })
    predicted["predicted_cost_usd"] = [compute_price(base, v, max(d, 1.0)) for v, d in zip(values, predicted["predicted_duration_ms"])]
    return ModelRecommendation(choice, agree / bootstrap if bootstrap else float("nan"), predicted, model)


@dataclass
class AdaptiveRun:
    """Adaptive tuning: the choice, its confidence, and how many invocations it took."""

    memory_mb: int
    confidence: float
    invocations_used: int
    invocations: pd.DataFrame
    analysis: AnalysisResult
    model: DurationModel | None
    pruned: list[int]
    rounds: int


def _quick_choice(durations: Mapping[int, Sequence[float]], strategy: Strategy, weight: float, discard: float,
                  base: float) -> int:
    stats = []
    for memory, values in durations.items():
        average = trimmed_mean(values, discard)
        if average:
            stats.append({"memory_mb": memory, "average_duration_ms": average,
                          "average_cost_usd": compute_price(base, memory, average)})
    return _choose(stats, strategy, weight, "average_cost_usd")["memory_mb"]


def bootstrap_confidence(durations: Mapping[int, Sequence[float]], strategy: str | Strategy = "cost",
                         balanced_weight: float = 0.5, discard_top_bottom: float = 0.2, *, base_cost: float | None = None,
                         resamples: int = 200, seed: int = 0) -> tuple[int, float, dict[int, float]]:
    """The choice on ``durations``, the share of bootstrap resamples that agree, and each value's win share."""
    strategy = Strategy(strategy)
    base = base_cost if base_cost is not None else base_cost_per_ms()
    arrays = {m: np.asarray(v, dtype=float) for m, v in durations.items() if len(v)}
    choice = _quick_choice(arrays, strategy, balanced_weight, discard_top_bottom, base)
    rng = np.random.default_rng(seed)
    wins: dict[int, int] = {m: 0 for m in arrays}
    for _ in range(resamples):
        sample = {m: rng.choice(v, size=len(v), replace=True) for m, v in arrays.items()}
        wins[_quick_choice(sample, strategy, balanced_weight, discard_top_bottom, base)] += 1
    return choice, wins[choice] / resamples, {m: w / resamples for m, w in wins.items()}


def adaptive_power_tuning(
    invoker: Invoker,
    power_values: Sequence[int] = DEFAULT_POWER_VALUES,
    payload: Any = None,
    *,
    strategy: str | Strategy = "cost",
    balanced_weight: float = 0.5,
    discard_top_bottom: float = 0.2,
    initial_num: int = 5,
    step_num: int = 5,
    max_invocations: int = 100,
    target_confidence: float = 0.95,
    prune_margin: float = 0.25,
    base_cost: float | None = None,
    seed: int = 0,
) -> AdaptiveRun:
    """Reach the power-tuning choice with fewer invocations than a full sweep.

    1. Measure ``initial_num`` invocations at the smallest, a middle and the largest value and
       fit the duration model; values the model puts more than ``prune_margin`` behind the
       best on the strategy's criterion are not measured at all.
    2. Measure ``initial_num`` at each remaining candidate.
    3. Race: bootstrap the choice over the measured durations; drop candidates that never
       win; measure ``step_num`` more at the survivors; stop when the choice's bootstrap
       confidence reaches ``target_confidence``, one candidate is left, or the budget
       (``max_invocations``) is spent.
    The choice is ``analyze`` (the tool's rules) over the measured values.
    """
    strategy = Strategy(strategy)
    values = sorted(int(v) for v in power_values)
    if len(values) < 2:
        raise TuningError("adaptive tuning needs two power values at least")
    base = base_cost if base_cost is not None else base_cost_per_ms()
    durations: dict[int, list[float]] = {v: [] for v in values}
    records: list[dict] = []

    def measure(value: int, count: int) -> None:
        count = min(count, max_invocations - len(records))
        if count <= 0:
            return
        invoker.set_memory(value)
        for payload_item in generate_payloads(count, payload):
            result = invoker.invoke(payload_item)
            records.append({"memory_mb": value, "duration_ms": result.duration_ms,
                            "billed_duration_ms": result.billed_duration_ms, "init_duration_ms": result.init_duration_ms,
                            "max_memory_used_mb": result.max_memory_used_mb, "error": result.error})
            if result.error is None:
                durations[value].append(float(result.billed_duration_ms))

    model: DurationModel | None = None
    pruned: list[int] = []
    rounds = 0
    try:
        for value in sorted({values[0], values[len(values) // 2], values[-1]}):
            measure(value, initial_num)
        try:
            model = fit_duration_model(durations, discard_top_bottom)
        except TuningError:
            model = None
        if model is not None:
            estimate = {v: (trimmed_mean(d, discard_top_bottom) if d else float(max(model.predict(v), 1.0)))
                        for v, d in durations.items()}
            scores = _criterion(estimate, strategy, balanced_weight, base)
            best = min(scores.values())
            pruned = [v for v in values if not durations[v] and scores[v] > best * (1 + prune_margin)]
        for value in values:
            if value not in pruned and not durations[value]:
                measure(value, initial_num)
        alive = [v for v in values if durations[v]]
        confidence = 0.0
        while True:
            rounds += 1
            measured = {v: durations[v] for v in alive}
            choice, confidence, win_share = bootstrap_confidence(
                measured, strategy, balanced_weight, discard_top_bottom, base_cost=base, seed=seed + rounds)
            alive = [v for v in alive if win_share.get(v, 0.0) > 0.0] or [choice]
            if confidence >= target_confidence or len(alive) == 1 or len(records) >= max_invocations:
                break
            for value in sorted(alive, key=lambda v: -win_share.get(v, 0.0)):
                measure(value, step_num)
    finally:
        invoker.cleanup()
    measured = {v: d for v, d in durations.items() if d}
    if not measured:
        raise TuningError("every invocation failed: nothing to analyse")
    analysis = analyze(measured, strategy, balanced_weight, discard_top_bottom, base_cost=base)
    frame = pd.DataFrame.from_records(records)
    return AdaptiveRun(analysis.memory_mb, confidence, len(records), frame, analysis, model, pruned, rounds)


def _criterion(durations_ms: Mapping[int, float], strategy: Strategy, weight: float, base: float) -> dict[int, float]:
    """What the strategy minimises, per value, from an average duration per value."""
    cost = {v: compute_price(base, v, d) for v, d in durations_ms.items()}
    if strategy is Strategy.COST:
        return cost
    if strategy is Strategy.SPEED:
        return dict(durations_ms)
    max_cost, max_duration = max(cost.values()), max(durations_ms.values())
    return {v: weight * cost[v] / max_cost + (1 - weight) * durations_ms[v] / max_duration for v in durations_ms}


# ---------------------------------------------------------------------------------------------
# Recommendations: memory from usage, architecture, timeout.
# ---------------------------------------------------------------------------------------------
@dataclass
class MemoryUsageRecommendation:
    memory_mb: int
    max_used_mb: float
    p99_used_mb: float
    headroom_pct: float
    invocations: int
    reason: str


def recommend_memory_from_usage(
    reports: pd.DataFrame, headroom_pct: float = 30.0, floor_mb: int = MIN_RAM_MB, step_mb: int = 64
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
    memory = int(min(max(math.ceil(needed / step_mb) * step_mb, floor_mb), MAX_MEMORY_MB))
    oom = int((reports.get("status") == "out_of_memory").sum()) if "status" in reports else 0
    reason = f"peak {peak:.0f} MB over {len(used)} invocations + {headroom_pct:.0f}% headroom"
    if oom:
        configured = float(reports["memory_size_mb"].max())
        memory = int(min(max(memory, math.ceil(configured * 1.5 / step_mb) * step_mb), MAX_MEMORY_MB))
        reason += f"; {oom} out-of-memory invocations, so at least 1.5x the configured {configured:.0f} MB"
    if needed > MAX_MEMORY_MB:
        reason += f"; needs {needed:.0f} MB, above Lambda's {MAX_MEMORY_MB} MB limit"
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
    max_p95_slowdown_pct: float = 10.0,
) -> ArchitectureRecommendation:
    """arm64 when it is cheaper per invocation and its p95 is no more than ``max_p95_slowdown_pct`` slower."""
    from workbook import cost

    if not len(x86_durations_ms) or not len(arm64_durations_ms):
        raise TuningError("compare architectures with durations measured on both x86_64 and arm64")
    x86 = np.asarray(x86_durations_ms, float)
    arm = np.asarray(arm64_durations_ms, float)
    x86_cost = cost.invocation_cost(float(np.mean(np.ceil(x86))), memory_mb, "x86_64", region)
    arm_cost = cost.invocation_cost(float(np.mean(np.ceil(arm))), memory_mb, "arm64", region)
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
    headroom_pct: float = 50.0,
    settings: "Settings | None" = None,
    minimum_s: int = 3,
) -> TimeoutRecommendation:
    """Timeout = p99.9 duration + ``headroom_pct``, rounded up to seconds, capped by the trigger.

    For SQS consumers the queue's visibility timeout must stay at least 6x the function's
    timeout (AWS guidance); ``visibility_timeout_s`` is set when the current one is too small.
    """
    from infra import specs

    spec = specs.spec(function_key)
    values = np.asarray([d for d in durations_ms if d == d], dtype=float)
    if values.size == 0:
        raise TuningError(f"no durations for {function_key}: cannot recommend a timeout from no data")
    p999 = float(np.quantile(values, 0.999))
    cap, why = _TIMEOUT_CAPS_S.get(spec.trigger.value, (specs.TIMEOUT_MAX_S, "Lambda's 900 s maximum"))
    timeout = int(min(max(math.ceil(p999 * (1 + headroom_pct / 100.0) / 1000.0), minimum_s), cap))
    reason = f"p99.9 {p999:.0f} ms + {headroom_pct:.0f}% headroom"
    if p999 * (1 + headroom_pct / 100.0) / 1000.0 > cap:
        reason += f", capped at {cap} s ({why})"
    queue = _QUEUE_OF_TRIGGER.get(spec.trigger.value)
    visibility = None
    if queue:
        needed = specs.VISIBILITY_TIMEOUT_FACTOR * timeout
        current = getattr(settings.params, queue).visibility_timeout_s if settings is not None else None
        if current is None or current < needed:
            visibility = needed
            reason += f"; {queue}.visibility_timeout_s >= 6 x {timeout} s = {needed} s"
    return TimeoutRecommendation(timeout, p999, cap, visibility, queue, reason)


def recommend_for_env(
    settings: "Settings",
    reports: pd.DataFrame,
    *,
    tuned_memory_mb: Mapping[str, int] | None = None,
    architectures: Mapping[str, str] | None = None,
    memory_headroom_pct: float = 30.0,
    timeout_headroom_pct: float = 50.0,
    min_invocations: int = 20,
) -> tuple[pd.DataFrame, "ParamsPatch"]:
    """Recommendations for an environment's functions from REPORT rows (``function`` = key), as a patch.

    Memory is the larger of the power-tuning choice (``tuned_memory_mb``, when given) and the
    max-memory-used headroom; timeout is p99.9 + headroom capped by the trigger, and SQS
    queues keep 6x visibility. Functions with fewer than ``min_invocations`` REPORTs are
    listed with no change. Returns the table (current, recommended, reason) and the
    ``ParamsPatch`` (not applied).
    """
    from infra import specs

    rows = []
    functions: dict[str, dict[str, Any]] = {}
    queues: dict[str, dict[str, Any]] = {}
    for key in specs.FUNCTION_KEYS:
        fn = settings.function(key)
        data = reports[reports["function"] == key] if len(reports) else reports
        row = {"function": key, "invocations": len(data), "memory_mb": fn.memory_mb, "timeout_s": fn.timeout_s,
               "architecture": fn.architecture, "recommended_memory_mb": fn.memory_mb,
               "recommended_timeout_s": fn.timeout_s, "recommended_architecture": fn.architecture, "reason": ""}
        if len(data) < min_invocations:
            row["reason"] = f"only {len(data)} invocations (need {min_invocations}): no change"
            rows.append(row)
            continue
        usage = recommend_memory_from_usage(data, memory_headroom_pct)
        memory = max(usage.memory_mb, int((tuned_memory_mb or {}).get(key, 0)))
        timeout = recommend_timeout(data["duration_ms"].tolist(), key, headroom_pct=timeout_headroom_pct, settings=settings)
        reasons = [f"memory: {usage.reason}"]
        if tuned_memory_mb and key in tuned_memory_mb:
            reasons.append(f"power tuning chose {tuned_memory_mb[key]} MB")
        reasons.append(f"timeout: {timeout.reason}")
        row.update(recommended_memory_mb=memory, recommended_timeout_s=timeout.timeout_s)
        change: dict[str, Any] = {}
        if memory != fn.memory_mb:
            change["memory_mb"] = memory
        if timeout.timeout_s != fn.timeout_s:
            change["timeout_s"] = timeout.timeout_s
        arch = (architectures or {}).get(key)
        if arch and arch != fn.architecture:
            change["architecture"] = arch
            row["recommended_architecture"] = arch
            reasons.append(f"architecture: {arch}")
        if change:
            functions[key] = change
        if timeout.visibility_timeout_s and timeout.queue:
            queues[timeout.queue] = {"visibility_timeout_s": timeout.visibility_timeout_s}
        row["reason"] = "; ".join(reasons)
        rows.append(row)
    patch = params_patch(settings.env, functions, queues)
    return pd.DataFrame(rows), patch


# ---------------------------------------------------------------------------------------------
# Recommendations as a patch to params/<env>.yaml (text edit: comments survive).
# ---------------------------------------------------------------------------------------------
@dataclass
class ParamsPatch:
    """A proposed change to ``params/<env>.yaml``: the new text, its diff, and ``apply()``."""

    path: Path
    before: str
    after: str
    changes: dict[str, dict[str, Any]]

    @property
    def diff(self) -> str:
        rel = _display_path(self.path)
        return "".join(difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
            fromfile=f"a/{rel}", tofile=f"b/{rel}",
        ))

    @property
    def empty(self) -> bool:
        return self.before == self.after

    def apply(self) -> Path:
        """Write the new text (already validated by ``infra.config.from_mapping``)."""
        current = self.path.read_text(encoding="utf-8")
        if current != self.before:
            raise TuningError(f"{_display_path(self.path)} changed since the patch was made; make the patch again")
        self.path.write_text(self.after, encoding="utf-8")
        return self.path


def _display_path(path: Path) -> str:
    from infra.config import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


_FUNCTION_FIELDS = ("memory_mb", "timeout_s", "architecture")


def params_patch(
    env: str,
    functions: Mapping[str, Mapping[str, Any]] | None = None,
    queues: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    params_dir: Path | None = None,
) -> ParamsPatch:
    """Patch ``params/<env>.yaml``: ``functions={key: {memory_mb, timeout_s, architecture}}``,
    ``queues={"task_queue": {"visibility_timeout_s": N}}``.

    The YAML text is edited in place (comments and layout survive), then the whole result is
    validated with ``infra.config.from_mapping``; an invalid result raises ``ParamsError``.
    """
    import yaml

    from infra import config, specs

    path = config.params_path(env, params_dir)
    if not path.is_file():
        config.load(env, params_dir)  # raises the ParamsError that names the missing file
    before = path.read_text(encoding="utf-8")
    text = before
    changes: dict[str, dict[str, Any]] = {}
    for key, fields in (functions or {}).items():
        specs.spec(key)
        unknown = set(fields) - set(_FUNCTION_FIELDS)
        if unknown:
            raise TuningError(f"cannot patch functions.{key}.{sorted(unknown)[0]}; patchable: {', '.join(_FUNCTION_FIELDS)}")
        wanted = {k: v for k, v in fields.items() if v is not None}
        if wanted:
            text = _set_mapping_fields(text, ["functions", key], wanted)
            changes[f"functions.{key}"] = wanted
    for queue, fields in (queues or {}).items():
        if queue not in ("task_queue", "notification_queue"):
            raise TuningError(f"unknown queue {queue!r}; use task_queue or notification_queue")
        wanted = {k: v for k, v in fields.items() if v is not None}
        if wanted:
            text = _set_mapping_fields(text, [queue], wanted)
            changes[queue] = wanted
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # pragma: no cover - would be a bug in the text editor
        raise TuningError(f"the patched {_display_path(path)} is not valid YAML: {exc}") from None
    config.from_mapping(raw, source=f"{_display_path(path)} (patched)")
    return ParamsPatch(path, before, text, changes)


def _format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _split_comment(text: str) -> tuple[str, str]:
    """``value   # comment`` -> (``value``, ``   # comment``); '#' inside quotes is not a comment."""
    quote = None
    for i, ch in enumerate(text):
        if ch in "\"'" and quote is None:
            quote = ch
        elif ch == quote:
            quote = None
        elif ch == "#" and quote is None and (i == 0 or text[i - 1] in " \t"):
            j = i
            while j > 0 and text[j - 1] in " \t":
                j -= 1
            return text[:j], text[j:]
    return text.rstrip(), text[len(text.rstrip()):]


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """Index after the last line belonging to the block whose key line is ``start``."""
    end = start + 1
    last_content = start
    while end < len(lines):
        line = lines[end]
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            if len(line) - len(line.lstrip(" ")) <= indent:
                break
            last_content = end
        end += 1
    return last_content + 1


def _find_key(lines: list[str], key: str, start: int, stop: int, indent: int | None) -> int | None:
    pattern = re.compile(rf"^(?P<indent> *){re.escape(key)}\s*:(?:\s|$)")
    for i in range(start, stop):
        m = pattern.match(lines[i])
        if m and (indent is None or len(m.group("indent")) == indent):
            return i
    return None


def _set_mapping_fields(text: str, path: list[str], fields: Mapping[str, Any]) -> str:
    """Set ``fields`` in the mapping at ``path`` (top-level key, optionally one child key)."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    top = _find_key(lines, path[0], 0, len(lines), 0)
    if top is None:
        block = [f"{path[0]}:\n"]
        if len(path) > 1:
            block.append(f"  {path[1]}: {_flow(fields)}\n")
        else:
            block.extend(f"  {k}: {_format_scalar(v)}\n" for k, v in fields.items())
        return "".join(lines + block)
    if len(path) == 1:
        return "".join(_set_in_block(lines, top, 0, fields))
    end = _block_end(lines, top, 0)
    inline = _after_colon(lines[top], path[0])
    if inline.strip() and not inline.strip().startswith("#"):  # "functions: {}" or a flow mapping
        value, comment = _split_comment(inline)
        mapping = _parse_flow(value.strip())
        mapping.setdefault(path[1], {}).update(fields)
        lines[top] = f"{path[0]}:{comment}\n" + "".join(f"  {k}: {_flow(v)}\n" for k, v in mapping.items())
        return "".join(lines)
    child_indent = _child_indent(lines, top, end)
    child = _find_key(lines, path[1], top + 1, end, child_indent)
    if child is None:
        lines.insert(end, f"{' ' * child_indent}{path[1]}: {_flow(fields)}\n")
        return "".join(lines)
    return "".join(_set_in_block(lines, child, child_indent, fields))


def _child_indent(lines: list[str], start: int, end: int) -> int:
    for i in range(start + 1, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return len(lines[i]) - len(lines[i].lstrip(" "))
    return len(lines[start]) - len(lines[start].lstrip(" ")) + 2


def _after_colon(line: str, key: str) -> str:
    head = line.rstrip("\n")
    return head[head.index(key) + len(key):].split(":", 1)[1]


def _parse_flow(value: str) -> dict:
    import yaml

    parsed = yaml.safe_load(value) if value else None
    return dict(parsed or {})


def _flow(mapping: Mapping[str, Any]) -> str:
    if not isinstance(mapping, Mapping):
        return _format_scalar(mapping)
    return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in mapping.items()) + "}"


def _set_in_block(lines: list[str], key_line: int, indent: int, fields: Mapping[str, Any]) -> list[str]:
    """Set fields of the mapping whose key is on ``key_line``: flow (``k: {a: 1}``) or block style."""
    line = lines[key_line]
    key = line.strip().split(":", 1)[0]
    rest = line.rstrip("\n")[len(line) - len(line.lstrip(" ")) + len(key):].split(":", 1)[1]
    value, comment = _split_comment(rest)
    if value.strip().startswith("{"):
        mapping = _parse_flow(value.strip())
        for name, new in fields.items():
            mapping[name] = new
        lines[key_line] = f"{' ' * indent}{key}: {_flow(mapping)}{comment}\n"
        return lines
    end = _block_end(lines, key_line, indent)
    child_indent = _child_indent(lines, key_line, end) if end > key_line + 1 else indent + 2
    for name, new in fields.items():
        at = _find_key(lines, name, key_line + 1, end, child_indent)
        if at is None:
            lines.insert(end, f"{' ' * child_indent}{name}: {_format_scalar(new)}\n")
            end += 1
            continue
        old_rest = lines[at].rstrip("\n").split(":", 1)[1]
        old_value, old_comment = _split_comment(old_rest)
        old_comment = _refresh_comment(old_comment, name, old_value.strip(), new)
        lines[at] = f"{' ' * child_indent}{name}: {_format_scalar(new)}{old_comment}\n"
    return lines


def _refresh_comment(comment: str, name: str, old: str, new: Any) -> str:
    """Keep a '# 6 x data-processor's 300 s' style comment true after a visibility change."""
    if name == "visibility_timeout_s" and comment:
        m = re.search(r"(\d+)\s*x\s*([\w-]+)'s\s+(\d+)\s*s", comment)
        if m and str(new).isdigit() and int(new) % int(m.group(1)) == 0:
            return comment.replace(m.group(0), f"{m.group(1)} x {m.group(2)}'s {int(new) // int(m.group(1))} s")
    return comment


# ---------------------------------------------------------------------------------------------
# The AWS invoker.
# ---------------------------------------------------------------------------------------------
class AwsLambdaInvoker:
    """Power tuning on AWS, as aws-lambda-power-tuning does it.

    For each memory value: UpdateFunctionConfiguration, wait (``function_updated_v2``),
    PublishVersion, point the alias ``RAM<mb>`` at it; Invoke with ``LogType=Tail`` and read
    the REPORT from the tail. ``cleanup()`` deletes every alias and version it made and
    restores the original memory and description, whatever happened before.
    """

    def __init__(self, function_name: str, region: str | None = None, client: Any = None, alias_prefix: str = "RAM") -> None:
        from workbook import aws

        self.function_name = function_name
        self.client = client or aws.client("lambda", region)
        self.alias_prefix = alias_prefix
        config = self.client.get_function_configuration(FunctionName=function_name)
        self.original_memory_mb = int(config["MemorySize"])
        self.original_description = config.get("Description", "")
        self.architecture = (config.get("Architectures") or ["x86_64"])[0]
        self.aliases: list[str] = []
        self.versions: list[str] = []
        self._alias: str | None = None
        self._changed = False

    def set_memory(self, memory_mb: int) -> None:
        self._changed = True
        self.client.update_function_configuration(
            FunctionName=self.function_name, MemorySize=int(memory_mb),
            # a new description makes every publish a new version, hence fresh environments
            Description=f"power tuning {memory_mb} MB {uuid.uuid4().hex[:8]}",
        )
        self._wait_updated()
        version = self.client.publish_version(FunctionName=self.function_name)["Version"]
        self.versions.append(version)
        alias = f"{self.alias_prefix}{memory_mb}"
        try:
            self.client.update_alias(FunctionName=self.function_name, Name=alias, FunctionVersion=version)
        except self.client.exceptions.ResourceNotFoundException:
            self.client.create_alias(FunctionName=self.function_name, Name=alias, FunctionVersion=version)
        if alias not in self.aliases:
            self.aliases.append(alias)
        self._alias = alias

    def _wait_updated(self) -> None:
        waiter = self.client.get_waiter("function_updated_v2")
        waiter.wait(FunctionName=self.function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 300})

    def invoke(self, payload: Any) -> InvocationResult:
        from workbook.logs import parse_reports

        body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload if payload is not None else {})
        answer = self.client.invoke(
            FunctionName=self.function_name, Qualifier=self._alias or "$LATEST",
            Payload=body.encode() if isinstance(body, str) else body, LogType="Tail",
        )
        tail = base64.b64decode(answer.get("LogResult") or b"").decode("utf-8", "replace")
        reports = parse_reports(tail.splitlines())
        error = answer.get("FunctionError")
        if reports.empty:
            return InvocationResult(float("nan"), float("nan"), None, None, error or "no REPORT line in the log tail")
        row = reports.iloc[-1]
        if error is None and row["status"] != "ok":
            error = str(row["status"])
        init = row["init_duration_ms"]
        return InvocationResult(float(row["duration_ms"]), float(row["billed_duration_ms"]),
                                None if pd.isna(init) else float(init), float(row["max_memory_used_mb"]), error)

    def cleanup(self) -> None:
        problems = []
        for alias in self.aliases:
            try:
                self.client.delete_alias(FunctionName=self.function_name, Name=alias)
            except Exception as exc:  # keep cleaning: one failure must not leave the rest behind
                problems.append(f"alias {alias}: {exc}")
        for version in self.versions:
            try:
                self.client.delete_function(FunctionName=self.function_name, Qualifier=version)
            except Exception as exc:
                problems.append(f"version {version}: {exc}")
        if self._changed:
            try:
                self.client.update_function_configuration(
                    FunctionName=self.function_name, MemorySize=self.original_memory_mb,
                    Description=self.original_description,
                )
                self._wait_updated()
            except Exception as exc:
                problems.append(f"restoring {self.original_memory_mb} MB: {exc}")
        self.aliases, self.versions, self._alias, self._changed = [], [], None, False
        if problems:
            raise TuningError(f"power-tuning cleanup of {self.function_name} left: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# The ``workbook tune`` sub-command.
# ---------------------------------------------------------------------------------------------
def register(subparsers: Any) -> None:
    """Add ``workbook tune --env ENV --function NAME ...``."""
    parser = subparsers.add_parser(
        "tune",
        help="power-tune a function and propose memory/timeout changes to params/<env>.yaml",
        description="Power-tune one function (AWS, or the local sandbox for --env local), show the "
        "analysis and a diff of params/<env>.yaml; --apply writes it.",
    )
    parser.add_argument("--env", required=True, help="environment: local, dev, staging or prod")
    parser.add_argument("--function", required=True, help="function key, e.g. api-processor")
    parser.add_argument("--power-values", default=",".join(map(str, DEFAULT_POWER_VALUES)),
                        help="comma-separated memory sizes in MB (default: %(default)s)")
    parser.add_argument("--num", type=int, default=10, help="invocations per memory value (default: %(default)s)")
    parser.add_argument("--strategy", choices=[s.value for s in Strategy], default="cost")
    parser.add_argument("--balanced-weight", type=float, default=0.5)
    parser.add_argument("--discard-top-bottom", type=float, default=None)
    parser.add_argument("--payload", default="{}", help="JSON payload, or @file.json (weighted payloads allowed)")
    parser.add_argument("--parallel", action="store_true", help="run each value's invocations at once")
    parser.add_argument("--only-cold-starts", action="store_true")
    parser.add_argument("--apply", action="store_true", help="write the proposed change to params/<env>.yaml")
    parser.set_defaults(func=_tune_command)


def _load_payload(text: str) -> Any:
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise TuningError(f"--payload is not valid JSON: {exc}") from None


def make_invoker(settings: "Settings", key: str) -> Invoker:
    """The AWS invoker, or the local sandbox's for ``--env local`` (provided by ``workbook.local``)."""
    if settings.env == "local":
        import importlib

        for module_name, attribute in (("workbook.local.tuning", "make_invoker"), ("workbook.local.sandbox", "make_invoker"),
                                       ("workbook.local", "make_invoker")):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            factory = getattr(module, attribute, None)
            if factory is not None:
                return factory(settings, key)
        raise TuningError("the local sandbox offers no power-tuning invoker yet (workbook.local.*.make_invoker)")
    return AwsLambdaInvoker(settings.function_name(key), region=settings.params.aws_region)


def _tune_command(args: argparse.Namespace) -> int:
    from infra import config

    settings = config.load(args.env)
    try:
        values = [int(v) for v in str(args.power_values).split(",") if v.strip()]
        if args.payload is None:
            from workbook import events   # a representative event of the function, in AWS's shape

            payload = events.sample_event(settings, args.function)
        else:
            payload = _load_payload(args.payload)
        invoker = make_invoker(settings, args.function)
        fn = settings.function(args.function)
        run = run_power_tuning(
            invoker, values, args.num, payload, parallel=args.parallel, only_cold_starts=args.only_cold_starts,
            discard_top_bottom=args.discard_top_bottom, strategy=args.strategy, balanced_weight=args.balanced_weight,
            region=settings.params.aws_region, architecture=fn.architecture,
        )
    except (TuningError, KeyError, ValueError) as exc:
        print(f"workbook tune: {exc}", file=sys.stderr)
        return 2
    table = run.analysis.table[["memory_mb", "invocations", "errors", "average_duration_ms", "p95_duration_ms",
                                "average_cost_usd", "cost_with_requests_usd"]]
    print(table.to_string(index=False))
    print(f"\n{run.analysis.strategy} strategy chooses {run.memory_mb} MB (now {fn.memory_mb} MB)")
    ok = run.invocations[run.invocations["error"].isna()]
    changes: dict[str, Any] = {"memory_mb": run.memory_mb if run.memory_mb != fn.memory_mb else None}
    queues: dict[str, dict] = {}
    if len(ok):
        from workbook.recommend import MIN_TIMEOUT_SAMPLES

        chosen = ok[ok["memory_mb"] == run.memory_mb]["duration_ms"].tolist()
        if 0 < len(chosen) < MIN_TIMEOUT_SAMPLES:
            print(f"timeout: kept at {fn.timeout_s} s; {len(chosen)} invocations are too few for a p99.9 "
                  f"(at least {MIN_TIMEOUT_SAMPLES}: use --num)")
        elif chosen:
            timeout = recommend_timeout(chosen, args.function, settings=settings)
            print(f"timeout: {timeout.timeout_s} s ({timeout.reason})")
            if timeout.timeout_s != fn.timeout_s:
                changes["timeout_s"] = timeout.timeout_s
            if timeout.visibility_timeout_s and timeout.queue:
                queues[timeout.queue] = {"visibility_timeout_s": timeout.visibility_timeout_s}
    patch = params_patch(args.env, {args.function: changes}, queues)
    if patch.empty:
        print(f"params/{args.env}.yaml already matches the recommendation")
        return 0
    print(patch.diff)
    if args.apply:
        patch.apply()
        print(f"wrote {_display_path(patch.path)}; preview the change with `workbook preview --env {args.env}`")
    else:
        print("not applied; run again with --apply to write it")
    return 0
