"""The environment variables each function receives: one contract for infra and the local sandbox.

``function_environment(settings, key, refs)`` takes ``refs``, a mapping from the names below
to values (Pulumi Outputs in the program, plain strings in the local sandbox), and returns
the variables for that function. The handlers read exactly these names (handlers/common/config.py).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra import specs
from infra.config import Settings

# Names of the resource identifiers a function may need, in ``refs``.
REF_NAMES = (
    "task_queue_url",
    "notifications_topic_arn",
    "uploads_bucket",
    "processed_bucket",
    "event_bus_name",
    "db_secret_arn",
    "jwt_secret_arn",
    "api_keys_secret_arn",
)

# Which refs each function gets (least privilege starts with least knowledge).
_FUNCTION_REFS: dict[str, tuple[str, ...]] = {
    "api-processor": ("db_secret_arn",),
    "data-processor": ("db_secret_arn", "notifications_topic_arn"),
    "file-processor": ("uploads_bucket", "processed_bucket", "event_bus_name"),
    "scheduler": ("db_secret_arn", "task_queue_url", "notifications_topic_arn"),
    "notification-handler": ("api_keys_secret_arn",),
    "auth-handler": ("jwt_secret_arn",),
}

# Port of the AWS Parameters and Secrets Lambda Extension's local HTTP endpoint.
SECRETS_EXTENSION_PORT = 2773
METRICS_NAMESPACE = "LambdaWorkbook"


def function_environment(settings: Settings, key: str, refs: Mapping[str, Any]) -> dict[str, Any]:
    """The variables for function ``key``; values from ``refs`` are passed through untouched."""
    spec = specs.spec(key)
    p = settings.params
    variables: dict[str, Any] = {
        "WORKBOOK_ENV": p.environment,
        "WORKBOOK_FUNCTION": key,
        "POWERTOOLS_SERVICE_NAME": key,
        "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
        "POWERTOOLS_METRICS_FUNCTION_NAME": settings.function_name(key),
        "SAFETY_MARGIN_MS": str(safety_margin_ms(settings.function(key).timeout_s)),
    }
    for ref in _FUNCTION_REFS[spec.key]:
        variables[ref.upper()] = refs[ref]
    if key == "api-processor":
        variables["CORS_ALLOW_ORIGIN"] = settings.cors_origin
    if key == "notification-handler":
        variables["WEBHOOK_ALLOW_PRIVATE_TARGETS"] = "true" if p.webhook.allow_private_targets else "false"
    if key == "file-processor":
        variables["UPLOAD_PREFIX"] = p.uploads.prefix
        variables["MAX_OBJECT_BYTES"] = str(p.uploads.max_object_mb * 1024 * 1024)
    if key == "auth-handler":
        variables.update({
            "JWT_ISSUER": p.jwt.issuer,
            "JWT_AUDIENCE": p.jwt.audience,
            "JWT_ALGORITHMS": ",".join(p.jwt.algorithms),
            "JWT_LEEWAY_S": str(p.jwt.leeway_s),
            "JWT_MAX_TOKEN_BYTES": str(p.jwt.max_token_bytes),
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": str(SECRETS_EXTENSION_PORT),
            "SECRETS_MANAGER_TTL": "300",
        })
        if p.jwt.public_key_pem:
            variables["JWT_PUBLIC_KEY"] = p.jwt.public_key_pem
    return variables


def safety_margin_ms(timeout_s: float) -> int:
    """SAFETY_MARGIN_MS: the time a handler keeps in hand before its timeout (2 s; 0.5 s below a 30 s timeout)."""
    return 2000 if timeout_s >= 30 else 500


def refs_for(key: str) -> tuple[str, ...]:
    """The ref names function ``key`` receives."""
    return _FUNCTION_REFS[specs.spec(key).key]
