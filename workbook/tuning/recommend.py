"""Memory, timeout and architecture recommendations per function, each with a status, and the params patch.

Every row says ``recommend``, ``keep`` or ``insufficient-data``, with its confidence, the number
of samples, the floor that bounds it and the reasons; a row below ``min_confidence`` is not
recommended (it becomes ``insufficient-data``, saying what would settle it). Only ``recommend``
rows reach the params patch.

- memory: power tuning's decision (``workbook.tuning.decide``: the change must beat the current
  size by more than the noise), never below the floor (the peak memory in the window and on the
  function's worst-case input, plus headroom); without tuning, only a raise to the floor is advised, since
  a smaller size changes the CPU share and needs measuring;
- timeout: an upper confidence bound on the p99.9 duration plus headroom, never below the
  function's own downstream retry budgets, its batch and its slowest worst-case input, never above its
  trigger's limit (``workbook.tuning.rules.recommend_timeout``, ``workbook.tuning.floors``);
  queue consumers keep a visibility timeout of at least 6x;
- architecture: arm64 where both architectures were measured and arm64 wins on price without a
  slowdown beyond the threshold, in enough bootstrap resamples.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from infra import config, specs
from workbook.analysis.cost import monthly_cost
from workbook.local import processes
from workbook.telemetry.aggregate import Aggregates
from workbook.tuning import defaults
from workbook.tuning.adaptive import (
    PROBE_COLUMNS,
    AdaptiveRun,
    PayloadMix,
    adaptive_power_tuning,
    measure_probes,
    probe_floor,
    split_probes,
)
from workbook.tuning.analysis import AnalysisResult, TuningError, base_cost_per_ms
from workbook.tuning.bounds import TopDurations, min_samples
from workbook.tuning.decide import MemoryDecision, Status, decide_memory
from workbook.tuning.floors import Floor, timeout_floor
from workbook.tuning.invokers import make_invoker
from workbook.tuning.model import ModelRecommendation, recommend_from_model
from workbook.tuning.observed import Observed, observe, window_span_hours
from workbook.tuning.patch import ParamsPatch, params_patch
from workbook.tuning.payloads import tuning_payloads
from workbook.tuning.rules import durations_quantile, recommend_architecture, recommend_timeout
from workbook.tuning.runner import Invoker, TuningRun, check_power_values, run_power_tuning

RECOMMENDATION_COLUMNS = ["function", "kind", "current", "recommended", "status", "confidence", "samples", "floor",
                          "reason", "needed", "monthly_saving_usd"]


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
    def decision(self) -> MemoryDecision | None:
        return getattr(self.run, "decision", None)

    @property
    def invocations_used(self) -> int:
        return int(getattr(self.run, "invocations_used", len(self.run.invocations)))

    @property
    def confidence(self) -> float:
        if self.decision is not None:
            return float(self.decision.confidence)
        if hasattr(self.run, "confidence"):
            return float(self.run.confidence)
        return float(self.model.confidence) if self.model is not None else float("nan")

    @property
    def status(self) -> str:
        return self.decision.status.value if self.decision is not None else "not decided"


@dataclass
class Recommendations:
    """Rows for the notebook, the changes for the params patch, and any problem with the parameters."""

    table: pd.DataFrame
    functions: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.functions and not self.queues

    def by_status(self, status: Status | str) -> pd.DataFrame:
        return self.table[self.table["status"] == Status(status).value].reset_index(drop=True)

    def patch(self, env: str, params_dir=None) -> ParamsPatch:
        return params_patch(env, functions=self.functions, queues=self.queues, params_dir=params_dir)


def check_min_confidence(value: Any) -> tuple[float, str | None]:
    """The confidence threshold, or an unreachable one with the problem when ``value`` is outside 0..1."""
    if value is None:
        return defaults.MIN_CONFIDENCE, None
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        threshold = float("nan")
    if not 0.0 <= threshold <= 1.0:
        return float("inf"), (f"min_confidence={value!r} is outside 0..1: set it between 0 and 1 (default "
                              f"{defaults.MIN_CONFIDENCE}); until then nothing is recommended")
    return threshold, None


def power_tune(settings: config.Settings, key: str, power_values: Sequence[int] | None = None, num: int | None = None, *,
               strategy: str | None = None, balanced_weight: float | None = None, discard_top_bottom: float | None = None,
               adaptive: bool = True, payload: Any = None, invoker: Invoker | None = None,
               progress: Callable[[int, int, int], None] | None = None) -> Tuned:
    """Power-tune one function on AWS or the local sandbox with its tuning payloads, at its current size too.

    Every setting left ``None`` takes its default from ``workbook.tuning.defaults``; ``payload``
    defaults to ``workbook.tuning.payloads.tuning_payloads`` (the sample event, plus the function's
    worst-case probes: adaptive tuning measures them once each at the largest size first, and their
    largest peak sets the memory floor). ``progress(done, budget, memory_mb)`` is called after
    each invocation (``budget`` is the most it may take; adaptive tuning often stops earlier).
    """
    values = sorted(set(check_power_values(defaults.DEFAULT_POWER_VALUES if power_values is None else power_values)))
    num = defaults.DEFAULT_NUM_INVOCATIONS if num is None else int(num)
    strategy = strategy or defaults.DEFAULT_STRATEGY
    balanced_weight = defaults.DEFAULT_BALANCED_WEIGHT if balanced_weight is None else balanced_weight
    discard_top_bottom = defaults.DEFAULT_DISCARD_TOP_BOTTOM if discard_top_bottom is None else discard_top_bottom
    invoker = invoker or make_invoker(settings, key)
    payload = payload if payload is not None else tuning_payloads(settings, key)
    probes = split_probes(payload)[1]
    if progress is not None:
        budget = (num * (len(values) + 1) + 2 * len(probes)) if adaptive else \
            num * len(set(values) | {settings.function(key).memory_mb}) + len(probes)
        invoker = with_progress(invoker, progress, budget)
    fn = settings.function(key)
    base = base_cost_per_ms(settings.params.aws_region, fn.architecture)
    if adaptive:
        run = adaptive_power_tuning(invoker, values, payload, strategy=strategy, balanced_weight=balanced_weight,
                                    discard_top_bottom=discard_top_bottom, initial_num=min(num, 5),
                                    step_num=max(3, num // 2), max_invocations=num * (len(values) + 1),
                                    base_cost=base, current_mb=fn.memory_mb)
    else:
        run = sweep(invoker, sorted(set(values) | {fn.memory_mb}), num, payload, fn.memory_mb, strategy=strategy,
                    balanced_weight=balanced_weight, discard_top_bottom=discard_top_bottom, base_cost=base,
                    region=settings.params.aws_region, architecture=fn.architecture)
    durations = _durations_by_memory(run.invocations)
    model = None
    if len(durations) >= 2:
        try:
            model = recommend_from_model(durations, values, strategy, balanced_weight, discard_top_bottom,
                                         base_cost=base)
        except TuningError:
            model = None
    return Tuned(key, run, model)


def sweep(invoker: Invoker, values: Sequence[int], num: int, payload: Any, current_mb: int, **options: Any) -> TuningRun:
    """The full sweep (``run_power_tuning``) of the mix, after the worst-case probes where the payloads hold some.

    The probes run once each at the largest size first; sizes below the floor they set are not
    swept (the current size is, to compare with), and the run carries the floor, the probes and
    the probe that sets it. ``options`` go to ``run_power_tuning``.
    """
    mix, probes = split_probes(payload)
    if not probes:
        return run_power_tuning(invoker, values, num, payload, **options)
    try:
        rows = measure_probes(invoker, PayloadMix(payload), max(values))
    except BaseException:
        invoker.cleanup()
        raise
    frame = pd.DataFrame.from_records(rows, columns=PROBE_COLUMNS)
    floor, binding = probe_floor(pd.DataFrame(), frame)
    kept = sorted({v for v in values if v >= floor.value} | {int(current_mb)})
    run = run_power_tuning(invoker, kept, num, mix, **options)
    run.floor, run.probes, run.floor_probe = floor, frame, binding
    return run


class _Counted:
    """An invoker that reports each invocation to ``progress(done, budget, memory_mb)`` (thread-safe: parallel runs)."""

    def __init__(self, invoker: Invoker, progress: Callable[[int, int, int], None], budget: int) -> None:
        self._invoker, self._progress, self._budget = invoker, progress, budget
        self._done, self._memory_mb = 0, 0
        self._lock = threading.Lock()

    def set_memory(self, memory_mb: int) -> None:
        self._memory_mb = int(memory_mb)
        self._invoker.set_memory(memory_mb)

    def invoke(self, payload: Any) -> Any:
        processes.checkpoint()   # each invocation is a safe point for a stop signal a callback swallowed
        result = self._invoker.invoke(payload)
        with self._lock:
            self._done += 1
            self._progress(self._done, self._budget, self._memory_mb)
        return result

    def cleanup(self) -> None:
        self._invoker.cleanup()


def with_progress(invoker: Invoker, progress: Callable[[int, int, int], None], budget: int) -> Invoker:
    """``invoker``, reporting ``progress(done, budget, memory_mb)`` after each invocation."""
    return _Counted(invoker, progress, budget)


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


def recommend(settings: config.Settings, reports: pd.DataFrame | Aggregates, keys: Sequence[str],
              tuned: Mapping[str, Tuned] | None = None,
              measured_by_arch: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
              window_hours: float | None = None, min_confidence: float | None = None) -> Recommendations:
    """Recommendations for ``keys`` from the window (REPORT rows, or the aggregate route's ``Aggregates``: the
    same rows either way, see ``workbook.tuning.observed``) and any power-tuning results.

    Savings are priced at the window's invocation rate; ``window_hours`` is the analysed window
    (as the cost notebook uses it), else the span of the rows. ``min_confidence`` (default
    ``defaults.MIN_CONFIDENCE``) is the confidence a ``recommend`` row needs to stay one.
    """
    tuned = tuned or {}
    threshold, problem = check_min_confidence(min_confidence)
    out = Recommendations(pd.DataFrame(columns=RECOMMENDATION_COLUMNS), problems=[problem] if problem else [])
    rows: list[dict[str, Any]] = []
    hours = window_hours or window_span_hours(reports)
    for key in keys:
        seen = observe(reports, key)
        rows.extend(_function_rows(settings, key, seen, tuned.get(key), (measured_by_arch or {}).get(key), hours))
    for row in rows:
        _promote(row, threshold, problem, out)
    out.table = pd.DataFrame(rows, columns=RECOMMENDATION_COLUMNS)
    return out


def _function_rows(settings: config.Settings, key: str, seen: Observed, tuned: Tuned | None,
                   arch: Mapping[str, Sequence[float]] | None, hours: float) -> list[dict[str, Any]]:
    """The memory, timeout and architecture rows of one function."""
    current = settings.function(key)
    if seen.empty and tuned is None:
        why = "never invoked in the window: nothing to recommend from"
        need = "invocations in the window: run traffic, or widen the time range (since)"
        return [_row(key, kind, now, now, Status.INSUFFICIENT_DATA, None, 0, "-", why, need)
                for kind, now in (("memory", current.memory_mb), ("timeout", f"{current.timeout_s} s"),
                                  ("architecture", current.architecture))]
    monthly_invocations = seen.invocations / hours * 730 if hours else 0.0
    memory_row, decision = _memory_row(settings, key, seen, tuned, monthly_invocations)
    rows = [memory_row]
    rows.append(_timeout_row(settings, key, seen, tuned, decision, memory_row))
    rows.append(_architecture_row(settings, key, arch, memory_row))
    return rows


def _window_floor(subset: pd.DataFrame) -> Floor:
    """The memory floor from one function's REPORT rows (``Observed.floor``)."""
    return observe(subset, str(subset["function"].iloc[0]) if len(subset) else "").floor()


