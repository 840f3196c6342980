"""The loopback HTTP endpoints of the local environment.

- the HTTP API (API Gateway v2, payload format 2.0), with the Lambda authorizer (simple responses,
  result cache by identity source) on the routes that use it, and the API's CORS;
- the Function URL (same event shape), with its CORS; AWS_IAM auth is checked for the presence
  of a SigV4 ``Authorization`` header only (nothing verifies signatures locally);
- the AWS Parameters and Secrets Lambda Extension (``/secretsmanager/get``), backed by moto;
- a webhook sink standing in for the notification handler's external endpoint;
- the control endpoint: Lambda's Invoke API (``POST /2015-03-31/functions/NAME/invocations``).

Every endpoint reads a request body only through a well-formed ``Content-Length``: a missing (on
POST, PUT and PATCH), negative or non-numeric one answers 400, one above Lambda's 6 MB
synchronous payload limit answers 413 without reading the body, and a client that stops sending
is cut off (408) after ``read_timeout_s``. The control endpoint also needs the per-start token
(``/_token/<token>`` before the path, or the ``X-Lwb-Control-Token`` header) and a loopback
``Host``, so neither a web page in the user's browser nor DNS rebinding can drive it.
"""
from __future__ import annotations

import base64
import hmac
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from workbook.local.errors import BadRequestBody
from workbook.local.sandbox import Sandbox, UnknownFunctionError

