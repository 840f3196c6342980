"""The sandbox: functions' execution environments, reused warm, scaled out cold, expired when idle."""
from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict

from workbook.local.errors import LocalInputError
from workbook.local.sandbox import formats
from workbook.local.sandbox.environment import ExecutionEnvironment, Phase, PlatformSettings
from workbook.local.sandbox.formats import Report, Status
from workbook.local.sandbox.models import FunctionConfig, InvocationOutcome
from workbook.local.sandbox.telemetry import Telemetry

LAMBDA_NAMESPACE = "AWS/Lambda"
# Lambda's default account concurrency is 1,000; two cores run out of CPU long before.
DEFAULT_ACCOUNT_CONCURRENCY = 1000


class UnknownFunctionError(LocalInputError, KeyError):
    """No function of that name or key is registered in the sandbox."""

    def __str__(self) -> str:
        return str(self.args[0])


class Sandbox:
    """Runs registered functions in Lambda-like execution environments.

    ``invoke`` is synchronous and thread-safe: concurrent calls for one function scale out to
    new environments (each a cold start), up to its reserved concurrency; beyond, throttled.
    """

    def __init__(self, platform: PlatformSettings | None = None, telemetry: Telemetry | None = None, *,
                 idle_expiry_s: float = 300.0, account_concurrency: int = DEFAULT_ACCOUNT_CONCURRENCY) -> None:
        self.platform = platform or PlatformSettings()
        self.telemetry = telemetry or Telemetry(None)
        self.idle_expiry_s = idle_expiry_s
        self.account_concurrency = account_concurrency
        self._functions: dict[str, FunctionConfig] = {}
        self._aliases: dict[str, str] = {}
        # Warm pools per function, memory size and version: a tuning version's environments never serve traffic.
        self._idle: dict[tuple[str, int, str], list[ExecutionEnvironment]] = defaultdict(list)
        self._busy: set[ExecutionEnvironment] = set()
        self._in_flight: dict[str, int] = defaultdict(int)
        self._session_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    # -- registry -----------------------------------------------------------------------------
    def register(self, config: FunctionConfig) -> None:
        self._functions[config.function_name] = config
        self._aliases[config.key] = config.function_name
        self._aliases[config.function_arn] = config.function_name

    def function(self, name: str) -> FunctionConfig:
        """A registered function by name, key or ARN."""
        resolved = name if name in self._functions else self._aliases.get(name)
        if resolved is None:
            known = ", ".join(sorted(config.key for config in self._functions.values()))
            raise UnknownFunctionError(f"unknown function {name!r}; known: {known or 'none'}")
        return self._functions[resolved]

    @property
    def functions(self) -> list[FunctionConfig]:
        return list(self._functions.values())

    def warm_environments(self, name: str) -> int:
        config = self.function(name)
        with self._lock:
            return sum(len(envs) for (fn, *_), envs in self._idle.items() if fn == config.function_name)

    def idle_environments(self, name: str) -> list[ExecutionEnvironment]:
        """The warm environments of function ``name`` waiting for an invocation, at every memory size."""
        function_name = self.function(name).function_name
        with self._lock:
            return [env for (fn, *_), pool in self._idle.items() if fn == function_name for env in pool]

    def concurrency(self, name: str) -> int:
        return self._in_flight[self.function(name).function_name]

    def session_token_valid(self, token: str) -> bool:
        """Whether ``token`` is the AWS_SESSION_TOKEN of an environment this sandbox started."""
        return token in self._session_tokens

    # -- invoking -----------------------------------------------------------------------------
    def invoke(self, name: str, event, *, memory_mb: int | None = None, client_context=None,
               identity=None, qualifier: str | None = None) -> InvocationOutcome:
        """Invoke synchronously (RequestResponse); the outcome carries the payload and the REPORT.

        ``qualifier`` runs a published version (power tuning's): its log streams read ``[N]`` and its
        metrics are counted again under ``FunctionName`` + ``Resource`` (``name:N``), as on Lambda.
        """
        config = self.function(name).with_memory(memory_mb).with_version(qualifier)
        function_name = config.function_name
        request_id = str(uuid.uuid4())
        dims = {"FunctionName": function_name}
        with self._lock:
            total = sum(self._in_flight.values())
            reserved = config.reserved_concurrency
            if (reserved is not None and self._in_flight[function_name] >= reserved) or total >= self.account_concurrency:
                throttled = True
            else:
                throttled = False
                self._in_flight[function_name] += 1
                concurrent = self._in_flight[function_name]
                pool = self._idle[(function_name, config.memory_mb, config.version)]
                environment = pool.pop() if pool else None
                if environment is not None:
                    self._busy.add(environment)
                    environment.thaw()
        if throttled:
            self.telemetry.metric(LAMBDA_NAMESPACE, "Throttles", 1, "Count", dims)
            message = "Rate Exceeded." if reserved else "Account concurrency limit exceeded."
            return InvocationOutcome(request_id, function_name, json.dumps(
                {"errorType": "TooManyRequestsException", "errorMessage": message}).encode(),
                error_type="TooManyRequestsException", throttled=True)
        self.telemetry.metric(LAMBDA_NAMESPACE, "ConcurrentExecutions", concurrent, "Count", dims)
        self.telemetry.metric(LAMBDA_NAMESPACE, "ConcurrentExecutions", sum(self._in_flight.values()), "Count", {})
        try:
            return self._run(config, environment, request_id, event, client_context, identity)
        finally:
            with self._lock:
                self._in_flight[function_name] -= 1

    def _run(self, config: FunctionConfig, environment: ExecutionEnvironment | None, request_id: str, event,
             client_context, identity) -> InvocationOutcome:
        cold = environment is None
        log_format = config.log_format
        logs: list[tuple[int, str]] = []
        init_duration_ms = None
        if environment is None:
            environment = ExecutionEnvironment(config, self.platform)
            with self._lock:
                self._busy.add(environment)
                self._session_tokens.add(environment.session_token)
            init = environment.init()
            init_duration_ms = init.duration_ms
            logs.extend(init.logs)
            if init.kind != "ok":
                return self._finish(config, environment, request_id, init, logs, init_duration_ms, cold, init=True)
        logs.append((_now_ms(), formats.start(log_format, request_id)))
        trace_id = formats.trace_header(config.tracing_active)
        phase = environment.invoke(request_id, event, trace_id, client_context, identity)
        logs.extend(phase.logs)
        return self._finish(config, environment, request_id, phase, logs, init_duration_ms, cold,
                            trace_id=trace_id if config.tracing_active else None)

    def _finish(self, config: FunctionConfig, environment: ExecutionEnvironment, request_id: str, phase: Phase,
                logs: list[tuple[int, str]], init_duration_ms: float | None, cold: bool, init: bool = False,
                trace_id: str | None = None) -> InvocationOutcome:
        log_format = config.log_format
        status, error_type, function_error = Status.SUCCESS, None, None
        payload = phase.payload if isinstance(phase.payload, bytes) else (phase.payload or "null").encode()
        if init:
            # An INIT failure fails the invocation; the environment is discarded.
            error_type = {"timeout": "Runtime.InitTimeout", "oom": "Runtime.OutOfMemory"}.get(
                phase.kind, (phase.error or {}).get("errorType", "Runtime.Unknown"))
            status, function_error = Status.ERROR, "Unhandled"
            payload = json.dumps(phase.error or _platform_error(error_type, request_id, "init failed")).encode()
            logs.append((_now_ms(), formats.init_report(log_format, phase.duration_ms, error_type)))
            logs.append((_now_ms(), formats.start(log_format, request_id)))
        elif phase.kind == "error":
            status, function_error = Status.ERROR, "Unhandled"
            error_type = (phase.error or {}).get("errorType")
            payload = json.dumps(phase.error or {}).encode()
        elif phase.kind == "timeout":
            status, function_error, error_type = Status.TIMEOUT, "Unhandled", "Sandbox.Timedout"
            logs.append((_now_ms(), formats.timed_out(log_format, request_id, config.timeout_s)))
            payload = json.dumps(_platform_error(error_type, request_id,
                                                 f"Task timed out after {config.timeout_s:.2f} seconds")).encode()
        elif phase.kind in ("oom", "exit"):
            status, function_error = Status.ERROR, "Unhandled"
            error_type = "Runtime.OutOfMemory" if phase.kind == "oom" else "Runtime.ExitError"
            reason = "signal: killed" if phase.kind == "oom" else (phase.error or {}).get("errorMessage", "unknown")
            payload = json.dumps(_platform_error(error_type, request_id,
                                                 f"Runtime exited with error: {reason}")).encode()

        # Return a healthy environment to the warm pool; anything else is replaced on next demand.
        with self._lock:
            self._busy.discard(environment)
            if environment.alive and phase.kind in ("ok", "error") and not init and not self._closed.is_set():
                environment.freeze()
                self._idle[(config.function_name, config.memory_mb, config.version)].append(environment)
                reusable = True
            else:
                reusable = False
        if not reusable:
            environment.kill()

        report = Report(request_id=request_id, duration_ms=phase.duration_ms, memory_size_mb=config.memory_mb,
                        max_memory_used_mb=max(phase.max_memory_used_mb, 1), init_duration_ms=init_duration_ms,
                        status=status, error_type=error_type if status is not Status.SUCCESS else None,
                        trace_id=trace_id)
        end_line = formats.end(log_format, request_id)
        if end_line:
            logs.append((_now_ms(), end_line))
        logs.append((_now_ms(), formats.report(log_format, report)))
        self._publish(config, environment, logs, report, function_error)
        return InvocationOutcome(request_id, config.function_name, payload, function_error=function_error,
                                 error_type=error_type, report=report, cold_start=cold,
                                 log_lines=[message for _, message in logs], log_group=config.log_group_name,
                                 log_stream=environment.log_stream)

    def _publish(self, config: FunctionConfig, environment: ExecutionEnvironment, logs: list[tuple[int, str]],
                 report: Report, function_error: str | None) -> None:
        telemetry = self.telemetry
        telemetry.log(config.log_group_name, environment.log_stream, logs)
        for _, message in logs:
            telemetry.emf(message)
        dimension_sets = [{"FunctionName": config.function_name}]
        if config.version != "$LATEST":   # a qualified invocation is also counted per resource, as on Lambda
            dimension_sets.append({"FunctionName": config.function_name,
                                   "Resource": f"{config.function_name}:{config.version}"})
        for dims in dimension_sets:
            telemetry.metric(LAMBDA_NAMESPACE, "Invocations", 1, "Count", dims)
            telemetry.metric(LAMBDA_NAMESPACE, "Errors", 1 if function_error else 0, "Count", dims)
            telemetry.metric(LAMBDA_NAMESPACE, "Duration", round(report.duration_ms, 2), "Milliseconds", dims)

    # -- lifecycle ------------------------------------------------------------------------------
    def _reap(self) -> None:
        interval_s = min(max(self.idle_expiry_s / 4, 0.2), 5.0)
        while not self._closed.wait(interval_s):
            cutoff = time.monotonic() - self.idle_expiry_s
            expired: list[ExecutionEnvironment] = []
            with self._lock:
                for pool in self._idle.values():
                    keep = [env for env in pool if env.last_used >= cutoff and env.alive]
                    expired.extend(env for env in pool if env not in keep)
                    pool[:] = keep
            for environment in expired:
                environment.kill()

    def expire_idle(self, name: str | None = None) -> int:
        """End idle environments now (of one function, or all); the next invocations are cold."""
        function_name = self.function(name).function_name if name else None
        with self._lock:
            keys = [key for key in self._idle if function_name is None or key[0] == function_name]
            expired = [env for key in keys for env in self._idle.pop(key)]
        for environment in expired:
            environment.kill()
        return len(expired)

    def close(self) -> None:
        """End every environment, idle or busy."""
        self._closed.set()
        with self._lock:
            everything = [env for pool in self._idle.values() for env in pool] + list(self._busy)
            self._idle.clear()
        for environment in everything:
            environment.kill()
        self._reaper.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _platform_error(error_type: str, request_id: str, message: str) -> dict:
    """The response payload of an invocation the platform ended (not the function)."""
    return {"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: {message}"}


def _now_ms() -> int:
    return int(time.time() * 1000)
