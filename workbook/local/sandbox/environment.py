"""One execution environment: a fresh interpreter running the runtime loop, under its limits."""
from __future__ import annotations

import base64
import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra import specs
from workbook.local.sandbox import formats
from workbook.local.sandbox.limits import EnvironmentLimits, MemoryMode
from workbook.local.sandbox.models import FunctionConfig

RUNTIME_SCRIPT = str(Path(__file__).with_name("runtime.py"))


@dataclass(frozen=True)
class HandlerPython:
    """Which Python runs the handlers locally, against the stack's Lambda runtime (never said silently)."""

    executable: str
    version: str                    # e.g. "3.11.7"
    stack_runtime: str              # e.g. "python3.12"
    stack_interpreter: str | None   # that runtime's interpreter on PATH, when it runs
    stack_interpreter_problem: str | None = None   # why a python3.X on PATH does not run

    @property
    def matches(self) -> bool:
        return self.stack_runtime == "python" + ".".join(self.version.split(".")[:2])

    def describe(self) -> str:
        """One line for ``workbook local status`` and the start's output."""
        line = f"Python {self.version} ({self.executable})"
        if self.matches:
            return line + f", the stack's runtime ({self.stack_runtime})"
        line += f"; the stack's runtime is {self.stack_runtime}"
        if self.stack_interpreter:
            return line + (f" ({self.stack_interpreter} is on PATH, not used: the handlers' dependencies are "
                           f"installed for this Python)")
        if self.stack_interpreter_problem:
            return line + f" ({self.stack_runtime} on PATH does not run: {self.stack_interpreter_problem})"
        return line + f" (no {self.stack_runtime} on PATH)"


