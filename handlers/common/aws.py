"""boto3 clients, created once per execution environment and reused by warm invocations.

boto3 itself honours ``AWS_ENDPOINT_URL`` (the local sandbox sets it). S3 uses path-style
addressing, which a loopback endpoint needs and AWS accepts. Timeouts are short and retries
standard, so a slow dependency cannot eat the whole invocation. Clients are built on first use:
building one loads its service model, and a function needs its clients only on the paths that
call them. Importing this module loads boto3 (never import it from the auth handler).
"""
from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from common import budgets
from common.errors import AwsServiceError

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


def client(service: str) -> Any:
    """The shared client for ``service`` (s3, sqs, sns, events, secretsmanager)."""
    found = _CLIENTS.get(service)
    if found is not None:
        return found
    with _LOCK:
        if service not in _CLIENTS:
            # boto3's default session: its loader caches service models, so a process that
            # re-imports the handlers (the test suite, the local sandbox) loads each model once.
            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            # The budgets live in common/budgets.py, where the workbook's timeout floors read them too.
            options: dict[str, Any] = {
                "connect_timeout": budgets.SDK_CONNECT_TIMEOUT_S,
                "read_timeout": budgets.SDK_READ_TIMEOUT_S,
                "retries": {"max_attempts": budgets.SDK_MAX_RETRIES, "mode": "standard"},
            }
            if service == "s3":
                options["s3"] = {"addressing_style": "path"}
            _CLIENTS[service] = boto3.DEFAULT_SESSION.client(service, config=Config(**options))
        return _CLIENTS[service]


def reset() -> None:
    """Forget the clients (tests that move the endpoint)."""
    with _LOCK:
        _CLIENTS.clear()


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore error, or its class name."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "ClientError"))
    return type(error).__name__


def translate(error: BaseException, action: str) -> AwsServiceError:
    """A botocore error as this layer's :class:`AwsServiceError`, naming the action."""
    return AwsServiceError(f"{action} failed: {error_code(error)}", aws_error=error_code(error))


AWS_ERRORS = (BotoCoreError, ClientError)

__all__ = ["AWS_ERRORS", "client", "error_code", "reset", "translate"]
