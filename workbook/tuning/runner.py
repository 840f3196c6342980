"""Running power tuning: the ``Invoker`` protocol, the invokers' registry and the full sweep.

``run_power_tuning(invoker, ...)`` measures ``num`` invocations at each memory value and analyses
them like aws-lambda-power-tuning. An ``Invoker`` is AWS (``workbook.tuning.aws_invoker``) or the
local sandbox (``workbook.tuning.sandbox_invoker``); ``workbook.tuning.invokers`` picks one for an
environment.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from infra.specs import MEMORY_MAX_MB, MEMORY_MIN_MB
from workbook.tuning.analysis import AnalysisResult, Strategy, TuningInputError, analyze
from workbook.tuning.defaults import DEFAULT_POWER_VALUES

__all__ = ["INVOCATION_COLUMNS", "InvocationResult", "Invoker", "TuningRun", "analyze_invocations",
           "check_power_values", "generate_payloads", "run_power_tuning"]

INVOCATION_COLUMNS = ["memory_mb", "index", "duration_ms", "billed_duration_ms", "init_duration_ms",
                      "max_memory_used_mb", "error"]


@dataclass(frozen=True)
class InvocationResult:
    """What one invocation reports (from its REPORT line)."""

    duration_ms: float
    billed_duration_ms: float
    init_duration_ms: float | None = None
    max_memory_used_mb: float | None = None
    error: str | None = None
    response: bytes | None = None       # the function's response payload, where the invoker has it


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
    floor: Any = None                  # the memory floor from the worst-case probes, where they were measured first
    probes: pd.DataFrame | None = None  # the probes' invocations (``workbook.tuning.adaptive.PROBE_COLUMNS``)
    floor_probe: str | None = None     # the probe that sets the floor

    @property
    def memory_mb(self) -> int:
        return self.analysis.memory_mb




def check_power_values(power_values: Sequence[int]) -> list[int]:
    """The power values as ints, in the order given; a clear error for an empty list or a size Lambda refuses."""
    values = [int(v) for v in power_values]
    if not values:
        raise TuningInputError("power_values is empty; give at least one memory size in MB")
    for value in values:
        if not MEMORY_MIN_MB <= value <= MEMORY_MAX_MB:
            raise TuningInputError(f"power value {value} MB is outside Lambda's {MEMORY_MIN_MB}..{MEMORY_MAX_MB} MB")
    return values


def generate_payloads(num: int, payload: Any) -> list[Any]:
    """``num`` payloads: the same one, or ``[{"payload": ..., "weight": w}, ...]`` spread by weight."""
    if isinstance(payload, list) and payload and all(isinstance(p, dict) and p.get("weight") and "payload" in p for p in payload):
        if num < len(payload):
            raise TuningInputError(f"You have {len(payload)} payloads and only num={num}; increase num")
        total = sum(p["weight"] for p in payload)
        out: list[Any] = []
        for index, item in enumerate(payload):
            how_many = math.floor(item["weight"] * num / total)
            if how_many < 1:
                raise TuningInputError("invalid payload weight: num is too small for the smallest weight")
            if index == len(payload) - 1:
                how_many = num - len(out)
            out.extend([item["payload"]] * how_many)
        return out
    return [payload] * num




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
        raise TuningInputError(f"num must be at least 1, got {num}")
    values = check_power_values(power_values)
    if discard_top_bottom is None:
        discard_top_bottom = 0.0 if only_cold_starts else 0.2
    payloads = generate_payloads(num, payload)
    records: list[dict] = []
    try:
        for value in values:
            records.extend(_measure(invoker, value, payloads, parallel, only_cold_starts, max_workers))
    finally:
        invoker.cleanup()
    invocations = pd.DataFrame.from_records(records, columns=INVOCATION_COLUMNS)
    analysis = analyze_invocations(
        invocations, strategy=strategy, balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom,
        base_cost=base_cost, region=region, architecture=architecture, power_values=values,
    )
    return TuningRun(analysis=analysis, invocations=invocations, strategy=Strategy(strategy).value, power_values=values)


def _measure(invoker: Invoker, value: int, payloads: list, parallel: bool, only_cold: bool,
             max_workers: int | None) -> list[dict]:
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


