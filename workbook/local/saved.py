"""What a start saved for a later repair: its settings and plan, and the database secret it made.

A repair (``manager.start`` when some processes died, or ``manager.restart``) provisions moto again
from the same plan and params the first start used, and a PostgreSQL started again keeps the
password and port the handlers read from the database secret.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infra import config
from workbook import aws
from workbook.local import services


def save_inputs(folder: Path, settings, plan: dict | None) -> None:
    """Keep the validated params (and the plan, once made) in the state folder."""
    raw = {"params": settings.params.model_dump(mode="json", by_alias=True), "source": settings.source}
    _write_private(folder / "settings.json", raw)
    if plan is not None:
        _write_private(folder / "plan.json", plan)


def load_inputs(folder: Path, env: str) -> tuple[Any, dict | None]:
    """The saved settings (else ``params/<env>.yaml``) and plan (else None: plan again)."""
    try:
        raw = json.loads((folder / "settings.json").read_text())
        settings = config.from_mapping(raw["params"], raw.get("source", "<saved params>"))
    except (OSError, ValueError, KeyError):
        settings = config.load(env)
    try:
        plan = json.loads((folder / "plan.json").read_text())
    except (OSError, ValueError):
        plan = None
    return settings, plan


def _write_private(path: Path, document: Any) -> None:
    """Write a file only its owner can read, from its first byte."""
    path.unlink(missing_ok=True)
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        json.dump(document, handle)


def _db_secret_id(recorded: dict) -> str | None:
    try:
        topology = json.loads((Path(recorded["state_dir"]) / "topology.json").read_text())
    except (OSError, ValueError):
        return None
    for function in topology.get("functions", []):
        if function.get("environment", {}).get("DB_SECRET_ARN"):
            return function["environment"]["DB_SECRET_ARN"]
    return None


def _db_secret(recorded: dict) -> dict | None:
    secret_id = _db_secret_id(recorded)
    if not secret_id:
        return None
    try:
        return json.loads(aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"])
    except Exception:  # noqa: BLE001 - no readable secret: a new password is made and the secret updated
        return None


def database_password(recorded: dict) -> str | None:
    return (_db_secret(recorded) or {}).get("password")


def update_database_secret(recorded: dict, database: services.Database) -> None:
    secret_id = _db_secret_id(recorded)
    if secret_id:
        aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(database.secret()))
