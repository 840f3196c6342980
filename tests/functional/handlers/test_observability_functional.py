"""Logs and metrics as the handlers emit them: JSON lines with request and correlation ids, EMF."""
from __future__ import annotations

import json

import pytest
from handler_kit import LambdaContext, LogCapture


@pytest.fixture
def cold_environment():
    """Powertools' cold-start flag set again, as in a new execution environment."""
    from aws_lambda_powertools.metrics.provider import cold_start

    cold_start.is_cold_start = True
    yield
    cold_start.is_cold_start = False


def emf_records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]


def test_first_invocation_emits_cold_start_and_business_metrics(handler_factory, db_secret, event_factory,
                                                               cold_environment, capsys):
    # GIVEN a fresh data-processor and a batch of two valid records
    import boto3
    boto3.client("sns", region_name="us-east-1").create_topic(Name="lwb-test-notifications")
    processor = handler_factory("data_processor")
    # WHEN the first invocation runs
    processor.handler(event_factory("sqs_batch"), LambdaContext(function_name="lwb-test-data-processor"))
    # THEN EMF records carry the ColdStart metric and the business metrics, in the LambdaWorkbook namespace
    records = emf_records(capsys.readouterr().out)
    names = {metric["Name"] for record in records for directive in record["_aws"]["CloudWatchMetrics"]
             for metric in directive["Metrics"]}
    assert {"ColdStart", "RecordProcessed", "BatchSize"} <= names
    assert {d["Namespace"] for r in records for d in r["_aws"]["CloudWatchMetrics"]} == {"LambdaWorkbook"}
    business = next(r for r in records if "RecordProcessed" in r)
    assert business["RecordProcessed"] == [1.0, 1.0]  # one data point per record


def test_log_lines_carry_the_request_id_and_a_correlation_id(handler_factory, event_factory):
    # GIVEN the scheduler receiving a scheduled event it must refuse (no database needed)
    scheduler = handler_factory("scheduler")
    logs = LogCapture(scheduler)
    event = event_factory("eventbridge_scheduled", source="aws.s3")
    context = LambdaContext()
    # WHEN it is handled
    with pytest.raises(scheduler.HandlerError):
        scheduler.handler(event, context)
    # THEN the error line is JSON with the service, the Lambda request id and the event id as correlation id
    (line,) = logs.records("scheduler run failed")
    assert line["service"] == "scheduler" and line["function_request_id"] == context.aws_request_id
    assert line["correlation_id"] == event["id"] and line["error"] == "invalid_event"
