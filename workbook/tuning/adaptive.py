"""Adaptive power tuning: a decision (recommend, keep or insufficient-data) with fewer invocations than a sweep.

1. Where the payloads name their largest one, invoke it once at the largest size first: its
   peak memory sets the memory floor, and sizes below the floor are never measured (they would
   run out of memory on that payload in production).
2. Measure ``initial_num`` invocations at the smallest, a middle and the largest eligible size
   and at the current one; fit the duration model; sizes it puts ``prune_margin`` behind the
   best are not measured at all. Measure the others.
3. Race: ``workbook.tuning.decide.decide_memory`` bootstraps the estimates; measure ``step_num``
   more at the sizes still near the best and at the current one, until the decision is
   ``recommend`` or ``keep`` with its choice settled, or the budget (``max_invocations``) is spent.

Weighted payloads are spread over each size's invocations in proportion (every payload once
first, then smooth weighted round robin), so any prefix of a size's invocations holds the mix.
The tool's analysis (``analyze``) over what was measured is kept beside the decision.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
)
from workbook.tuning.decide import MemoryDecision, Status, decide_memory, size_related_error
from workbook.tuning.defaults import DECISION_CONFIDENCE, DEFAULT_POWER_VALUES, MEMORY_HEADROOM_PCT, TIE_MARGIN_PCT
from workbook.tuning.floors import Floor, memory_floor
from workbook.tuning.model import DurationModel, fit_duration_model
from workbook.tuning.runner import Invoker, check_power_values

__all__ = ["AdaptiveRun", "PayloadMix", "adaptive_power_tuning"]


class PayloadMix:
    """One payload, or weighted payloads (``[{"payload": ..., "weight": w, "largest": bool}]``) in proportion."""

    def __init__(self, payload: Any) -> None:
        if isinstance(payload, list) and payload and all(isinstance(p, dict) and "payload" in p for p in payload):
            weights = [float(p.get("weight", 0)) for p in payload]
            if any(not w > 0 for w in weights):
                raise TuningInputError("every weighted payload needs a positive 'weight'")
            self.payloads = [p["payload"] for p in payload]
            total = sum(weights)
            self.weights = [w / total for w in weights]
            largest = [i for i, p in enumerate(payload) if p.get("largest")]
            self.largest: int | None = largest[0] if largest else None
        else:
            self.payloads, self.weights, self.largest = [payload], [1.0], None
        self._counts: dict[int, list[int]] = {}

    @property
    def weighted(self) -> bool:
        return len(self.payloads) > 1

    def weights_by_index(self) -> dict[int, float] | None:
        return dict(enumerate(self.weights)) if self.weighted else None

    def next_index(self, memory_mb: int) -> int:
        """The payload for the next invocation at ``memory_mb``: each twice (heaviest first), then the one most behind.

        Twice, so that each payload's mean has a spread once the size's first (cold) invocation is left out.
        """
        counts = self._counts.setdefault(memory_mb, [0] * len(self.payloads))
        short = [i for i, c in enumerate(counts) if c < min(c2 for c2 in counts) + 1 and c < 2] if self.weighted else []
        if short:
            index = max(short, key=lambda i: (self.weights[i], -i))
        else:
            n = sum(counts) + 1
            index = max(range(len(counts)), key=lambda i: (self.weights[i] * n - counts[i], self.weights[i], -i))
        counts[index] += 1
        return index


@dataclass
class AdaptiveRun:
    """Adaptive tuning: the decision, the tool's analysis of what was measured, and what it took."""

    memory_mb: int                     # the decision's choice (the best eligible size)
    confidence: float                  # the decision's confidence
    invocations_used: int
    invocations: pd.DataFrame
    analysis: AnalysisResult
    model: DurationModel | None
    pruned: list[int]
    rounds: int
    decision: MemoryDecision | None = None
    floor: Floor | None = None
    largest_payload: dict[str, float] = field(default_factory=dict)   # index, peak_mb (the floor probe)
    weights: dict[int, float] | None = None                            # payload index -> weight, for a mix

    @property
    def status(self) -> Status | None:
        return self.decision.status if self.decision else None


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
    target_confidence: float = DECISION_CONFIDENCE,
    prune_margin: float = 0.25,
    base_cost: float | None = None,
    seed: int = 0,
    current_mb: int | None = None,
    memory_floor_mb: Floor | None = None,
    headroom_pct: float = MEMORY_HEADROOM_PCT,
    tie_margin_pct: float = TIE_MARGIN_PCT,
) -> AdaptiveRun:
    """Reach a memory decision with fewer invocations than a full sweep (see the module docstring).

    ``current_mb`` is the size the function runs with now (measured too; default: the largest
    value); ``memory_floor_mb`` a floor known beforehand (the window's peak usage), combined with
    the peaks tuning measures.

    Long because it is one loop over one budget: the floor probe, the first pass, the pruning and
    the race share the records and the budget, and each step reads what the previous measured.
    """
    strategy = Strategy(strategy)
    values = check_power_values(power_values)
    current = int(current_mb) if current_mb is not None else max(values)
    values = sorted(set(values) | {current})
    if len(values) < 2:
        raise TuningInputError("adaptive tuning needs two power values at least")
    if max_invocations < 2:
        raise TuningInputError(f"max_invocations must be at least 2, got {max_invocations}")
    base = base_cost if base_cost is not None else base_cost_per_ms()
    mix = PayloadMix(payload)
    records: list[dict] = []
    initial_num = max(3, min(initial_num, max_invocations // (2 * len(values)) or 3))
    step_num = max(3, step_num)

    def measure(value: int, count: int, only: int | None = None) -> None:
        count = min(count, max_invocations - len(records))
        if count <= 0:
            return
        invoker.set_memory(value)
        for _ in range(count):
            index = only if only is not None else mix.next_index(value)
            result = invoker.invoke(mix.payloads[index])
            records.append({"memory_mb": value, "payload": index, "duration_ms": result.duration_ms,
                            "billed_duration_ms": result.billed_duration_ms, "init_duration_ms": result.init_duration_ms,
                            "max_memory_used_mb": result.max_memory_used_mb, "error": result.error})

    def floor_now() -> Floor:
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["memory_mb"])
        peak = float(frame["max_memory_used_mb"].max()) if len(frame) and frame["max_memory_used_mb"].notna().any() \
            else None
        largest = None
        if mix.largest is not None and len(frame):
            at_largest = frame[frame["payload"] == mix.largest]["max_memory_used_mb"].dropna()
            largest = float(at_largest.max()) if len(at_largest) else None
        oom = sorted({int(m) for m, e in zip(frame.get("memory_mb", []), frame.get("error", []), strict=True)
                      if "OutOfMemory" in str(e or "")})
        measured = memory_floor(peak if largest is None or (peak or 0) > largest else None,
                                largest_payload_peak_mb=largest, invocations=len(frame), headroom_pct=headroom_pct,
                                oom_at_mb=oom)
        if memory_floor_mb is not None and memory_floor_mb.value > measured.value:
            return memory_floor_mb
        return measured

    rounds, pruned, model, decision = 0, [], None, None
    probe: dict[str, float] = {}
    try:
        if mix.largest is not None:
            measure(values[-1], 1, only=mix.largest)
            probe = {"index": mix.largest}
        floor = floor_now()
        eligible = [v for v in values if v >= floor.value]
        if not eligible:
            raise TuningError(f"every power value is below the memory floor of {floor.value:,.0f} MB ({floor.reason}); "
                              "add larger sizes")
        first = sorted({eligible[0], eligible[len(eligible) // 2], eligible[-1]} | ({current} & set(eligible)))
        for value in first:
            measure(value, initial_num)
        model, pruned = _prune_by_model(records, eligible, strategy, balanced_weight, discard_top_bottom, base,
                                        prune_margin, keep={current})
        for value in eligible:
            if value not in pruned and value not in first:
                measure(value, initial_num)
        while True:
            rounds += 1
            floor = floor_now()
            frame = pd.DataFrame.from_records(records)
            decision = decide_memory(frame, current, floor=floor, strategy=strategy, balanced_weight=balanced_weight,
                                     base_cost=base, weights=mix.weights_by_index(), margin=tie_margin_pct / 100.0,
                                     target=target_confidence, seed=seed + rounds)
            settled = decision.status is not Status.INSUFFICIENT_DATA and decision.choice_confidence >= target_confidence
            if settled or len(records) >= max_invocations:
                break
            table = decision.estimates
            near = table[(table["eligible"]) & (table["near_best_share"] > 0)].sort_values(
                "near_best_share", ascending=False)["memory_mb"].astype(int).tolist()
            contenders = near + ([current] if current >= floor.value and current not in near else [])
            if not contenders:
                break
            for value in contenders:
                measure(value, step_num)
    finally:
        invoker.cleanup()
    frame = pd.DataFrame.from_records(records)
    analysis = _tool_analysis(frame, strategy, balanced_weight, discard_top_bottom, base)
    if probe:
        probe = {"index": mix.largest,
                 "peak_mb": float(frame[frame["payload"] == mix.largest]["max_memory_used_mb"].max())}
    choice = decision.choice_mb if decision is not None else analysis.memory_mb
    confidence = decision.confidence if decision is not None else 0.0
    return AdaptiveRun(choice, confidence, len(records), frame, analysis, model, pruned, rounds, decision,
                       floor_now(), probe, mix.weights_by_index())


def _tool_analysis(frame: pd.DataFrame, strategy: Strategy, weight: float, discard: float, base: float) -> AnalysisResult:
    """aws-lambda-power-tuning's analysis of the measured billed durations (errors counted per size)."""
    ok = frame[frame["error"].isna()]
    durations = {int(m): list(g["billed_duration_ms"].astype(float)) for m, g in ok.groupby("memory_mb")}
    errors = frame[frame["error"].notna()].groupby("memory_mb").size().to_dict()
    if not durations:
        raise TuningError("every invocation failed: nothing to analyse")
    return analyze(durations, strategy, weight, discard, errors_by_memory=errors, base_cost=base)


def _prune_by_model(records: list[dict], eligible: Sequence[int], strategy: Strategy, weight: float, discard: float,
                    base: float, margin: float, keep: set[int]) -> tuple[DurationModel | None, list[int]]:
    """Fit the model to the warm durations so far; unmeasured sizes it puts ``margin`` behind the best are pruned."""
    frame = pd.DataFrame.from_records(records)
    if not len(frame):
        return None, []
    ok = frame[frame["error"].isna() & ~frame["error"].map(size_related_error)]
    warm = ok[ok["init_duration_ms"].isna()]
    source = warm if warm["memory_mb"].nunique() >= 2 else ok
    durations = {int(m): list(g["duration_ms"].astype(float)) for m, g in source.groupby("memory_mb")}
    try:
        model = fit_duration_model(durations, discard)
    except TuningError:
        return None, []
    estimate = {v: (sum(durations[v]) / len(durations[v]) if durations.get(v) else float(max(model.predict(v), 1.0)))
                for v in eligible}
    scores = _criterion(estimate, strategy, weight, base)
    best = min(scores.values())
    return model, [v for v in eligible if v not in durations and v not in keep and scores[v] > best * (1 + margin)]


def _criterion(durations_ms: Mapping[int, float], strategy: Strategy, weight: float, base: float) -> dict[int, float]:
    """What the strategy minimises, per value, from an average duration per value."""
    cost = {v: compute_price(base, v, d) for v, d in durations_ms.items()}
    if strategy is Strategy.COST:
        return cost
    if strategy is Strategy.SPEED:
        return dict(durations_ms)
    max_cost, max_duration = max(cost.values()), max(durations_ms.values())
    return {v: weight * cost[v] / max_cost + (1 - weight) * durations_ms[v] / max_duration for v in durations_ms}
