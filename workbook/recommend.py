"""Memory, timeout and architecture recommendations per function, and the params patch they make.

The pieces come from ``workbook.tuning`` (power tuning, the duration model, usage and timeout
rules) and ``workbook.cost``; this module decides per function and prices the difference:

- memory: the power-tuning choice where the function was tuned, never below the usage floor
  (peak max-memory-used plus headroom); without tuning, only a raise to the floor is advised,
  since a lower size changes the CPU share and needs measuring;
- timeout: p99.9 duration plus headroom, capped by the trigger, with the SQS visibility timeout
  kept at 6x for queue consumers;
- architecture: arm64 where both architectures were measured and arm64 wins on price without
  a slowdown beyond the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from infra import config
from workbook import cost, tuning

# A p99.9 from fewer invocations is really the maximum of a small sample: too thin to cut a timeout on.
MIN_TIMEOUT_SAMPLES = 100
RECOMMENDATION_COLUMNS = ["function", "kind", "current", "recommended", "monthly_saving_usd", "confidence", "reason"]


@dataclass
class Tuned:
    """A power-tuning result for one function."""

    key: str
    run: Any                              # tuning.TuningRun or tuning.AdaptiveRun
    model: tuning.ModelRecommendation | None = None

    @property
    def memory_mb(self) -> int:
        return int(self.run.memory_mb)

    @property
    def analysis(self) -> tuning.AnalysisResult:
        return self.run.analysis

    @property
    def invocations_used(self) -> int:
        return int(getattr(self.run, "invocations_used", len(self.run.invocations)))

    @property
    def confidence(self) -> float:
        if hasattr(self.run, "confidence"):
            return float(self.run.confidence)
        return float(self.model.confidence) if self.model is not None else float("nan")


@dataclass
class Recommendations:
    """Rows for the notebook, and the changes for the params patch."""

    table: pd.DataFrame
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.functions and not self.queues

    def patch(self, env: str, params_dir=None) -> tuning.ParamsPatch:
        return tuning.params_patch(env, functions=self.functions, queues=self.queues, params_dir=params_dir)


def power_tune(settings: config.Settings, key: str, power_values: Sequence[int], num: int = 10, *,
               strategy: str = "cost", balanced_weight: float = 0.5, discard_top_bottom: float = 0.2,
               adaptive: bool = True, payload: Any = None, invoker: tuning.Invoker | None = None) -> Tuned:
    """Power-tune one function on AWS or the local sandbox with a representative payload."""
    from workbook import events

    invoker = invoker or tuning.make_invoker(settings, key)
    payload = payload if payload is not None else events.sample_event(settings, key)
    arch = settings.function(key).architecture
    base = tuning.base_cost_per_ms(settings.params.aws_region, arch)
    values = sorted({int(v) for v in power_values})
    if adaptive:
        run = tuning.adaptive_power_tuning(invoker, values, payload, strategy=strategy, balanced_weight=balanced_weight,
                                           discard_top_bottom=discard_top_bottom, initial_num=min(num, 5),
                                           step_num=max(2, num // 2), max_invocations=num * len(values),
                                           base_cost=base)
    else:
        run = tuning.run_power_tuning(invoker, values, num, payload, strategy=strategy, balanced_weight=balanced_weight,
                                      discard_top_bottom=discard_top_bottom, base_cost=base,
                                      region=settings.params.aws_region, architecture=arch)
    durations = _durations_by_memory(run.invocations)
    model = None
    if len(durations) >= 2:
        try:
            model = tuning.recommend_from_model(durations, values, strategy, balanced_weight, discard_top_bottom,
                                                base_cost=base)
        except tuning.TuningError:
            model = None
    return Tuned(key, run, model)


def _durations_by_memory(invocations: pd.DataFrame) -> dict[int, list[float]]:
    if invocations is None or len(invocations) == 0:
        return {}
    column = "billed_duration_ms" if "billed_duration_ms" in invocations else "duration_ms"
    ok = invocations[invocations["error"].isna()] if "error" in invocations else invocations
    return {int(m): list(group[column].astype(float)) for m, group in ok.groupby("memory_mb")}


def recommend(settings: config.Settings, reports: pd.DataFrame, keys: Sequence[str],
              tuned: Mapping[str, Tuned] | None = None,
              measured_by_arch: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
              window_hours: float | None = None) -> Recommendations:
    """Recommendations for ``keys`` from the window's REPORT rows and any power-tuning results.

    Savings are priced at the window's invocation rate; ``window_hours`` is the analysed window
    (as the cost notebook uses it), else the span of the rows.
    """
    tuned = tuned or {}
    rows: list[dict[str, Any]] = []
    functions: dict[str, dict[str, Any]] = {}
    queues: dict[str, dict[str, Any]] = {}
    hours = window_hours or _window_hours(reports)
    for key in keys:
        current = settings.function(key)
        subset = reports[reports["function"] == key] if len(reports) else reports
        if len(subset) == 0 and key not in tuned:
            rows.append(_row(key, "memory", current.memory_mb, current.memory_mb, None, None,
                             "no invocations in the window: nothing to recommend from"))
            continue
        monthly_invocations = len(subset) / hours * 730 if hours else 0.0
        floor = tuning.recommend_memory_from_usage(subset) if len(subset) else None
        memory = _memory(key, current, floor, tuned.get(key), subset, monthly_invocations, settings)
        rows.append(memory["row"])
        if memory["change"] is not None:
            functions.setdefault(key, {})["memory_mb"] = memory["change"]
        durations = subset["duration_ms"].dropna().to_numpy() if len(subset) else []
        if 0 < len(durations) < MIN_TIMEOUT_SAMPLES:
            rows.append(_row(key, "timeout", f"{current.timeout_s} s", f"{current.timeout_s} s", None, None,
                             f"keep: only {len(durations)} invocations in the window; a timeout needs at least "
                             f"{MIN_TIMEOUT_SAMPLES} for its p99.9"))
        elif len(durations):
            timeout = tuning.recommend_timeout(durations, key, settings=settings)
            if timeout.timeout_s != current.timeout_s:
                functions.setdefault(key, {})["timeout_s"] = timeout.timeout_s
                if timeout.visibility_timeout_s is not None and timeout.queue:
                    queues[timeout.queue] = {"visibility_timeout_s": timeout.visibility_timeout_s}
            rows.append(_row(key, "timeout", f"{current.timeout_s} s", f"{timeout.timeout_s} s", None, None,
                             timeout.reason))
        arch = (measured_by_arch or {}).get(key)
        if arch and arch.get("x86_64") and arch.get("arm64"):
            choice = tuning.recommend_architecture(arch["x86_64"], arch["arm64"], functions.get(key, {}).get(
                "memory_mb", current.memory_mb), region=settings.params.aws_region)
            if choice.architecture != current.architecture:
                functions.setdefault(key, {})["architecture"] = choice.architecture
            rows.append(_row(key, "architecture", current.architecture, choice.architecture, None, None, choice.reason))
        else:
            rows.append(_row(key, "architecture", current.architecture, current.architecture, None, None,
                             "only one architecture was measured; tune on both to compare"))
    table = pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)
    return Recommendations(table, functions, queues)


def _memory(key: str, current: config.FunctionSettings, floor: Any, tuned: Tuned | None, subset: pd.DataFrame,
            monthly_invocations: float, settings: config.Settings) -> dict[str, Any]:
    floor_mb = int(floor.memory_mb) if floor is not None else 128
    if tuned is not None:
        choice = max(tuned.memory_mb, floor_mb)
        why = (f"power tuning ({tuned.analysis.strategy}) chose {tuned.memory_mb} MB over "
               f"{tuned.invocations_used} invocations")
        if choice != tuned.memory_mb:
            why += f"; raised to {choice} MB to keep memory headroom ({floor.reason})"
        saving = _saving(key, current, choice, tuned, subset, monthly_invocations, settings)
        change = choice if choice != current.memory_mb else None
        return {"row": _row(key, "memory", current.memory_mb, choice, saving, tuned.confidence, why), "change": change}
    if floor is not None and floor_mb > current.memory_mb:
        return {"row": _row(key, "memory", current.memory_mb, floor_mb, None, None,
                            f"raise to keep headroom: {floor.reason}"), "change": floor_mb}
    reason = "usage leaves headroom; power-tune to find a cheaper or faster size"
    if floor is not None:
        reason = f"{floor.reason}; a smaller size needs power tuning (CPU scales with memory)"
    return {"row": _row(key, "memory", current.memory_mb, current.memory_mb, None, None, reason), "change": None}


def _saving(key: str, current: config.FunctionSettings, choice: int, tuned: Tuned, subset: pd.DataFrame,
            monthly_invocations: float, settings: config.Settings) -> float | None:
    """Monthly saving at the observed rate, from the tuned durations at both sizes (model where unmeasured)."""
    if not monthly_invocations:
        return None
    table = tuned.analysis.table.set_index("memory_mb")

    def duration_at(memory: int) -> float | None:
        if memory in table.index:
            return float(table.loc[memory, "average_duration_ms"])
        if tuned.model is not None:
            return float(max(tuned.model.model.predict(memory), 1.0))
        return None

    before, after = duration_at(current.memory_mb), duration_at(choice)
    if before is None or after is None:
        return None
    region, arch = settings.params.aws_region, current.architecture
    old = cost.monthly_cost(monthly_invocations, before, current.memory_mb, arch, region, free_tier=False)
    new = cost.monthly_cost(monthly_invocations, after, choice, arch, region, free_tier=False)
    return round(old.total_usd - new.total_usd, 4)


def _window_hours(reports: pd.DataFrame) -> float:
    if reports is None or len(reports) < 2:
        return 0.0
    span = (reports["timestamp"].max() - reports["timestamp"].min()).total_seconds() / 3600
    return max(span, 1 / 60)


def _row(key: str, kind: str, current: Any, recommended: Any, saving: float | None, confidence: float | None,
         reason: str) -> dict[str, Any]:
    return {"function": key, "kind": kind, "current": str(current), "recommended": str(recommended),
            "monthly_saving_usd": saving, "confidence": None if confidence is None or np.isnan(confidence)
            else round(float(confidence), 2), "reason": reason}