def _memory_row(settings: config.Settings, key: str, seen: Observed, tuned: Tuned | None,
                monthly_invocations: float) -> tuple[dict[str, Any], MemoryDecision | None]:
    current = settings.function(key)
    window = seen.floor()
    if tuned is None:
        samples = seen.memory_samples
        if window.value > current.memory_mb:
            return _row(key, "memory", current.memory_mb, int(window.value), Status.RECOMMEND, 1.0, samples,
                        window.describe("MB"), f"raise to the floor: {window.reason} is above the current "
                        f"{current.memory_mb} MB (a measured peak: the raise is needed whatever the noise)"), None
        return _row(key, "memory", current.memory_mb, current.memory_mb, Status.KEEP, None, samples,
                    window.describe("MB"), "usage leaves headroom; a smaller size changes the CPU share, so it needs "
                    "power tuning", "power-tune it (tune_functions) to find a cheaper or faster size"), None
    run = tuned.run
    tuning_floor = getattr(run, "floor", None)
    floor = max([f for f in (window, tuning_floor) if f is not None], key=lambda f: f.value)
    decision = tuned.decision
    if decision is None or floor.value > decision.floor.value or decision.current_mb != current.memory_mb:
        # a higher floor from the window (or a run without a decision): decide again on the same invocations
        decision = decide_memory(run.invocations, current.memory_mb, floor=floor, strategy=tuned.analysis.strategy,
                                 balanced_weight=tuned.analysis.balanced_weight,
                                 base_cost=base_cost_per_ms(settings.params.aws_region, current.architecture),
                                 weights=_weights(run))
    floor = decision.floor
    tool = (f"; the tool's analysis ({tuned.analysis.strategy}, trimmed means of billed durations) chose "
            f"{tuned.analysis.memory_mb} MB over {tuned.invocations_used} invocations")
    saving = (_saving(settings, current, decision, monthly_invocations) if decision.status is Status.RECOMMEND
              else None)
    return _row(key, "memory", current.memory_mb, decision.recommended_mb, decision.status, decision.confidence,
                decision.samples, floor.describe("MB"), decision.reason + tool, decision.needed, saving), decision


