"""Power tuning against the local sandbox: the ``Invoker`` protocol of ``workbook.tuning.runner``.

``SandboxInvoker("api-processor")`` drives a function of the running local environment through
its engine (real handlers, real secrets extension, logs and metrics on the local endpoint).
``SandboxInvoker(FunctionConfig(...))`` runs a function in a sandbox of its own, in process
(benchmarks and tests). ``set_memory`` always starts fresh execution environments, as a new
Lambda version does; ``cleanup`` ends the ones tuning used. Memory is never changed in the
function's configuration: each size runs in its own environments, on a version of its own (as
aws-lambda-power-tuning publishes one per size), so its log streams read ``[N]`` and its rows stay
apart from the traffic on ``$LATEST``.
"""
from __future__ import annotations

import json
import urllib.request
from typing import Any

from infra.config import Settings
from workbook.local import manager
from workbook.local.client import invoke_remote, resolve_function
from workbook.local.errors import InvocationError, NotRunningError
from workbook.local.sandbox import FunctionConfig, Sandbox
from workbook.tuning.runner import InvocationResult


class SandboxInvoker:
    """Power tuning's invoker for the local sandbox (see ``workbook.tuning.Invoker``)."""

    def __init__(self, function: str | FunctionConfig, *, sandbox: Sandbox | None = None,
                 recorded: dict | None = None) -> None:
        self.memory_mb: int | None = None
        self.version: str | None = None
        self._versions_published = 0
        self._sizes: set[int] = set()
        if isinstance(function, FunctionConfig):
            self._config = function
            self._sandbox = sandbox or Sandbox()
            self._owns_sandbox = sandbox is None
            self._sandbox.register(function)
            self.function_name = function.function_name
            self._recorded = None
        else:
            self._recorded = recorded or manager.current()
            if self._recorded is None:
                raise NotRunningError("power tuning on the sandbox needs a running local environment; "
                                      "start one with `workbook local start`")
            resolved = resolve_function(self._recorded, function)
            if resolved is None:
                raise InvocationError(f"unknown function {function!r} in the local environment")
            self.function_name = resolved
            self._sandbox, self._config, self._owns_sandbox = None, None, False

    def set_memory(self, memory_mb: int) -> None:
        """Run the next invocations at ``memory_mb`` MB, in fresh execution environments."""
        self.memory_mb = int(memory_mb)
        self._sizes.add(self.memory_mb)
        self._versions_published += 1
        self.version = str(self._versions_published)
        self._expire()

    def invoke(self, payload: Any) -> InvocationResult:
        """One synchronous invocation; a function error is reported in ``error``, not raised."""
        if self._sandbox is not None:
            outcome = self._sandbox.invoke(self.function_name, payload, memory_mb=self.memory_mb,
                                           qualifier=self.version)
            if outcome.throttled:
                return InvocationResult(0.0, 0.0, None, None, "TooManyRequestsException")
            report = outcome.report
            return InvocationResult(report.duration_ms, float(report.billed_duration_ms), report.init_duration_ms,
                                    float(report.max_memory_used_mb), outcome.error_type if outcome.function_error else None,
                                    outcome.payload)
        result = invoke_remote(self._recorded, self.function_name, payload, memory_mb=self.memory_mb,
                               qualifier=self.version)
        headers = {k.lower(): v for k, v in result["headers"].items()}
        if result["status"] == 429:
            return InvocationResult(0.0, 0.0, None, None, "TooManyRequestsException")
        if result["status"] != 200 or "x-lwb-report" not in headers:
            raise InvocationError(f"invoke {self.function_name} failed with HTTP {result['status']}: "
                                  f"{result['payload'][:200]!r}")
        figures = json.loads(headers["x-lwb-report"])
        error = None
        if headers.get("x-amz-function-error"):
            try:
                error = json.loads(result["payload"]).get("errorType") or headers["x-amz-function-error"]
            except (ValueError, AttributeError):
                error = headers["x-amz-function-error"]
        return InvocationResult(float(figures["durationMs"]), float(figures["billedDurationMs"]),
                                figures.get("initDurationMs"), float(figures["maxMemoryUsedMB"]), error, result["payload"])

    def cleanup(self) -> None:
        """End the environments tuning used; the function's own configuration was never changed."""
        self._expire()
        if self._owns_sandbox and self._sandbox is not None:
            self._sandbox.close()

    def _expire(self) -> None:
        if self._sandbox is not None:
            self._sandbox.expire_idle(self.function_name)
            return
        url = f"{manager.control_url(self._recorded)}/expire?function={self.function_name}"
        with urllib.request.urlopen(urllib.request.Request(url, data=b"", method="POST"), timeout=30):
            pass


def for_function(settings: Settings, key: str) -> SandboxInvoker:
    """The sandbox invoker for function ``key`` of the local environment (started when none runs)."""
    recorded = manager.ensure_running(settings.env)
    return SandboxInvoker(settings.function_name(key), recorded=recorded)
