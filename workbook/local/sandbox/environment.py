"""One execution environment: a fresh interpreter running the runtime loop, under its limits."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra import specs
from workbook.local.sandbox import artifacts, formats
from workbook.local.sandbox.limits import EnvironmentLimits, MemoryMode
from workbook.local.sandbox.models import FunctionConfig
from workbook.local.sandbox.runtime_api import Posted, RuntimeApi

RUNTIME_SCRIPT = str(Path(__file__).with_name("runtime.py"))


def runtime_command(python: str) -> list[str]:
    """How an environment starts its runtime: isolated (``-I``), so neither the script's folder nor
    ``PYTHON*`` variables nor the user's site-packages come onto the handler's path; without ``site``
    (``-S``), so the interpreter's own site-packages (the workbook's venv, or pyenv's) do not either;
    writing no bytecode (``-B``): the unpacked package and layer stay the deployed bytes, and each cold
    start compiles what it imports, as on Lambda, whose ``/var/task`` and ``/opt`` are read-only;
    unbuffered, so a handler's output is in its invocation's logs."""
    return [python, "-I", "-S", "-B", "-u", RUNTIME_SCRIPT]


_FRAME_HEADER_BYTES = 16   # telemetry log frames: type (4), length (4), timestamp in microseconds (8)
# On-demand INIT is limited to 10 s on Lambda; the invocation's own timeout applies after that.
INIT_LIMIT_S = 10.0


@dataclass(frozen=True)
class PlatformSettings:
    """What every environment is given by the platform rather than by the function."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    extension_port: int | None = None
    owner: str = "sandbox"          # put on every runtime's command line, so a stop can find strays
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    #: The interpreter that runs the handlers; None: the stack's runtime where the machine has it (artifacts).
    python: str | None = None
    #: The runtime's own packages (awslambdaric, boto3) for that interpreter; None: installed from runtime.lock.
    runtime_paths: tuple[str, ...] | None = None

    def runtime(self) -> tuple[str, tuple[str, ...]]:
        """The interpreter and the runtime's package folders an environment starts with."""
        if self.python is not None and self.runtime_paths is not None:
            return self.python, tuple(self.runtime_paths)
        found = artifacts.local_runtime(self.python)
        return found.python, found.paths if self.runtime_paths is None else tuple(self.runtime_paths)


@dataclass
class Phase:
    """The result of INIT or of one invocation inside an environment."""

    kind: str                       # ok | error | timeout | oom | exit
    duration_ms: float
    logs: list[tuple[int, str]] = field(default_factory=list)   # (epoch ms, message)
    payload: str | bytes | None = None    # JSON text, or the bytes a handler returned as they are
    error: dict | None = None
    max_memory_used_mb: int = 0


