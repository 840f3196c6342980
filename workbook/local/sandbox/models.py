"""The sandbox's value types: a function's configuration and the outcome of one invocation."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from enum import Enum

from workbook.local.sandbox.formats import LogFormat, Report


class InvocationType(str, Enum):
    """Lambda's invocation types."""

    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"
    DRY_RUN = "DryRun"


@dataclass(frozen=True)
class FunctionConfig:
    """What the sandbox needs to run one function: its settings from the plan and params."""

    key: str
    function_name: str
    memory_mb: int
    timeout_s: float
    handler: str
    environment: dict[str, str]
    code_paths: tuple[str, ...]
    reserved_concurrency: int | None = None
    log_format: LogFormat = LogFormat.TEXT
    log_group: str = ""
    application_log_level: str | None = None
    tracing_active: bool = False
    region: str = "us-east-1"
    account_id: str = "123456789012"
    version: str = "$LATEST"        # the qualifier that runs: "$LATEST", or a published version's number


    @property
    def function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return self.log_group or f"/aws/lambda/{self.function_name}"

    def with_memory(self, memory_mb: int | None) -> FunctionConfig:
        return self if not memory_mb or memory_mb == self.memory_mb else replace(self, memory_mb=memory_mb)

    def with_version(self, version: str | None) -> FunctionConfig:
        """The function as a published version runs it (power tuning's versions); None keeps ``$LATEST``."""
        return self if not version or version == self.version else replace(self, version=str(version))


@dataclass
class InvocationOutcome:
    """What one invocation returned and what it cost."""

    request_id: str
    function_name: str
    payload: bytes
    function_error: str | None = None       # "Unhandled", as the X-Amz-Function-Error header
    error_type: str | None = None
    report: Report | None = None
    cold_start: bool = False
    throttled: bool = False
    log_lines: list[str] = field(default_factory=list)
    log_group: str = ""                      # where the full logs went (CloudWatch Logs on the local endpoint)
    log_stream: str = ""

    @property
    def status_code(self) -> int:
        return 429 if self.throttled else 200

    @property
    def ok(self) -> bool:
        return not self.throttled and self.function_error is None

    def json(self):
        """The payload parsed as JSON (None for an empty payload)."""
        return json.loads(self.payload) if self.payload else None
