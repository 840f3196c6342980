"""The function's environment, read and validated once at INIT.

The variable names are the contract written by ``infra/environment.py`` (the handlers cannot
import ``infra``: they ship to Lambda alone; ``tests/unit/handlers/test_config.py`` checks the two
agree). ``load(key)`` fails at INIT with a :class:`~common.errors.ConfigError` naming the variable
and the fix, so a misconfigured function never reaches its first event.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from common import limits
from common.errors import ConfigError

#: Resource identifiers each function needs (mirrors ``infra.environment._FUNCTION_REFS``).
REQUIRED: dict[str, tuple[str, ...]] = {
    "api-processor": ("DB_SECRET_ARN", "CORS_ALLOW_ORIGIN"),
    "data-processor": ("DB_SECRET_ARN", "NOTIFICATIONS_TOPIC_ARN"),
    "file-processor": ("UPLOADS_BUCKET", "PROCESSED_BUCKET", "EVENT_BUS_NAME"),
    "scheduler": ("DB_SECRET_ARN", "TASK_QUEUE_URL", "NOTIFICATIONS_TOPIC_ARN"),
    "notification-handler": ("API_KEYS_SECRET_ARN",),
    "auth-handler": ("JWT_SECRET_ARN", "JWT_ISSUER", "JWT_AUDIENCE"),
}

_JWT_ALGORITHMS = ("HS256", "RS256")


class Config(NamedTuple):
    """Everything a handler reads from its environment, typed and immutable.

    A NamedTuple rather than a dataclass: ``dataclasses`` costs the auth handler's cold start
    several milliseconds of imports (inspect), on every request's path.
    """

    function: str
    environment: str = "local"
    service: str = ""
    safety_margin_ms: int = 2000
    region: str = "us-east-1"
    # resource identifiers
    task_queue_url: str = ""
    notifications_topic_arn: str = ""
    uploads_bucket: str = ""
    processed_bucket: str = ""
    event_bus_name: str = ""
    db_secret_arn: str = ""
    jwt_secret_arn: str = ""
    api_keys_secret_arn: str = ""
    # api-processor
    cors_allow_origin: str = ""
    # file-processor
    upload_prefix: str = "incoming/"
    max_object_bytes: int = limits.MAX_OBJECT_BYTES_DEFAULT
    # auth-handler
    jwt_issuer: str = ""
    jwt_audience: str = ""
    jwt_algorithms: tuple[str, ...] = ("HS256",)
    jwt_leeway_s: int = 30
    jwt_max_token_bytes: int = limits.JWT_MAX_TOKEN_BYTES_DEFAULT
    jwt_public_key: str = ""
    extension_port: int = 2773
    secrets_ttl_s: int = 300
    # notification-handler: loopback/private webhook targets (params webhook.allow_private_targets)
    webhook_allow_private_targets: bool = False


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name}={raw!r} is not an integer; set it to a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"environment variable {name}={value} is out of range; set it {bound}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"environment variable {name}={raw!r} is not a boolean; set it to true or false")
    return raw == "true"


def load(function: str, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate the environment of ``function`` (a function key such as ``api-processor``)."""
    env = os.environ if env is None else env
    if function not in REQUIRED:
        raise ConfigError(f"unknown function {function!r}; known: {', '.join(REQUIRED)}")
    missing = [name for name in REQUIRED[function] if not env.get(name)]
    if missing:
        raise ConfigError(
            f"{function}: environment variable(s) {', '.join(missing)} not set; "
            "they come from infra/environment.py (deploy) or the local sandbox",
        )
    algorithms = tuple(a.strip() for a in env.get("JWT_ALGORITHMS", "HS256").split(",") if a.strip())
    unknown = [a for a in algorithms if a not in _JWT_ALGORITHMS]
    if function == "auth-handler":
        if not algorithms or unknown:
            raise ConfigError(f"JWT_ALGORITHMS={env.get('JWT_ALGORITHMS')!r}: allowed values are {', '.join(_JWT_ALGORITHMS)}")
        if "RS256" in algorithms and not env.get("JWT_PUBLIC_KEY"):
            raise ConfigError("JWT_ALGORITHMS includes RS256 but JWT_PUBLIC_KEY is not set; set jwt.public_key_pem in params")
    cors = env.get("CORS_ALLOW_ORIGIN", "")
    if cors and (cors == "*" or not cors.startswith(("https://", "http://"))):
        raise ConfigError(f"CORS_ALLOW_ORIGIN={cors!r} must be one origin such as https://app.example.com, not a wildcard")
    prefix = env.get("UPLOAD_PREFIX", "incoming/")
    return Config(
        function=function,
        environment=env.get("WORKBOOK_ENV", "local"),
        service=env.get("POWERTOOLS_SERVICE_NAME", function),
        safety_margin_ms=_int(env, "SAFETY_MARGIN_MS", 2000, 0, 60_000),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        task_queue_url=env.get("TASK_QUEUE_URL", ""),
        notifications_topic_arn=env.get("NOTIFICATIONS_TOPIC_ARN", ""),
        uploads_bucket=env.get("UPLOADS_BUCKET", ""),
        processed_bucket=env.get("PROCESSED_BUCKET", ""),
        event_bus_name=env.get("EVENT_BUS_NAME", ""),
        db_secret_arn=env.get("DB_SECRET_ARN", ""),
        jwt_secret_arn=env.get("JWT_SECRET_ARN", ""),
        api_keys_secret_arn=env.get("API_KEYS_SECRET_ARN", ""),
        cors_allow_origin=cors,
        upload_prefix=prefix,
        max_object_bytes=_int(env, "MAX_OBJECT_BYTES", limits.MAX_OBJECT_BYTES_DEFAULT, 1),
        jwt_issuer=env.get("JWT_ISSUER", ""),
        jwt_audience=env.get("JWT_AUDIENCE", ""),
        jwt_algorithms=algorithms,
        jwt_leeway_s=_int(env, "JWT_LEEWAY_S", 30, 0, 300),
        jwt_max_token_bytes=_int(env, "JWT_MAX_TOKEN_BYTES", limits.JWT_MAX_TOKEN_BYTES_DEFAULT, 256, 65_536),
        jwt_public_key=env.get("JWT_PUBLIC_KEY", ""),
        extension_port=_int(env, "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", 2773, 1, 65_535),
        secrets_ttl_s=_int(env, "SECRETS_MANAGER_TTL", 300, 0, 86_400),
        webhook_allow_private_targets=_bool(env, "WEBHOOK_ALLOW_PRIVATE_TARGETS", False),
    )


__all__ = ["Config", "REQUIRED", "load"]
