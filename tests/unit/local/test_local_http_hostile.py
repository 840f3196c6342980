"""The local endpoints against a hostile client on loopback: bad Content-Length, huge and slow bodies,
and the control API without its token or with a foreign Host (issue 22).

A raw socket says exactly what a careless or hostile client would; boto3 shows that the token in
``AWS_ENDPOINT_URL_LAMBDA``'s path reaches the Invoke API the way the workbook exports it.
"""
from __future__ import annotations

import json
import secrets
import socket
from typing import Any

import boto3
import botocore.exceptions
import pytest

from workbook.local import endpoints
from workbook.local.sandbox import UnknownFunctionError

# Generous: a bound on how long the test waits for an answer that must come, never a figure asserted.
PATIENCE_S = 30.0


def raw_exchange(port: int, request: bytes, *, then_wait: bool = True) -> bytes:
    """Send ``request`` bytes as they are and return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S) as client:
        client.sendall(request)
        received = b""
        while then_wait:
            chunk = client.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.fixture
def sink():
    """The webhook sink (any endpoint shares the body handling) with a short read timeout."""
    app = endpoints.WebhookSink()
    server = endpoints.serve(app, 0, read_timeout_s=0.5)
    yield app, server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("headers, status, says", [
    (b"Content-Length: -1\r\n", 400, b"not one non-negative number"),
    (b"Content-Length: abc\r\n", 400, b"not one non-negative number"),
    (b"Content-Length: 1e3\r\n", 400, b"not one non-negative number"),
    (b"Content-Length: 5\r\nContent-Length: 7\r\n", 400, b"not one non-negative number"),
    (b"", 400, b"needs a Content-Length"),
    (b"Transfer-Encoding: chunked\r\n", 400, b"Transfer-Encoding is not supported"),
    (b"Content-Length: 1000000000\r\n", 413, b"Lambda's 6 MB synchronous payload limit"),
    (b"Content-Length: 6291457\r\n", 413, b"6291456-byte limit"),
])
def test_a_bad_content_length_is_answered_at_once_and_nothing_is_read(sink, headers, status, says):
    app, port = sink
    # GIVEN a POST whose headers promise a body they do not frame properly, and no body sent
    answer = raw_exchange(port, b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers + b"\r\n")
    # THEN the server answers (without waiting for bytes that will never come) and closes the connection
    assert status_of(answer) == status, answer[:200]
    assert says in answer and b"Connection: close" in answer
    assert b"Traceback" not in answer and b"ValueError" not in answer
    assert app.deliveries == []


def test_a_client_that_stops_sending_its_body_is_cut_off_with_408(sink):
    app, port = sink
    # GIVEN a client that promises 100 bytes, sends 10 and then goes quiet
    answer = raw_exchange(port, b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n0123456789")
    # THEN after the read timeout it gets 408 and the connection is closed (its thread is free again)
    assert status_of(answer) == 408 and b"10 of 100 body bytes" in answer
    assert app.deliveries == []


def test_a_client_that_never_finishes_its_headers_is_dropped(sink):
    _, port = sink
    # GIVEN a client that sends half a request line and nothing more, THEN the server closes the connection
    assert raw_exchange(port, b"POST /webh") == b""


def test_a_body_of_exactly_six_megabytes_is_accepted(sink):
    app, port = sink
    body = b"x" * endpoints.MAX_BODY_BYTES
    answer = raw_exchange(port, b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                          + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert status_of(answer) == 200 and len(app.deliveries) == 1


def test_an_endpoint_failure_answers_500_without_the_exceptions_text():
    class Broken:
        def handle(self, request: Any) -> None:
            raise ValueError("invalid literal for int() with base 10: 'secret-detail'")

    server = endpoints.serve(Broken(), 0, read_timeout_s=0.5)
    try:
        answer = raw_exchange(server.server_address[1], b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
    assert status_of(answer) == 500 and b"secret-detail" not in answer and b"engine.log" in answer


class _NoFunctions:
    """The one sandbox call the control API makes before invoking: every name is unknown here."""

    def function(self, name: str) -> Any:
        raise UnknownFunctionError(f"Function not found: {name}")

    def expire_idle(self, function: str | None) -> int:
        return 0


@pytest.fixture
def control():
    token = secrets.token_urlsafe(32)
    stopped: list[bool] = []
    app = endpoints.Control(_NoFunctions(), lambda: {"uptime_s": 1.0}, lambda *_: "id", lambda: stopped.append(True),
                       token=token)
    server = endpoints.serve(app, 0, read_timeout_s=2.0)
    yield server.server_address[1], token, stopped
    server.shutdown()
    server.server_close()


def _request(method: str, path: str, host: str, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.mark.parametrize("method, path", [("POST", "/shutdown"), ("POST", "/expire"), ("GET", "/status"),
                                          ("POST", "/2015-03-31/functions/f/invocations")])
def test_the_control_api_refuses_a_request_without_the_token(control, method, path):
    port, token, stopped = control
    host = f"127.0.0.1:{port}"
    # GIVEN what a web page could send (a simple form POST, no custom header), or a guessed token
    for attempt in (_request(method, path, host, {"Content-Type": "text/plain"}, b'{"x": 1}'),
                    _request(method, path, host, {endpoints.TOKEN_HEADER: "guess" * 8}),
                    _request(method, f"{endpoints.TOKEN_PREFIX}{'guess' * 8}{path}", host)):
        answer = raw_exchange(port, attempt)
        # THEN it is refused, and nothing stops
        assert status_of(answer) == 403 and b"control token" in answer
    assert stopped == []


def test_the_control_api_refuses_a_foreign_host_even_with_the_token(control):
    port, token, _ = control
    # GIVEN DNS rebinding: a page's name now resolves to 127.0.0.1, so the browser sends its own Host
    answer = raw_exchange(port, _request("GET", "/status", f"attacker.example:{port}", {endpoints.TOKEN_HEADER: token}))
    assert status_of(answer) == 403 and b"Host must be" in answer
    answer = raw_exchange(port, _request("GET", "/status", f"127.0.0.1:{port + 1}", {endpoints.TOKEN_HEADER: token}))
    assert status_of(answer) == 403


def test_the_control_api_answers_with_the_token_in_a_header_or_the_path(control):
    port, token, stopped = control
    for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
        answer = raw_exchange(port, _request("GET", "/status", host, {endpoints.TOKEN_HEADER: token}))
        assert status_of(answer) == 200 and json.loads(answer.split(b"\r\n\r\n", 1)[1]) == {"uptime_s": 1.0}
    answer = raw_exchange(port, _request("POST", f"{endpoints.TOKEN_PREFIX}{token}/shutdown", f"127.0.0.1:{port}"))
    assert status_of(answer) == 202


def test_boto3_reaches_the_invoke_api_through_the_tokened_endpoint_url(control, monkeypatch):
    port, token, _ = control
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # GIVEN boto3 with the endpoint the workbook exports as AWS_ENDPOINT_URL_LAMBDA (token as a path prefix)
    client = boto3.client("lambda", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}"
                          f"{endpoints.TOKEN_PREFIX}{token}")
    # WHEN it invokes (with and without a payload: botocore frames both with Content-Length)
    for payload in ({"Payload": b'{"a": 1}'}, {}):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.invoke(FunctionName="nope", **payload)
    # AND without the token it is refused
    bare = boto3.client("lambda", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        bare.invoke(FunctionName="nope")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_control_token_must_be_long():
    with pytest.raises(ValueError, match="at least 16"):
        endpoints.Control(_NoFunctions(), dict, lambda *_: "", lambda: None, token="short")
