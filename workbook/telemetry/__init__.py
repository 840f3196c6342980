"""Telemetry: what the functions report, as pandas.

    reports   REPORT lines (text or JSON platform.report) -> one row per invocation
    fastpath  the numpy fast paths that parse REPORT lines in Lambda's own layout
    logs      REPORT lines from CloudWatch Logs (Logs Insights, or FilterLogEvents)
    metrics   CloudWatch metrics (GetMetricData, batched), percentiles from REPORT lines where needed
    notes     fallbacks said once, as prose in notebooks
"""
from workbook.telemetry.logs import LogsError, load_for_env, load_reports, log_group_name
from workbook.telemetry.metrics import MetricQuery, MetricsError, env_queries, load_metrics
from workbook.telemetry.reports import COLUMNS, Status, parse_reports

__all__ = ["COLUMNS", "LogsError", "MetricQuery", "MetricsError", "Status", "env_queries", "load_for_env",
           "load_metrics", "load_reports", "log_group_name", "parse_reports"]
