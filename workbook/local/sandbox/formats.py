"""The platform lines Lambda writes around each invocation, in its text and JSON log formats."""
from __future__ import annotations

import json
import math
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

RUNTIME_VERSION = "python:3.11.v-local"
RUNTIME_VERSION_ARN = "arn:aws:lambda:us-east-1::runtime:workbook-local-sandbox"


class Status(str, Enum):
    """How an invocation ended, as the REPORT line's ``Status`` (success has none in text)."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"


class LogFormat(str, Enum):
    TEXT = "Text"
    JSON = "JSON"


@dataclass(frozen=True)
class Report:
    """The figures of one REPORT line."""

    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: Status = Status.SUCCESS
    error_type: str | None = None
    trace_id: str | None = None
    # Since 1 August 2025 Lambda bills the INIT phase of on-demand zip functions too, and the
    # REPORT's Billed Duration includes it (as it always did for container images).
    init_billed: bool = True

    @property
    def billed_duration_ms(self) -> int:
        """Lambda bills per 1 ms, rounded up; INIT included on cold starts when it is billed."""
        init_ms = self.init_duration_ms if self.init_billed and self.init_duration_ms else 0.0
        return max(math.ceil(self.duration_ms + init_ms), 1)

    def text(self) -> str:
        parts = [
            f"REPORT RequestId: {self.request_id}",
            f"Duration: {self.duration_ms:.2f} ms",
            f"Billed Duration: {self.billed_duration_ms} ms",
            f"Memory Size: {self.memory_size_mb} MB",
            f"Max Memory Used: {self.max_memory_used_mb} MB",
        ]
        if self.init_duration_ms is not None:
            parts.append(f"Init Duration: {self.init_duration_ms:.2f} ms")
        parts.extend(status_fields(self.status, self.error_type))
        line = "\t".join(parts) + "\t"
        if self.trace_id:
            root = self.trace_id.split(";")[0].removeprefix("Root=")
            line += f"\nXRAY TraceId: {root}\tSegmentId: {secrets.token_hex(8)}\tSampled: true\t"
        return line

    def record(self) -> dict:
        metrics = {
            "durationMs": round(self.duration_ms, 3),
            "billedDurationMs": self.billed_duration_ms,
            "memorySizeMB": self.memory_size_mb,
            "maxMemoryUsedMB": self.max_memory_used_mb,
        }
        if self.init_duration_ms is not None:
            metrics["initDurationMs"] = round(self.init_duration_ms, 3)
        record = {"requestId": self.request_id, "metrics": metrics, "status": self.status.value}
        if self.error_type and self.status is not Status.SUCCESS:
            record["errorType"] = self.error_type
        return record


def status_fields(status: Status, error_type: str | None) -> list[str]:
    """The text REPORT's status fields: ``Status: timeout``, or ``Status: error`` with ``Error Type`` for a
    platform-level failure (``Runtime.OutOfMemory``...); a handler's own exception adds none."""
    if status is Status.TIMEOUT:
        return ["Status: timeout"]
    if status is Status.ERROR and error_type and error_type.startswith(("Runtime.", "Sandbox.")):
        return ["Status: error", f"Error Type: {error_type}"]
    return []


def iso_time(epoch_s: float | None = None) -> str:
    moment = datetime.fromtimestamp(epoch_s if epoch_s is not None else time.time(), tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _platform(kind: str, record: dict) -> str:
    return json.dumps({"time": iso_time(), "type": kind, "record": record}, separators=(",", ":"))


def init_start(log_format: LogFormat, function_name: str) -> str:
    if log_format is LogFormat.JSON:
        return _platform("platform.initStart", {
            "initializationType": "on-demand", "phase": "init", "runtimeVersion": RUNTIME_VERSION,
            "runtimeVersionArn": RUNTIME_VERSION_ARN, "functionName": function_name, "functionVersion": "$LATEST"})
    return f"INIT_START Runtime Version: {RUNTIME_VERSION}\tRuntime Version ARN: {RUNTIME_VERSION_ARN}"


def init_report(log_format: LogFormat, duration_ms: float, error_type: str) -> str:
    """The line Lambda writes when INIT fails (a successful INIT shows in the first REPORT)."""
    if log_format is LogFormat.JSON:
        return _platform("platform.initReport", {
            "initializationType": "on-demand", "phase": "init", "status": "error", "errorType": error_type,
            "metrics": {"durationMs": round(duration_ms, 3)}})
    return f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: error\tError Type: {error_type}"


def start(log_format: LogFormat, request_id: str) -> str:
    if log_format is LogFormat.JSON:
        return _platform("platform.start", {"requestId": request_id, "version": "$LATEST"})
    return f"START RequestId: {request_id} Version: $LATEST"


def end(log_format: LogFormat, request_id: str) -> str | None:
    if log_format is LogFormat.JSON:
        return None  # the JSON format has no END record; platform.report closes the invocation
    return f"END RequestId: {request_id}"


def report(log_format: LogFormat, figures: Report) -> str:
    if log_format is LogFormat.JSON:
        return _platform("platform.report", figures.record())
    return figures.text()


def timed_out(log_format: LogFormat, request_id: str, timeout_s: float) -> str:
    message = f"Task timed out after {timeout_s:.2f} seconds"
    if log_format is LogFormat.JSON:
        return json.dumps({"timestamp": iso_time(), "level": "ERROR", "requestId": request_id, "message": message})
    return f"{iso_time()} {request_id} {message}"


def trace_header(sampled: bool) -> str:
    """An X-Ray trace header like the one Lambda puts in ``_X_AMZN_TRACE_ID``."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled={1 if sampled else 0};Lineage=1:{secrets.token_hex(4)}:0"
