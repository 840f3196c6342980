"""The downstream budgets have one home (handlers/common/budgets.py): the handlers build their clients from it,
and the workbook's timeout floors read the very same file."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FUNCTIONAL = REPO / "tests" / "functional"
if str(FUNCTIONAL) not in sys.path:
    sys.path.insert(0, str(FUNCTIONAL))

from handler_kit import HANDLERS_DIR, forget_handler_modules, fresh_handler

from workbook.tuning import floors


@pytest.fixture
def handler(monkeypatch):
    yield lambda module: fresh_handler(module, monkeypatch)
    forget_handler_modules()


def test_the_workbook_reads_the_handlers_own_budgets_file():
    # GIVEN the layer's budgets module, as a handler imports it
    from common import budgets as layer

    # WHEN the workbook loads its budgets THEN it is the same file with the same values
    loaded = floors.budgets()
    assert Path(loaded.__file__).resolve() == Path(layer.__file__).resolve() == floors.BUDGETS_PATH
    names = [n for n in layer.__all__ if n.isupper()]
    assert names and all(getattr(loaded, n) == getattr(layer, n) for n in names)
    assert set(loaded.DEPENDENCIES) == set(__import__("infra.specs", fromlist=["x"]).FUNCTION_KEYS)
    assert {d for deps in loaded.DEPENDENCIES.values() for d in deps} <= {d.value for d in floors.Dependency}


def test_the_webhook_client_uses_the_http_budgets(handler):
    # GIVEN the notification handler as an execution environment imports it
    module = handler("notification_handler")
    b = floors.budgets()
    # THEN its client's timeout, attempts and backoff are the budgets the floors read
    assert module.CLIENT.timeout_s == b.HTTP_TIMEOUT_S
    assert module.CLIENT.max_attempts == b.HTTP_MAX_ATTEMPTS
    assert (module.CLIENT.backoff.base_s, module.CLIENT.backoff.cap_s) == (b.HTTP_BACKOFF_BASE_S, b.HTTP_BACKOFF_CAP_S)
    # AND the floor's webhook budget is exactly what that client can spend: attempts x timeout + the capped sleeps
    total, _ = floors.dependency_budget_s("webhook")
    assert total == pytest.approx(module.CLIENT.max_attempts * module.CLIENT.timeout_s
                                  + sum(min(module.CLIENT.backoff.cap_s, module.CLIENT.backoff.base_s * 2 ** i)
                                        for i in range(module.CLIENT.max_attempts - 1)))


def test_the_webhook_backoff_never_sleeps_past_the_floors_sum(handler):
    # GIVEN the handler's backoff, with its full jitter drawn many times
    module = handler("notification_handler")
    b = floors.budgets()
    worst = max(sum(module.CLIENT.backoff.delay_s(i) for i in range(b.HTTP_MAX_ATTEMPTS - 1)) for _ in range(5000))
    # THEN no draw exceeds what the floor allows for
    assert worst <= floors.webhook_backoff_s(b.HTTP_MAX_ATTEMPTS, b.HTTP_BACKOFF_BASE_S, b.HTTP_BACKOFF_CAP_S)


def test_the_sdk_clients_use_the_sdk_budgets(handler, aws_env):
    # GIVEN the shared boto3 client of the layer, as the file processor builds it
    handler("file_processor")
    from common import aws

    aws.reset()
    client = aws.client("s3")
    b = floors.budgets()
    config = client.meta.config
    # THEN its timeouts and retries are the budgets, and botocore retries that many times in standard mode
    assert (config.connect_timeout, config.read_timeout) == (b.SDK_CONNECT_TIMEOUT_S, b.SDK_READ_TIMEOUT_S)
    assert config.retries["mode"] == "standard"
    # botocore counts max_attempts as retries: the floor's attempts are botocore's own total
    assert config.retries["total_max_attempts"] == b.SDK_MAX_RETRIES + 1 == floors.sdk_total_attempts()
    total, how = floors.dependency_budget_s("aws-sdk")
    assert total == pytest.approx(floors.sdk_total_attempts() * (config.connect_timeout + config.read_timeout)
                                  + floors.sdk_backoff_s(floors.sdk_total_attempts()))
    aws.reset()


def test_the_database_uses_the_db_budget_and_retries_as_the_floor_counts(handler):
    handler("data_processor")
    from common import db

    b = floors.budgets()
    params = db.connect_params({"host": "/tmp/pg", "port": 5432, "username": "u", "password": "p", "dbname": "d"})
    assert params["timeout"] == b.DB_TIMEOUT_S

    # GIVEN a connection whose every statement fails at the socket WHEN a statement runs
    class Broken:
        def run(self, sql, **params):
            raise OSError("socket timed out")

        def close(self):
            pass

    opened = []

    class Counting(db.Database):
        def connection(self):
            opened.append(1)
            return Broken()

    with pytest.raises(db.DatabaseUnavailable):
        Counting(secret_loader=lambda: {}, migrate_on_connect=False).run("SELECT 1")
    # THEN it is tried exactly DB_STATEMENT_ATTEMPTS times, as the floor assumes
    assert len(opened) == b.DB_STATEMENT_ATTEMPTS


def test_the_scheduler_resends_within_its_budget(handler):
    module = handler("scheduler")
    b = floors.budgets()
    assert module.SEND_ATTEMPTS == b.SQS_SEND_ATTEMPTS
    assert (module.BACKOFF.base_s, module.BACKOFF.cap_s) == (b.SQS_SEND_BACKOFF_BASE_S, b.SQS_SEND_BACKOFF_CAP_S)


def test_the_auth_handler_reads_its_key_within_the_extension_budget(handler):
    module = handler("auth_handler")
    assert module.SECRETS.source.timeout_s == floors.budgets().SECRETS_EXTENSION_TIMEOUT_S


def _literal_budgets(path: Path) -> list[str]:
    """Calls that pass a timeout, attempts or backoff as a number literal instead of a budget."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                name = keyword.arg or ""
                if any(w in name for w in ("timeout", "attempts", "cap_s", "base_s")) and name != "reset_timeout_s" and \
                        isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, (int, float)):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}={keyword.value.value}")
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and \
                        key.value in ("connect_timeout", "read_timeout", "max_attempts", "timeout") and \
                        isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {key.value}={value.value}")
    return found


def test_no_handler_passes_a_downstream_budget_as_a_literal():
    # GIVEN every handler module and the shared layer, except the budgets' own home
    files = [p for p in HANDLERS_DIR.rglob("*.py") if p.name != "budgets.py"]
    # THEN none calls a client with a literal timeout, attempts or backoff: each reads common.budgets
    assert [hit for path in files for hit in _literal_budgets(path)] == []


@pytest.fixture
def aws_env(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
