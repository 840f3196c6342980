"""Fixtures shared by the handler test tiers; each tier's conftest imports them with ``import *``."""
from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from handler_kit import LambdaContext, forget_handler_modules, fresh_handler, load_event, start_postgres, truncate_all

__all__ = ["aws", "context_factory", "event_factory", "handler_factory", "pg", "db_secret", "pytest_sessionfinish"]


@pytest.fixture
def context_factory() -> Callable[..., LambdaContext]:
    """Build LambdaContext objects: ``context_factory(remaining_ms=500)``."""
    return lambda **fields: LambdaContext(**fields)


@pytest.fixture
def event_factory() -> Callable[..., dict[str, Any]]:
    """Load a fixture event and apply top-level overrides: ``event_factory("sqs_batch", Records=[])``."""
    def build(name: str, **overrides: Any) -> dict[str, Any]:
        event = load_event(name)
        event.update(overrides)
        return event
    return build


@pytest.fixture
def handler_factory(monkeypatch: pytest.MonkeyPatch):
    """Import a handler module fresh (new execution environment): ``handler_factory("scheduler", **env)``."""
    yield lambda module, **env: fresh_handler(module, monkeypatch, **env)
    forget_handler_modules()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch):
    """In-process moto for every AWS API; clients made by the handlers go to it."""
    from moto import mock_aws

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


_POSTGRES: dict[str, Any] = {}


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL (pgserver) for the session; yields the RDS-style secret for common.db.

    Each tier's conftest defines this fixture; one server per test process serves them all, and
    it is stopped at the end of the session.
    """
    if "secret" not in _POSTGRES:
        # Not under pytest's basetemp: concurrent pytest runs on the machine prune each other's
        # numbered basetemp directories, which would pull the data directory from under PostgreSQL.
        directory = Path(tempfile.mkdtemp(prefix="lwb-handlers-pg-"))
        server, secret = start_postgres(directory)
        _POSTGRES.update(server=server, secret=secret, directory=directory)
    yield _POSTGRES["secret"]


def pytest_sessionfinish_stop_postgres() -> None:
    """Stop the session's PostgreSQL (called from each tier's conftest at session end)."""
    server = _POSTGRES.pop("server", None)
    directory = _POSTGRES.pop("directory", None)
    _POSTGRES.clear()
    if server is not None:
        server.cleanup()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def db_secret(pg: dict[str, Any], aws: None) -> dict[str, Any]:
    """Empty tables and the database secret stored (in moto) under the name the handlers read."""
    import boto3

    truncate_all(pg)
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="lwb-test/db", SecretString=json.dumps(pg))
    return pg


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    pytest_sessionfinish_stop_postgres()
