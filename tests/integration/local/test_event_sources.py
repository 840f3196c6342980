"""Event sources driven as AWS drives them, on a small plan of test functions.

One local environment (moto, PostgreSQL, engine) serves the module. Its plan is built here in the
plan's documented shape (type, name, inputs with Pulumi's property names), so the provisioning is
exercised exactly as with the real stack's plan.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from local_helpers import FUNCTIONS_DIR, local_environment, small_plan

from workbook import aws
from workbook.local import manager

pytestmark = pytest.mark.timeout(240)
@pytest.fixture(scope="module")
def small_env(tmp_path_factory):
    with local_environment(tmp_path_factory.mktemp("local-state"), plan=lambda settings: small_plan(),
                           code_paths=[str(FUNCTIONS_DIR)]) as (recorded, _):
        yield recorded


def _eventually(check, timeout_s: float = 60.0, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval_s)


def _queue_url(name: str) -> str:
    return aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def _drain_queue(name: str, expected: int) -> list[dict]:
    sqs, url, messages = aws.client("sqs"), _queue_url(name), []

    def collect() -> bool:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    AttributeNames=["All"]).get("Messages", [])
        for message in batch:
            messages.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages) >= expected

    _eventually(collect, 60, 0)
    return messages


def _log_messages(group: str) -> list[str]:
    logs = aws.client("logs")
    events, token = [], None
    while True:
        kwargs = {"logGroupName": group, **({"nextToken": token} if token else {})}
        page = logs.filter_log_events(**kwargs)
        events.extend(event["message"] for event in page["events"])
        token = page.get("nextToken")
        if not token or not page["events"]:
            return events


def test_poison_messages_reach_the_dlq_and_valid_ones_are_processed_once(small_env):
    # GIVEN 20 valid messages and 4 poison ones on a queue with maxReceiveCount 2
    sqs = aws.client("sqs")
    url = _queue_url("lwbt-work")
    for index in range(20):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"id": index}))
    for index in range(4):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"poison": True, "n": index}))
    # WHEN the event source mapping has worked through them
    dead = _drain_queue("lwbt-work-dlq", 4)
    # THEN every poison message is in the DLQ, after maxReceiveCount receives...
    assert sorted(json.loads(m["Body"])["n"] for m in dead) == [0, 1, 2, 3]
    # ... and every valid message was processed exactly once (partial-batch responses honoured)
    def processed() -> list[int]:
        ids = []
        for message in _log_messages("/aws/lambda/lwbt-consumer"):
            if message.startswith('{"processed"'):
                ids.append(json.loads(message)["processed"])
        return ids if len(ids) >= 20 else []

    ids = _eventually(processed, 20)
    assert sorted(ids) == list(range(20))
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert int(attributes["ApproximateNumberOfMessages"]) == 0
    assert int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0


def test_s3_notifications_honour_filters_and_async_retries_end_at_the_failure_destination(small_env):
    # GIVEN a bucket notifying a failing function for in/*.json, with 2 async retries then a queue
    s3 = aws.client("s3")
    # WHEN one matching and two non-matching objects are uploaded
    s3.put_object(Bucket="lwbt-uploads", Key="in/report+1.json", Body=b"{}")
    s3.put_object(Bucket="lwbt-uploads", Key="in/picture.png", Body=b"x")
    s3.put_object(Bucket="lwbt-uploads", Key="other/report.json", Body=b"{}")
    # THEN after three attempts (retries back off on the accelerated clock) the invocation record
    # lands on the on-failure destination
    records = [json.loads(m["Body"]) for m in _drain_queue("lwbt-failures", 1)]
    assert len(records) == 1
    record = records[0]
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responseContext"]["functionError"] == "Unhandled"
    s3_record = record["requestPayload"]["Records"][0]
    assert s3_record["eventSource"] == "aws:s3" and s3_record["s3"]["object"]["key"] == "in/report%2B1.json"
    # AND only the matching object invoked the function (three START lines: one per attempt)
    def starts() -> list[str]:
        lines = [m for m in _log_messages("/aws/lambda/lwbt-uploads") if m.startswith("START RequestId")]
        return lines if len(lines) >= 3 else []

    assert len(_eventually(starts, 10)) == 3


def test_schedules_fire_on_the_accelerated_clock_with_the_target_input(small_env):
    # rate(1 minute) at clock_factor 60 (params/local.yaml) fires about once a real second
    def starts() -> list[str]:
        lines = [m for m in _log_messages("/aws/lambda/lwbt-clock") if m.startswith("START RequestId")]
        return lines if len(lines) >= 2 else []

    assert _eventually(starts, 30)
    status = manager.status()
    assert status["engine"]["schedules_fired"] >= 2


def test_event_pattern_rule_delivers_only_matching_events(small_env):
    events = aws.client("events")
    events.put_events(Entries=[
        {"EventBusName": "lwbt-bus", "Source": "lwbt.files", "DetailType": "FileProcessed", "Detail": json.dumps({"k": 1})},
        {"EventBusName": "lwbt-bus", "Source": "lwbt.files", "DetailType": "FileRejected", "Detail": json.dumps({"k": 2})},
    ])
    delivered = _drain_queue("lwbt-matched", 1)
    time.sleep(1.5)
    delivered += _drain_queue("lwbt-matched", 0)
    assert [json.loads(m["Body"])["detail"] for m in delivered] == [{"k": 1}]


def test_dlq_depth_and_oldest_message_age_are_published(small_env):
    cloudwatch = aws.client("cloudwatch")

    def published() -> set[tuple[str, str]]:
        found = set()
        for metric in cloudwatch.list_metrics(Namespace="AWS/SQS")["Metrics"]:
            for dimension in metric.get("Dimensions", []):
                found.add((metric["MetricName"], dimension["Value"]))
        wanted = {("ApproximateNumberOfMessagesVisible", "lwbt-work-dlq"), ("ApproximateAgeOfOldestMessage", "lwbt-work")}
        return wanted if wanted <= found else set()

    assert _eventually(published, 30, 1.0)


def test_invoke_prints_the_out_of_memory_report_on_stderr(small_env):
    # GIVEN a 128 MB function with the JSON log format (its log tail has no text REPORT line)
    env = {**os.environ, "WORKBOOK_STATE_DIR": small_env["state_dir"]}
    # WHEN `workbook local invoke` runs it past its memory
    result = subprocess.run([sys.executable, "-m", "workbook.cli", "local", "invoke", "lwbt-hog", "--event", "-"],
                            input=json.dumps({"megabytes": 512}), capture_output=True, text=True, env=env, timeout=120)
    # THEN it fails as Lambda reports it: the error payload on stdout, the REPORT with its status on stderr
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["errorType"] == "Runtime.OutOfMemory"
    report = [line for line in result.stderr.splitlines() if line.startswith("REPORT RequestId:")]
    assert len(report) == 1, result.stderr
    assert "\tMax Memory Used: 128 MB\t" in report[0] and report[0].endswith("\tStatus: error\tError Type: Runtime.OutOfMemory")
    assert '"FunctionError": "Unhandled"' in result.stderr