def _weights(run: Any) -> dict[int, float] | None:
    invocations = run.invocations
    if "payload" not in invocations or invocations["payload"].nunique() < 2:
        return None
    return getattr(run, "weights", None) or None


def _timeout_row(settings: config.Settings, key: str, seen: Observed, tuned: Tuned | None,
                 decision: MemoryDecision | None, memory_row: dict[str, Any]) -> dict[str, Any]:
    current = settings.function(key)
    durations = seen.successes
    scaled = ""
    if decision is not None and decision.changes and len(durations):
        table = decision.estimates.set_index("memory_mb")["mean_duration_ms"]
        if decision.current_mb in table.index and decision.recommended_mb in table.index:
            factor = float(table[decision.recommended_mb] / table[decision.current_mb])
            if factor > 1.0:
                durations = durations.scaled(factor) if isinstance(durations, TopDurations) else durations * factor
                scaled = (f"; durations scaled by {factor:.2f}x for the recommended {decision.recommended_mb} MB "
                          "(power tuning's means)")
    memory = decision.recommended_mb if decision is not None else current.memory_mb
    worst_ms, worst = _worst_case_ms(tuned, memory)
    floor = timeout_floor(settings, key, per_record_p99_ms=durations_quantile(durations, 0.99) if len(durations) else None,
                          worst_case_ms=worst_ms, worst_case_memory_mb=memory if worst_ms else None, worst_case=worst)
    rec = recommend_timeout(durations, key, settings=settings, floor=floor, timed_out=seen.timed_out)
    if seen.invocations and not len(durations) and rec.status is Status.INSUFFICIENT_DATA:
        reason = (f"all {seen.invocations:,} invocations in the window failed ({', '.join(seen.statuses)}): "
                  "their durations do not show how long the work takes")
    else:
        reason = rec.reason + scaled
    row = _row(key, "timeout", f"{current.timeout_s} s", f"{rec.timeout_s} s", rec.status, rec.confidence, rec.samples,
               rec.floor.describe(), reason, rec.needed)
    row["_change"] = {"timeout_s": rec.timeout_s} if rec.changed else {}
    if rec.changed and rec.visibility_timeout_s is not None and rec.queue:
        row["_queue"] = (rec.queue, {"visibility_timeout_s": rec.visibility_timeout_s})
    return row


