"""Helpers shared by the local environment's integration tests."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra import config
from workbook import aws
from workbook.local import manager, provision
from workbook.local.sandbox import FunctionConfig, LogFormat

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"


def make_config(module: str, memory_mb: int = 512, timeout_s: float = 10.0, *, name: str | None = None,
                reserved: int | None = None, log_format: LogFormat = LogFormat.TEXT,
                environment: dict | None = None) -> FunctionConfig:
    """A FunctionConfig for one of the test functions in ``functions/``."""
    return FunctionConfig(key=name or module, function_name=name or f"lwb-test-{module}", memory_mb=memory_mb,
                          timeout_s=timeout_s, handler=f"{module}.handler", environment=environment or {},
                          code_paths=(str(FUNCTIONS_DIR),), reserved_concurrency=reserved, log_format=log_format)


ARN = "arn:aws:{service}:us-east-1:123456789012:{rest}"
FN = "arn:aws:lambda:us-east-1:123456789012:function:{name}"


def _queue(name: str, **inputs) -> dict:
    return {"type": provision.T_QUEUE, "name": name, "inputs": {"name": name, **inputs}}


def _function(name: str, module: str, memory: int = 256, timeout: int = 10, reserved: int = -1,
              log_format: str = "Text") -> dict:
    return {"type": provision.T_FUNCTION, "name": name, "inputs": {
        "name": name, "handler": f"{module}.handler", "memorySize": memory, "timeout": timeout,
        "reservedConcurrentExecutions": reserved, "loggingConfig": {"logFormat": log_format, "logGroup": f"/aws/lambda/{name}"},
        "environment": {"variables": {"WORKBOOK_ENV": "local"}}}}


def small_plan() -> dict:
    """A small plan in the offline plan's documented shape (type, name, Pulumi inputs), of test functions."""
    redrive = json.dumps({"deadLetterTargetArn": ARN.format(service="sqs", rest="lwbt-work-dlq"), "maxReceiveCount": 2})
    resources = [
        _queue("lwbt-work-dlq"),
        _queue("lwbt-work", visibilityTimeoutSeconds=2, redrivePolicy=redrive),
        _queue("lwbt-failures"),
        _queue("lwbt-matched"),
        _function("lwbt-consumer", "failing"),
        _function("lwbt-uploads", "failing"),
        _function("lwbt-clock", "echo"),
        _function("lwbt-hog", "allocator", memory=128, log_format="JSON"),
        {"type": provision.T_LOG_GROUP, "name": "consumer-logs", "inputs": {"name": "/aws/lambda/lwbt-consumer",
                                                                           "retentionInDays": 1}},
        {"type": provision.T_MAPPING, "name": "work-to-consumer", "inputs": {
            "eventSourceArn": ARN.format(service="sqs", rest="lwbt-work"), "functionName": FN.format(name="lwbt-consumer"),
            "batchSize": 5, "maximumBatchingWindowInSeconds": 0, "functionResponseTypes": ["ReportBatchItemFailures"],
            "scalingConfig": {"maximumConcurrency": 2}}},
        {"type": "aws:s3/bucket:Bucket", "name": "uploads", "inputs": {"bucket": "lwbt-uploads"}},
        {"type": provision.T_NOTIFICATION, "name": "uploads-notifications", "inputs": {
            "bucket": "lwbt-uploads", "lambdaFunctions": [{
                "id": "json-uploads", "events": ["s3:ObjectCreated:*"], "filterPrefix": "in/", "filterSuffix": ".json",
                "lambdaFunctionArn": FN.format(name="lwbt-uploads")}]}},
        {"type": provision.T_INVOKE_CONFIG, "name": "uploads-async", "inputs": {
            "functionName": "lwbt-uploads", "maximumRetryAttempts": 2, "maximumEventAgeInSeconds": 600,
            "destinationConfig": {"onFailure": {"destination": ARN.format(service="sqs", rest="lwbt-failures")}}}},
        {"type": provision.T_BUS, "name": "bus", "inputs": {"name": "lwbt-bus"}},
        {"type": provision.T_RULE, "name": "tick", "inputs": {"name": "lwbt-tick", "scheduleExpression": "rate(1 minute)"}},
        {"type": provision.T_TARGET, "name": "tick-target", "inputs": {
            "rule": "lwbt-tick", "arn": FN.format(name="lwbt-clock"), "input": json.dumps({"tick": True})}},
        {"type": provision.T_RULE, "name": "done", "inputs": {
            "name": "lwbt-done", "eventBusName": "lwbt-bus",
            "eventPattern": json.dumps({"source": ["lwbt.files"], "detail-type": ["FileProcessed"]})}},
        {"type": provision.T_TARGET, "name": "done-target", "inputs": {
            "rule": "lwbt-done", "eventBusName": "lwbt-bus", "arn": ARN.format(service="sqs", rest="lwbt-matched")}},
    ]
    return {"resources": resources, "outputs": {}}


@contextlib.contextmanager
def local_environment(state_dir: Path, plan: Callable | None = None, code_paths: list[str] | None = None) -> Iterator[tuple]:
    """A local environment of its own in ``state_dir``, with no endpoint or region inherited; stopped after.

    ``plan(settings)`` gives the plan to start (default: the offline plan). Yields what
    ``manager.start`` recorded and the local settings.
    """
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(state_dir))
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    settings = config.load("local")
    recorded = manager.start("local", plan=plan(settings) if plan else None, settings=settings, code_paths=code_paths)
    try:
        yield recorded, settings
    finally:
        manager.stop()
        monkeypatch.undo()
        aws.reset_clients()
