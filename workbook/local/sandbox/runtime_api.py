"""The Lambda Runtime API one execution environment's runtime client talks to, on loopback.

The documented protocol (``/2018-06-01/runtime/invocation/next``, ``/invocation/{id}/response``,
``/invocation/{id}/error``, ``/init/error``) with Lambda's headers. ``awslambdaric`` asks for the
next invocation and waits; the environment hands one over with ``deliver`` and waits for what the
runtime posts (``Posted``). Every request the runtime makes also wakes the environment's select
loop through ``wake_fd``, so it can read the function's output in the same loop.
"""
from __future__ import annotations

import json
import os
import queue
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/2018-06-01/runtime"


@dataclass
class Posted:
    """What the runtime did: asked for the next invocation, or posted a response or an error."""

    kind: str                       # next | response | error | init_error
    body: bytes = b""
    headers: dict[str, str] | None = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True     # small replies on a kept-alive connection: no 40 ms delayed-ACK stalls
    server: _Server

    def log_message(self, *args) -> None:   # the runtime's requests are not the function's logs
        pass

    def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        lines.append(f"Content-Length: {len(body)}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)   # one write

    def do_GET(self) -> None:
        api = self.server.api
        if self.path != f"{PREFIX}/invocation/next":
            self._reply(404)
            return
        api.post(Posted("next"))
        delivery = api.next_invocation()
        if delivery is None:        # the environment is ending
            self.close_connection = True
            return
        body, headers = delivery
        self._reply(200, body, headers)

    def do_POST(self) -> None:
        api = self.server.api
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path
        parts = path[len(PREFIX) + 1:].split("/") if path.startswith(PREFIX + "/") else []
        if parts == ["init", "error"]:
            kind = "init_error"
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            kind = parts[2]
            if not api.answer(parts[1]):
                # Not the invocation in progress (a stale or second answer): refused, as Lambda's API does.
                self._reply(400, b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
                            {"Content-Type": "application/json"})
                return
        else:
            self._reply(404)
            return
        # Kept before the runtime hears back: it may exit right after its 202 (an INIT error, then
        # sys.exit), and the environment, seeing its pipes close, must find the post already there
        # (replying first made a malformed handler name a Runtime.ExitError on a busy machine).
        api.post(Posted(kind, body, {name.lower(): value for name, value in self.headers.items()}))
        self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: RuntimeApi

    def handle_error(self, request, client_address) -> None:
        pass    # a runtime killed mid-request (timeout, stop) resets its connection: nothing to report


class RuntimeApi:
    """One environment's Runtime API: a loopback server on a free port."""

    def __init__(self) -> None:
        self._invocations: queue.Queue = queue.Queue()
        self.posted: queue.Queue[Posted] = queue.Queue()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._current: str | None = None      # the request id delivered and not yet answered
        self.wake_fd, self._wake_write = os.pipe()
        os.set_blocking(self.wake_fd, False)
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.api = self
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._serve, name=f"runtime-api-{self.address}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Not serve_forever: its shutdown waits out a poll interval, and environments end often.
        while not self._closed.is_set():
            try:
                connection, address = self._server.socket.accept()
            except OSError:
                return
            self._server.process_request(connection, address)   # a thread per connection

    def answer(self, request_id: str) -> bool:
        """Whether ``request_id`` is the invocation in progress; it is answered from then on."""
        with self._lock:
            if request_id != self._current:
                return False
            self._current = None
            return True

    def post(self, posted: Posted) -> None:
        self.posted.put(posted)
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass    # closed: nobody waits any more

    def next_invocation(self) -> tuple[bytes, dict[str, str]] | None:
        while not self._closed.is_set():
            try:
                return self._invocations.get(timeout=0.5)
            except queue.Empty:
                continue
        return None

    def deliver(self, request_id: str, event, deadline_epoch_ms: int, function_arn: str, trace_id: str,
                client_context=None, identity=None) -> None:
        """Answer the runtime's pending ``next`` with this invocation."""
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Aws-Request-Id": request_id,
                   "Lambda-Runtime-Deadline-Ms": str(deadline_epoch_ms),
                   "Lambda-Runtime-Invoked-Function-Arn": function_arn, "Lambda-Runtime-Trace-Id": trace_id}
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(identity)
        with self._lock:
            self._current = request_id
        self._invocations.put((json.dumps(event).encode(), headers))

    def take(self) -> Posted | None:
        """The oldest thing the runtime posted and not yet taken, if any (drains the wake pipe)."""
        try:
            os.read(self.wake_fd, 1 << 12)
        except (BlockingIOError, OSError):
            pass
        try:
            return self.posted.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self._server.socket.shutdown(socket.SHUT_RDWR)     # wakes the accept
        except OSError:
            pass
        self._server.server_close()
        for fd in (self.wake_fd, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass
