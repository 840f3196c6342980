"""The small pieces of the shared layer: errors, secrets cache, database helpers, tracer, runtime."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from handler_kit import HANDLERS_DIR, LambdaContext


def test_every_error_maps_to_a_status_and_a_body_without_a_trace():
    from common import errors

    for name in errors.__all__:
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, errors.HandlerError):
            status, body = errors.to_http(cls("what went wrong", field="x"))
            assert 400 <= status < 600 and body["error"] == cls.code and body["message"] == "what went wrong"
            assert cls.__doc__, f"{name} needs a one-line docstring"
    assert errors.to_http(KeyError("secret detail")) == (500, {"error": "internal_error", "message": "internal error"})


def test_dependency_errors_are_retryable_and_input_errors_are_not():
    from common import errors

    assert errors.DatabaseUnavailable("x").retryable and errors.CircuitOpenError("x").retryable
    assert not errors.ValidationError("x").retryable and not errors.NotFound("x").retryable


def test_secrets_cache_honours_the_ttl_and_invalidation():
    from common.secrets import SecretsCache

    fetched = []

    class Source:
        def fetch(self, secret_id):
            fetched.append(secret_id)
            return json.dumps({"v": len(fetched)})

    now = [0.0]
    cache = SecretsCache(Source(), ttl_s=60, clock=lambda: now[0])
    assert cache.get_json("s")["v"] == 1
    now[0] = 59
    assert cache.get_json("s")["v"] == 1
    now[0] = 60
    assert cache.get_json("s")["v"] == 2
    cache.invalidate("s")
    assert cache.get_json("s")["v"] == 3 and fetched == ["s", "s", "s"]


@pytest.mark.parametrize("raw", ["{not json", "[1]", "\"text\""])
def test_secrets_that_are_not_json_objects_are_refused(raw):
    from common.errors import SecretUnavailable
    from common.secrets import SecretsCache

    class Source:
        def fetch(self, secret_id):
            return raw

    with pytest.raises(SecretUnavailable):
        SecretsCache(Source()).get_json("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf")


def test_boto_source_reads_secrets_manager(aws):
    import boto3

    from common.secrets import BotoSource, SecretsCache

    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="s1", SecretString='{"k": "v"}')
    assert SecretsCache(BotoSource()).get_json("s1") == {"k": "v"}


def test_boto_source_translates_a_missing_secret(aws):
    from common.errors import SecretUnavailable
    from common.secrets import BotoSource

    with pytest.raises(SecretUnavailable, match="ResourceNotFoundException"):
        BotoSource().fetch("missing")


def test_connect_params_from_rds_secret_socket_and_tcp():
    from common import db

    socket = db.connect_params({"host": "/tmp/pg", "port": 5433, "username": "u", "password": "p", "dbname": "d"})
    assert socket["unix_sock"] == "/tmp/pg/.s.PGSQL.5433" and socket["database"] == "d"
    tcp = db.connect_params({"host": "db.example.internal", "port": "5432", "username": "u", "password": "p",
                             "dbname": "d"})
    assert tcp["host"] == "db.example.internal" and tcp["port"] == 5432 and "ssl_context" in tcp


def test_connect_params_reject_a_malformed_secret():
    from common import db
    from common.errors import ConfigError

    with pytest.raises(ConfigError, match="host, port, username"):
        db.connect_params({"port": 5432})


def test_secret_from_dsn():
    from common import db

    assert db.secret_from_dsn("postgresql://postgres:@/postgres?host=/tmp/pgdir") == {
        "host": "/tmp/pgdir", "port": 5432, "username": "postgres", "password": "", "dbname": "postgres"}


def test_migrations_are_numbered_in_order():
    from common import db

    versions = [version for version, _, _ in db.MIGRATIONS]
    assert versions == sorted(versions) == list(range(1, len(versions) + 1))


def test_runtime_guard():
    from common import runtime
    from common.errors import OutOfTime

    assert runtime.remaining_ms(None) > 10**8
    assert runtime.has_time(LambdaContext(remaining_ms=3000), 2000)
    with pytest.raises(OutOfTime):
        runtime.ensure_time(LambdaContext(remaining_ms=2000), 2000)


def test_tracer_is_a_no_op_outside_lambda_and_needs_no_xray_sdk():
    code = ("import sys; from common import tracer as tracing; tracer = tracing.create(); "
            "f = tracer.capture_method(lambda: 1); print(f(), type(tracer).__name__, 'aws_xray_sdk' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=HANDLERS_DIR, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.split()
    assert out == ["1", "NoOpTracer", "False"]


def test_tracer_inside_lambda_patches_only_the_named_libraries():
    # GIVEN a Lambda-like environment with tracing active
    env = {"PATH": "/usr/bin:/bin", "LAMBDA_TASK_ROOT": str(HANDLERS_DIR), "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR"}
    code = ("import sys, boto3; from common import tracer as tracing; tracer = tracing.create(('botocore',)); "
            "print(type(tracer).__name__, sorted(m for m in ('requests', 'httpx', 'sqlite3', 'pg8000') if m in sys.modules))")
    # WHEN the tracer is created
    out = subprocess.run([sys.executable, "-c", code], cwd=HANDLERS_DIR, capture_output=True, text=True, check=True,
                         env=env).stdout.strip()
    # THEN it is Powertools' Tracer, and it imported none of the libraries it was not asked to patch
    assert out == "Tracer []"


def test_tracer_is_the_powertools_tracer_inside_lambda():
    from common.tracer import tracing_enabled

    assert tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task"})
    assert not tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert not tracing_enabled({})


def test_the_layer_package_imports_nothing_by_itself():
    code = "import sys, common; print(sorted(m for m in sys.modules if m.startswith(('common.', 'boto', 'aws_'))))"
    out = subprocess.run([sys.executable, "-c", code], cwd=HANDLERS_DIR, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout.strip()
    assert out == "[]"


def test_event_record_checks():
    from common import events
    from common.errors import InvalidEvent, PayloadTooLarge, ValidationError

    assert events.records({"Records": [{"eventSource": "aws:sqs"}]}, "aws:sqs")
    for bad in ({}, {"Records": []}, {"Records": [1]}, {"Records": [{"eventSource": "aws:sns"}]}, None):
        with pytest.raises(InvalidEvent):
            events.records(bad, "aws:sqs")
    assert events.decode_json_text(b'{"a": 1}', "body", 100) == {"a": 1}
    with pytest.raises(PayloadTooLarge):
        events.decode_json_text("x" * 101, "body", 100)
    for bad in (b"\xff", "\udcff", "{", 5):
        with pytest.raises(ValidationError):
            events.decode_json_text(bad, "body", 100)
