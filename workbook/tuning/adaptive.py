"""Adaptive power tuning: a decision (recommend, keep or insufficient-data) with fewer invocations than a sweep.

1. Where the payloads hold worst-case probes (``{"payload": ..., "probe": name}``, from
   ``workbook.tuning.payloads.worst_case_payloads``), invoke each once at the largest size first,
   each in a fresh execution environment (so its peak is its own):
   the largest peak among them sets the memory floor, and sizes below the floor are never
   measured (they would run out of memory on that input in production).
2. Measure ``initial_num`` invocations at the smallest, a middle and the largest eligible size
   and at the current one; fit the duration model; sizes it puts ``prune_margin`` behind the
   best are not measured at all. Measure the others.
3. Race: ``workbook.tuning.decide.decide_memory`` bootstraps the estimates; measure ``step_num``
   more at the sizes still near the best and at the current one, until the decision is
   ``recommend`` or ``keep`` with its choice settled, or the budget (``max_invocations``) is spent.
4. Invoke each probe once more at the recommended size (its durations give the timeout floor);
   one that runs out of memory there raises the floor and the decision is made again.

Weighted payloads are spread over each size's invocations in proportion (every payload once
first, then smooth weighted round robin), so any prefix of a size's invocations holds the mix.
Probes are not part of the mix: they are the limits, not the traffic, and they are measured apart
(``AdaptiveRun.probes``), outside ``max_invocations``.
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

__all__ = ["PROBE_COLUMNS", "AdaptiveRun", "PayloadMix", "adaptive_power_tuning", "measure_probes", "probe_floor",
           "split_probes"]


class PayloadMix:
    """One payload, or weighted payloads (``[{"payload": ..., "weight": w}]``) in proportion, plus worst-case probes.

    An item with ``"probe": name`` (and optionally ``"description"`` and ``"check"``, a function of the
    response that says why the input was refused, or None) is a probe: measured apart, never in the mix.
    """

    def __init__(self, payload: Any) -> None:
        self.probes: dict[int, dict[str, Any]] = {}
        if isinstance(payload, list) and payload and all(isinstance(p, dict) and "payload" in p for p in payload):
            self.payloads = [p["payload"] for p in payload]
            # ``"largest": True`` marks a payload of the mix that is also probed first (the benchmark's profiles)
            self.probes = {i: {"probe": str(p.get("probe") or "largest payload"),
                               "description": str(p.get("description", "")), "check": p.get("check")}
                           for i, p in enumerate(payload) if p.get("probe") or p.get("largest")}
            self.mix = [i for i, p in enumerate(payload) if not p.get("probe")]
            largest = [i for i, p in enumerate(payload) if p.get("largest")]
            self.largest = largest[0] if largest else None
            if not self.mix:
                raise TuningInputError("the payloads are all worst-case probes: add a payload with a 'weight' for the mix")
            weights = {i: float(payload[i].get("weight", 0)) for i in self.mix}
            if any(not w > 0 for w in weights.values()):
                raise TuningInputError("every weighted payload needs a positive 'weight'")
            total = sum(weights.values())
            self.weights = {i: w / total for i, w in weights.items()}
        else:
            self.payloads, self.mix, self.weights, self.largest = [payload], [0], {0: 1.0}, None
        self._counts: dict[int, dict[int, int]] = {}

    @property
    def weighted(self) -> bool:
        return len(self.mix) > 1

    def weights_by_index(self) -> dict[int, float] | None:
        return dict(self.weights) if self.weighted else None

    def next_index(self, memory_mb: int) -> int:
        """The payload for the next invocation at ``memory_mb``: each twice (heaviest first), then the one most behind.

        Twice, so that each payload's mean has a spread once the size's first (cold) invocation is left out.
        """
        counts = self._counts.setdefault(memory_mb, dict.fromkeys(self.mix, 0))
        low = min(counts.values())
        short = [i for i, c in counts.items() if c < low + 1 and c < 2] if self.weighted else []
        if short:
            index = max(short, key=lambda i: (self.weights[i], -i))
        else:
            n = sum(counts.values()) + 1
            index = max(counts, key=lambda i: (self.weights[i] * n - counts[i], self.weights[i], -i))
        counts[index] += 1
        return index


#: The columns of ``AdaptiveRun.probes``: one row per probe invocation.
PROBE_COLUMNS = ["probe", "description", "memory_mb", "duration_ms", "billed_duration_ms", "init_duration_ms",
                 "max_memory_used_mb", "error"]


def measure_probes(invoker: Invoker, mix: PayloadMix, memory_mb: int) -> list[dict[str, Any]]:
    """Invoke each worst-case probe of ``mix`` once at ``memory_mb``, each in a fresh execution environment
    (so a probe's peak is its own, not its forerunners'); a probe the function refused is an error."""
    rows = []
    for index, probe in mix.probes.items():
        invoker.set_memory(memory_mb)
        result = invoker.invoke(mix.payloads[index])
        error = result.error
        if error is None and probe["check"] is not None:
            refused = probe["check"](result.response)
            error = f"refused: {refused}" if refused else None
        rows.append({"probe": probe["probe"], "description": probe["description"], "memory_mb": memory_mb,
                     "duration_ms": result.duration_ms, "billed_duration_ms": result.billed_duration_ms,
                     "init_duration_ms": result.init_duration_ms, "max_memory_used_mb": result.max_memory_used_mb,
                     "error": error})
    return rows


def split_probes(payload: Any) -> tuple[Any, list[dict[str, Any]]]:
    """Tuning payloads as (the mix: one payload or weighted ones, the worst-case probes)."""
    if not (isinstance(payload, list) and payload and all(isinstance(p, dict) and "payload" in p for p in payload)):
        return payload, []
    probes = [p for p in payload if p.get("probe")]
    mix = [p for p in payload if not p.get("probe")]
    return (mix[0]["payload"] if len(mix) == 1 else mix), probes


def probe_floor(invocations: pd.DataFrame, probes: pd.DataFrame,
                headroom_pct: float = MEMORY_HEADROOM_PCT) -> tuple[Floor, str | None]:
    """The memory floor from the invocations' peak and the worst-case probes' (the largest + headroom), and the
    probe that sets it (None when the invocations' peak does, or there are no probes)."""
    frame = invocations if len(invocations) else pd.DataFrame(columns=["memory_mb", "max_memory_used_mb", "error"])
    peak = float(frame["max_memory_used_mb"].max()) if len(frame) and frame["max_memory_used_mb"].notna().any() \
        else None
    ok = probes[probes["error"].isna() & probes["max_memory_used_mb"].notna()]
    worst = ok.loc[ok["max_memory_used_mb"].astype(float).idxmax()] if len(ok) else None
    failed = zip(list(frame["memory_mb"]) + list(probes["memory_mb"]), list(frame["error"]) + list(probes["error"]),
                 strict=True)
    oom = sorted({int(m) for m, e in failed if "OutOfMemory" in str(e or "")})
    floor = memory_floor(peak, probe_peak_mb=None if worst is None else float(worst["max_memory_used_mb"]),
                         probe="" if worst is None else f"{worst['probe']} ({worst['description']})",
                         invocations=len(frame), headroom_pct=headroom_pct, oom_at_mb=oom)
    binding = str(worst["probe"]) if worst is not None and f"worst-case input {worst['probe']} " in floor.reason else None
    return floor, binding


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
    weights: dict[int, float] | None = None                            # payload index -> weight, for a mix
    probes: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PROBE_COLUMNS))
    floor_probe: str | None = None     # the probe whose peak sets the floor (None: the mix's peak, or no probes)

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
    probe_records: list[dict] = []
    initial_num = max(3, min(initial_num, max_invocations // (2 * len(values)) or 3))
    step_num = max(3, step_num)

    def measure(value: int, count: int) -> None:
        count = min(count, max_invocations - len(records))
        if count <= 0:
            return
        invoker.set_memory(value)
        for _ in range(count):
            index = mix.next_index(value)
            result = invoker.invoke(mix.payloads[index])
            records.append({"memory_mb": value, "payload": index, "duration_ms": result.duration_ms,
                            "billed_duration_ms": result.billed_duration_ms, "init_duration_ms": result.init_duration_ms,
                            "max_memory_used_mb": result.max_memory_used_mb, "error": result.error})

    def floor_now() -> tuple[Floor, str | None]:
        measured, binding = probe_floor(pd.DataFrame.from_records(records),
                                        pd.DataFrame.from_records(probe_records, columns=PROBE_COLUMNS), headroom_pct)
        if memory_floor_mb is not None and memory_floor_mb.value > measured.value:
            return memory_floor_mb, None
        return measured, binding

    def decide(floor: Floor, rounds: int) -> MemoryDecision:
        return decide_memory(pd.DataFrame.from_records(records), current, floor=floor, strategy=strategy,
                             balanced_weight=balanced_weight, base_cost=base, weights=mix.weights_by_index(),
                             margin=tie_margin_pct / 100.0, target=target_confidence, seed=seed + rounds)

    rounds, pruned, model, decision = 0, [], None, None
    try:
        if mix.probes:
            probe_records.extend(measure_probes(invoker, mix, values[-1]))
        floor, _ = floor_now()
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
            floor, _ = floor_now()
            decision = decide(floor, rounds)
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
        if mix.probes and decision is not None and decision.recommended_mb != values[-1]:
            probe_records.extend(measure_probes(invoker, mix, decision.recommended_mb))
            floor, _ = floor_now()
            if floor.value > decision.floor.value:
                rounds += 1
                decision = decide(floor, rounds)
    finally:
        invoker.cleanup()
    frame = pd.DataFrame.from_records(records)
    analysis = _tool_analysis(frame, strategy, balanced_weight, discard_top_bottom, base)
    choice = decision.choice_mb if decision is not None else analysis.memory_mb
    confidence = decision.confidence if decision is not None else 0.0
    floor, binding = floor_now()
    return AdaptiveRun(choice, confidence, len(records), frame, analysis, model, pruned, rounds, decision,
                       floor, mix.weights_by_index(), pd.DataFrame.from_records(probe_records, columns=PROBE_COLUMNS),
                       binding)


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
