"""The webhook client never follows a redirect and only calls the targets params allow (issue 22).

Real HTTP(S) servers on 127.0.0.1: one answers every POST with a redirect to a second, which
records whatever reaches it; a TLS server with a self-signed certificate for a made-up name shows
that the client connects to the address it checked while verifying the certificate for the URL's host.
"""
from __future__ import annotations

import json
import random
import shutil
import socket
import ssl
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from handler_kit import LambdaContext


class Recorder:
    """A loopback HTTP server that records each request and answers ``status`` (with ``location``)."""

    def __init__(self, status: int = 200, location: str | None = None, context: ssl.SSLContext | None = None):
        self.requests: list[dict[str, Any]] = []
        self.status, self.location = status, location
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                recorder.requests.append({"method": self.command, "path": self.path, "body": self.rfile.read(length),
                                          "headers": {k.lower(): v for k, v in self.headers.items()}})
                self.send_response(recorder.status)
                if recorder.location:
                    self.send_header("Location", recorder.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _any

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Recorder:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _client(allow_private: bool = True, attempts: int = 3, **options: Any):
    from common.httpclient import Backoff, CircuitBreaker, HttpClient, TargetPolicy

    breaker = CircuitBreaker("webhook-test", failure_threshold=100)
    return HttpClient(breaker, timeout_s=2.0, max_attempts=attempts, sleep=lambda _s: None,
                      backoff=Backoff(rng=random.Random(0)),
                      policy=options.pop("policy", TargetPolicy(allow_private=allow_private)), **options)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failed_delivery_and_is_never_followed(status):
    from common.errors import UpstreamError

    # GIVEN a webhook that answers every POST with a redirect to another host that records what reaches it
    with Recorder() as elsewhere, Recorder(status) as webhook:
        webhook.location = f"http://127.0.0.1:{elsewhere.port}/steal?x=1"
        client = _client()
        # WHEN a notification is posted with a bearer token
        with pytest.raises(UpstreamError) as raised:
            client.post_json(f"http://127.0.0.1:{webhook.port}/hook", {"n": 1},
                             headers={"Authorization": "Bearer s3cret"})
    # THEN each attempt is a failure the breaker counts, retried per its rules, and the report says why
    assert len(webhook.requests) == 3 and all(r["method"] == "POST" for r in webhook.requests)
    assert client.circuit.consecutive_failures == 3
    message = str(raised.value)
    assert f"HTTP {status} redirect to http://127.0.0.1:{elsewhere.port} refused" in message
    assert "steal" not in message and "s3cret" not in message
    # AND nothing, least of all the token, ever reached the redirect's target
    assert elsewhere.requests == []


def test_the_notification_handler_reports_a_redirected_delivery_as_a_batch_item_failure(
        handler_factory, aws, event_factory):
    # GIVEN the API keys secret pointing at a webhook that redirects to a recording host
    with Recorder() as elsewhere, Recorder(302) as webhook:
        webhook.location = f"http://127.0.0.1:{elsewhere.port}/"
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="lwb-test/api-keys", SecretString=json.dumps(
                {"webhook_url": f"http://127.0.0.1:{webhook.port}/hook", "webhook_token": "tok", "api_keys": {}}))
        module = handler_factory("notification_handler")
        module.CLIENT._sleep = lambda _s: None
        event = event_factory("sqs_sns_envelope")
        event["Records"][0]["messageId"] = str(uuid.uuid4())
        # WHEN the SQS batch is handled
        response = module.handler(event, LambdaContext())
    # THEN the record fails (SQS retries it, then dead-letters it), and the target saw nothing
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert len(webhook.requests) == module.CLIENT.max_attempts and elsewhere.requests == []


def _no_dns(*_args: Any, **_kwargs: Any) -> list:
    raise AssertionError("no lookup may happen for a URL refused on its face")


def _resolving_to(*addresses: str):
    def resolve(host: str, port: int, **_: Any) -> list:
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolve


