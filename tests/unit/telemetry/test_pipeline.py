"""dataPipeline's executions into pandas: against moto's real ASL executor, and AWS's documented history shape.

The executions are run by moto's executor (``execute_state_machine``) on the session's moto
server, with states that need no Lambda: a Pass that succeeds, a Task that fails (SNS publish to a
topic that does not exist, the error moto's SNS answers), a Wait past the execution's
TimeoutSeconds. Percentiles are compared with numpy's.
"""
from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pandas as pd
import pytest
import requests

from workbook import aws
from workbook.analysis import health
from workbook.telemetry import pipeline

MISSING_TOPIC = "arn:aws:sns:us-east-1:123456789012:lwbt-no-such-topic"
NOTICES_TOPIC = "arn:aws:sns:us-east-1:123456789012:lwbt-notices"
DEFINITION = {
    "StartAt": "Route",
    "TimeoutSeconds": 2,
    "States": {
        "Route": {"Type": "Choice", "Choices": [
            {"Variable": "$.outcome", "StringEquals": "fail", "Next": "Publish"},
            {"Variable": "$.outcome", "StringEquals": "slow", "Next": "Linger"}], "Default": "Done"},
        "Done": {"Type": "Pass", "End": True},
        "Publish": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn": MISSING_TOPIC, "Message": "x"},
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Cleanup"}]},
        "Cleanup": {"Type": "Pass", "Next": "NotifyFailure"},
        "NotifyFailure": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "ResultPath": None,
                          "Parameters": {"TopicArn": NOTICES_TOPIC, "Message.$": "States.JsonToString($.error)"},
                          "Next": "Failed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        "Linger": {"Type": "Wait", "Seconds": 4, "End": True},
    },
}


@pytest.fixture
def executor(local_endpoint, monkeypatch):
    """moto's ASL executor on, its task clients pointed at the same server; off again afterwards."""
    port = local_endpoint.rsplit(":", 1)[1]
    monkeypatch.setenv("MOTO_PORT", port)   # the in-process server's executor reads it at each call
    requests.post(f"{local_endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}},
                  timeout=10)
    yield aws.client("stepfunctions")
    requests.post(f"{local_endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": False}},
                  timeout=10)


def _run(sfn, outcomes: list[str]) -> str:
    aws.client("sns").create_topic(Name=NOTICES_TOPIC.rsplit(":", 1)[1])
    arn = sfn.create_state_machine(name=f"lwbt-{uuid.uuid4().hex[:8]}", definition=json.dumps(DEFINITION),
                                   roleArn="arn:aws:iam::123456789012:role/lwbt")["stateMachineArn"]
    for outcome in outcomes:
        sfn.start_execution(stateMachineArn=arn, name=f"{outcome}-{uuid.uuid4().hex[:6]}",
                            input=json.dumps({"outcome": outcome}))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        statuses = [e["status"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]]
        if len(statuses) == len(outcomes) and "RUNNING" not in statuses:
            break
        time.sleep(0.2)
    return arn


