"""Telemetry: what the functions report, as pandas.

    reports     REPORT lines (text or JSON platform.report, after any known prefix) -> one row per invocation
    jsoncompiled  JSON platform.report records in one compiled pass (_reportjson.c: the first JSON fast path)
    jsonfast    JSON platform.report records through Arrow's JSON reader (the second)
    fastpath    the numpy fast paths that parse REPORT lines in Lambda's own layout
    fields      the fields of a REPORT record: patterns, types, extraction by regular expression
    timestamps  times as integer ns, exact to the unit the source gives; the prefixes tools write
    logs      REPORT lines from CloudWatch Logs (Logs Insights, or FilterLogEvents)
    insights_queries  the aggregate route's Logs Insights queries (stats by function, version, memory, bin; top durations)
    insights  running Logs Insights queries: concurrent within a limit, backoff when throttled, polled
    aggregate the aggregate route: the window's figures per function, version, memory size and bin, and the top durations
    route     which route (raw or aggregate) from one GetMetricData of Invocations, chosen before any log query
    metrics   CloudWatch metrics (GetMetricData, batched), percentiles from REPORT lines where needed
    notes     fallbacks said once, as prose in notebooks
"""
from workbook.telemetry.logs import LogsError, load_for_env, load_reports, log_group_name
from workbook.telemetry.metrics import MetricQuery, MetricsError, env_queries, load_metrics
from workbook.telemetry.reports import COLUMNS, StartType, Status, parse_reports

__all__ = ["COLUMNS", "LogsError", "MetricQuery", "MetricsError", "StartType", "Status", "env_queries", "load_for_env",
           "load_metrics", "load_reports", "log_group_name", "parse_reports"]