def _worst_case_ms(tuned: Tuned | None, memory_mb: int) -> tuple[float | None, str]:
    """The slowest successful worst-case probe at ``memory_mb`` and its name, where tuning measured one there."""
    probes = getattr(tuned.run, "probes", None) if tuned is not None else None
    if probes is None or not len(probes):
        return None, ""
    rows = probes[probes["error"].isna() & (probes["memory_mb"] == memory_mb)]
    if not len(rows):
        return None, ""
    slowest = rows.loc[rows["duration_ms"].astype(float).idxmax()]
    return float(slowest["duration_ms"]), str(slowest["probe"])


def worst_case_table(tuned: Mapping[str, Tuned]) -> pd.DataFrame:
    """Per tuned function, each worst-case probe: its peak at the largest size, where else it ran, and which sets the floor.

    Columns: function, probe, description, memory_mb (where it was measured first, the largest size),
    max_memory_used_mb, duration_ms, error, at_recommended_mb and its max_memory_used_mb / error there,
    sets_floor, floor.
    """
    rows: list[dict[str, Any]] = []
    for key, result in tuned.items():
        run = result.run
        probes = getattr(run, "probes", None)
        if probes is None or not len(probes):
            continue
        first_size = int(probes["memory_mb"].iloc[0])
        floor = getattr(run, "floor", None)
        recommended = result.decision.recommended_mb if result.decision is not None else None
        for name, group in probes.groupby("probe", sort=False):
            first = group[group["memory_mb"] == first_size].iloc[0]
            there = group[group["memory_mb"] == recommended] if recommended not in (None, first_size) else group.iloc[0:0]
            rows.append({
                "function": key, "probe": name, "description": first["description"], "memory_mb": first_size,
                "max_memory_used_mb": first["max_memory_used_mb"], "duration_ms": round(float(first["duration_ms"]), 1),
                "error": first["error"], "at_recommended_mb": recommended,
                "recommended_max_memory_used_mb": there["max_memory_used_mb"].iloc[0] if len(there) else None,
                "recommended_error": there["error"].iloc[0] if len(there) else None,
                "sets_floor": name == getattr(run, "floor_probe", None),
                "floor": floor.describe("MB") if floor is not None else "-",
            })
    columns = ["function", "probe", "description", "memory_mb", "max_memory_used_mb", "duration_ms", "error",
               "at_recommended_mb", "recommended_max_memory_used_mb", "recommended_error", "sets_floor", "floor"]
    return pd.DataFrame(rows, columns=columns)


