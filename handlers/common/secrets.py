"""Secrets Manager reads with a TTL cache, through boto3 or the Lambda extension's HTTP endpoint.

Two sources, one cache:

* :class:`ExtensionSource` reads through the AWS Parameters and Secrets Lambda Extension
  (``GET http://localhost:$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT/secretsmanager/get?secretId=...``
  with the ``X-Aws-Parameters-Secrets-Token`` header). It uses the stdlib only, so a function
  that reads secrets this way never loads boto3; the auth handler depends on that.
* :class:`BotoSource` calls ``GetSecretValue`` with the shared boto3 client.

Secrets are JSON objects (SecretString). The cache keeps each one ``ttl_s`` seconds, so a rotated
secret is picked up within the TTL; ``invalidate`` forces the next read.
"""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from common.errors import SecretUnavailable


class SecretSource(Protocol):
    """Where secret strings come from."""

    def fetch(self, secret_id: str) -> str:  # pragma: no cover - protocol
        """The SecretString of ``secret_id``."""


class ExtensionSource:
    """The Parameters and Secrets Lambda Extension's local HTTP endpoint (stdlib only)."""

    def __init__(self, port: int = 2773, timeout_s: float = 2.0, host: str = "localhost"):
        self.base_url = f"http://{host}:{port}/secretsmanager/get"
        self.timeout_s = timeout_s
        # No proxy may sit between the function and its extension.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def fetch(self, secret_id: str) -> str:
        url = f"{self.base_url}?secretId={urllib.parse.quote(secret_id, safe='')}"
        request = urllib.request.Request(
            url, headers={"X-Aws-Parameters-Secrets-Token": os.environ.get("AWS_SESSION_TOKEN", "")})
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read())
        except urllib.error.HTTPError as error:
            raise SecretUnavailable(f"secrets extension answered HTTP {error.code} for {_name(secret_id)}",
                                    status=error.code) from None
        except (OSError, ValueError) as error:
            raise SecretUnavailable(f"secrets extension unreachable on {self.base_url}: {type(error).__name__}") from None
        secret = payload.get("SecretString") if isinstance(payload, dict) else None
        if not isinstance(secret, str):
            raise SecretUnavailable(f"secret {_name(secret_id)} has no SecretString")
        return secret


class BotoSource:
    """GetSecretValue through the shared boto3 client (loads boto3 on first use)."""

    def fetch(self, secret_id: str) -> str:
        from common import aws

        try:
            response = aws.client("secretsmanager").get_secret_value(SecretId=secret_id)
        except aws.AWS_ERRORS as error:
            raise SecretUnavailable(f"GetSecretValue failed for {_name(secret_id)}: {aws.error_code(error)}") from None
        secret = response.get("SecretString")
        if not isinstance(secret, str):
            raise SecretUnavailable(f"secret {_name(secret_id)} has no SecretString")
        return secret


def _name(secret_id: str) -> str:
    """The secret's name without the account-specific ARN prefix (safe to log)."""
    return secret_id.rsplit(":", 1)[-1]


class SecretsCache:
    """JSON secrets kept ``ttl_s`` seconds per id (monotonic clock), shared by warm invocations."""

    def __init__(self, source: SecretSource, ttl_s: float = 300, clock: Callable[[], float] = time.monotonic):
        self.source = source
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get_json(self, secret_id: str) -> dict[str, Any]:
        """The secret as a dict, from the cache when younger than the TTL."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(secret_id)
            if entry is not None and now - entry[0] < self.ttl_s:
                return entry[1]
        raw = self.source.fetch(secret_id)
        try:
            value = json.loads(raw)
        except ValueError:
            raise SecretUnavailable(f"secret {_name(secret_id)} is not JSON") from None
        if not isinstance(value, dict):
            raise SecretUnavailable(f"secret {_name(secret_id)} is not a JSON object")
        with self._lock:
            self._entries[secret_id] = (now, value)
        return value

    def age_s(self, secret_id: str) -> float | None:
        """Seconds since ``secret_id`` was fetched, or None when it is not cached."""
        entry = self._entries.get(secret_id)
        return None if entry is None else self._clock() - entry[0]

    def invalidate(self, secret_id: str | None = None) -> None:
        """Forget one secret, or all of them."""
        with self._lock:
            if secret_id is None:
                self._entries.clear()
            else:
                self._entries.pop(secret_id, None)


_DEFAULT: SecretsCache | None = None


def default_cache() -> SecretsCache:
    """The process-wide boto3-backed cache (TTL from SECRETS_MANAGER_TTL, default 300 s)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = SecretsCache(BotoSource(), ttl_s=float(os.environ.get("SECRETS_MANAGER_TTL") or 300))
    return _DEFAULT


__all__ = ["BotoSource", "ExtensionSource", "SecretSource", "SecretsCache", "default_cache"]
