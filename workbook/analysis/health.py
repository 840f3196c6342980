"""Health per function from the tidy metrics frame, the data pipeline's executions, and the alarms in ALARM.

On AWS the alarms come from CloudWatch (DescribeAlarms). The local endpoint stores alarms but
never evaluates them, so there the same thresholds (from params, as the stack's alarms use
them) are evaluated against the window's metrics and executions, and the result says so.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from infra import config
from workbook import aws
from workbook.telemetry.pipeline import PipelineSummary

HEALTH_COLUMNS = ["function", "invocations", "errors", "error_rate_pct", "throttles", "max_concurrency",
                  "avg_ms", "p50_ms", "p90_ms", "p99_ms", "timeout_s", "p99_pct_of_timeout", "percentile_source"]


def per_function(window: pd.DataFrame, settings: config.Settings, keys: Sequence[str],
                 tuning: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per function from a frame loaded with ``period_s`` spanning the whole window.

    ``tuning`` (``metrics.tuning_counts``: power tuning's invocations, errors and throttles on its
    own versions) is taken away from the counts, so they are the traffic's alone.
    Functions without data get zeros for counts and NaN for latencies, never a missing row.
    """
    rows = []
    for key in keys:
        part = window[window["function"] == key] if len(window) else window

        def tuned(metric: str, key: str = key) -> float:
            if tuning is None or not len(tuning):
                return 0.0
            return float(tuning[(tuning["function"] == key) & (tuning["metric"] == metric)]["value"].sum())

        def value(metric: str, stat: str, how: str = "sum", part: pd.DataFrame = part) -> float:
            values = (part[(part["metric"] == metric) & (part["stat"] == stat)]["value"] if len(part)
                      else pd.Series(dtype=float))
            if values.empty:
                return float("nan")
            return float(values.sum() if how == "sum" else values.max())

        invocations = value("Invocations", "Sum")
        errors = value("Errors", "Sum")
        invocations = max(0.0, (0.0 if pd.isna(invocations) else invocations) - tuned("Invocations"))
        errors = max(0.0, (0.0 if pd.isna(errors) else errors) - tuned("Errors"))
        throttles = value("Throttles", "Sum")
        throttles = throttles if pd.isna(throttles) else max(0.0, throttles - tuned("Throttles"))
        timeout_s = settings.function(key).timeout_s
        p99 = value("Duration", "p99", "max")
        sources = part[part["stat"].isin(["p50", "p90", "p99"])]["source"].unique() if len(part) else []
        rows.append({
            "function": key,
            "invocations": int(invocations),
            "errors": int(errors),
            "error_rate_pct": round(100.0 * errors / invocations, 2) if invocations else 0.0,
            "throttles": 0 if pd.isna(throttles) else int(throttles),
            "max_concurrency": value("ConcurrentExecutions", "Maximum", "max"),
            "avg_ms": value("Duration", "Average", "max"),
            "p50_ms": value("Duration", "p50", "max"),
            "p90_ms": value("Duration", "p90", "max"),
            "p99_ms": p99,
            "timeout_s": timeout_s,
            "p99_pct_of_timeout": round(100.0 * p99 / (timeout_s * 1000), 2) if not pd.isna(p99) else float("nan"),
            "percentile_source": ", ".join(sorted(map(str, sources))) or "none",
        })
    return pd.DataFrame(rows, columns=HEALTH_COLUMNS)


@dataclass
class AlarmState:
    """Alarms in ALARM, and how that was determined."""

    names: list[str] = field(default_factory=list)
    source: str = "cloudwatch"
    note: str = ""


def alarms_in_alarm(settings: config.Settings, health: pd.DataFrame,
                    pipeline: PipelineSummary | None = None) -> AlarmState:
    """CloudWatch's alarms in ALARM for the stack; on the local endpoint, the thresholds evaluated here.

    ``pipeline`` (the window's executions) lets the local evaluation include the pipeline's
    ExecutionsFailed and ExecutionsTimedOut alarms; on AWS CloudWatch evaluates them itself.
    """
    if aws.is_local():
        return _evaluate_locally(settings, health, pipeline)
    client = aws.client("cloudwatch", settings.params.aws_region)
    names: list[str] = []
    for page in client.get_paginator("describe_alarms").paginate(StateValue="ALARM", AlarmNamePrefix=settings.prefix):
        # Filter the state here too: some endpoints (moto) ignore StateValue next to a prefix.
        names += [alarm["AlarmName"] for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", [])
                  if alarm.get("StateValue") == "ALARM"]
    return AlarmState(sorted(names), "cloudwatch")


def _evaluate_locally(settings: config.Settings, health: pd.DataFrame,
                      pipeline: PipelineSummary | None = None) -> AlarmState:
    a = settings.params.alarms
    names = []
    if pipeline is not None:   # infra/pipeline.py's alarms: any failed or timed-out execution
        if pipeline.failed:
            names.append(settings.name("pipeline-executions-failed"))
        if pipeline.timed_out:
            names.append(settings.name("pipeline-executions-timed-out"))
    for row in health.itertuples(index=False):
        if row.invocations and row.error_rate_pct > a.error_rate_pct:
            names.append(settings.name(f"{row.function}-error-rate"))
        if row.throttles >= a.throttles:
            names.append(settings.name(f"{row.function}-throttles"))
        if not pd.isna(row.p99_pct_of_timeout) and row.p99_pct_of_timeout > a.duration_p99_pct_of_timeout:
            names.append(settings.name(f"{row.function}-duration-p99"))
    return AlarmState(sorted(names), "evaluated locally",
                      "The local endpoint does not evaluate CloudWatch alarms; the stack's thresholds from "
                      f"params/{settings.env}.yaml were evaluated over the whole window instead.")


def window_period_s(start: pd.Timestamp, end: pd.Timestamp) -> int:
    """A CloudWatch period (a multiple of 60 s) that covers [start, end) in one datapoint."""
    span = max(int((end - start).total_seconds()), 60)
    return -(-span // 60) * 60


def pipeline_headline(pipeline: PipelineSummary | None) -> str:
    """One sentence on the data pipeline's executions in the window, for the summary's headlines."""
    if pipeline is None:
        return "Data pipeline: no state machine found (not deployed in this environment)."
    if not pipeline.started:
        return "Data pipeline: no execution started in the window."
    ended = [f"{pipeline.succeeded:,} succeeded", f"{pipeline.failed:,} failed", f"{pipeline.timed_out:,} timed out",
             f"{pipeline.aborted:,} aborted"] + ([f"{pipeline.running:,} running"] if pipeline.running else [])
    duration = ("" if pd.isna(pipeline.p50_duration_s) else
                f"; duration p50 {pipeline.p50_duration_s:.1f} s, p99 {pipeline.p99_duration_s:.1f} s")
    flag = "**" if pipeline.failed or pipeline.timed_out else ""
    return f"{flag}Data pipeline: {pipeline.started:,} executions, {', '.join(ended)}{flag}{duration}."