def floor_probes(tuned: Mapping[str, Tuned]) -> dict[str, dict[str, Any]]:
    """Per tuned function, the worst-case probe that sets its memory floor and its measured peak (None: none does)."""
    table = worst_case_table(tuned)
    out: dict[str, dict[str, Any]] = {}
    for key in tuned:
        rows = table[(table["function"] == key) & table["sets_floor"]]
        run = tuned[key].run
        floor = getattr(run, "floor", None)
        out[key] = ({"probe": rows["probe"].iloc[0], "description": rows["description"].iloc[0],
                     "peak_mb": float(rows["max_memory_used_mb"].iloc[0]), "memory_mb": int(rows["memory_mb"].iloc[0]),
                     "floor_mb": int(floor.value) if floor is not None else None,
                     "floor": floor.describe("MB") if floor is not None else None}
                    if len(rows) else {"probe": None, "floor": floor.describe("MB") if floor is not None else None})
    return out


def _architecture_row(settings: config.Settings, key: str, arch: Mapping[str, Sequence[float]] | None,
                      memory_row: dict[str, Any]) -> dict[str, Any]:
    current = settings.function(key).architecture
    if not (arch and arch.get("x86_64") and arch.get("arm64")):
        return _row(key, "architecture", current, current, Status.INSUFFICIENT_DATA, None, 0, "-",
                    "only one architecture was measured", "tune on both x86_64 and arm64 to compare")
    x86, arm = np.asarray(arch["x86_64"], float), np.asarray(arch["arm64"], float)
    memory = int(memory_row["recommended"])
    choice = recommend_architecture(x86, arm, memory, region=settings.params.aws_region)
    rng = np.random.default_rng(0)
    agree = sum(recommend_architecture(rng.choice(x86, len(x86)), rng.choice(arm, len(arm)), memory,
                                       region=settings.params.aws_region).architecture == choice.architecture
                for _ in range(200)) / 200
    samples = int(len(x86) + len(arm))
    status = Status.KEEP if choice.architecture == current else Status.RECOMMEND
    if status is Status.RECOMMEND and agree < defaults.DECISION_CONFIDENCE:
        status = Status.INSUFFICIENT_DATA
    return _row(key, "architecture", current, choice.architecture if status is Status.RECOMMEND else current, status,
                agree, samples, "-", f"{choice.reason} (the same answer in {agree:.0%} of bootstrap resamples)",
                "" if status is not Status.INSUFFICIENT_DATA else "more invocations on both architectures")


