"""The oracle: AWS's own runtime client (``awslambdaric``) driven through a minimal Lambda Runtime API.

``RuntimeApi`` serves the documented protocol on 127.0.0.1 (``/2018-06-01/runtime/invocation/next``
with Lambda's headers; ``/response``, ``/error`` and ``/init/error`` collected), and ``run_awslambdaric``
runs ``python -m awslambdaric MODULE.FUNCTION`` against it for one invocation. Logs are read as on
Lambda: records from the telemetry log descriptor (``_LAMBDA_TELEMETRY_LOG_FD``, one framed event
each, with its level in the frame type), and whatever the function writes to stdout, line by line.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"
_FRAME_HEADER_BYTES = 16   # type (4), length (4), timestamp in microseconds (8); big-endian


@dataclass
class Posted:
    """What the runtime client posted: a response, an invocation error or an INIT error."""

    kind: str                           # response | error | init_error
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


@dataclass
class OracleOutcome:
    posted: Posted | None               # None: the runtime exited without posting
    exit_code: int | None
    events: list[str] = field(default_factory=list)     # log events: framed records, then stdout lines
    request_id: str = ""


class RuntimeApi:
    """A Lambda Runtime API on loopback for one runtime client process."""

    def __init__(self) -> None:
        self.pending: queue.Queue = queue.Queue()
        self.posted: queue.Queue = queue.Queue()
        self.closed = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._reply(404)
                    return
                while not api.closed.is_set():
                    try:
                        body, headers = api.pending.get(timeout=0.2)
                    except queue.Empty:
                        continue
                    self._reply(200, body, headers)
                    return
                self.close_connection = True

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name: value for name, value in self.headers.items()}
                if self.path == f"{PREFIX}/init/error":
                    api.posted.put(Posted("init_error", body, headers))
                elif self.path.startswith(f"{PREFIX}/invocation/") and self.path.endswith("/response"):
                    api.posted.put(Posted("response", body, headers))
                elif self.path.startswith(f"{PREFIX}/invocation/") and self.path.endswith("/error"):
                    api.posted.put(Posted("error", body, headers))
                else:
                    self._reply(404)
                    return
                self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def enqueue(self, request_id: str, event, function_arn: str, timeout_s: float = 30.0,
                client_context: dict | None = None, identity: dict | None = None) -> None:
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Aws-Request-Id": request_id,
                   "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000 + timeout_s * 1000)),
                   "Lambda-Runtime-Invoked-Function-Arn": function_arn,
                   "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0"}
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(identity)
        self.pending.put((json.dumps(event).encode(), headers))

    def close(self) -> None:
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()


def _frames(data: bytes) -> list[str]:
    events = []
    while len(data) >= _FRAME_HEADER_BYTES:
        length = int.from_bytes(data[4:8], "big")
        events.append(data[_FRAME_HEADER_BYTES:_FRAME_HEADER_BYTES + length].decode("utf-8", "replace"))
        data = data[_FRAME_HEADER_BYTES + length:]
    return events


def run_awslambdaric(task_root: str, handler: str, event, environment: dict[str, str], *, client_context=None,
                     identity=None, python: str = sys.executable, package_paths: tuple[str, ...] = (),
                     timeout_s: float = 60.0) -> OracleOutcome:
    """One cold invocation of ``handler`` under awslambdaric: what it posted, its exit code and its log events.

    ``python`` runs it; ``package_paths`` (after the task root) hold awslambdaric when that interpreter has
    none of its own, and then its own site-packages are left out (``-S``).
    """
    api = RuntimeApi()
    request_id = str(uuid.uuid4())
    api.enqueue(request_id, event, environment.get("_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:f"),
                client_context=client_context, identity=identity)
    telemetry_read, telemetry_write = os.pipe()
    env = {**environment, "AWS_LAMBDA_RUNTIME_API": api.address, "_HANDLER": handler,
           "_LAMBDA_TELEMETRY_LOG_FD": str(telemetry_write), "PYTHONPATH": os.pathsep.join([task_root, *package_paths])}
    no_site = ["-S"] if package_paths else []
    process = subprocess.Popen([python, *no_site, "-m", "awslambdaric", handler], cwd=task_root, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, pass_fds=(telemetry_write,))
    os.close(telemetry_write)
    telemetry = bytearray()
    reader = threading.Thread(target=lambda: _read_all(telemetry_read, telemetry), daemon=True)
    reader.start()
    posted: Posted | None = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            posted = api.posted.get(timeout=0.05)
            break
        except queue.Empty:
            if process.poll() is not None and api.posted.empty():
                break
    exit_code = process.poll()
    if posted is not None and posted.kind == "init_error":
        exit_code = process.wait(timeout=timeout_s)    # awslambdaric exits(1) after posting an INIT error
    elif exit_code is None:
        time.sleep(0.05)    # the next /next call is pending: the runtime is idle, as a frozen environment
        process.kill()
        process.wait()
    stdout = process.stdout.read().decode("utf-8", "replace")
    process.stdout.close()
    reader.join(timeout=5)
    api.close()
    events = _frames(bytes(telemetry)) + [line for line in stdout.split("\n") if line]
    return OracleOutcome(posted, exit_code, events, request_id)


def _read_all(fd: int, into: bytearray) -> None:
    with os.fdopen(fd, "rb", 0) as handle:
        while chunk := handle.read(1 << 16):
            into.extend(chunk)
