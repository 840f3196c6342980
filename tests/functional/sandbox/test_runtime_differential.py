"""The sandbox answers as AWS's own runtime client does, handler for handler.

The expected payloads, error types and log events come from ``awslambdaric`` (pinned), driven
directly through a minimal Runtime API inside the test (``runtime_api.py``), never from the
sandbox's own output. The sandbox runs awslambdaric too, against its own Runtime API: what this
checks is everything around the client (the sandbox's Runtime API and headers, INIT and exit
handling, the log streams from stdout and the telemetry descriptor, the payload as returned).
Each case runs cold in both, with the same environment variables, event and code.
"""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from runtime_api import run_awslambdaric

from workbook.local.sandbox import ExecutionEnvironment, FunctionConfig, LogFormat, PlatformSettings, Sandbox, local_runtime

pytest.importorskip("awslambdaric", reason="the oracle: pip install -e '.[dev]'")
pytestmark = pytest.mark.timeout(300)

MODULES = {
    "returns.py": """
        import datetime
        import decimal

        def a_dict(event, context):
            return {"ok": True, "n": 1, "echo": event}

        def nothing(event, context):
            return None

        def a_decimal(event, context):
            return {"price": decimal.Decimal("1.50"), "nan": decimal.Decimal("NaN")}

        def raw_bytes(event, context):
            return b"\\x00raw\\xff"

        def a_set(event, context):
            return {1, 2}

        def a_datetime(event, context):
            return {"at": datetime.datetime(2026, 1, 1)}

        def not_ascii(event, context):
            return {"drink": "café ☕"}

        def not_a_number(event, context):
            return [float("nan"), float("inf")]
    """,
    "raises.py": """
        class PoisonError(Exception):
            pass

        def handler(event, context):
            raise PoisonError("bad input: é")

        def nested(event, context):
            def inner():
                raise KeyError("missing")
            inner()
    """,
    "exits.py": """
        import os
        import sys

        def exit_one(event, context):
            sys.exit(1)

        def exit_zero(event, context):
            sys.exit()

        def hard_exit(event, context):
            os._exit(3)
    """,
    "raise_at_import.py": """
        raise RuntimeError("boom at import")

        def handler(event, context):
            return 1
    """,
    "bad_name_import.py": """
        from os import no_such_name

        def handler(event, context):
            return 1
    """,
    "missing_dependency.py": """
        import no_such_package_anywhere

        def handler(event, context):
            return 1
    """,
    "syntax_error.py": """
        def handler(event, context:
            return 1
    """,
    "logs.py": """
        import logging

        print("print at import")
        logging.getLogger().warning("warning at import")

        def handler(event, context):
            print("print in handler")
            print("two\\nlines")
            logger = logging.getLogger("orders")
            logger.warning("warn %s", "with an argument")
            logger.error("café")
            logger.warning({"structured": True, "n": 1})
            logger.warning("with extra", extra={"order_id": 7})
            logging.getLogger().info("info from root")
            try:
                raise ValueError("caught")
            except ValueError:
                logger.exception("it failed")
            context.log("via context.log\\n")
            return "done"
    """,
    "context_echo.py": """
        import os

        def handler(event, context):
            identity = context.identity
            client = context.client_context
            return {
                "request_id_is_set": bool(context.aws_request_id),
                "function_name": context.function_name,
                "function_version": context.function_version,
                "memory_limit_in_mb": context.memory_limit_in_mb,
                "invoked_function_arn": context.invoked_function_arn,
                "log_group_name": context.log_group_name,
                "log_stream_name_from_env": context.log_stream_name == os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
                "identity": None if identity is None else [identity.cognito_identity_id, identity.cognito_identity_pool_id],
                "client_context": None if client is None else {
                    "custom": client.custom, "env": client.env,
                    "client": None if client.client is None else client.client.installation_id},
                "tenant_id": context.tenant_id,
                "remaining_positive": context.get_remaining_time_in_millis() > 0,
                "has_log": callable(getattr(context, "log", None)),
            }
    """,
}

