"""EMF metrics (Powertools Metrics): the cold-start metric and the business metrics.

Handlers decorate their entry point with ``metrics.log_metrics(capture_cold_start_metric=True)``;
the metrics are flushed as one EMF line at the end of each invocation. The namespace comes from
``POWERTOOLS_METRICS_NAMESPACE`` (``LambdaWorkbook``, set by infra).
"""
from __future__ import annotations

import os

from aws_lambda_powertools.metrics import Metrics, MetricUnit

metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "LambdaWorkbook",
    service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "workbook",
)


def count(name: str, value: float = 1) -> None:
    """Add a business count metric (unit Count) to this invocation's EMF record."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


__all__ = ["MetricUnit", "count", "metrics"]
