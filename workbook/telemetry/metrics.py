"""CloudWatch metrics into a tidy DataFrame: function, metric, stat, timestamp, value, source.

``load_metrics(queries, start, end, period_s)`` runs GetMetricData with the fewest calls the
API allows: each call carries at most 500 queries and returns at most 100,800 datapoints, so
queries are packed (and the time range split when a single query is too long) to reach the
lower bound ``max(ceil(datapoints / 100,800), ceil(queries / 500))`` whenever a regular packing
can. ``plan_calls`` shows the packing without calling anything.

``function_queries(...)`` / ``env_queries(settings)`` build the standard set: Invocations,
Errors, Throttles, Duration (Average, p50, p90, p99), ConcurrentExecutions, the SQS queues'
ApproximateAgeOfOldestMessage, the DLQs' ApproximateNumberOfMessagesVisible, and the
Powertools ``ColdStart`` metric of the ``LambdaWorkbook`` namespace.

The local endpoint (moto) answers HTTP 500 to percentile statistics: there the percentiles
come from REPORT lines (``workbook.logs``) computed in pandas, with ``source = "logs"``; the
fallback is said once.
"""
from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from infra import specs
from infra.config import Settings
from infra.environment import METRICS_NAMESPACE
from workbook import aws
from workbook.errors import WorkbookError
from workbook.telemetry.logs import load_reports, split_traffic
from workbook.telemetry.notes import note_once

__all__ = [
    "MetricQuery",
    "MetricsError",
    "CallPlan",
    "MAX_QUERIES_PER_CALL",
    "MAX_DATAPOINTS_PER_CALL",
    "function_queries",
    "queue_queries",
    "env_queries",
    "plan_calls",
    "minimum_calls",
    "load_metrics",
    "percentiles_from_reports",
]

log = logging.getLogger(__name__)

MAX_QUERIES_PER_CALL = 500
MAX_DATAPOINTS_PER_CALL = 100_800
LAMBDA_NAMESPACE = "AWS/Lambda"
SQS_NAMESPACE = "AWS/SQS"
COLUMNS = ["function", "metric", "stat", "timestamp", "value", "source"]
_PERCENTILE = re.compile(r"^(p|tm|wm|tc|ts|pr)\d+(\.\d+)?$|^(TM|WM|TC|TS|PR)\(")


class MetricsError(WorkbookError):
    """GetMetricData failed (denied, throttled after retries, bad input); the message says what to do."""


@dataclass(frozen=True)
class MetricQuery:
    """One metric and statistic; ``subject`` is the function (or queue) the row belongs to."""

    subject: str
    namespace: str
    metric: str
    stat: str
    dimensions: tuple[tuple[str, str], ...]
    label: str = ""

    @property
    def is_percentile(self) -> bool:
        return bool(_PERCENTILE.match(self.stat))

    def to_api(self, query_id: str, period_s: int) -> dict:
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions],
                },
                "Period": int(period_s),
                "Stat": self.stat,
            },
            "Label": self.label or f"{self.subject}|{self.metric}|{self.stat}",
            "ReturnData": True,
        }


LAMBDA_METRIC_STATS: tuple[tuple[str, str], ...] = (
    ("Invocations", "Sum"),
    ("Errors", "Sum"),
    ("Throttles", "Sum"),
    ("Duration", "Average"),
    ("Duration", "p50"),
    ("Duration", "p90"),
    ("Duration", "p99"),
    ("ConcurrentExecutions", "Maximum"),
)


def function_queries(function_name: str, key: str | None = None, *, subject: str | None = None,
                     stats: Iterable[tuple[str, str]] = LAMBDA_METRIC_STATS, cold_start: bool = True,
                     namespace: str = "LambdaWorkbook") -> list[MetricQuery]:
    """The standard Lambda metrics of one deployed function, plus its Powertools ColdStart count."""
    subject = subject or key or function_name
    queries = [MetricQuery(subject, LAMBDA_NAMESPACE, metric, stat, (("FunctionName", function_name),))
               for metric, stat in stats]
    if cold_start:
        queries.append(MetricQuery(subject, namespace, "ColdStart", "Sum",
                                   (("function_name", function_name), ("service", key or function_name))))
    return queries


