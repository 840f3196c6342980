"""data-processor: SQS batches, partial-batch responses, idempotent upserts into PostgreSQL, SNS summary."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest
from handler_kit import LambdaContext, LogCapture, db_rows

TOPIC = "lwb-test-notifications"


@pytest.fixture
def summaries(aws):
    """The notifications topic, subscribed by a queue; returns a reader of published summaries."""
    sns = boto3.client("sns", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    topic_arn = sns.create_topic(Name=TOPIC)["TopicArn"]
    queue_url = sqs.create_queue(QueueName="summaries")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})

    def read():
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]
    return read


@pytest.fixture
def processor(handler_factory, db_secret, summaries):
    return handler_factory("data_processor")


@pytest.fixture
def sqs_record(event_factory):
    """One SQS record with ``body`` (a dict is JSON-encoded) and a fresh message id."""
    template = event_factory("sqs_batch")["Records"][0]

    def build(body, message_id=None):
        record = json.loads(json.dumps(template))
        record["messageId"] = message_id or str(uuid.uuid4())
        record["body"] = json.dumps(body) if isinstance(body, dict) else body
        return record
    return build


def message(key="order-1", **payload):
    return {"kind": "order.created", "business_key": key, "payload": payload or {"amount": 1}}


def test_all_records_succeed_and_one_summary_is_published(processor, event_factory, db_secret, summaries):
    # GIVEN a batch of two valid messages (real SQS event shape)
    event = event_factory("sqs_batch")
    # WHEN it is processed
    response = processor.handler(event, LambdaContext())
    # THEN nothing is reported failed, both records are stored, and one summary is published
    assert response == {"batchItemFailures": []}
    rows = db_rows(db_secret, "SELECT record_key, kind, result FROM processed_records ORDER BY record_key")
    assert [row[0] for row in rows] == ["order-1", "order-2"]
    assert rows[0][2]["fields"] == ["amount", "order_id"]
    published = summaries()
    assert len(published) == 1 and published[0]["succeeded"] == 2 and published[0]["failed"] == 0


def test_a_poison_message_fails_alone(processor, sqs_record, db_secret, summaries):
    # GIVEN a batch with one invalid JSON body between two valid messages
    poison = sqs_record("{not json")
    event = {"Records": [sqs_record(message("a")), poison, sqs_record(message("b"))]}
    logs = LogCapture(processor)
    # WHEN it is processed
    response = processor.handler(event, LambdaContext())
    # THEN only the poison message is reported, the others are stored, and the failure is logged
    assert response == {"batchItemFailures": [{"itemIdentifier": poison["messageId"]}]}
    assert [r[0] for r in db_rows(db_secret, "SELECT record_key FROM processed_records ORDER BY 1")] == ["a", "b"]
    failed = logs.records("record failed")
    assert failed[0]["message_id"] == poison["messageId"] and failed[0]["error"] == "validation_error"
    assert summaries()[0]["failed_message_ids"] == [poison["messageId"]]


def test_when_every_record_fails_all_are_reported_without_raising(processor, sqs_record):
    # GIVEN a batch where every message is invalid
    event = {"Records": [sqs_record("[]"), sqs_record('{"kind": 1}')]}
    # WHEN it is processed
    response = processor.handler(event, LambdaContext())
    # THEN every record is an item failure (SQS redelivers them all; no invocation error)
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {r["messageId"] for r in event["Records"]}


def test_redelivery_is_harmless(processor, sqs_record, db_secret):
    # GIVEN a message delivered twice (same message id), and the same business key under a new message id
    record = sqs_record(message("order-9", amount=5))
    processor.handler({"Records": [record]}, LambdaContext())
    processor.handler({"Records": [record]}, LambdaContext())
    processor.handler({"Records": [sqs_record(message("order-9", amount=5))]}, LambdaContext())
    # THEN there is one row, which counts three deliveries
    assert db_rows(db_secret, "SELECT count(*), max(deliveries) FROM processed_records") == [[1, 3]]


def test_records_without_business_key_are_keyed_on_message_id(processor, sqs_record, db_secret):
    record = sqs_record({"kind": "ping", "payload": {}})
    processor.handler({"Records": [record]}, LambdaContext())
    assert db_rows(db_secret, "SELECT record_key FROM processed_records") == [[f"message:{record['messageId']}"]]


@pytest.mark.parametrize("body", [
    "",                                                   # empty body
    "{not json",                                          # invalid JSON
    "null",
    json.dumps({"payload": {}}),                          # missing kind
    json.dumps({"kind": "x"}),                            # missing payload
    json.dumps({"kind": 5, "payload": {}}),               # wrong type
    json.dumps({"kind": "x", "payload": [], "business_key": "k"}),
    json.dumps({"kind": "x", "payload": {}, "business_key": 7}),
    json.dumps({"kind": "x", "payload": {"blob": "y" * 300_000}}),   # oversized
    '{"kind": "x", "payload": {"s": "\udcff"}}',          # not UTF-8 (lone surrogate from undecodable bytes)
    None,                                                 # missing body
    123,                                                  # body of the wrong type
])
def test_bad_messages_are_per_record_failures(processor, sqs_record, body, db_secret):
    # GIVEN a valid message and a bad one in the same batch
    bad = sqs_record("x")
    bad["body"] = body
    event = {"Records": [sqs_record(message("good")), bad]}
    # WHEN it is processed
    response = processor.handler(event, LambdaContext())
    # THEN only the bad one fails, and the valid one is not lost
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert db_rows(db_secret, "SELECT record_key FROM processed_records") == [["good"]]


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": "x"}, [], "text",
                                   {"Records": [{"eventSource": "aws:s3", "s3": {}}]},
                                   {"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}])
def test_wrong_or_empty_events_raise_a_clear_error(processor, event):
    # GIVEN an event that is not an SQS batch (wrong source, empty, missing messageId)
    logs = LogCapture(processor)
    # WHEN it is handled, THEN the invocation fails with InvalidEvent (retry and DLQ apply) and it is logged
    with pytest.raises(processor.InvalidEvent):
        processor.handler(event, LambdaContext())
    assert logs.records("invalid event")[0]["level"] == "ERROR"


def test_stops_before_the_timeout_and_leaves_records_for_redelivery(processor, sqs_record, db_secret):
    # GIVEN less time left than the safety margin
    event = {"Records": [sqs_record(message("late-1")), sqs_record(message("late-2"))]}
    # WHEN the batch is handled
    response = processor.handler(event, LambdaContext(remaining_ms=1500))
    # THEN no record is processed and all are reported failed, so SQS redelivers them
    assert len(response["batchItemFailures"]) == 2
    assert db_rows(db_secret, "SELECT count(*) FROM processed_records") == [[0]]


def test_database_outage_fails_every_record(handler_factory, aws, summaries, sqs_record):
    # GIVEN an unreachable database
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="lwb-test/db", SecretString=json.dumps({"host": "/nonexistent", "port": 5432, "username": "u", "password": "",
                                                     "dbname": "d"}))
    processor = handler_factory("data_processor")
    event = {"Records": [sqs_record(message("x")), sqs_record(message("y"))]}
    # WHEN a batch arrives, THEN every record is reported failed (not lost)
    assert len(processor.handler(event, LambdaContext())["batchItemFailures"]) == 2


def test_summary_publish_failure_is_logged_not_fatal(handler_factory, db_secret, sqs_record):
    # GIVEN no notifications topic (publish fails)
    processor = handler_factory("data_processor", NOTIFICATIONS_TOPIC_ARN="arn:aws:sns:us-east-1:123456789012:missing")
    logs = LogCapture(processor)
    # WHEN a valid batch is processed
    response = processor.handler({"Records": [sqs_record(message("z"))]}, LambdaContext())
    # THEN the batch still succeeds and the publish failure is logged as an error
    assert response == {"batchItemFailures": []}
    assert logs.records("batch summary not published")[0]["level"] == "ERROR"
