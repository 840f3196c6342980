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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from infra import config, specs
from workbook.analysis.cost import monthly_cost
from workbook.tuning import defaults
from workbook.tuning.adaptive import AdaptiveRun, adaptive_power_tuning
from workbook.tuning.analysis import AnalysisResult, TuningError, base_cost_per_ms
from workbook.tuning.invokers import make_invoker
from workbook.tuning.model import ModelRecommendation, recommend_from_model
from workbook.tuning.patch import ParamsPatch, params_patch
from workbook.tuning.payloads import sample_event
from workbook.tuning.rules import recommend_architecture, recommend_memory_from_usage, recommend_timeout
from workbook.tuning.runner import Invoker, TuningRun, check_power_values, run_power_tuning

RECOMMENDATION_COLUMNS = ["function", "kind", "current", "recommended", "monthly_saving_usd", "confidence", "reason"]


@dataclass
class Tuned:
    """A power-tuning result for one function."""

    key: str
    run: TuningRun | AdaptiveRun
    model: ModelRecommendation | None = None

    @property
    def memory_mb(self) -> int:
        return int(self.run.memory_mb)

    @property
    def analysis(self) -> AnalysisResult:
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

    def patch(self, env: str, params_dir=None) -> ParamsPatch:
        return params_patch(env, functions=self.functions, queues=self.queues, params_dir=params_dir)


def power_tune(settings: config.Settings, key: str, power_values: Sequence[int] | None = None, num: int | None = None, *,
               strategy: str | None = None, balanced_weight: float | None = None, discard_top_bottom: float | None = None,
               adaptive: bool = True, payload: Any = None, invoker: Invoker | None = None) -> Tuned:
    """Power-tune one function on AWS or the local sandbox with a representative payload.

    Every setting left ``None`` takes its default from ``workbook.tuning.defaults``.
    """
    values = sorted(set(check_power_values(defaults.DEFAULT_POWER_VALUES if power_values is None else power_values)))
    num = defaults.DEFAULT_NUM_INVOCATIONS if num is None else int(num)
    strategy = strategy or defaults.DEFAULT_STRATEGY
    balanced_weight = defaults.DEFAULT_BALANCED_WEIGHT if balanced_weight is None else balanced_weight
    discard_top_bottom = defaults.DEFAULT_DISCARD_TOP_BOTTOM if discard_top_bottom is None else discard_top_bottom
    invoker = invoker or make_invoker(settings, key)
    payload = payload if payload is not None else sample_event(settings, key)
    arch = settings.function(key).architecture
    base = base_cost_per_ms(settings.params.aws_region, arch)
    if adaptive:
        run = adaptive_power_tuning(invoker, values, payload, strategy=strategy, balanced_weight=balanced_weight,
                                           discard_top_bottom=discard_top_bottom, initial_num=min(num, 5),
                                           step_num=max(2, num // 2), max_invocations=num * len(values),
                                           base_cost=base)
    else:
        run = run_power_tuning(invoker, values, num, payload, strategy=strategy, balanced_weight=balanced_weight,
                                      discard_top_bottom=discard_top_bottom, base_cost=base,
                                      region=settings.params.aws_region, architecture=arch)
    durations = _durations_by_memory(run.invocations)
    model = None
    if len(durations) >= 2:
        try:
            model = recommend_from_model(durations, values, strategy, balanced_weight, discard_top_bottom,
                                                base_cost=base)
        except TuningError:
            model = None
    return Tuned(key, run, model)


def functions_to_tune(keys: Sequence[str] | None) -> list[str]:
    """The functions a notebook power-tunes: ``keys``, or the report's default when None."""
    chosen = list(defaults.REPORT_TUNE_FUNCTIONS if keys is None else keys)
    for key in chosen:
        specs.spec(key)   # an unknown key fails here, naming the known ones
    return chosen


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
        floor = recommend_memory_from_usage(subset) if len(subset) else None
        memory = _memory(key, current, floor, tuned.get(key), subset, monthly_invocations, settings)
        rows.append(memory["row"])
        if memory["change"] is not None:
            functions.setdefault(key, {})["memory_mb"] = memory["change"]
        durations = subset["duration_ms"].dropna().to_numpy() if len(subset) else []
        if len(durations):
            timeout = recommend_timeout(durations, key, settings=settings)
            if timeout.changed:
                functions.setdefault(key, {})["timeout_s"] = timeout.timeout_s
                if timeout.visibility_timeout_s is not None and timeout.queue:
                    queues[timeout.queue] = {"visibility_timeout_s": timeout.visibility_timeout_s}
            rows.append(_row(key, "timeout", f"{current.timeout_s} s", f"{timeout.timeout_s} s", None, None,
                             timeout.reason))
        arch = (measured_by_arch or {}).get(key)
        if arch and arch.get("x86_64") and arch.get("arm64"):
            choice = recommend_architecture(arch["x86_64"], arch["arm64"], functions.get(key, {}).get(
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
    old = monthly_cost(monthly_invocations, before, current.memory_mb, arch, region, free_tier=False)
    new = monthly_cost(monthly_invocations, after, choice, arch, region, free_tier=False)
    return round(old.total_usd - new.total_usd, 4)


def from_tuning_run(settings: config.Settings, key: str, run: TuningRun | AdaptiveRun) -> Recommendations:
    """The recommendations for ``key`` from a power-tuning run alone (the ``workbook tune`` command).

    Memory is the run's choice (never below its measured usage plus headroom) and the timeout rule
    reads the durations measured at the chosen size; nothing is priced, since a tuning run says
    nothing about the traffic's rate.
    """
    invocations = run.invocations
    ok = invocations[invocations["error"].isna()] if len(invocations) else invocations
    at_choice = ok[ok["memory_mb"] == run.memory_mb] if len(ok) else ok
    reports = pd.DataFrame({
        "function": key,
        "duration_ms": at_choice["duration_ms"].astype(float),
        "max_memory_used_mb": at_choice["max_memory_used_mb"].astype(float),
        "memory_size_mb": run.memory_mb,
        "status": "ok",
    })
    return recommend(settings, reports, [key], {key: Tuned(key, run)})


def _window_hours(reports: pd.DataFrame) -> float:
    if reports is None or len(reports) < 2 or "timestamp" not in reports:
        return 0.0
    span = (reports["timestamp"].max() - reports["timestamp"].min()).total_seconds() / 3600
    return max(span, 1 / 60)


def _row(key: str, kind: str, current: Any, recommended: Any, saving: float | None, confidence: float | None,
         reason: str) -> dict[str, Any]:
    return {"function": key, "kind": kind, "current": str(current), "recommended": str(recommended),
            "monthly_saving_usd": saving, "confidence": None if confidence is None or np.isnan(confidence)
            else round(float(confidence), 2), "reason": reason}
