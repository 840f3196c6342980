"""SQS end to end on moto's server and a real PostgreSQL: redrive to the DLQ, scheduler to data-processor."""
from __future__ import annotations

import json

import pytest
from handler_kit import LambdaContext, db_rows, forget_handler_modules

MAX_RECEIVE_COUNT = 2


@pytest.fixture
def task_queue(local_aws):
    """The task queue with its DLQ (maxReceiveCount 2, visibility 0 so redelivery is immediate)."""
    sqs = local_aws("sqs")
    dlq_url = sqs.create_queue(QueueName="lwb-test-tasks-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="lwb-test-tasks", Attributes={
        "VisibilityTimeout": "0",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)})})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    local_aws("sns").create_topic(Name="lwb-test-notifications")
    return sqs, url, arn, dlq_url


def lambda_event(messages, queue_arn):
    """An SQS event as Lambda's event source mapping builds it from ReceiveMessage output."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"} for m in messages]}


def poll_like_an_event_source_mapping(sqs, url, arn, handler, max_polls=20):
    """Receive, invoke, delete what succeeded; until the queue is empty. Returns the invocation count."""
    invocations = 0
    for _ in range(max_polls):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages", [])
        if not messages:
            return invocations
        response = handler(lambda_event(messages, arn), LambdaContext())
        invocations += 1
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                            for i, m in enumerate(done)])
    raise AssertionError("queue never drained")


@pytest.fixture
def data_processor(handler_factory, pg_secret, task_queue, moto_endpoint):
    module = handler_factory("data_processor", AWS_ENDPOINT_URL=moto_endpoint)
    yield module
    forget_handler_modules()


def test_poison_message_reaches_the_dlq_while_the_rest_succeed(data_processor, task_queue, pg_secret):
    # GIVEN eight valid task messages and one poison message on the task queue
    sqs, url, arn, dlq_url = task_queue
    for n in range(8):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
            {"kind": "order.created", "business_key": f"order-{n}", "payload": {"n": n}}))
    poison_id = sqs.send_message(QueueUrl=url, MessageBody="{this is not json")["MessageId"]
    # WHEN the function consumes the queue the way an event source mapping does
    poll_like_an_event_source_mapping(sqs, url, arn, data_processor.handler)
    # THEN every valid message was stored exactly once, none was lost
    rows = db_rows(pg_secret, "SELECT record_key, deliveries FROM processed_records ORDER BY record_key")
    assert rows == [[f"order-{n}", 1] for n in range(8)]
    # AND the poison message sits in the DLQ after maxReceiveCount receives
    dead = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    assert [m["MessageId"] for m in dead] == [poison_id]
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT


def test_scheduler_enqueues_due_work_that_data_processor_stores(handler_factory, pg_secret, task_queue, moto_endpoint):
    # GIVEN 25 due rows in PostgreSQL
    import pg8000.native

    from common import db
    connection = pg8000.native.Connection(**db.connect_params(pg_secret))
    connection.run("INSERT INTO due_work (task_type, payload) SELECT 'report.build', jsonb_build_object('n', n) "
                   "FROM generate_series(1, 25) AS n")
    connection.close()
    sqs, url, arn, _ = task_queue
    # WHEN the scheduler runs against the local endpoint
    scheduler = handler_factory("scheduler", TASK_QUEUE_URL=url)
    summary = scheduler.handler({"source": "aws.events", "detail-type": "Scheduled Event", "id": "1"}, LambdaContext())
    assert (summary["enqueued"], summary["rounds"]) == (25, 3)
    # AND data-processor consumes the task queue
    processor = handler_factory("data_processor")
    poll_like_an_event_source_mapping(sqs, url, arn, processor.handler)
    # THEN each due row became exactly one processed record, keyed on its business key
    rows = db_rows(pg_secret, "SELECT count(*), count(DISTINCT record_key), max(deliveries) FROM processed_records "
                              "WHERE record_key LIKE 'due-work:%'")
    assert rows == [[25, 25, 1]]


def test_broken_connection_is_recycled_between_warm_invocations(data_processor, task_queue, pg_secret):
    # GIVEN a warm function whose database session is killed by the server
    sqs, url, arn, _ = task_queue
    body = json.dumps({"kind": "k", "business_key": "a", "payload": {}})
    sqs.send_message(QueueUrl=url, MessageBody=body)
    poll_like_an_event_source_mapping(sqs, url, arn, data_processor.handler)
    db_rows(pg_secret, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'data-processor' AND pid <> pg_backend_pid()")
    # WHEN the next batch arrives
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"kind": "k", "business_key": "b", "payload": {}}))
    poll_like_an_event_source_mapping(sqs, url, arn, data_processor.handler)
    # THEN it reconnected once and stored the record
    assert data_processor.db.database().connects == 2
    assert [r[0] for r in db_rows(pg_secret, "SELECT record_key FROM processed_records ORDER BY 1")] == ["a", "b"]