def queue_queries(queue_name: str, *, subject: str | None = None, dlq: bool = False) -> list[MetricQuery]:
    """Age of the oldest message for a queue; messages visible (depth) for a DLQ."""
    subject = subject or queue_name
    if dlq:
        return [MetricQuery(subject, SQS_NAMESPACE, "ApproximateNumberOfMessagesVisible", "Maximum",
                            (("QueueName", queue_name),))]
    return [MetricQuery(subject, SQS_NAMESPACE, "ApproximateAgeOfOldestMessage", "Maximum", (("QueueName", queue_name),))]


def env_queries(settings: Settings, keys: Sequence[str] | None = None, *, queues: bool = True) -> list[MetricQuery]:
    """Every standard query of an environment: its functions, its queues and its DLQs."""
    queries: list[MetricQuery] = []
    for key in keys or specs.FUNCTION_KEYS:
        queries.extend(function_queries(settings.function_name(key), key, namespace=METRICS_NAMESPACE))
    if queues:
        for queue in ("task", "notification"):
            queries.extend(queue_queries(settings.name(queue), subject=f"{queue}-queue"))
            queries.extend(queue_queries(settings.name(f"{queue}-dlq"), subject=f"{queue}-dlq", dlq=True))
        queries.extend(queue_queries(settings.name("events-dlq"), subject="events-dlq", dlq=True))
        for key in keys or specs.FUNCTION_KEYS:
            if specs.spec(key).is_async:
                queries.extend(queue_queries(settings.name(f"{key}-failures"), subject=f"{key}-failures", dlq=True))
    return queries


# ---------------------------------------------------------------------------------------------
# Packing queries into calls.
# ---------------------------------------------------------------------------------------------
@dataclass
class CallPlan:
    """Calls to make: each a time window and the indices of the queries it carries."""

    calls: list[tuple[int, int, list[int]]]   # (start epoch s, end epoch s, query indices)
    points_per_query: int
    lower_bound: int

    @property
    def count(self) -> int:
        return len(self.calls)


def _points(span_s: int, period_s: int) -> int:
    return max(math.ceil(span_s / period_s), 0)


def minimum_calls(n_queries: int, span_s: int, period_s: int) -> int:
    """The lower bound: ``max(ceil(datapoints / 100,800), ceil(queries / 500))`` (0 for nothing to fetch)."""
    if n_queries == 0 or span_s <= 0:
        return 0
    total = n_queries * _points(span_s, period_s)
    return max(math.ceil(total / MAX_DATAPOINTS_PER_CALL), math.ceil(n_queries / MAX_QUERIES_PER_CALL))


def plan_calls(n_queries: int, start_s: int, end_s: int, period_s: int) -> CallPlan:
    """Pack ``n_queries`` over [start, end) into the fewest GetMetricData calls a grid packing allows.

    The time range is cut into ``s`` windows aligned to the period, and each window's queries
    into groups that fit 100,800 datapoints and 500 queries; ``s`` is chosen to minimise calls.
    """
    span = max(end_s - start_s, 0)
    points = _points(span, period_s)
    bound = minimum_calls(n_queries, span, period_s)
    if bound == 0:
        return CallPlan([], points, 0)
    best: tuple[int, int, int] | None = None  # (calls, windows, queries per call)
    max_windows = min(points, 4096)
    for windows in range(1, max_windows + 1):
        per_window = math.ceil(points / windows)
        per_call = min(MAX_QUERIES_PER_CALL, MAX_DATAPOINTS_PER_CALL // per_window)
        if per_call == 0:
            continue
        calls = windows * math.ceil(n_queries / per_call)
        if best is None or calls < best[0]:
            best = (calls, windows, per_call)
            if calls == bound:
                break
    assert best is not None
    _, windows, per_call = best
    per_window = math.ceil(points / windows)
    calls = []
    for w in range(windows):
        w_start = start_s + w * per_window * period_s
        w_end = min(start_s + (w + 1) * per_window * period_s, end_s)
        if w_start >= w_end:
            continue
        # Spread the queries evenly over the calls of a window (same count, better balance).
        groups = math.ceil(n_queries / per_call)
        size = math.ceil(n_queries / groups)
        for g in range(groups):
            indices = list(range(g * size, min((g + 1) * size, n_queries)))
            if indices:
                calls.append((w_start, w_end, indices))
    return CallPlan(calls, points, bound)


# ---------------------------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------------------------
def _epoch_s(value: Any) -> int:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1_000_000_000)


