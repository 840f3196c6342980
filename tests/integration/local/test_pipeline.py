"""dataPipeline executed for real: moto's Step Functions executor, the real handlers in the sandbox.

One local environment serves the module, provisioned from the stack's own offline plan plus one
extra function: a copy of the file processor with reserved concurrency 0, so that every invoke
of it is throttled (HTTP 429, ``Lambda.TooManyRequestsException``), the error the pipeline's
retry policy covers. State machines built with ``infra.pipeline.definition`` around it check the
retry timing against the bounds the policy allows, from the execution history's timestamps.

The oracles are other people's: moto's ASL executor (ported from LocalStack) runs the
definition; AWS's documented retry semantics give the bounds (attempt n waits
``IntervalSeconds x BackoffRate^(n-1)``, capped by ``MaxDelaySeconds``; ``FULL`` jitter draws
uniformly between 0 and that); AWS's documented history event types give the shape.
"""
from __future__ import annotations

import copy
import json
import time
import uuid
import warnings

import pandas as pd
import pytest
from local_helpers import local_environment

from infra import pipeline
from infra.config import RetryParams
from workbook import aws
from workbook.deploy.plan import offline_plan
from workbook.local import manager, provision
from workbook.telemetry import load_reports

pytestmark = pytest.mark.timeout(420)

THROTTLED = "lwb-local-l01-throttled-file-processor"
# The retry policy under test: IntervalSeconds 1, BackoffRate 3, MaxAttempts 3, MaxDelaySeconds 2. Its waits
# are 1, 2 and 2 s; without the cap they would be 1, 3 and 9, without the backoff 1, 1 and 1. Every bound
# below sits halfway between the right wait and the nearest wrong one (no guess at the machine's overhead).
POLICY = dict(interval_s=1, backoff_rate=3.0, max_attempts=3, max_delay_s=2)
WAITS = (1.0, 2.0, 2.0)
NEAREST_WRONG = (3.0, 3.0, 9.0)   # a backoff at the first retry; no cap at the second and third


def _plan_with_a_throttled_step(settings) -> dict:
    plan = offline_plan("local", settings).to_dict()
    (file_processor,) = [r for r in plan["resources"] if r["type"] == provision.T_FUNCTION
                         and r["inputs"]["name"] == settings.function_name("file-processor")]
    throttled = copy.deepcopy(file_processor)
    throttled["name"] = "throttled-file-processor"
    throttled["inputs"].update(name=THROTTLED, reservedConcurrentExecutions=0)
    throttled["inputs"]["loggingConfig"] = {**(throttled["inputs"].get("loggingConfig") or {}),
                                            "logGroup": f"/aws/lambda/{THROTTLED}"}
    plan["resources"].append(throttled)
    return plan


@pytest.fixture(scope="module")
def stack_env(tmp_path_factory):
    with local_environment(tmp_path_factory.mktemp("pipeline-state"), plan=_plan_with_a_throttled_step) as env:
        yield env


def _machine_arn(settings) -> str:
    machines = aws.client("stepfunctions").list_state_machines()["stateMachines"]
    return next(m["stateMachineArn"] for m in machines if m["name"] == settings.name("data-pipeline"))


def _wait(execution_arn: str, timeout_s: float = 120.0) -> dict:
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.25)


def _history(execution_arn: str) -> list[dict]:
    return aws.client("stepfunctions").get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]