ACCOUNT_ID = "123456789012"
#: Lambda's payload limit for synchronous invocations (request and response): 6 MB.
MAX_BODY_BYTES = 6 * 1024 * 1024
#: How long a client may take to send its request line, headers and body (seconds).
READ_TIMEOUT_S = 30.0
#: The control endpoint's token: a path prefix (for boto3's endpoint URL) or this header.
TOKEN_PREFIX = "/_token/"
TOKEN_HEADER = "X-Lwb-Control-Token"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOG = logging.getLogger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    app: Any = None
    #: Socket timeout for every read (request line, headers, body): a silent client is dropped.
    timeout = READ_TIMEOUT_S
    max_body_bytes = MAX_BODY_BYTES

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet by default
        return

    def _body(self) -> bytes:
        """The request body (read once by :meth:`_dispatch`, through a checked Content-Length)."""
        return getattr(self, "_read_body", b"")

    def _receive_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise BadRequestBody(400, "Transfer-Encoding is not supported here; send the body with Content-Length")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            if self.command in _BODY_METHODS:
                raise BadRequestBody(400, f"{self.command} needs a Content-Length header (0 for an empty body)")
            return b""
        if len(set(values)) != 1 or not re.fullmatch(r"[0-9]{1,19}", values[0].strip()):
            raise BadRequestBody(400, f"Content-Length {', '.join(values)[:40]!r} is not one non-negative number")
        length = int(values[0])
        if length > self.max_body_bytes:
            raise BadRequestBody(413, f"request body of {length} bytes is above the {self.max_body_bytes}-byte "
                                      "limit (Lambda's 6 MB synchronous payload limit)")
        chunks, received = [], 0
        while received < length:
            try:
                chunk = self.rfile.read1(min(length - received, 65536))   # what has arrived, not all
            except TimeoutError:
                raise BadRequestBody(408, f"the client sent {received} of {length} body bytes within "
                                          f"{self.timeout:g} s") from None
            if not chunk:
                raise BadRequestBody(400, f"the connection ended after {received} of {length} body bytes")
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def _send(self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None,
              cookies: list[str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.sent_status, self.sent_length = status, len(data)
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        for cookie in cookies or []:
            self.send_header("Set-Cookie", cookie)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _dispatch(self) -> None:
        try:
            self._read_body = self._receive_body()
        except BadRequestBody as refused:
            # The rest of the body (if any) is unread: this connection cannot carry another request.
            self.close_connection = True
            self._send(refused.status, json.dumps({"message": refused.message}),
                       {"Content-Type": "application/json", "Connection": "close"})
            return
        try:
            self.app.handle(self)
        except Exception:  # noqa: BLE001 - an endpoint bug must not hang the client
            _LOG.exception("%s %s failed", self.command, self.path.split("?", 1)[0])
            self._send(500, json.dumps({"message": "Internal Server Error; the engine's log (engine.log in the "
                                                   "state folder) has the traceback"}),
                       {"Content-Type": "application/json"})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _dispatch


def serve(app: Any, port: int, host: str = "127.0.0.1", listener: socket.socket | None = None,
          read_timeout_s: float = READ_TIMEOUT_S) -> _Server:
    """Serve ``app.handle(request)`` on a loopback port in a daemon thread.

    ``listener`` is a socket already bound (and listening) on ``port``, handed over by the process
    that chose the port: binding before handing over leaves no window for another process to take it.
    ``read_timeout_s`` bounds each read from a client (a silent one is answered 408 and dropped).
    """
    handler = type(f"{type(app).__name__}Handler", (_Handler,), {"app": app, "timeout": read_timeout_s})
    if listener is None:
        server = _Server((host, port), handler)
    else:
        server = _Server(listener.getsockname(), handler, bind_and_activate=False)
        server.socket.close()
        server.socket = listener
        server.server_address = listener.getsockname()
        server.server_activate()
    # A short poll interval: a stop waits for each server's loop to notice it.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=f"http-{port}",
                     daemon=True).start()
    return server


# -- the HTTP API event (payload format 2.0) -----------------------------------------------------------
def http_event(request: _Handler, body: bytes, route_key: str, domain: str, api_id: str,
               path_parameters: dict | None = None) -> dict:
    url = urlsplit(request.path)
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        if key == "cookie":
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    cookies = [c.strip() for c in (request.headers.get("Cookie") or "").split(";") if c.strip()]
    query: dict[str, str] = {}
    for name, value in parse_qsl(url.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = time.time()
    text_like = not body or _is_text(headers.get("content-type", ""))
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": url.path,
        "rawQueryString": url.query,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID, "apiId": api_id, "domainName": domain, "domainPrefix": domain.split(".")[0],
            "http": {"method": request.command, "path": url.path, "protocol": "HTTP/1.1",
                     "sourceIp": request.client_address[0], "userAgent": headers.get("user-agent", "")},
            "requestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode().rstrip("="),
            "routeKey": route_key, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not text_like,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8", "replace") if text_like else base64.b64encode(body).decode()
    return event


def _is_text(content_type: str) -> bool:
    return content_type == "" or any(t in content_type for t in ("json", "text", "xml", "x-www-form-urlencoded", "javascript"))


def send_lambda_response(request: _Handler, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
    """Map a payload format 2.0 response to HTTP, as API Gateway and Function URLs do."""
    headers = dict(extra_headers or {})
    if isinstance(payload, dict) and "statusCode" in payload:
        headers.update({k: str(v) for k, v in (payload.get("headers") or {}).items()})
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("isBase64Encoded") else str(body).encode()
        headers.setdefault("Content-Type", "application/json")
        request._send(int(payload["statusCode"]), data, headers, payload.get("cookies"))
        return
    # Anything else is the body of a 200 with a JSON content type.
    headers.setdefault("Content-Type", "application/json")
    request._send(200, json.dumps(payload), headers)


def _route_pattern(route_key: str) -> tuple[str, re.Pattern] | None:
    if route_key == "$default":
        return None
    method, _, path = route_key.partition(" ")
    regex = re.escape(path)
    regex = re.sub(r"\\\{(\w+)\\\+\\\}", r"(?P<\1>.+)", regex)
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return method, re.compile(f"^{regex}$")


def cors_headers(cors: dict | None, origin: str | None, preflight: bool) -> dict[str, str]:
    if not cors or not origin:
        return {}
    origins = [o.lower() for o in cors.get("allowOrigins") or []]
    if "*" not in origins and origin.lower() not in origins:
        return {}
    headers = {"Access-Control-Allow-Origin": "*" if "*" in origins and not cors.get("allowCredentials") else origin,
               "Vary": "Origin"}
    if cors.get("allowCredentials"):
        headers["Access-Control-Allow-Credentials"] = "true"
    if preflight:
        headers["Access-Control-Allow-Methods"] = ",".join(cors.get("allowMethods") or ["*"])
        if cors.get("allowHeaders"):
            headers["Access-Control-Allow-Headers"] = ",".join(cors["allowHeaders"])
        if cors.get("maxAge") is not None:
            headers["Access-Control-Max-Age"] = str(cors["maxAge"])
    elif cors.get("exposeHeaders"):
        headers["Access-Control-Expose-Headers"] = ",".join(cors["exposeHeaders"])
    return headers


class HttpApi:
    """API Gateway HTTP API in front of the sandbox."""

    def __init__(self, sandbox: Sandbox, api: dict, port: int) -> None:
        self.sandbox, self.api = sandbox, api
        self.domain = f"127.0.0.1:{port}"
        self.api_id = "local"
        self.routes = [(route, _route_pattern(route["route_key"])) for route in api["routes"]]
        self._cache: dict[tuple, tuple[float, dict]] = {}
        self._lock = threading.Lock()
        self.access_log = api.get("access_log")      # {"group", "format"} from the stage, or None
        self._log_stream = f"local_{uuid.uuid4().hex[:12]}"

    def handle(self, request: _Handler) -> None:
        """Serve one request, then write the stage's access log line, as API Gateway does."""
        started = time.perf_counter()
        context: dict[str, Any] = {"requestId": base64.b32encode(uuid.uuid4().bytes)[:16].decode(), "routeKey": "-",
                                   "integrationLatency": "-", "authorizer.error": "-", "integrationStatus": "-"}
        try:
            self._serve(request, context)
        finally:
            if self.access_log:
                context.update({"status": getattr(request, "sent_status", "-"),
                                "responseLength": getattr(request, "sent_length", "-"),
                                "responseLatency": int((time.perf_counter() - started) * 1000),
                                "httpMethod": request.command, "path": urlsplit(request.path).path,
                                "protocol": "HTTP/1.1", "identity.sourceIp": request.client_address[0],
                                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
                                "requestTimeEpoch": int(time.time()), "stage": "$default", "apiId": self.api_id})
                line = re.sub(r"\$context\.([A-Za-z0-9_.]+)", lambda m: str(context.get(m.group(1), "-")),
                              self.access_log["format"])
                self.sandbox.telemetry.log(self.access_log["group"], self._log_stream, [(int(time.time() * 1000), line)])

    def _match(self, method: str, path: str):
        default = None
        for route, pattern in self.routes:
            if pattern is None:
                default = (route, {})
                continue
            route_method, regex = pattern
            found = regex.match(path)
            if found and route_method in (method, "ANY"):
                return route, found.groupdict()
        return default

    def _serve(self, request: _Handler, context: dict[str, Any]) -> None:
        path = unquote(urlsplit(request.path).path)
        body = request._body()
        cors = self.api.get("cors")
        origin = request.headers.get("Origin")
        if request.command == "OPTIONS" and cors and request.headers.get("Access-Control-Request-Method"):
            request._send(204, b"", cors_headers(cors, origin, preflight=True))
            return
        extra = cors_headers(cors, origin, preflight=False)
        matched = self._match(request.command, path)
        if matched is None:
            request._send(404, json.dumps({"message": "Not Found"}), {"Content-Type": "application/json", **extra})
            return
        route, parameters = matched
        event = http_event(request, body, route["route_key"], self.domain, self.api_id, parameters or None)
        event["requestContext"]["requestId"] = context["requestId"]
        context["routeKey"] = route["route_key"]
        authorizer = route.get("authorizer")
        if authorizer:
            verdict = self._authorize(authorizer, event)
            if verdict is not None and verdict[0] != 200:
                context["authorizer.error"] = verdict[1]
                request._send(verdict[0], json.dumps({"message": verdict[1]}), {"Content-Type": "application/json", **extra})
                return
            event["requestContext"]["authorizer"] = {"lambda": verdict[2] if verdict else {}}
        integration_started = time.perf_counter()
        outcome = self.sandbox.invoke(route["integration"]["function"], event)
        context["integrationLatency"] = int((time.perf_counter() - integration_started) * 1000)
        context["integrationStatus"] = outcome.status_code
        if outcome.throttled:
            request._send(429, json.dumps({"message": "Too Many Requests"}), {"Content-Type": "application/json", **extra})
        elif outcome.function_error:
            request._send(500, json.dumps({"message": "Internal Server Error"}), {"Content-Type": "application/json", **extra})
        else:
            send_lambda_response(request, outcome.json(), extra)

    def _authorize(self, authorizer: dict, event: dict) -> tuple[int, str, dict] | None:
        identity = []
        for source in authorizer["identity_sources"]:
            if source.startswith("$request.header."):
                value = event["headers"].get(source.split(".", 2)[2].lower())
            elif source.startswith("$request.querystring."):
                value = (event.get("queryStringParameters") or {}).get(source.split(".", 2)[2])
            else:
                value = None
            if not value:
                return 401, "Unauthorized", {}   # API Gateway answers without calling the authorizer
            identity.append(value)
        key = (authorizer["function"], tuple(identity))
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > now:
            return 200, "", cached[1]
        auth_event = dict(event, type="REQUEST", identitySource=identity,
                          routeArn=f"arn:aws:execute-api:us-east-1:{ACCOUNT_ID}:{self.api_id}/$default/"
                                   f"{event['requestContext']['http']['method']}{event['rawPath']}")
        outcome = self.sandbox.invoke(authorizer["function"], auth_event)
        if not outcome.ok:
            return 500, "Internal Server Error", {}
        response = outcome.json()
        if authorizer.get("simple_responses"):
            allowed = isinstance(response, dict) and response.get("isAuthorized") is True
            context = (response or {}).get("context") or {} if isinstance(response, dict) else {}
        else:
            statements = ((response or {}).get("policyDocument") or {}).get("Statement") or []
            allowed = any(s.get("Effect") == "Allow" for s in statements)
            context = (response or {}).get("context") or {}
        if not allowed:
            return 403, "Forbidden", {}
        if authorizer.get("ttl_s"):
            with self._lock:
                self._cache[key] = (now + authorizer["ttl_s"], context)
        return 200, "", context


class FunctionUrl:
    """A Lambda Function URL in front of one function."""

    def __init__(self, sandbox: Sandbox, url: dict, port: int) -> None:
        self.sandbox, self.url = sandbox, url
        self.domain = f"127.0.0.1:{port}"

    def handle(self, request: _Handler) -> None:
        cors = self.url.get("cors")
        origin = request.headers.get("Origin")
        body = request._body()
        if request.command == "OPTIONS" and cors and request.headers.get("Access-Control-Request-Method"):
            request._send(200, b"", cors_headers(cors, origin, preflight=True))
            return
        extra = cors_headers(cors, origin, preflight=False)
        if self.url.get("authorization_type") == "AWS_IAM" and \
                not (request.headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256"):
            request._send(403, json.dumps({"Message": "Forbidden"}), {"Content-Type": "application/json", **extra})
            return
        event = http_event(request, body, "$default", self.domain, "local")
        if self.url.get("authorization_type") == "AWS_IAM":
            event["requestContext"]["authorizer"] = {"iam": _iam_identity(request.headers.get("Authorization", ""))}
        outcome = self.sandbox.invoke(self.url["function"], event)
        if outcome.throttled:
            request._send(429, json.dumps({"Message": "Rate Exceeded."}), {"Content-Type": "application/json", **extra})
        elif outcome.function_error:
            request._send(502, json.dumps({"Message": "Internal Server Error"}), {"Content-Type": "application/json", **extra})
        else:
            send_lambda_response(request, outcome.json(), extra)


def _iam_identity(authorization: str) -> dict:
    """The caller a Function URL reports for AWS_IAM auth, from the SigV4 credential scope."""
    found = re.search(r"Credential=([^/,\s]+)/", authorization)
    access_key = found.group(1) if found else ""
    return {"accessKey": access_key, "accountId": ACCOUNT_ID, "callerId": access_key, "cognitoIdentity": None,
            "principalOrgId": None, "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local", "userId": access_key}


class SecretsExtension:
    """The Parameters and Secrets Lambda Extension's HTTP endpoint, backed by the local endpoint."""

    def __init__(self, client: Callable[[str], Any], tokens: Callable[[str], bool]) -> None:
        self.client, self.tokens = client, tokens
        self._cache: dict[str, tuple[float, str]] = {}
        self.ttl_s = 300.0

    def handle(self, request: _Handler) -> None:
        url = urlsplit(request.path)
        token = request.headers.get("X-Aws-Parameters-Secrets-Token")
        if not token or not self.tokens(token):
            request._send(401, "not authorized", {"Content-Type": "text/plain"})
            return
        query = dict(parse_qsl(url.query))
        if url.path == "/secretsmanager/get" and query.get("secretId"):
            key = f"secret:{query['secretId']}:{query.get('versionStage', '')}:{query.get('versionId', '')}"
            cached = self._cache.get(key)
            if cached and cached[0] > time.monotonic():
                request._send(200, cached[1], {"Content-Type": "application/json"})
                return
            manager = self.client("secretsmanager")
            arguments = {"SecretId": query["secretId"]}
            if query.get("versionId"):
                arguments["VersionId"] = query["versionId"]
            if query.get("versionStage"):
                arguments["VersionStage"] = query["versionStage"]
            try:
                response = manager.get_secret_value(**arguments)
            except manager.exceptions.ResourceNotFoundException:
                request._send(400, json.dumps({"__type": "ResourceNotFoundException",
                                               "message": "Secrets Manager can't find the specified secret."}),
                              {"Content-Type": "application/json"})
                return
            document = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in response.items()
                        if k != "ResponseMetadata"}
            if "SecretBinary" in document and isinstance(document["SecretBinary"], bytes):
                document["SecretBinary"] = base64.b64encode(document["SecretBinary"]).decode()
            text = json.dumps(document)
            self._cache[key] = (time.monotonic() + self.ttl_s, text)
            request._send(200, text, {"Content-Type": "application/json"})
            return
        if url.path == "/systemsmanager/parameters/get" and query.get("name"):
            ssm = self.client("ssm")
            response = ssm.get_parameter(Name=query["name"], WithDecryption=query.get("withDecryption") == "true")
            parameter = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in response["Parameter"].items()}
            request._send(200, json.dumps({"Parameter": parameter}), {"Content-Type": "application/json"})
            return
        request._send(400, "unsupported request", {"Content-Type": "text/plain"})


class WebhookSink:
    """Stands in for the external webhook: records deliveries, answers 200 (or 503 when asked)."""

    def __init__(self) -> None:
        self.deliveries: list[dict] = []
        self._lock = threading.Lock()

    def handle(self, request: _Handler) -> None:
        body = request._body()
        with self._lock:
            self.deliveries.append({"path": request.path, "headers": dict(request.headers),
                                    "body": body.decode("utf-8", "replace")[:4096]})
        status = 503 if "fail" in request.path else 200
        request._send(status, json.dumps({"received": status == 200}), {"Content-Type": "application/json"})


def loopback_host(host_header: str | None, port: int) -> bool:
    """Whether ``Host`` names this server on loopback (not a DNS-rebound name that resolves here)."""
    return (host_header or "").strip().lower() in {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}


class Control:
    """Lambda's Invoke API and a status document, for the CLI and notebooks.

    ``token`` is the per-start secret (kept in the 0600 state file): each request carries it as a
    ``/_token/<token>`` path prefix (what boto3 sends with ``AWS_ENDPOINT_URL_LAMBDA``) or in the
    ``X-Lwb-Control-Token`` header, and names ``127.0.0.1``, ``localhost`` or ``[::1]`` in ``Host``.
    """

    INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

    def __init__(self, sandbox: Sandbox, status: Callable[[], dict], submit_async: Callable[[str, Any], str],
                 stop: Callable[[], None], webhook: WebhookSink | None = None, *, token: str) -> None:
        if len(token) < 16:
            raise ValueError("the control token must be at least 16 characters")
        self.sandbox, self.status, self.submit_async, self.stop = sandbox, status, submit_async, stop
        self.webhook = webhook
        self.token = token

    def _authorised_path(self, request: _Handler) -> str | None:
        """The request's path without the token prefix, or None (after answering 403) when it may not pass."""
        port = request.server.server_address[1]
        if not loopback_host(request.headers.get("Host"), port):
            request._send(403, json.dumps({"message": f"Host must be 127.0.0.1:{port} or localhost:{port}"}),
                          {"Content-Type": "application/json"})
            return None
        path = request.path
        if path.startswith(TOKEN_PREFIX):
            given, _, rest = path[len(TOKEN_PREFIX):].partition("/")
            path = "/" + rest
        else:
            given = request.headers.get(TOKEN_HEADER) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            request._send(403, json.dumps({"message": "missing or wrong control token: use the `workbook local` "
                                                      "commands, or the AWS_ENDPOINT_URL_LAMBDA they export"}),
                          {"Content-Type": "application/json"})
            return None
        return path

    def handle(self, request: _Handler) -> None:
        full_path = self._authorised_path(request)
        if full_path is None:
            return
        path = urlsplit(full_path).path
        query = dict(parse_qsl(urlsplit(full_path).query))
        body = request._body()
        if request.command == "GET" and path == "/status":
            request._send(200, json.dumps(self.status()), {"Content-Type": "application/json"})
            return
        if request.command == "GET" and path == "/webhook-deliveries" and self.webhook is not None:
            with self.webhook._lock:
                recent = [{"path": d["path"], "body": d["body"]} for d in self.webhook.deliveries[-100:]]
            request._send(200, json.dumps(recent), {"Content-Type": "application/json"})
            return
        if request.command == "POST" and path == "/expire":
            function = query.get("function")
            try:
                count = self.sandbox.expire_idle(function)
            except UnknownFunctionError as exc:
                request._send(404, json.dumps({"message": str(exc)}), {"Content-Type": "application/json"})
                return
            request._send(200, json.dumps({"expired": count}), {"Content-Type": "application/json"})
            return
        if request.command == "POST" and path == "/shutdown":
            request._send(202, b"{}", {"Content-Type": "application/json"})
            threading.Thread(target=self.stop, daemon=True).start()
            return
        found = self.INVOKE.match(path)
        if request.command != "POST" or not found:
            request._send(404, json.dumps({"Type": "User", "message": "Unknown operation"}),
                          {"Content-Type": "application/json"})
            return
        name = unquote(found.group(1))
        try:
            config = self.sandbox.function(name)
        except UnknownFunctionError as exc:
            request._send(404, json.dumps({"Type": "User", "__type": "ResourceNotFoundException", "Message": str(exc)}),
                          {"Content-Type": "application/json", "x-amzn-ErrorType": "ResourceNotFoundException"})
            return
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            request._send(400, json.dumps({"Type": "User", "__type": "InvalidRequestContentException",
                                           "message": "Could not parse request body into json"}),
                          {"Content-Type": "application/json", "x-amzn-ErrorType": "InvalidRequestContentException"})
            return
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type == "DryRun":
            request._send(204, b"")
            return
        if invocation_type == "Event":
            request_id = self.submit_async(config.function_name, event)
            request._send(202, b"", {"x-amzn-RequestId": request_id})
            return
        memory = request.headers.get("X-Lwb-Memory-Size")
        qualifier = query.get("Qualifier")   # Invoke's ?Qualifier=
        outcome = self.sandbox.invoke(config.function_name, event, memory_mb=int(memory) if memory else None,
                                      qualifier=qualifier)
        if outcome.throttled:
            request._send(429, json.dumps({"Type": "User", "__type": "TooManyRequestsException",
                                           "message": "Rate Exceeded.",
                                           "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded"}),
                          {"Content-Type": "application/json", "x-amzn-ErrorType": "TooManyRequestsException"})
            return
        headers = {"Content-Type": "application/json", "x-amzn-RequestId": outcome.request_id,
                   "X-Amz-Executed-Version": qualifier or "$LATEST"}
        if outcome.function_error:
            headers["X-Amz-Function-Error"] = outcome.function_error
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            tail = "\n".join(outcome.log_lines).encode()[-4096:]
            headers["X-Amz-Log-Result"] = base64.b64encode(tail).decode()
        if outcome.log_group:   # where the whole of them went (the tail is Lambda's last 4 KB)
            headers["X-Lwb-Log-Group"], headers["X-Lwb-Log-Stream"] = outcome.log_group, outcome.log_stream
        if outcome.report is not None:
            record = outcome.report.record()
            headers["X-Lwb-Report"] = json.dumps({"cold_start": outcome.cold_start, **record["metrics"],
                                                  "status": record["status"], "errorType": record.get("errorType")})
        request._send(200, outcome.payload, headers)
