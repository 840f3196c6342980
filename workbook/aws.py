"""The one place the workbook makes boto3 clients.

On AWS the default credential chain and region apply. For the embedded default the local
endpoint is taken from ``AWS_ENDPOINT_URL`` (set by ``workbook.local`` when the local
environment is up), and S3 uses path-style addressing, which a loopback endpoint needs.
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"
_RETRIES = {"max_attempts": 8, "mode": "adaptive"}


def endpoint_url(service: str | None = None) -> str | None:
    """The local endpoint in force for ``service`` (``AWS_ENDPOINT_URL_<SERVICE>`` first, as botocore
    reads it), or None on real AWS."""
    if service:
        specific = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
        if specific:
            return specific
    return os.environ.get("AWS_ENDPOINT_URL") or None


def is_local() -> bool:
    return endpoint_url() is not None


def client(service: str, region: str | None = None, **overrides: Any):
    """A boto3 client with retries (adaptive, 8 attempts) and the local endpoint when set."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    # Config overrides may hold dicts (retries=..., s3=...): key the cache on their JSON form.
    key = json.dumps(overrides, sort_keys=True, default=str)
    return _cached_client(service, region, endpoint_url(service), key)


@lru_cache(maxsize=64)
def _cached_client(service: str, region: str, endpoint: str | None, overrides_json: str) -> Any:
    options: dict[str, Any] = {"retries": dict(_RETRIES)}
    if service == "s3":
        options["s3"] = {"addressing_style": "path"}
    options.update(json.loads(overrides_json))
    kwargs: dict[str, Any] = {"region_name": region, "config": Config(**options)}
    if endpoint:
        kwargs["endpoint_url"] = endpoint
        # moto accepts any credentials; never reach for a real profile against the local endpoint.
        kwargs.setdefault("aws_access_key_id", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
        kwargs.setdefault("aws_secret_access_key", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    return boto3.session.Session().client(service, **kwargs)


def reset_clients() -> None:
    """Forget cached clients (after the endpoint changes)."""
    _cached_client.cache_clear()
