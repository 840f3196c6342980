"""The X-Ray tracer (Powertools Tracer), loaded only where tracing can be active.

Powertools' Tracer imports the X-Ray SDK even when it disables itself (outside Lambda, or with
``POWERTOOLS_TRACE_DISABLED``), and that import costs more than boto3's own INIT. So this module
builds the real Tracer only when tracing is on, by the same rule Powertools applies, and otherwise
hands out a no-op with the same decorators. On Lambda with active tracing the handlers get the
full Powertools Tracer, patching only the libraries the handler names: letting it patch every
library X-Ray supports imports each one that is installed (requests, httpx, sqlite3...), which
costs INIT time for calls the handler never makes.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def tracing_enabled(env: Any = None) -> bool:
    """Whether X-Ray tracing can be active: inside Lambda and not disabled by POWERTOOLS_TRACE_DISABLED."""
    env = os.environ if env is None else env
    if env.get("POWERTOOLS_TRACE_DISABLED", "false").lower() in ("1", "true", "yes", "on"):
        return False
    if env.get("AWS_SAM_LOCAL") or env.get("AWS_CHALICE_CLI_MODE"):
        return False
    return bool(env.get("LAMBDA_TASK_ROOT"))


class NoOpTracer:
    """Stands in for Powertools' Tracer when tracing is off: same decorators, no X-Ray SDK."""

    disabled = True

    def capture_lambda_handler(self, fn: Callable | None = None, **_: Any) -> Any:
        if fn is None:
            return lambda f: f
        return fn

    def capture_method(self, fn: Callable | None = None, **_: Any) -> Any:
        if fn is None:
            return lambda f: f
        return fn

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None


def create(patch_modules: tuple[str, ...] = ("botocore",)) -> Any:
    """The handler's tracer: Powertools' Tracer patching ``patch_modules`` (X-Ray names such as
    ``botocore``, ``pg8000``, ``httplib``) when tracing can be active, else a :class:`NoOpTracer`."""
    if not tracing_enabled():
        return NoOpTracer()
    from aws_lambda_powertools.tracing import Tracer

    return Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "workbook", patch_modules=list(patch_modules))


__all__ = ["NoOpTracer", "create", "tracing_enabled"]
