"""Ships what Lambda writes to CloudWatch: log events and metrics, off the invocation's path.

Log events are batched per stream and sent with PutLogEvents about every half second.
Metrics are gathered per (namespace, name, dimensions) and sent with PutMetricData every few
seconds as one statistic set (SampleCount, Sum, Minimum, Maximum) per series. Not one sample per
invocation: moto's GetMetricData scans every stored datum for every query and period, so per-sample
data made 02-metrics time out after a few minutes of traffic. Percentiles never came from moto
(it answers them with HTTP 500); they come from the REPORT lines, as DESIGN.md says.
Handlers' Embedded Metric Format lines become custom metrics, as CloudWatch Logs would extract.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

_log = logging.getLogger(__name__)
# CloudWatch Logs' limit on one event (256 KB less the 26 bytes of per-event overhead).
MAX_EVENT_BYTES = 256 * 1024 - 26


def _truncate(message: str) -> str:
    """Cut an over-long log event as Lambda does, rather than lose the whole batch."""
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_EVENT_BYTES:
        return message
    return encoded[:MAX_EVENT_BYTES].decode("utf-8", "ignore")


class Telemetry:
    """Collects log events and metric samples and sends them in a background thread.

    ``client_factory(service)`` returns a boto3 client (``workbook.aws.client``); with None the
    telemetry is kept in memory only (``events``), which the benchmarks and unit tests use.
    """

    def __init__(self, client_factory: Callable[[str], Any] | None = None, *,
                 log_interval_s: float = 0.5, metric_interval_s: float = 5.0, keep_in_memory: bool = False) -> None:
        self._client_factory = client_factory
        self._keep = keep_in_memory or client_factory is None
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self._metrics: dict[tuple, list[float]] = defaultdict(list)
        self._streams: set[tuple[str, str]] = set()
        self._groups: set[str] = set()
        self.events: list[tuple[str, str, int, str]] = []      # (group, stream, ms, message) when kept
        self.metric_samples: list[tuple[str, str, dict, float]] = []
        self._log_interval_s, self._metric_interval_s = log_interval_s, metric_interval_s
        self._stop = threading.Event()
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if client_factory is not None:
            self._thread = threading.Thread(target=self._run, name="telemetry", daemon=True)
            self._thread.start()

    # -- collecting ---------------------------------------------------------------------------
    def log(self, group: str, stream: str, events: Iterable[tuple[int, str]]) -> None:
        batch = [{"timestamp": stamp, "message": _truncate(message)} for stamp, message in events if message]
        with self._lock:
            if self._keep:
                self.events.extend((group, stream, e["timestamp"], e["message"]) for e in batch)
            if self._client_factory is not None:
                self._logs[(group, stream)].extend(batch)

    def metric(self, namespace: str, name: str, value: float, unit: str = "None",
               dimensions: dict[str, str] | None = None) -> None:
        dims = tuple(sorted((dimensions or {}).items()))
        with self._lock:
            if self._keep:
                self.metric_samples.append((namespace, name, dict(dims), value))
            if self._client_factory is not None:
                self._metrics[(namespace, name, unit, dims)].append(float(value))

    def emf(self, line: str) -> None:
        """Turn one Embedded Metric Format log line into metric samples (ignore anything else)."""
        if not line.startswith("{") or '"_aws"' not in line:
            return
        try:
            document = json.loads(line)
            directives = document["_aws"]["CloudWatchMetrics"]
        except (ValueError, KeyError, TypeError):
            return
        for directive in directives:
            namespace = directive.get("Namespace", "aws-embedded-metrics")
            for dimension_set in directive.get("Dimensions") or [[]]:
                dims = {name: str(document.get(name, "")) for name in dimension_set}
                for definition in directive.get("Metrics", []):
                    name = definition.get("Name")
                    values = document.get(name)
                    for value in values if isinstance(values, list) else [values]:
                        if isinstance(value, (int, float)):
                            self.metric(namespace, name, value, definition.get("Unit", "None"), dims)

    # -- sending ------------------------------------------------------------------------------
    def _run(self) -> None:
        next_metrics = time.monotonic() + self._metric_interval_s
        while not self._stop.wait(self._log_interval_s):
            try:
                self._send_logs()
                if time.monotonic() >= next_metrics:
                    self._send_metrics()
                    next_metrics = time.monotonic() + self._metric_interval_s
            except Exception:  # noqa: BLE001 - the endpoint went away; telemetry must never break invocations
                _log.debug("telemetry send failed", exc_info=True)

    def flush(self) -> None:
        """Send everything collected so far, now."""
        if self._client_factory is None:
            return
        self._send_logs()
        self._send_metrics()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - a last flush at shutdown is best effort
            _log.debug("final telemetry flush failed", exc_info=True)

    def _send_logs(self) -> None:
        with self._lock:
            pending, self._logs = self._logs, defaultdict(list)
        if not pending:
            return
        with self._send_lock:
            logs = self._client_factory("logs")
            for (group, stream), events in pending.items():
                self._ensure_stream(logs, group, stream)
                events.sort(key=lambda event: event["timestamp"])
                for start in range(0, len(events), 5000):
                    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[start:start + 5000])

    def _ensure_stream(self, logs, group: str, stream: str) -> None:
        if (group, stream) in self._streams:
            return
        if group not in self._groups:
            try:
                logs.create_log_group(logGroupName=group)
            except logs.exceptions.ResourceAlreadyExistsException:
                pass
            self._groups.add(group)
        try:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        self._streams.add((group, stream))

    def _send_metrics(self) -> None:
        with self._lock:
            pending, self._metrics = self._metrics, defaultdict(list)
        if not pending:
            return
        with self._send_lock:
            cloudwatch = self._client_factory("cloudwatch")
            by_namespace: dict[str, list[dict]] = defaultdict(list)
            now = time.time()
            for (namespace, name, unit, dims), values in pending.items():
                by_namespace[namespace].append({
                    "MetricName": name, "Unit": unit, "Timestamp": now,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in dims],
                    "StatisticValues": {"SampleCount": float(len(values)), "Sum": float(sum(values)),
                                        "Minimum": float(min(values)), "Maximum": float(max(values))},
                })
            for namespace, data in by_namespace.items():
                for start in range(0, len(data), 20):
                    cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start:start + 20])