def load_metrics(
    queries: Sequence[MetricQuery],
    start: Any,
    end: Any,
    period_s: int = 60,
    *,
    region: str | None = None,
    client: Any = None,
    reports: pd.DataFrame | None = None,
    report_loader: Any = None,
) -> pd.DataFrame:
    """GetMetricData for ``queries`` over [start, end) at ``period_s``; a tidy frame (see ``COLUMNS``).

    Percentile statistics that the endpoint cannot answer (the local endpoint) come from
    REPORT rows: ``reports`` if given, else ``report_loader(function_names, start, end)``
    (default: ``workbook.logs.load_reports``); their ``source`` is ``"logs"``.
    ``df.attrs["calls"]`` is the number of GetMetricData calls made.
    """
    start_s, end_s = _epoch_s(start), _epoch_s(end)
    if period_s <= 0 or (period_s < 60 and period_s not in (1, 5, 10, 30)):
        raise MetricsError(f"period_s {period_s} is not a CloudWatch period: use 1, 5, 10, 30 or a multiple of 60")
    if end_s <= start_s:
        raise MetricsError(f"the time range is empty: start {start} is not before end {end}")
    client = client or aws.client("cloudwatch", region)
    queries = list(queries)
    fallback: list[MetricQuery] = []
    if aws.is_local():
        fallback = [q for q in queries if q.is_percentile]
        if fallback:
            note_once("metrics-percentiles-local",
                      "workbook.metrics: the local endpoint cannot serve percentile statistics (HTTP 500); "
                      "computing p50/p90/p99 from REPORT lines instead (source = 'logs').")
        queries = [q for q in queries if not q.is_percentile]
    try:
        frame, calls = _get_metric_data(client, queries, start_s, end_s, period_s)
    except MetricsError as exc:
        # a ClientError carries the HTTP answer; a timeout or a connection error has none (response None)
        answer = getattr(exc.__cause__, "response", None) or {}
        status = answer.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if not (status >= 500 and any(q.is_percentile for q in queries)):
            raise
        # An endpoint that fails on percentiles (moto answers 500): the rest from CloudWatch, percentiles from logs.
        note_once("metrics-percentiles-500",
                  f"workbook.metrics: GetMetricData failed on percentile statistics (HTTP {status}); "
                  "computing them from REPORT lines instead (source = 'logs').")
        fallback = [q for q in queries if q.is_percentile]
        queries = [q for q in queries if not q.is_percentile]
        frame, calls = _get_metric_data(client, queries, start_s, end_s, period_s)
    if fallback:
        from_logs = _percentiles_from_logs(fallback, start_s, end_s, period_s, reports, report_loader)
        if len(from_logs):
            frame = pd.concat([frame, from_logs], ignore_index=True) if len(frame) else from_logs
    frame = frame.sort_values(["function", "metric", "stat", "timestamp"], kind="stable").reset_index(drop=True)
    frame.attrs["calls"] = calls
    return frame


