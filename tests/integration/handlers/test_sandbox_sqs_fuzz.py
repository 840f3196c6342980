"""Fuzzing data-processor's SQS partial batches end to end: moto's SQS server, the local sandbox, PostgreSQL.

Where the event source matters, the fuzz goes through it. Each example sends generated message
bodies to the task queue (SQS refuses what it cannot carry: those never reach Lambda), receives
them and builds the event as Lambda's event source mapping does, invokes the real handler in the
local sandbox (a fresh interpreter per execution environment, as Lambda runs it), and deletes
what the partial batch response did not list. Then nothing may be lost:

* the response lists exactly the records whose body breaks the message contract;
* every record not listed is in PostgreSQL (the upserts replayed in order give the table);
* exactly the listed messages are back on the queue (visibility timeout 0), for redelivery.
"""
from __future__ import annotations

import re

import event_strategies as es
import pytest
from handler_harness import content_sha256, data_message
from handler_kit import db_rows, function_env
from hypothesis import given, settings
from hypothesis import strategies as st

from workbook.local.sandbox import FunctionConfig, PlatformSettings, Sandbox, artifacts, local_runtime

# About 0.4 s an example; the nightly profile runs 2,000.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(max(900, es.examples(0.1)))]

FUNCTION = "lwb-test-data-processor"
SQS_BODIES = es.data_message_bodies().filter(lambda body: isinstance(body, str))
#: What SQS accepts in a message body (SendMessage: "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to
#: #xFFFD | #x10000 to #x10FFFF"); moto's server does not check it, and fails later on what it let in.
_SQS_CHARACTERS = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


def sqs_accepts(body: str) -> bool:
    return bool(body) and _SQS_CHARACTERS.fullmatch(body) is not None and len(body.encode("utf-8")) <= 256 * 1024


@pytest.fixture
def task_queue(local_aws):
    sqs = local_aws("sqs")
    url = sqs.create_queue(QueueName="lwb-test-tasks", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_aws("sns").create_topic(Name="lwb-test-notifications")
    return sqs, url, arn


@pytest.fixture
def sandbox(moto_endpoint, pg_secret):
    """The real data-processor in the local sandbox, its AWS calls going to moto's server."""
    environment = {name: value for name, value in function_env("data-processor").items()
                   if name not in ("AWS_REGION", "AWS_DEFAULT_REGION")}
    config = FunctionConfig(key="data-processor", function_name=FUNCTION, memory_mb=512, timeout_s=30,
                            handler="data_processor.handler", environment=environment,
                            code_paths=artifacts.function_code_paths("data-processor", local_runtime().python_version))
    with Sandbox(PlatformSettings(endpoint_url=moto_endpoint), idle_expiry_s=600) as box:
        box.register(config)
        yield box


def lambda_event(messages: list[dict], queue_arn: str) -> dict:
    """The SQS event Lambda's event source mapping builds from ReceiveMessage output."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": {k: v for k, v in m.get("Attributes", {}).items() if k in (
            "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp")},
        "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"} for m in messages]}


def receive_all(sqs, url: str) -> list[dict]:
    """Every message on the queue, once (with visibility timeout 0 a receive may return one again)."""
    messages: dict[str, dict] = {}
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in got if m["MessageId"] not in messages]
        if not fresh:
            return list(messages.values())
        messages.update((m["MessageId"], m) for m in fresh)


def delete(sqs, url: str, messages: list[dict]) -> None:
    if messages:
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(messages)])


@settings(max_examples=es.examples(0.1))
@given(bodies=st.lists(SQS_BODIES, min_size=1, max_size=10))
def test_fuzz_sqs_partial_batches_through_the_sandbox(sandbox, task_queue, pg_secret, bodies):
    sqs, url, arn = task_queue
    db_rows(pg_secret, "DELETE FROM processed_records")
    # GIVEN the bodies SQS accepts, on the queue
    for body in filter(sqs_accepts, bodies):   # what SQS refuses never reaches Lambda
        sqs.send_message(QueueUrl=url, MessageBody=body)
    messages = receive_all(sqs, url)
    if not messages:
        return
    # WHEN the event source mapping invokes the function in the sandbox
    event = lambda_event(messages, arn)
    outcome = sandbox.invoke(FUNCTION, event)
    assert outcome.ok, outcome.payload[:2000]
    response = outcome.json()
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    delete(sqs, url, [m for m in messages if m["MessageId"] not in failed])
    # THEN exactly the records that break the contract are listed...
    records = event["Records"]
    parsed = [data_message(record) for record in records]
    assert failed == {r["messageId"] for r, message in zip(records, parsed, strict=True) if message is None}
    # ... every other one is stored...
    expected: dict[str, tuple] = {}
    for record, message in zip(records, parsed, strict=True):
        if message is not None:
            key = message["business_key"] or f"message:{record['messageId']}"
            deliveries = expected.get(key, (None, 0, None))[1] + 1
            expected[key] = (record["messageId"], deliveries, content_sha256(message["payload"]))
    stored = db_rows(pg_secret, "SELECT record_key, message_id, deliveries, result FROM processed_records")
    assert {key: (mid, deliveries, result["sha256"]) for key, mid, deliveries, result in stored} == expected
    # ... and exactly the listed ones are back on the queue for redelivery
    back = receive_all(sqs, url)
    delete(sqs, url, back)
    assert sorted(m["MessageId"] for m in back) == sorted(failed)
