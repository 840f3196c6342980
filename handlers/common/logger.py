"""Structured JSON logs (Powertools Logger) with the request id and a correlation id.

One Logger per execution environment, named after ``POWERTOOLS_SERVICE_NAME``. Handlers decorate
their entry point with ``logger.inject_lambda_context(correlation_id_path=...)``, which adds
``function_request_id``, cold start and ``correlation_id`` to every line. The event itself is never
logged (``log_event`` stays off): it may carry tokens and personal data.
"""
from __future__ import annotations

import os

from aws_lambda_powertools.logging import Logger, correlation_paths

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "workbook", log_uncaught_exceptions=False)

__all__ = ["correlation_paths", "logger"]