def _get_metric_data(client: Any, queries: list[MetricQuery], start_s: int, end_s: int,
                     period_s: int) -> tuple[pd.DataFrame, int]:
    plan = plan_calls(len(queries), start_s, end_s, period_s)
    parts: list[pd.DataFrame] = []
    calls = 0
    for w_start, w_end, indices in plan.calls:
        api_queries = [queries[i].to_api(f"q{i}", period_s) for i in indices]
        token = None
        while True:
            kwargs = {
                "MetricDataQueries": api_queries,
                "StartTime": datetime.fromtimestamp(w_start, tz=UTC),
                "EndTime": datetime.fromtimestamp(w_end, tz=UTC),
                "ScanBy": "TimestampAscending",
            }
            if token:
                kwargs["NextToken"] = token
            calls += 1
            try:
                answer = client.get_metric_data(**kwargs)
            except Exception as exc:
                raise _translate(exc) from exc
            for result in answer.get("MetricDataResults", []):
                index = int(result["Id"][1:])
                q = queries[index]
                stamps = result.get("Timestamps", [])
                if not stamps:
                    continue
                parts.append(pd.DataFrame({
                    "function": q.subject, "metric": q.metric, "stat": q.stat,
                    "timestamp": pd.to_datetime(stamps, utc=True), "value": np.asarray(result.get("Values", []), dtype=float),
                    "source": "cloudwatch",
                }))
            token = answer.get("NextToken")
            if not token:
                break
    if not parts:
        return _empty(), calls
    frame = pd.concat(parts, ignore_index=True)
    # Split windows may meet on one timestamp; keep one value per (query, timestamp).
    frame = frame.drop_duplicates(subset=["function", "metric", "stat", "timestamp"], keep="first")
    return frame, calls


def _translate(exc: Exception) -> Exception:
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("AccessDenied", "AccessDeniedException"):
            return MetricsError(f"GetMetricData was denied ({code}): grant cloudwatch:GetMetricData to the caller")
        if code in ("Throttling", "ThrottlingException", "LimitExceeded", "TooManyRequestsException"):
            return MetricsError(f"GetMetricData was throttled after the client's retries ({code}); "
                                "ask for a longer period or a shorter range, or try later")
        return MetricsError(f"GetMetricData failed: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return MetricsError(f"GetMetricData failed: {exc}")
    return exc


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "function": pd.Series(dtype="object"), "metric": pd.Series(dtype="object"), "stat": pd.Series(dtype="object"),
        "timestamp": pd.Series(dtype="datetime64[ns, UTC]"), "value": pd.Series(dtype="float64"),
        "source": pd.Series(dtype="object"),
    })


def percentiles_from_reports(reports: pd.DataFrame, period_s: int, percentiles: Sequence[float] = (50, 90, 99),
                             subject_of: dict[str, str] | None = None) -> pd.DataFrame:
    """Duration percentiles per function and period from REPORT rows, in the tidy layout (source 'logs')."""
    if reports is None or reports.empty:
        return _empty()
    frame = reports[["function", "timestamp", "duration_ms"]].dropna(subset=["timestamp"]).copy()
    frame["timestamp"] = frame["timestamp"].dt.floor(f"{int(period_s)}s")
    grouped = frame.groupby(["function", "timestamp"], observed=True)["duration_ms"]
    parts = []
    for p in percentiles:
        values = grouped.quantile(p / 100.0).rename("value").reset_index()
        values["stat"] = f"p{p:g}"
        parts.append(values)
    out = pd.concat(parts, ignore_index=True)
    if subject_of:
        out["function"] = out["function"].map(lambda f: subject_of.get(f, f))
    out["metric"] = "Duration"
    out["source"] = "logs"
    return out[COLUMNS]


