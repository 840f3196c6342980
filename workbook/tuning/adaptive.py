"""Adaptive power tuning: the tool's choice with fewer invocations than a full sweep.

Measure a few sizes, fit the duration model, skip the sizes it puts far behind, then race the
survivors with bootstrap resampling until the choice is confident or the budget is spent. The
choice is still ``analyze`` (the tool's rules) over what was measured.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from workbook.tuning.analysis import (
    AnalysisResult,
    Strategy,
    TuningError,
    TuningInputError,
    analyze,
    base_cost_per_ms,
    compute_price,
    trimmed_mean,
)
from workbook.tuning.defaults import DEFAULT_POWER_VALUES
from workbook.tuning.model import DurationModel, bootstrap_confidence, fit_duration_model
from workbook.tuning.runner import Invoker, check_power_values, generate_payloads

__all__ = ["AdaptiveRun", "adaptive_power_tuning"]


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
    values = sorted(set(check_power_values(power_values)))
    if len(values) < 2:
        raise TuningInputError("adaptive tuning needs two power values at least")
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

    rounds = 0
    try:
        for value in sorted({values[0], values[len(values) // 2], values[-1]}):
            measure(value, initial_num)
        model, pruned = _prune_by_model(durations, strategy, balanced_weight, discard_top_bottom, base, prune_margin)
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


def _prune_by_model(durations: Mapping[int, list[float]], strategy: Strategy, weight: float, discard: float,
                    base: float, margin: float) -> tuple[DurationModel | None, list[int]]:
    """Fit the model to what was measured; the unmeasured values it puts ``margin`` behind the best are pruned."""
    try:
        model = fit_duration_model(durations, discard)
    except TuningError:
        return None, []
    estimate = {v: (trimmed_mean(d, discard) if d else float(max(model.predict(v), 1.0))) for v, d in durations.items()}
    scores = _criterion(estimate, strategy, weight, base)
    best = min(scores.values())
    return model, [v for v in durations if not durations[v] and scores[v] > best * (1 + margin)]


def _criterion(durations_ms: Mapping[int, float], strategy: Strategy, weight: float, base: float) -> dict[int, float]:
    """What the strategy minimises, per value, from an average duration per value."""
    cost = {v: compute_price(base, v, d) for v, d in durations_ms.items()}
    if strategy is Strategy.COST:
        return cost
    if strategy is Strategy.SPEED:
        return dict(durations_ms)
    max_cost, max_duration = max(cost.values()), max(durations_ms.values())
    return {v: weight * cost[v] / max_cost + (1 - weight) * durations_ms[v] / max_duration for v in durations_ms}


