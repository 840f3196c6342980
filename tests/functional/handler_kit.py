"""Test kit shared by the handler tests (unit, functional, integration).

* puts ``handlers/`` on sys.path, as Lambda does with the function root and /opt/python;
* :class:`LambdaContext`, a small stand-in for Lambda's context object;
* :func:`load_event` reads the AWS event fixtures in ``tests/functional/events``;
* :func:`fresh_handler` imports a handler module with a given environment, dropping any
  earlier copy (and the ``common`` layer) first, as a new execution environment would;
* :class:`ExtensionEmulator` emulates the Parameters and Secrets Lambda Extension endpoint;
* :func:`start_postgres` starts an embedded PostgreSQL (pgserver) in a directory.
"""
from __future__ import annotations

import copy
import importlib
import json
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLERS_DIR = REPO_ROOT / "handlers"
EVENTS_DIR = Path(__file__).resolve().parent / "events"

if str(HANDLERS_DIR) not in sys.path:
    sys.path.insert(0, str(HANDLERS_DIR))

HANDLER_MODULES = ("api_processor", "auth_handler", "data_processor", "file_processor", "scheduler",
                   "notification_handler")

#: A complete environment per function, as infra/environment.py would give it (values are fakes).
BASE_ENV = {
    "WORKBOOK_ENV": "test",
    "POWERTOOLS_METRICS_NAMESPACE": "LambdaWorkbook",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "SAFETY_MARGIN_MS": "2000",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
FUNCTION_ENV = {
    "api-processor": {"DB_SECRET_ARN": "lwb-test/db", "CORS_ALLOW_ORIGIN": "https://app.example.com"},
    "data-processor": {"DB_SECRET_ARN": "lwb-test/db",
                       "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:lwb-test-notifications"},
    "file-processor": {"UPLOADS_BUCKET": "lwb-test-uploads", "PROCESSED_BUCKET": "lwb-test-processed",
                       "EVENT_BUS_NAME": "lwb-test-bus", "UPLOAD_PREFIX": "incoming/",
                       "MAX_OBJECT_BYTES": str(5 * 1024 * 1024)},
    "scheduler": {"DB_SECRET_ARN": "lwb-test/db",
                  "TASK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/lwb-test-tasks",
                  "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:lwb-test-notifications"},
    # The test webhooks listen on http://127.0.0.1: the allowance params local.yaml gives the local sink.
    "notification-handler": {"API_KEYS_SECRET_ARN": "lwb-test/api-keys", "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"},
    "auth-handler": {"JWT_SECRET_ARN": "lwb-test/jwt", "JWT_ISSUER": "https://auth.local/",
                     "JWT_AUDIENCE": "lwb-api", "JWT_ALGORITHMS": "HS256", "JWT_LEEWAY_S": "30",
                     "JWT_MAX_TOKEN_BYTES": "8192", "SECRETS_MANAGER_TTL": "300",
                     "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773"},
}


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handlers and Powertools read."""

    function_name: str = "lwb-test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:lwb-test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 30_000
    log_group_name: str = "/aws/lambda/lwb-test-function"
    log_stream_name: str = "2026/11/27/[$LATEST]0123456789abcdef"
    started_at: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """``remaining_ms`` at creation, counting down with the wall clock as Lambda's does."""
        return max(0, self.remaining_ms - int((time.monotonic() - self.started_at) * 1000))


def load_event(name: str) -> dict[str, Any]:
    """A deep copy of the fixture ``tests/functional/events/<name>.json``."""
    return copy.deepcopy(json.loads((EVENTS_DIR / f"{name}.json").read_text()))


def function_env(key: str, **overrides: str) -> dict[str, str]:
    """The environment of function ``key`` with ``overrides``."""
    env = {**BASE_ENV, "POWERTOOLS_SERVICE_NAME": key, "WORKBOOK_FUNCTION": key, **FUNCTION_ENV[key]}
    env.update(overrides)
    return env


def forget_handler_modules() -> None:
    """Drop the handler modules and the common layer from sys.modules (a new execution environment)."""
    for name in list(sys.modules):
        if name == "common" or name.startswith("common.") or name in HANDLER_MODULES:
            del sys.modules[name]


def fresh_handler(module: str, monkeypatch: Any, **overrides: str) -> Any:
    """Import ``handlers/<module>.py`` anew with its function's environment plus ``overrides``."""
    key = module.replace("_", "-")
    for name, value in function_env(key, **overrides).items():
        monkeypatch.setenv(name, value)
    forget_handler_modules()
    return importlib.import_module(module)


class ExtensionEmulator:
    """The Parameters and Secrets Lambda Extension's HTTP endpoint, on loopback, serving ``secrets``."""

    def __init__(self, secrets: dict[str, str], session_token: str = "test-session-token"):
        self.secrets = secrets
        self.session_token = session_token
        self.requests: list[str] = []
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                secret_id = urllib.parse.parse_qs(parts.query).get("secretId", [""])[0]
                emulator.requests.append(secret_id)
                if self.headers.get("X-Aws-Parameters-Secrets-Token") != emulator.session_token:
                    self._answer(403, {"message": "missing or wrong X-Aws-Parameters-Secrets-Token"})
                elif parts.path != "/secretsmanager/get" or secret_id not in emulator.secrets:
                    self._answer(404, {"message": "not found"})
                else:
                    self._answer(200, {"ARN": secret_id, "Name": secret_id,
                                       "SecretString": emulator.secrets[secret_id], "VersionStages": ["AWSCURRENT"]})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> ExtensionEmulator:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_postgres(directory: Path) -> tuple[Any, dict[str, Any]]:
    """Start pgserver in ``directory``; return (server, RDS-style secret for common.db)."""
    import pgserver

    from workbook.local import services

    services.server_user(directory)   # the user and its way in, set up once under the machine-wide lock
    server = pgserver.get_server(str(directory), cleanup_mode="stop")
    info = server.get_postmaster_info()
    secret = {"host": str(info.socket_dir), "port": int(info.port or 5432), "username": "postgres",
              "password": "", "dbname": "postgres"}
    return server, secret


def truncate_all(secret: dict[str, Any]) -> None:
    """Empty the handlers' tables (after migrating them), keeping the schema."""
    import pg8000.native

    sys.path.insert(0, str(HANDLERS_DIR)) if str(HANDLERS_DIR) not in sys.path else None
    from common import db

    connection = pg8000.native.Connection(**db.connect_params(secret))
    try:
        db.migrate(connection)
        connection.run("TRUNCATE items, due_work, processed_records RESTART IDENTITY")
    finally:
        connection.close()


def db_rows(secret: dict[str, Any], sql: str, **params: Any) -> list[list[Any]]:
    """Run one query on a fresh connection (for assertions)."""
    import pg8000.native

    from common import db

    connection = pg8000.native.Connection(**db.connect_params(secret))
    try:
        return connection.run(sql, **params) or []
    finally:
        connection.close()


def call(handler: Callable[[Any, Any], Any], event: Any, context: LambdaContext | None = None) -> Any:
    """Invoke a handler the way the runtime does."""
    return handler(event, context or LambdaContext())


class LogCapture:
    """The JSON lines a handler's Powertools logger writes (its stream redirected to memory)."""

    def __init__(self, module: Any):
        import io

        self.buffer = io.StringIO()
        module.logger.registered_handler.setStream(self.buffer)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def records(self, message: str | None = None) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]
        return [line for line in lines if message is None or line.get("message") == message]


class WebhookServer:
    """A local HTTP endpoint that succeeds, fails, rejects or hangs on cue, and records what it got.

    ``script`` is a list of behaviours consumed one per request ("ok", "fail", "reject",
    "hang"); when it is empty, ``default`` applies. ``hang_s`` is how long "hang" stalls.
    """

    def __init__(self, default: str = "ok", hang_s: float = 2.0):
        self.default = default
        self.script: list[str] = []
        self.hang_s = hang_s
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with server._lock:
                    behaviour = server.script.pop(0) if server.script else server.default
                    server.received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                            "body": body, "behaviour": behaviour, "path": self.path})
                if behaviour == "hang":
                    server._release.wait(server.hang_s)
                status = {"ok": 200, "fail": 503, "reject": 400, "hang": 200}[behaviour]
                payload = json.dumps({"status": status}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/notify"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def calls(self) -> int:
        return len(self.received)

    def __enter__(self) -> WebhookServer:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
