"""Secrets never reach the outputs: every known secret value in a run folder is replaced with ``[redacted]``.

The values come from secret-looking environment variables (passphrases, tokens, keys) and, for
the local environment, every secret its endpoint holds.
"""
from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbook import aws

_SECRET_ENV = re.compile(r"(PASSPHRASE|TOKEN|SECRET|PASSWORD|API_KEY|ACCESS_KEY)", re.I)
REDACTED = "[redacted]"


def known_secrets() -> set[str]:
    """Values that must never appear in an output: secret-looking env vars and the local env's secrets."""
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8 and v != "testing"}
    if aws.is_local():
        values |= _local_secret_values()
    return {v for v in values if len(v) >= 8}


def _local_secret_values() -> set[str]:
    """Every secret string the local endpoint holds (whole values and their JSON fields)."""
    client = aws.client("secretsmanager")
    values: set[str] = set()
    try:
        for page in client.get_paginator("list_secrets").paginate():
            for entry in page.get("SecretList", []):
                secret = client.get_secret_value(SecretId=entry["ARN"]).get("SecretString") or ""
                values.add(secret)
                try:
                    parsed = json.loads(secret)
                except ValueError:
                    continue
                values |= set(_secret_leaves(parsed))
    except Exception as exc:  # noqa: BLE001 - redaction must not fail a finished run; say so instead
        print(f"workbook: could not read the local secrets for redaction: {exc}", file=sys.stderr)
    return values


def _secret_leaves(value: Any, key: str = "") -> Iterable[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _secret_leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_leaves(v, key)
    elif isinstance(value, str) and not value.startswith(("http://", "https://")) and key not in ("host", "dbname", "username"):
        yield value


def redact_folder(folder: Path, secrets: Iterable[str]) -> list[Path]:
    """Replace every known secret value in the run folder's files; returns the files changed."""
    secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
    changed = []
    if not secrets:
        return changed
    for path in folder.rglob("*"):
        if not path.is_file() or path.suffix not in (".ipynb", ".html", ".json", ".txt", ".md", ".log", ".csv", ".yaml"):
            continue
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        clean = text
        for secret in secrets:
            clean = clean.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                clean = clean.replace(escaped, REDACTED)
        if clean != text:
            path.write_text(clean, encoding="utf-8", errors="surrogateescape")
            changed.append(path)
    return changed