# (handler, event, invoke keyword arguments); every case runs in Text and in JSON log format.
CASES = {
    "dict": ("returns.a_dict", {"a": [1, 2]}, {}),
    "none": ("returns.nothing", {}, {}),
    "decimal": ("returns.a_decimal", {}, {}),
    "bytes": ("returns.raw_bytes", {}, {}),
    "set": ("returns.a_set", {}, {}),
    "datetime": ("returns.a_datetime", {}, {}),
    "non-ascii": ("returns.not_ascii", {}, {}),
    "nan": ("returns.not_a_number", {}, {}),
    "raise": ("raises.handler", {}, {}),
    "raise-nested": ("raises.nested", {}, {}),
    "sys.exit(1)": ("exits.exit_one", {}, {}),
    "sys.exit()": ("exits.exit_zero", {}, {}),
    "os._exit": ("exits.hard_exit", {}, {}),
    "raise-at-import": ("raise_at_import.handler", {}, {}),
    "import-name-error": ("bad_name_import.handler", {}, {}),
    "missing-dependency": ("missing_dependency.handler", {}, {}),
    "syntax-error": ("syntax_error.handler", {}, {}),
    "missing-module": ("no_such_module.handler", {}, {}),
    "missing-handler": ("returns.no_such_function", {}, {}),
    "malformed-name": ("nodot", {}, {}),
    "builtin-conflict": ("sys.handler", {}, {}),
    "logs": ("logs.handler", {}, {}),
    "context": ("context_echo.handler", {}, {}),
    "context-identity": ("context_echo.handler", {}, {
        "identity": {"cognitoIdentityId": "us-east-1:abc", "cognitoIdentityPoolId": "us-east-1:pool"},
        "client_context": {"custom": {"k": "v"}, "env": {"platform": "test"}, "client": {"installation_id": "i-1"}}}),
}

_PLATFORM = re.compile(r"^(START|END|REPORT|INIT_START|INIT_REPORT) ")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="module")
def task_root(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("task")
    for name, source in MODULES.items():
        (folder / name).write_text(textwrap.dedent(source).lstrip())
    return folder


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(idle_expiry_s=300) as box:
        yield box


def _config(task_root: Path, handler: str, log_format: LogFormat) -> FunctionConfig:
    name = "lwb-diff-" + re.sub(r"[^a-z0-9]+", "-", f"{handler}-{log_format.value}".lower())
    return FunctionConfig(key=name, function_name=name, memory_mb=256, timeout_s=30, handler=handler,
                          environment={}, code_paths=(str(task_root),), log_format=log_format)


def _events(lines: list[str], request_id: str) -> list:
    """Log events, comparable across runs: platform lines dropped, times and the request id replaced."""
    events = []
    for line in lines:
        line = line.replace("\r", "\n").rstrip("\n")
        if not line or _PLATFORM.match(line):
            continue
        line = line.replace(request_id, "<request-id>")
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and str(record.get("type", "")).startswith("platform."):
            continue
        if isinstance(record, dict) and "level" in record:
            record.pop("timestamp", None)
            events.append(json.dumps(record, sort_keys=True, ensure_ascii=False))
        else:
            events.append(_TIMESTAMP.sub("<time>", line))
    return sorted(events)


def _oracle_error(posted_body: bytes, request_id: str) -> dict:
    body = json.loads(posted_body)
    body["requestId"] = body["requestId"].replace(request_id, "<request-id>")
    return body


@pytest.mark.parametrize("log_format", [LogFormat.TEXT, LogFormat.JSON], ids=["text", "json"])
@pytest.mark.parametrize("case", list(CASES))
def test_the_sandbox_answers_as_awslambdaric(case, log_format, task_root, sandbox):
    handler, event, extra = CASES[case]
    config = _config(task_root, handler, log_format)
    environment = ExecutionEnvironment(config, PlatformSettings()).environment_variables()
    # GIVEN what AWS's runtime client does with the handler, on the Python the sandbox runs handlers on
    runtime = local_runtime()
    oracle = run_awslambdaric(str(task_root), handler, event, {**environment, "_FUNCTION_ARN": config.function_arn},
                              python=runtime.python, package_paths=runtime.paths, **extra)
    # WHEN the sandbox runs it
    sandbox.register(config)
    outcome = sandbox.invoke(config.function_name, event, **extra)

    # THEN the payload, or the error, is the same
    posted = oracle.posted
    if posted is None:
        # The runtime exited without posting: Lambda answers Runtime.ExitError with the exit status.
        assert outcome.error_type == "Runtime.ExitError"
        assert outcome.json()["errorMessage"].endswith(f"Runtime exited with error: exit status {oracle.exit_code}")
    elif posted.kind == "response":
        assert outcome.function_error is None, outcome.payload
        assert outcome.payload == posted.body
    else:
        assert outcome.function_error == "Unhandled"
        expected = _oracle_error(posted.body, oracle.request_id)
        actual = outcome.json()
        actual["requestId"] = actual.get("requestId", "").replace(outcome.request_id, "<request-id>")
        assert actual == expected
        # An INIT error names its type in a header too; an invocation error only in its body.
        headers = {name.lower(): value for name, value in posted.headers.items()}
        assert outcome.error_type == headers.get("lambda-runtime-function-error-type", expected["errorType"])
    # and so are the log events (the platform's own lines apart)
    assert _events(outcome.log_lines, outcome.request_id) == _events(oracle.events, oracle.request_id)