class ExecutionEnvironment:
    """A fresh interpreter for one function; serves one invocation at a time."""

    def __init__(self, config: FunctionConfig, platform: PlatformSettings) -> None:
        self.config = config
        self.platform = platform
        self.id = uuid.uuid4().hex
        today = datetime.now(UTC).strftime("%Y/%m/%d")
        self.log_stream = f"{today}/[{config.version}]{self.id}"   # as Lambda names it
        self.session_token = uuid.uuid4().hex + uuid.uuid4().hex
        self.limits = EnvironmentLimits(config.memory_mb, f"{config.function_name}-{self.id[:12]}")
        self.process: subprocess.Popen | None = None
        self.last_used = time.monotonic()
        self.invocations = 0
        self.api: RuntimeApi | None = None
        self._output = self._telemetry = -1
        self._out_buffer = b""
        self._frames_buffer = b""
        self._peak_memory_mb = 0
        self.frozen = False
        self._runtime = platform.runtime()

    # -- lifecycle ---------------------------------------------------------------------------
    def environment_variables(self) -> dict[str, str]:
        """The function's variables plus Lambda's reserved ones."""
        config, platform = self.config, self.platform
        variables = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": config.code_paths[0] if config.code_paths else "",
            "LAMBDA_RUNTIME_DIR": self._runtime[1][0] if self._runtime[1] else str(Path(RUNTIME_SCRIPT).parent),
            "_HANDLER": config.handler,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{specs.RUNTIME}",
            "AWS_REGION": platform.region,
            "AWS_DEFAULT_REGION": platform.region,
            "AWS_LAMBDA_FUNCTION_NAME": config.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": config.version,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group_name,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream,
            "AWS_ACCESS_KEY_ID": platform.access_key_id,
            "AWS_SECRET_ACCESS_KEY": platform.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "_X_AMZN_TRACE_ID": "",
        }
        if config.log_format is formats.LogFormat.JSON:
            variables["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
            # Lambda sets the application log level of the JSON format (INFO unless configured).
            variables["AWS_LAMBDA_LOG_LEVEL"] = config.application_log_level or "INFO"
        if platform.endpoint_url:
            variables["AWS_ENDPOINT_URL"] = platform.endpoint_url
        variables.update({name: str(value) for name, value in config.environment.items()})
        if platform.extension_port and "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT" in variables:
            # One extension serves every local environment; its port is the one in force.
            variables["PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"] = str(platform.extension_port)
        return variables

    def init(self) -> Phase:
        """Start the runtime client and let it import the handler: the INIT phase, timed until it asks for work."""
        output_r, output_w = os.pipe()
        telemetry_r, telemetry_w = os.pipe()
        self.api = RuntimeApi()
        started = time.perf_counter()
        logs = [(_now_ms(), formats.init_start(self.config.log_format, self.config.function_name))]
        variables = {**self.environment_variables(), "AWS_LAMBDA_RUNTIME_API": self.api.address,
                     "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_w)}
        python, runtime_paths = self._runtime
        # Lambda's order: the function's package, its layers, the runtime's own packages; the stdlib after.
        path = os.pathsep.join([*self.config.code_paths, *runtime_paths])
        try:
            self.process = subprocess.Popen(
                [*runtime_command(python), str(self.limits.rlimit_as_bytes), path, self.config.handler,
                 f"--owner={self.platform.owner}"],
                pass_fds=(telemetry_w,), stdin=subprocess.DEVNULL, stdout=output_w, stderr=output_w, env=variables,
                cwd=self.config.code_paths[0] if self.config.code_paths else None, start_new_session=True,
            )
        finally:
            for fd in (output_w, telemetry_w):
                os.close(fd)
        self._output, self._telemetry = output_r, telemetry_r
        try:
            self.limits.attach(self.process.pid)
        except OSError:
            pass  # the process died already; the exchange below reports it
        phase = self._exchange(time.monotonic() + max(INIT_LIMIT_S, self.config.timeout_s), started, init=True)
        phase.logs[:0] = logs
        if phase.kind == "ok":
            self.limits.throttle()
        self.last_used = time.monotonic()
        return phase

    def invoke(self, request_id: str, event, trace_id: str, client_context=None, identity=None) -> Phase:
        """Run one invocation; the environment is dead afterwards unless the phase is ``ok`` or ``error``."""
        assert self.process is not None and self.api is not None
        timeout_s = self.config.timeout_s
        deadline_epoch_ms = int(time.time() * 1000 + timeout_s * 1000)
        self.invocations += 1
        self.limits.begin_invocation()
        started = time.perf_counter()
        try:
            self.api.deliver(request_id, event, deadline_epoch_ms, self.config.function_arn, trace_id,
                             client_context, identity)
            phase = self._exchange(time.monotonic() + timeout_s, started)
        except (OSError, ValueError):
            # The sandbox is closing and killed the environment under us (its descriptors are closed).
            phase = self._died(started, [])
        finally:
            self.limits.end_invocation()
        self.last_used = time.monotonic()
        return phase

    def freeze(self) -> None:
        """Stop the environment between invocations, as Lambda freezes it (background threads too)."""
        if self.process is not None and not self.frozen:
            try:
                os.killpg(self.process.pid, signal.SIGSTOP)
                self.frozen = True
            except ProcessLookupError:
                pass

    def thaw(self) -> None:
        if self.process is not None and self.frozen:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.frozen = False

    def kill(self) -> None:
        """End the environment and everything it started."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if process is not None:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        for fd in (self._output, self._telemetry):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._output = self._telemetry = -1
        if self.api is not None:
            self.api.close()
        self.limits.release()

    def _measured_peak_mb(self) -> int:
        """The peak resident memory of the environment's processes so far (``VmHWM``), as the runtime reports it."""
        if self.process is None:
            return 0
        return max((_peak_rss_kb(pid) for pid in _group_pids(self.process.pid)), default=0) // 1024

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- the exchange with the runtime client --------------------------------------------------------
    def _exchange(self, deadline: float, started: float, init: bool = False) -> Phase:
        """Read the function's output until the runtime asks for work (INIT) or posts its answer."""
        assert self.api is not None
        logs: list[tuple[int, str]] = []
        watched = [self._output, self._telemetry, self.api.wake_fd]
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                duration_ms = (time.perf_counter() - started) * 1000
                # The killed run's own peak, read before the kill.
                self._peak_memory_mb = max(self._peak_memory_mb, self._measured_peak_mb())
                self.kill()
                self._drain(logs)
                return Phase("timeout", duration_ms, logs, max_memory_used_mb=self._peak_memory_mb)
            readable, _, _ = select.select(watched, [], [], remaining)
            self._read_output(readable, logs, watched)
            while (posted := self.api.take()) is not None:
                if posted.kind == "next" and not init:
                    continue    # the runtime's wait for the next invocation, before this one's answer
                return self._answered(posted, started, logs)
            if self._output not in watched and self._telemetry not in watched:
                return self._died(started, logs)   # both streams closed: the runtime exited

    def _answered(self, posted: Posted, started: float, logs: list[tuple[int, str]]) -> Phase:
        duration_ms = (time.perf_counter() - started) * 1000
        # What the function wrote before it posted is in the pipes already: read it all.
        self._drain(logs)
        # The runtime's own peak (VmHWM); children a handler started are counted on a timeout only.
        peak_kb = _peak_rss_kb(self.process.pid) if self.process is not None else 0
        self._peak_memory_mb = max(self._peak_memory_mb, peak_kb // 1024)
        if posted.kind == "next":
            return Phase("ok", duration_ms, logs, max_memory_used_mb=self._peak_memory_mb)
        if posted.kind == "response":
            content_type = (posted.headers or {}).get("content-type", "application/json")
            payload = posted.body.decode() if content_type == "application/json" else posted.body
            return Phase("ok", duration_ms, logs, payload=payload, max_memory_used_mb=self._peak_memory_mb)
        error = json.loads(posted.body or b"{}")
        if posted.kind == "init_error":
            error_type = (posted.headers or {}).get("lambda-runtime-function-error-type")
            error["errorType"] = error_type or error.get("errorType", "Runtime.Unknown")
            self.kill()
            return Phase("error", duration_ms, logs, error=error, max_memory_used_mb=self._peak_memory_mb)
        if error.get("errorType") == "MemoryError" and self.limits.memory_mode is not MemoryMode.CGROUP:
            # RLIMIT_AS fallback: malloc failed where Lambda's cgroup would have killed the process.
            self.kill()
            return Phase("oom", duration_ms, logs, error=error, max_memory_used_mb=self.config.memory_mb)
        return Phase("error", duration_ms, logs, error=error, max_memory_used_mb=self._peak_memory_mb)

    def _read_output(self, readable: list[int], logs: list[tuple[int, str]], watched: list[int]) -> None:
        if self._telemetry in readable:
            chunk = os.read(self._telemetry, 1 << 16)
            if chunk:
                self._frames_buffer += chunk
                self._split_frames(logs)
            else:
                watched.remove(self._telemetry)
        if self._output in readable:
            chunk = os.read(self._output, 1 << 16)
            if chunk:
                self._split_output(chunk, logs)
            else:
                watched.remove(self._output)

    def _split_frames(self, logs: list[tuple[int, str]]) -> None:
        """Complete telemetry frames (one log record each: awslambdaric's records and errors) into ``logs``."""
        buffer = self._frames_buffer
        while len(buffer) >= _FRAME_HEADER_BYTES:
            length = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < _FRAME_HEADER_BYTES + length:
                break
            stamp_ms = int.from_bytes(buffer[8:16], "big") // 1000
            message = buffer[_FRAME_HEADER_BYTES:_FRAME_HEADER_BYTES + length].decode("utf-8", "replace")
            buffer = buffer[_FRAME_HEADER_BYTES + length:]
            message = message.replace("\r", "\n").rstrip("\n")
            if message:
                logs.append((stamp_ms, message))
        self._frames_buffer = buffer

    def _split_output(self, chunk: bytes, logs: list[tuple[int, str]]) -> None:
        """Complete lines of stdout and stderr into ``logs`` (each line one event, as on Lambda)."""
        self._out_buffer += chunk
        *lines, self._out_buffer = self._out_buffer.split(b"\n")
        stamp = _now_ms()
        for raw in lines:
            if raw:
                logs.append((stamp, raw.decode("utf-8", "replace").replace("\r", "\n")))

    def _drain(self, logs: list[tuple[int, str]]) -> None:
        """Keep what the process wrote so far."""
        for fd in (self._telemetry, self._output):
            if fd < 0:
                continue
            try:
                while select.select([fd], [], [], 0)[0]:
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        break
                    if fd == self._telemetry:
                        self._frames_buffer += chunk
                        self._split_frames(logs)
                    else:
                        self._split_output(chunk, logs)
            except OSError:
                pass
        if self._out_buffer and (self.process is None or self.process.poll() is not None):
            self._split_output(b"\n", logs)   # the last line of an ended process, without its newline

    def _died(self, started: float, logs: list[tuple[int, str]]) -> Phase:
        duration_ms = (time.perf_counter() - started) * 1000
        process = self.process
        try:
            returncode = process.wait(timeout=5) if process else None
        except subprocess.TimeoutExpired:
            returncode = None
        self._drain(logs)
        out_of_memory = self.limits.out_of_memory() or (
            returncode == -signal.SIGKILL and self.limits.memory_mode is MemoryMode.CGROUP)
        self.kill()
        if out_of_memory:
            return Phase("oom", duration_ms, logs, max_memory_used_mb=self.config.memory_mb)
        if returncode is not None and returncode < 0:
            reason = f"signal: {_SIGNAL_WORDS.get(-returncode, str(-returncode))}"
        else:
            reason = f"exit status {returncode}"
        return Phase("exit", duration_ms, logs, error={"errorType": "Runtime.ExitError", "errorMessage": reason},
                     max_memory_used_mb=self._peak_memory_mb)


def _group_pids(leader: int) -> list[int]:
    """The runtime and whatever the handler started in its process group."""
    found = [leader]
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and int(entry.name) != leader:
            try:
                with open(f"/proc/{entry.name}/stat") as handle:
                    text = handle.read()
            except OSError:
                continue
            if int(text[text.rfind(")") + 2:].split()[2]) == leader:
                found.append(int(entry.name))
    return found


def _peak_rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


_SIGNAL_WORDS = {9: "killed", 15: "terminated", 11: "segmentation fault", 6: "aborted", 7: "bus error"}


def _now_ms() -> int:
    return int(time.time() * 1000)