def test_executions_load_with_status_duration_and_the_failed_step(executor):
    # GIVEN three executions that succeed, two whose task fails into a Catch, and one past its time budget
    start = pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)
    arn = _run(executor, ["ok", "ok", "ok", "fail", "fail", "slow"])
    # WHEN they are loaded for the window
    frame = pipeline.load_executions(arn, start, pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=1))
    # THEN one row each, with the documented columns and statuses
    assert list(frame.columns) == pipeline.EXECUTION_COLUMNS
    assert sorted(frame["status"]) == ["FAILED", "FAILED", "SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "TIMED_OUT"]
    assert frame["start"].is_monotonic_decreasing
    # AND a failed one names the task state that failed (not the Catch's states) and the task's error
    failed = frame[frame["status"] == "FAILED"]
    assert set(failed["failed_step"]) == {"Publish"}
    assert failed["error"].str.startswith("SNS.").all()
    assert failed["cause"].notna().all()
    # AND their Catch's notification was published (an SNS publish succeeded after the failure)
    assert failed["failure_notified"].eq(True).all()
    # AND the timed-out one has States.Timeout, in the state it was in
    timed_out = frame[frame["status"] == "TIMED_OUT"].iloc[0]
    assert (timed_out["failed_step"], timed_out["error"]) == ("Linger", "States.Timeout")
    # AND the summary counts by status, with numpy's percentiles of the ended durations
    summary = pipeline.summarize(frame)
    assert (summary.started, summary.succeeded, summary.failed, summary.timed_out, summary.aborted) == (6, 3, 2, 1, 0)
    durations = frame["duration_s"].dropna().to_numpy()
    assert summary.p50_duration_s == pytest.approx(np.percentile(durations, 50))
    assert summary.p99_duration_s == pytest.approx(np.percentile(durations, 99))
    table = pipeline.failures(frame)
    assert table.iloc[0][["failed_step", "executions", "notified"]].tolist() == ["Publish", 2, 2]


def test_executions_outside_the_window_are_left_out(executor):
    # GIVEN executions that ran now
    arn = _run(executor, ["ok", "ok"])
    # WHEN the window ended an hour ago
    now = pd.Timestamp.now(tz="UTC")
    frame = pipeline.load_executions(arn, now - pd.Timedelta(hours=2), now - pd.Timedelta(hours=1))
    # THEN nothing is loaded, and the summary says none started
    assert frame.empty and pipeline.summarize(frame).started == 0
    assert health.pipeline_headline(pipeline.summarize(frame)) == "Data pipeline: no execution started in the window."


# AWS's documented GetExecutionHistory shape (Step Functions API reference, HistoryEvent), for a
# Lambda step retried once, then caught into a notification, then failed with the step's error.
AWS_HISTORY = [
    {"type": "ExecutionStarted", "id": 1},
    {"type": "TaskStateEntered", "id": 2, "stateEnteredEventDetails": {"name": "ProcessFile"}},
    {"type": "TaskSucceeded", "id": 5},
    {"type": "TaskStateEntered", "id": 7, "stateEnteredEventDetails": {"name": "ProcessData"}},
    {"type": "TaskFailed", "id": 10, "taskFailedEventDetails": {"error": "Lambda.TooManyRequestsException", "cause": "x"}},
    {"type": "TaskFailed", "id": 13, "taskFailedEventDetails": {"error": "ValidationError", "cause": '{"errorMessage": "bad"}'}},
    {"type": "TaskStateExited", "id": 14, "stateExitedEventDetails": {"name": "ProcessData"}},
    {"type": "PassStateEntered", "id": 15, "stateEnteredEventDetails": {"name": "ProcessDataFailed"}},
    {"type": "TaskStateEntered", "id": 17, "stateEnteredEventDetails": {"name": "NotifyFailure"}},
    {"type": "TaskSucceeded", "id": 20},
    {"type": "FailStateEntered", "id": 22, "stateEnteredEventDetails": {"name": "Failed"}},
    {"type": "ExecutionFailed", "id": 23, "executionFailedEventDetails": {"error": "ValidationError", "cause": "bad"}},
]


def test_the_failed_step_is_the_one_whose_error_ended_the_execution():
    # GIVEN a history with a retried throttle, then the step's own error, then the Catch's states
    # WHEN the failed step is read for the execution's error
    step, error, cause = pipeline.failed_step(AWS_HISTORY, "ValidationError")
    # THEN it is the data step with its own error, not the throttle it retried nor the states after the Catch
    assert (step, error) == ("ProcessData", "ValidationError")
    assert json.loads(cause)["errorMessage"] == "bad"
    # AND without a matching step failure it is the last state entered
    assert pipeline.failed_step(AWS_HISTORY[:4], "States.Timeout") == ("ProcessData", "States.Timeout", None)


def test_local_alarms_include_the_pipeline_when_an_execution_failed_or_timed_out(local_endpoint):
    from infra import config
    settings = config.load("local")
    empty = pd.DataFrame(columns=health.HEALTH_COLUMNS)
    # GIVEN a window with one failed and one timed-out execution
    flow = pipeline.PipelineSummary(started=5, running=0, succeeded=3, failed=1, timed_out=1, aborted=0,
                                    p50_duration_s=1.0, p99_duration_s=2.0)
    # WHEN the alarms are evaluated on the local endpoint
    alarms = health.alarms_in_alarm(settings, empty, flow)
    # THEN the stack's two pipeline alarms are in ALARM (the names infra/pipeline.py gives them)
    assert alarms.names == [settings.name("pipeline-executions-failed"), settings.name("pipeline-executions-timed-out")]
    assert "**Data pipeline: 5 executions, 3 succeeded, 1 failed, 1 timed out, 0 aborted**" in health.pipeline_headline(flow)