def _topic_subscriber() -> tuple[str, callable]:
    """A queue subscribed to the notifications topic (raw delivery); returns its URL and a reader of subjects."""
    sqs, sns = aws.client("sqs"), aws.client("sns")
    topic = next(t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("-notifications"))
    url = sqs.create_queue(QueueName=f"lwbt-pipeline-watch-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    seen: list[dict] = []

    def read() -> list[dict]:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return seen
    return topic, read


def _upload(recorded: dict, settings, name: str, body: bytes) -> str:
    bucket = json.loads((manager.state_file.state_dir() / "topology.json").read_text())["refs"]["uploads_bucket"]
    key = f"{settings.params.uploads.prefix}{name}"
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    return key


def _executions_for(machine_arn: str, key: str, timeout_s: float = 90.0) -> dict:
    """The execution whose input is the FileProcessed event of ``key``, once it has ended."""
    sfn = aws.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for execution in sfn.list_executions(stateMachineArn=machine_arn)["executions"]:
            described = sfn.describe_execution(executionArn=execution["executionArn"])
            if json.loads(described["input"]).get("detail", {}).get("key") == key and described["status"] != "RUNNING":
                return described
        time.sleep(0.5)
    raise AssertionError(f"no finished execution for {key} within {timeout_s} s")


def _reports(settings, key: str, since_ms: int) -> pd.DataFrame:
    """The function's REPORT rows since ``since_ms``, read as the notebooks read them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the note that Logs Insights is not used locally
        return load_reports([settings.function_name(key)], since_ms, int(time.time() * 1000) + 1000)


def test_a_processed_file_runs_the_pipeline_to_success_and_notifies(stack_env):
    recorded, settings = stack_env
    machine = _machine_arn(settings)
    _, subjects = _topic_subscriber()
    since_ms = int(time.time() * 1000)
    # GIVEN a CSV uploaded to the uploads bucket (S3 -> file processor -> FileProcessed -> rule -> pipeline)
    key = _upload(recorded, settings, f"{uuid.uuid4().hex[:8]}.csv", b"region,amount\neu,1\nus,2\n")
    # WHEN its execution ends
    described = _executions_for(machine, key)
    # THEN it succeeded, stored the record under the file's business key, and the topic got "succeeded"
    assert described["status"] == "SUCCEEDED", described
    output = json.loads(described["output"])
    assert output["record_key"].startswith("file:") and output["deliveries"] >= 1
    types = [event["type"] for event in _history(described["executionArn"])]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("TaskSucceeded") == 3   # ProcessFile, ProcessData, Notify
    # AND the steps ran in the sandbox as Lambda runs them: the data step left its REPORT line
    deadline = time.monotonic() + 15
    while _reports(settings, "data-processor", since_ms).empty and time.monotonic() < deadline:
        time.sleep(0.5)
    reports = _reports(settings, "data-processor", since_ms)
    assert len(reports) >= 1 and (reports["status"] == "ok").all() and reports["billed_duration_ms"].gt(0).all()
    deadline = time.monotonic() + 30
    while not any(m.get("Subject") == pipeline.SUCCEEDED_SUBJECT and json.loads(m["Message"]) == output
                  for m in subjects()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert any(m.get("Subject") == pipeline.SUCCEEDED_SUBJECT and json.loads(m["Message"]) == output for m in subjects())


def test_a_record_the_data_step_cannot_store_ends_through_the_catch(stack_env):
    recorded, settings = stack_env
    machine = _machine_arn(settings)
    _, subjects = _topic_subscriber()
    # GIVEN a valid JSON file whose key holds a NUL: the file processor accepts it, PostgreSQL cannot store it
    key = _upload(recorded, settings, f"{uuid.uuid4().hex[:8]}.json", b'{"name\\u0000": 1}')
    # WHEN its execution ends
    described = _executions_for(machine, key)
    # THEN it failed with the data step's own error, after ProcessData's TaskFailed and the Catch's states
    assert described["status"] == "FAILED"
    assert described["error"] == "ValidationError"
    assert "NUL" in json.loads(described["cause"])["errorMessage"]
    events = _history(described["executionArn"])
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered == ["ProcessFile", "ProcessData", "ProcessDataFailed", "NotifyFailure", "Failed"]
    assert events[-1]["type"] == "ExecutionFailed"
    assert events[-1]["executionFailedEventDetails"]["error"] == "ValidationError"
    # AND the failure notification, naming the step, reached the topic's subscriber: nothing is lost
    deadline = time.monotonic() + 30
    failed = []
    while not failed and time.monotonic() < deadline:
        failed = [json.loads(m["Message"]) for m in subjects() if m.get("Subject") == pipeline.FAILED_SUBJECT]
    assert failed and failed[-1]["step"] == "ProcessData" and failed[-1]["error"] == "ValidationError"


def test_a_malformed_input_is_rejected_by_the_first_step_with_a_clear_error(stack_env):
    _, settings = stack_env
    sfn = aws.client("stepfunctions")
    # GIVEN an execution started with an input that is not a FileProcessed event
    arn = sfn.start_execution(stateMachineArn=_machine_arn(settings), name=f"malformed-{uuid.uuid4().hex[:8]}",
                              input=json.dumps({"bucket": "b"}))["executionArn"]
    # WHEN it ends
    described = _wait(arn)
    # THEN ProcessFile failed it with InvalidEvent, saying what was expected
    assert described["status"] == "FAILED" and described["error"] == "InvalidEvent"
    assert "expected a FileProcessed event" in json.loads(described["cause"])["errorMessage"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in _history(arn) if "stateEnteredEventDetails" in e]
    assert entered == ["ProcessFile", "ProcessFileFailed", "NotifyFailure", "Failed"]


def _throttled_machine(settings, retry: RetryParams, timeout_s: int = 300) -> str:
    """The pipeline's definition with its first step on the throttled copy of the file processor."""
    sfn = aws.client("stepfunctions")
    real = json.loads(sfn.describe_state_machine(stateMachineArn=_machine_arn(settings))["definition"])
    data_arn = real["States"]["ProcessData"]["Parameters"]["FunctionName"]
    topic_arn = real["States"]["Notify"]["Parameters"]["TopicArn"]
    throttled_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{THROTTLED}"
    body = pipeline.definition(throttled_arn, data_arn, topic_arn, retry, timeout_s)
    return sfn.create_state_machine(name=f"lwbt-throttled-{uuid.uuid4().hex[:8]}", definition=json.dumps(body),
                                    roleArn="arn:aws:iam::123456789012:role/lwbt")["stateMachineArn"]


def _retry_gaps_s(events: list[dict]) -> list[float]:
    """Seconds from each failed attempt to the next attempt's scheduling."""
    gaps, failed_at = [], None
    for event in events:
        if event["type"] == "TaskStateExited":   # the step gave up: the next TaskScheduled is another step's
            failed_at = None
        elif event["type"] == "TaskFailed":
            failed_at = event["timestamp"]
        elif event["type"] == "TaskScheduled" and failed_at is not None:
            gaps.append((event["timestamp"] - failed_at).total_seconds())
            failed_at = None
    return gaps


def _start(machine: str) -> str:
    event = {"detail-type": "FileProcessed", "source": "workbook.file-processor",
             "detail": {"bucket": "b", "key": "k.csv", "type": "csv"}}
    return aws.client("stepfunctions").start_execution(stateMachineArn=machine, name=str(uuid.uuid4()),
                                                       input=json.dumps(event))["executionArn"]


def test_retries_without_jitter_wait_the_interval_times_the_backoff_capped_by_max_delay(stack_env):
    _, settings = stack_env
    # GIVEN IntervalSeconds 1, BackoffRate 3, MaxAttempts 3, MaxDelaySeconds 2, no jitter, on a throttled step
    retry = RetryParams(**POLICY, jitter="NONE")
    # WHEN an execution runs
    arn = _start(_throttled_machine(settings, retry))
    described = _wait(arn)
    events = _history(arn)
    # THEN 1 + 3 attempts failed with Lambda.TooManyRequestsException ...
    failures = [e["taskFailedEventDetails"]["error"] for e in events if e["type"] == "TaskFailed"]
    assert failures == ["Lambda.TooManyRequestsException"] * 4
    # ... waiting at least 1, 2 and 2 s (the backoff applied: no jitter draws lower), and each closer to
    # its own wait than to an uncapped one (3 and 9 s) or a backoff at the first retry (3 s)
    gaps = _retry_gaps_s(events)
    assert len(gaps) == 3
    for gap, wait, wrong in zip(gaps, WAITS, NEAREST_WRONG, strict=True):
        assert wait <= gap < (wait + wrong) / 2, (gaps, WAITS)
    # AND the Catch ended it with the throttle as its error, after the failure notification
    assert described["status"] == "FAILED" and described["error"] == "Lambda.TooManyRequestsException"


def test_full_jitter_draws_each_wait_between_zero_and_the_capped_backoff(stack_env):
    _, settings = stack_env
    # GIVEN the same policy with JitterStrategy FULL
    retry = RetryParams(**POLICY, jitter="FULL")
    machine = _throttled_machine(settings, retry)
    # WHEN five executions run at once
    arns = [_start(machine) for _ in range(5)]
    gaps = []
    for arn in arns:
        assert _wait(arn)["status"] == "FAILED"
        gaps.append(_retry_gaps_s(_history(arn)))
    # THEN every wait lies within [0, the capped backoff]: closer to it than to the uncapped one (jitter
    # drawn over 3 and 9 s would pass the halfway mark with probability 1/6 and 7/18 a draw) ...
    for execution_gaps in gaps:
        assert len(execution_gaps) == 3
        for gap, wait, wrong in zip(execution_gaps, WAITS, NEAREST_WRONG, strict=True):
            assert 0.0 <= gap < (wait + wrong) / 2, (execution_gaps, WAITS)
    # ... and the waits are drawn, not fixed: with uniform draws, 15 waits all in the top fifth of
    # their range would happen with probability 0.2^15 (3e-11)
    assert any(gap < 0.8 * wait for execution_gaps in gaps for gap, wait in zip(execution_gaps, WAITS, strict=True))


def test_an_execution_past_its_time_budget_is_timed_out(stack_env):
    _, settings = stack_env
    # GIVEN a 2-second budget and a throttled first step whose retries alone take 6 seconds
    retry = RetryParams(interval_s=1, backoff_rate=2.0, max_attempts=3, max_delay_s=3, jitter="NONE")
    arn = _start(_throttled_machine(settings, retry, timeout_s=2))
    # WHEN it runs
    described = _wait(arn)
    # THEN DescribeExecution says TIMED_OUT at its budget, as AWS reports it
    # (moto 5.2 leaves stopDate out of a timed-out execution's description; AWS gives it)
    assert described["status"] == "TIMED_OUT"
    # AND the history ends with ExecutionTimedOut (moto records it once the state in flight gives up)
    deadline = time.monotonic() + 30
    while _history(arn)[-1]["type"] != "ExecutionTimedOut" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _history(arn)[-1]["type"] == "ExecutionTimedOut"