def _percentiles_from_logs(queries: list[MetricQuery], start_s: int, end_s: int, period_s: int,
                           reports: pd.DataFrame | None, loader: Any) -> pd.DataFrame:
    wanted = {}
    for q in queries:
        name = dict(q.dimensions).get("FunctionName")
        if name and q.metric == "Duration":
            wanted.setdefault(name, (q.subject, set()))[1].add(q.stat)
    if not wanted:
        return _empty()
    if reports is None:
        if loader is None:
            loader = load_reports
        reports = loader(list(wanted), start_s * 1000, end_s * 1000)
    if reports.empty:
        return _empty()
    reports, _ = split_traffic(reports)   # power tuning's versions are not the function's traffic
    reports = reports[reports["function"].isin(list(wanted))]
    stamp = reports["timestamp"]
    reports = reports[(stamp >= pd.Timestamp(start_s, unit="s", tz="UTC")) & (stamp < pd.Timestamp(end_s, unit="s", tz="UTC"))]
    percentiles = sorted({float(s[1:]) for _, stats in wanted.values() for s in stats if s.startswith("p")})
    out = percentiles_from_reports(reports, period_s, percentiles, {name: subj for name, (subj, _) in wanted.items()})
    keep = {(subj, stat) for subj, stats in wanted.values() for stat in stats}
    return out[[(f, s) in keep for f, s in zip(out["function"], out["stat"], strict=True)]].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Power tuning's invocations, apart from the traffic.
# ---------------------------------------------------------------------------------------------
TUNING_COUNTED = ("Invocations", "Errors", "Throttles")


def tuning_counts(settings: Settings, keys: Sequence[str], start: Any, end: Any, *, client: Any = None,
                  traffic_qualifiers: Iterable[str] = ("live",)) -> pd.DataFrame:
    """Invocations, errors and throttles over [start, end) that ran on power tuning's versions, per function key.

    Lambda counts a qualified invocation under ``FunctionName`` (every version together) and again
    under ``FunctionName`` + ``Resource`` (``name:qualifier``). The qualified resources other than the
    traffic's (``traffic_qualifiers``: the ``live`` alias) are power tuning's ``RAM<mb>`` aliases (on
    AWS) or versions (the local sandbox); their sums are what ``health.per_function`` takes away.
    Where ListMetrics is denied, a note says the counts may include tuning. Columns: function, metric, value.
    """
    client = client or aws.client("cloudwatch", settings.params.aws_region)
    start_s, end_s = _epoch_s(start), _epoch_s(end)
    period_s = max(60, -(-(end_s - start_s) // 60) * 60)
    queries: list[MetricQuery] = []
    for key in keys:
        name = settings.function_name(key)
        traffic = {name, *(f"{name}:{q}" for q in traffic_qualifiers)}
        resources = set()
        try:
            for page in client.get_paginator("list_metrics").paginate(
                    Namespace=LAMBDA_NAMESPACE, MetricName="Invocations",
                    Dimensions=[{"Name": "FunctionName", "Value": name}]):
                for metric in page.get("Metrics", []):
                    dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
                    if set(dims) == {"FunctionName", "Resource"} and dims["Resource"] not in traffic:
                        resources.add(dims["Resource"])
        except (ClientError, BotoCoreError) as exc:
            note_once("metrics-tuning-resources", f"workbook.metrics: cannot list {name}'s metrics by version "
                      f"({_translate(exc)}); its counts may include power tuning's invocations.")
            continue
        # one subject per resource: the frame keeps one value per subject, metric and time
        queries += [MetricQuery(f"{key}\t{resource}", LAMBDA_NAMESPACE, metric, "Sum",
                                (("FunctionName", name), ("Resource", resource)))
                    for resource in sorted(resources) for metric in TUNING_COUNTED]
    if not queries:
        return pd.DataFrame(columns=["function", "metric", "value"])
    frame, _ = _get_metric_data(client, queries, start_s, end_s, period_s)
    if frame.empty:
        return pd.DataFrame(columns=["function", "metric", "value"])
    frame["function"] = frame["function"].str.split("\t").str[0]
    return frame.groupby(["function", "metric"], as_index=False)["value"].sum()