def _promote(row: dict[str, Any], threshold: float, problem: str | None, out: Recommendations) -> None:
    """Keep a ``recommend`` row only at or above the threshold; collect its change for the patch."""
    change, queue = row.pop("_change", None), row.pop("_queue", None)
    if row["status"] != Status.RECOMMEND.value:
        return
    confidence = row["confidence"]
    if confidence is None or not confidence >= threshold:
        shown = "none" if confidence is None else f"{confidence:.2f}"
        row["status"] = Status.INSUFFICIENT_DATA.value
        row["reason"] = (problem or f"not recommended: confidence {shown} is below min_confidence {threshold:g}") + \
            f"; the rule's verdict was {row['recommended']}: {row['reason']}"
        row["needed"] = row["needed"] or "more invocations, to raise the confidence"
        row["recommended"] = row["current"]
        return
    key = row["function"]
    if row["kind"] == "timeout":
        if change:
            out.functions.setdefault(key, {}).update(change)
        if queue:
            out.queues[queue[0]] = queue[1]
    elif row["kind"] == "memory" and row["recommended"] != row["current"]:
        out.functions.setdefault(key, {})["memory_mb"] = int(row["recommended"])
    elif row["kind"] == "architecture" and row["recommended"] != row["current"]:
        out.functions.setdefault(key, {})["architecture"] = row["recommended"]


def _saving(settings: config.Settings, current: config.FunctionSettings, decision: MemoryDecision,
            monthly_invocations: float) -> float | None:
    """Monthly saving at the observed rate, from the decision's mean durations at both sizes."""
    if not monthly_invocations:
        return None
    table = decision.estimates.set_index("memory_mb")["mean_duration_ms"]
    if decision.current_mb not in table.index or decision.recommended_mb not in table.index:
        return None
    region, arch = settings.params.aws_region, current.architecture
    old = monthly_cost(monthly_invocations, float(table[decision.current_mb]), current.memory_mb, arch, region,
                       free_tier=False)
    new = monthly_cost(monthly_invocations, float(table[decision.recommended_mb]), decision.recommended_mb, arch, region,
                       free_tier=False)
    return round(old.total_usd - new.total_usd, 4)


def from_tuning_run(settings: config.Settings, key: str, run: TuningRun | AdaptiveRun) -> Recommendations:
    """The recommendations for ``key`` from a power-tuning run alone (the ``workbook tune`` command).

    Memory is the run's decision; the timeout rule reads the durations measured at the current
    size. Nothing is priced, since a tuning run says nothing about the traffic's rate.
    """
    invocations = run.invocations
    fn = settings.function(key)
    ok = invocations[invocations["error"].isna()] if len(invocations) else invocations
    at_current = ok[ok["memory_mb"] == fn.memory_mb] if len(ok) else ok
    reports = pd.DataFrame({
        "function": key,
        "duration_ms": at_current["duration_ms"].astype(float),
        "max_memory_used_mb": at_current["max_memory_used_mb"].astype(float),
        "memory_size_mb": fn.memory_mb,
        "status": "ok",
    })
    return recommend(settings, reports, [key], {key: Tuned(key, run)})


def check_rows(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """What is wrong with recommendation rows (as recorded in summary.json): [] when every rule held.

    A ``recommend`` row must not go below its floor; a ``recommend`` that lowers a timeout must rest
    on at least as many samples as the bound needs (a raise to the floor needs none).
    """
    problems = []
    for row in rows:
        if row.get("status") != Status.RECOMMEND.value:
            continue
        where = f"{row.get('function')} {row.get('kind')}"
        floor = _leading_number(row.get("floor"))
        value, current = _leading_number(row.get("recommended")), _leading_number(row.get("current"))
        if floor is not None and value is not None and row.get("kind") in ("memory", "timeout") and value < floor:
            problems.append(f"{where}: recommended {row.get('recommended')} is below its floor {row.get('floor')}")
        if row.get("kind") == "timeout" and value is not None and current is not None and value < current and \
                int(row.get("samples") or 0) < min_samples(defaults.TIMEOUT_QUANTILE, defaults.TIMEOUT_BOUND_LEVEL):
            problems.append(f"{where}: lowered from {row.get('samples')} samples, fewer than the bound needs")
    return problems


def _leading_number(text: Any) -> float | None:
    match = re.match(r"\s*([0-9][0-9,]*(?:\.[0-9]+)?)", str(text or ""))
    return float(match.group(1).replace(",", "")) if match else None


def _row(key: str, kind: str, current: Any, recommended: Any, status: Status, confidence: float | None, samples: int,
         floor: str, reason: str, needed: str = "", saving: float | None = None) -> dict[str, Any]:
    return {"function": key, "kind": kind, "current": str(current), "recommended": str(recommended),
            "status": Status(status).value,
            "confidence": None if confidence is None or np.isnan(confidence) else round(float(confidence), 2),
            "samples": int(samples), "floor": floor, "reason": reason, "needed": needed or "",
            "monthly_saving_usd": saving}
