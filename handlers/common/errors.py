"""One error hierarchy for every handler, and its mapping to HTTP responses.

Every error the handlers raise on purpose derives from :class:`HandlerError`. Each family carries
the HTTP status and a stable machine code, so the API maps an error to a response in one place
(:func:`to_http`) and never leaks a stack trace. Lower-layer errors (botocore, pg8000, urllib)
are translated into these at the boundary of the module that calls them.
"""
from __future__ import annotations

from typing import Any


class HandlerError(Exception):
    """Root of every error the handlers raise deliberately."""

    status_code = 500
    code = "internal_error"
    #: Whether retrying the same input later may succeed (drives retry and DLQ decisions).
    retryable = False

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The public body of this error: code, message and safe details (never a traceback)."""
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


# --- configuration ----------------------------------------------------------------------------
class ConfigError(HandlerError):
    """The function's environment is missing or malformed; fix the variable named in the message."""

    code = "config_error"


# --- the caller's input -----------------------------------------------------------------------
class InputError(HandlerError):
    """The input is wrong and retrying it unchanged will fail again."""

    status_code = 400
    code = "bad_request"


class InvalidEvent(InputError):
    """The event is not of the type this function handles (wrong source, empty, missing fields)."""

    code = "invalid_event"


class ValidationError(InputError):
    """A body or message failed validation (invalid JSON, wrong types, missing fields)."""

    code = "validation_error"


class PayloadTooLarge(InputError):
    """A body, message or object is larger than this function accepts."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMedia(InputError):
    """A file type this function does not process."""

    status_code = 415
    code = "unsupported_media_type"


class NotFound(InputError):
    """The resource does not exist."""

    status_code = 404
    code = "not_found"


class Conflict(InputError):
    """The request conflicts with the resource's current state (e.g. a stale version)."""

    status_code = 409
    code = "conflict"


class Unauthorized(InputError):
    """The caller's credentials were rejected."""

    status_code = 401
    code = "unauthorized"


# --- dependencies ----------------------------------------------------------------------------
class DependencyError(HandlerError):
    """A dependency (database, AWS API, webhook) failed; a later retry may succeed."""

    status_code = 503
    code = "service_unavailable"
    retryable = True


class DatabaseUnavailable(DependencyError):
    """PostgreSQL could not be reached or the query failed on the server side."""

    code = "database_unavailable"


class SecretUnavailable(DependencyError):
    """A secret could not be read (Secrets Manager or the Lambda extension)."""

    code = "secret_unavailable"


class UpstreamError(DependencyError):
    """An external HTTP service failed after the retries allowed."""

    code = "upstream_error"


class UpstreamRejected(HandlerError):
    """An external HTTP service refused the request with a 4xx: retrying it unchanged will not help."""

    status_code = 502
    code = "upstream_rejected"


class TargetRefused(HandlerError):
    """The URL's target is not one the client may call (plain HTTP, or a link-local, loopback or private address)."""

    status_code = 502
    code = "target_refused"


class CircuitOpenError(DependencyError):
    """The circuit breaker for a dependency is open: failing fast instead of calling it."""

    code = "circuit_open"


class AwsServiceError(DependencyError):
    """An AWS API call failed (throttling, network, service error)."""

    code = "aws_service_error"


class OutOfTime(DependencyError):
    """Too little of the invocation's time remains to start this unit of work safely."""

    code = "out_of_time"


def to_http(error: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and JSON body for an error; unknown errors become a bare 500."""
    if isinstance(error, HandlerError):
        return error.status_code, error.to_dict()
    return 500, {"error": "internal_error", "message": "internal error"}


__all__ = [
    "AwsServiceError", "CircuitOpenError", "ConfigError", "Conflict", "DatabaseUnavailable", "DependencyError",
    "HandlerError", "InputError", "InvalidEvent", "NotFound", "OutOfTime", "PayloadTooLarge",
    "SecretUnavailable", "TargetRefused", "Unauthorized", "UnsupportedMedia", "UpstreamError", "UpstreamRejected",
    "ValidationError", "to_http",
]