@pytest.mark.parametrize("url, allow_private, resolve, says", [
    # plain HTTP carries the token in clear
    ("http://hooks.example.com/x", False, _no_dns, "plain http:// refused"),
    ("http://hooks.example.com/x", True, _resolving_to("93.184.216.34"), "plain http:// to a public address"),
    ("ftp://hooks.example.com/x", True, _no_dns, "scheme 'ftp' refused"),
    ("https://user:pw@hooks.example.com/x", False, _no_dns, "user:password"),
    ("https://hooks.example.com:99999/x", False, _no_dns, "malformed"),
    # the instance metadata service, however it is spelt, and whatever params allow
    ("https://169.254.169.254/latest/meta-data/", True, socket.getaddrinfo, "link-local"),
    ("http://169.254.169.254/latest/meta-data/", True, socket.getaddrinfo, "link-local"),
    ("https://[::ffff:169.254.169.254]/", True, socket.getaddrinfo, "link-local"),
    ("https://[fe80::1]/", True, _resolving_to("fe80::1"), "link-local"),
    ("https://0.0.0.0/", True, socket.getaddrinfo, "not a unicast host"),
    # loopback and private targets without the allowance, by literal or by name
    ("https://127.0.0.1:1/x", False, socket.getaddrinfo, "loopback address; refused"),
    ("https://localhost:1/x", False, socket.getaddrinfo, "loopback address; refused"),
    ("https://[::1]:1/x", False, socket.getaddrinfo, "loopback address; refused"),
    ("https://hooks.internal/x", False, _resolving_to("10.1.2.3"), "private or reserved"),
    ("https://hooks.internal/x", False, _resolving_to("100.64.0.7"), "private or reserved"),
    # a name with a public and a private address: every address is checked, not just the first
    ("https://hooks.example.com/x", False, _resolving_to("93.184.216.34", "192.168.1.20"), "private or reserved"),
])
def test_refused_targets_fail_before_any_connection_and_leave_the_breaker_alone(url, allow_private, resolve, says):
    from common.errors import TargetRefused
    from common.httpclient import BreakerState, TargetPolicy

    client = _client(policy=TargetPolicy(allow_private=allow_private, resolve=resolve))
    with pytest.raises(TargetRefused, match=says) as raised:
        client.post_json(url, {"n": 1}, headers={"Authorization": "Bearer s3cret"})
    # THEN not retried (a refusal is not the service's fault) and the breaker neither opens nor stays half-used
    assert client.circuit.state is BreakerState.CLOSED and client.circuit.consecutive_failures == 0
    assert raised.value.retryable is False
    assert "s3cret" not in str(raised.value) and "meta-data" not in str(raised.value)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for the made-up name hooks.workbook.test (openssl, as on every CI image)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: cannot make the test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=hooks.workbook.test", "-addext", "subjectAltName=DNS:hooks.workbook.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_goes_to_the_checked_address_and_verifies_the_urls_host(certificate):
    from common.errors import UpstreamError
    from common.httpclient import TargetPolicy

    cert, key = certificate
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    trust = ssl.create_default_context(cafile=str(cert))
    lookups: list[str] = []

    def resolve(host: str, port: int, **_: Any) -> list:
        lookups.append(host)
        return _resolving_to("127.0.0.1")(host, port)

    # GIVEN a TLS webhook on loopback whose name resolves (once per attempt) to 127.0.0.1
    with Recorder(200, context=server_context) as webhook:
        client = _client(policy=TargetPolicy(allow_private=True, resolve=resolve), ssl_context=trust)
        # WHEN a notification is posted to it by name
        response = client.post_json(f"https://hooks.workbook.test:{webhook.port}/hook?a=1", {"n": 1})
        # THEN it arrives with the URL's Host, over a certificate checked for that name, after one lookup
        assert response.status == 200 and lookups == ["hooks.workbook.test"]
        assert webhook.requests[0]["headers"]["host"] == f"hooks.workbook.test:{webhook.port}"
        assert webhook.requests[0]["path"] == "/hook?a=1" and json.loads(webhook.requests[0]["body"]) == {"n": 1}
        # AND a certificate for another name is a failed attempt, not a delivery
        other = _client(policy=TargetPolicy(allow_private=True, resolve=resolve), ssl_context=trust, attempts=1)
        with pytest.raises(UpstreamError, match="SSLCertVerificationError"):
            other.post_json(f"https://other.workbook.test:{webhook.port}/hook", {"n": 1})


def test_the_allowance_comes_from_params_and_prod_may_not_set_it():
    from common import config
    from common.errors import ConfigError
    from infra import environment
    from infra.config import ParamsError, from_mapping, load

    refs = {name: f"value-of-{name}" for name in environment.REF_NAMES}
    # local params admit the loopback sink; dev keeps the default (refused)
    local = environment.function_environment(load("local"), "notification-handler", refs)
    dev = environment.function_environment(load("dev"), "notification-handler", refs)
    assert local["WEBHOOK_ALLOW_PRIVATE_TARGETS"] == "true" and dev["WEBHOOK_ALLOW_PRIVATE_TARGETS"] == "false"
    assert config.load("notification-handler", local).webhook_allow_private_targets is True
    assert config.load("notification-handler", dev).webhook_allow_private_targets is False
    with pytest.raises(ConfigError, match="WEBHOOK_ALLOW_PRIVATE_TARGETS='yes' is not a boolean"):
        config.load("notification-handler", {**dev, "WEBHOOK_ALLOW_PRIVATE_TARGETS": "yes"})
    prod = load("prod").params.model_dump(mode="json")
    prod["webhook"] = {"allow_private_targets": True}
    with pytest.raises(ParamsError, match="webhook.allow_private_targets.*must be false in prod"):
        from_mapping(prod, source="params/prod.yaml")