@functools.cache
def handler_python(python: str = sys.executable, stack_runtime: str = specs.RUNTIME) -> HandlerPython:
    """Detect the Python the handlers run on, and whether the stack's runtime's interpreter is on PATH and runs."""
    version = subprocess.run([python, "-I", "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, timeout=30).stdout.strip() or "unknown"
    found, problem = shutil.which(stack_runtime), None
    if found:
        try:
            probe = subprocess.run([found, "-I", "-c", "import sys; print(sys.executable)"], capture_output=True,
                                   text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            probe, problem = None, str(exc)
        if probe is not None and probe.returncode == 0:
            found = probe.stdout.strip() or found
        else:
            problem = problem or ((probe.stderr or probe.stdout).strip().splitlines() or ["exit status"])[0]
            found = None
    return HandlerPython(python, version, stack_runtime, found, problem)


def runtime_command(python: str) -> list[str]:
    """How an environment starts its runtime: isolated (``-I``), so neither the script's folder nor
    ``PYTHON*`` variables nor the user's site-packages come onto the handler's path; unbuffered, so a
    handler's output is in its invocation's logs."""
    return [python, "-I", "-u", RUNTIME_SCRIPT]
DONE_MARK = b"\x1eLWB-DONE"
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
    python: str = sys.executable    # the interpreter that runs the handlers


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
        self._control_in = self._control_out = self._output = -1
        self._out_buffer = b""
        self._peak_memory_mb = 0
        self.frozen = False

    # -- lifecycle ---------------------------------------------------------------------------
    def environment_variables(self) -> dict[str, str]:
        """The function's variables plus Lambda's reserved ones."""
        config, platform = self.config, self.platform
        variables = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "LAMBDA_TASK_ROOT": config.code_paths[0] if config.code_paths else "",
            "LAMBDA_RUNTIME_DIR": str(Path(RUNTIME_SCRIPT).parent),
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
        """Start the interpreter and import the handler: the INIT phase, timed."""
        control_in_r, control_in_w = os.pipe()
        control_out_r, control_out_w = os.pipe()
        output_r, output_w = os.pipe()
        started = time.perf_counter()
        logs = [(_now_ms(), formats.init_start(self.config.log_format, self.config.function_name))]
        try:
            self.process = subprocess.Popen(
                [*runtime_command(self.platform.python), str(control_in_r), str(control_out_w),
                 str(self.limits.rlimit_as_bytes), os.pathsep.join(self.config.code_paths),
                 f"--owner={self.platform.owner}"],
                pass_fds=(control_in_r, control_out_w), stdin=subprocess.DEVNULL, stdout=output_w,
                stderr=output_w, env=self.environment_variables(),
                cwd=self.config.code_paths[0] if self.config.code_paths else None, start_new_session=True,
            )
        finally:
            for fd in (control_in_r, control_out_w, output_w):
                os.close(fd)
        self._control_in, self._control_out, self._output = control_in_w, control_out_r, output_r
        try:
            self.limits.attach(self.process.pid)
        except OSError:
            pass  # the process died already; the exchange below reports it
        phase = self._exchange(time.monotonic() + max(INIT_LIMIT_S, self.config.timeout_s), started)
        phase.logs[:0] = logs
        if phase.kind == "ok":
            self.limits.throttle()
        self.last_used = time.monotonic()
        return phase

    def invoke(self, request_id: str, event, trace_id: str, client_context=None, identity=None) -> Phase:
        """Run one invocation; the environment is dead afterwards unless the phase is ``ok`` or ``error``."""
        assert self.process is not None
        timeout_s = self.config.timeout_s
        deadline_epoch_ms = int(time.time() * 1000 + timeout_s * 1000)
        request = {"request_id": request_id, "event": event, "deadline_ms": deadline_epoch_ms,
                   "function_arn": self.config.function_arn, "trace_id": trace_id,
                   "client_context": client_context, "identity": identity}
        line = json.dumps(request, separators=(",", ":")).encode() + b"\n"
        self.invocations += 1
        self.limits.begin_invocation()
        started = time.perf_counter()
        try:
            _write_all(self._control_in, line)
            phase = self._exchange(time.monotonic() + timeout_s, started)
        except (OSError, ValueError):
            # The runtime died (a broken pipe), or the sandbox is closing and killed it under us
            # (its descriptors are closed: EBADF, or -1 given to select).
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
        for fd in (self._control_in, self._control_out, self._output):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._control_in = self._control_out = self._output = -1
        self.limits.release()

    def _measured_peak_mb(self) -> int:
        """The peak resident memory of the environment's processes so far (``VmHWM``), as the runtime reports it."""
        if self.process is None:
            return 0
        return max((_peak_rss_kb(pid) for pid in _group_pids(self.process.pid)), default=0) // 1024

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    # -- the exchange over the pipes -----------------------------------------------------------
    def _exchange(self, deadline: float, started: float) -> Phase:
        """Read the function's output and the runtime's reply until both are complete."""
        logs: list[tuple[int, str]] = []
        reply: dict | None = None
        control_buffer = b""
        done = False
        watched = [self._control_out, self._output]
        while reply is None or not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                duration_ms = (time.perf_counter() - started) * 1000
                # The killed run's own peak, read before the kill: the last reply predates it.
                self._peak_memory_mb = max(self._peak_memory_mb, self._measured_peak_mb())
                self.kill()
                self._drain(logs)
                return Phase("timeout", duration_ms, logs, max_memory_used_mb=self._peak_memory_mb)
            readable, _, _ = select.select(watched, [], [], remaining)
            if self._output in readable:
                chunk = os.read(self._output, 1 << 16)
                if not chunk:
                    watched.remove(self._output)
                    done = True
                else:
                    done = self._split_output(chunk, logs) or done
            if self._control_out in readable:
                chunk = os.read(self._control_out, 1 << 16)
                if not chunk:
                    return self._died(started, logs)
                control_buffer += chunk
                if b"\n" in control_buffer:
                    reply = json.loads(control_buffer.split(b"\n", 1)[0])
                    watched = [fd for fd in watched if fd != self._control_out]
        duration_ms = (time.perf_counter() - started) * 1000
        self._peak_memory_mb = max(self._peak_memory_mb, int(reply.get("maxrss_kb", 0)) // 1024)
        payload = base64.b64decode(reply["payload_b64"]) if "payload_b64" in reply else reply.get("payload")
        phase = Phase("ok" if reply.get("ok") else "error", duration_ms, logs,
                      payload=payload, error=reply.get("error"),
                      max_memory_used_mb=self._peak_memory_mb)
        if reply.get("memory_error"):
            # RLIMIT_AS fallback: malloc failed where Lambda's cgroup would have killed the process.
            self.kill()
            phase.kind = "oom"
        elif reply.get("exit") or (reply.get("t") == "init" and not reply.get("ok")):
            self.kill()
        return phase

    def _split_output(self, chunk: bytes, logs: list[tuple[int, str]]) -> bool:
        """Add complete lines to ``logs``; True when the end-of-invocation mark went by."""
        self._out_buffer += chunk
        *lines, self._out_buffer = self._out_buffer.split(b"\n")
        stamp = _now_ms()
        done = False
        for raw in lines:
            if raw.endswith(DONE_MARK):
                done = True
                raw = raw[: -len(DONE_MARK)]
                if not raw:
                    continue
            logs.append((stamp, raw.decode("utf-8", "replace").replace("\r", "\n")))
        return done

    def _drain(self, logs: list[tuple[int, str]]) -> None:
        """Keep what the process wrote before it ended."""
        if self._output < 0:
            return
        try:
            while select.select([self._output], [], [], 0)[0]:
                chunk = os.read(self._output, 1 << 16)
                if not chunk:
                    break
                self._split_output(chunk + b"\n" if not chunk.endswith(b"\n") else chunk, logs)
        except OSError:
            pass

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


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _now_ms() -> int:
    return int(time.time() * 1000)
