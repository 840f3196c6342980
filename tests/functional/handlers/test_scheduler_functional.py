"""scheduler: due work from PostgreSQL, SendMessageBatch in groups of 10, run summary to SNS."""
from __future__ import annotations

import json

import boto3
import pytest
from handler_kit import LambdaContext, LogCapture, db_rows, function_env

QUEUE_URL = function_env("scheduler")["TASK_QUEUE_URL"]


@pytest.fixture
def queues(aws):
    sqs = boto3.client("sqs", region_name="us-east-1")
    sns = boto3.client("sns", region_name="us-east-1")
    sqs.create_queue(QueueName="lwb-test-tasks")
    topic_arn = sns.create_topic(Name="lwb-test-notifications")["TopicArn"]
    summary_url = sqs.create_queue(QueueName="summaries")["QueueUrl"]
    summary_arn = sqs.get_queue_attributes(QueueUrl=summary_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=summary_arn, Attributes={"RawMessageDelivery": "true"})
    return sqs, summary_url


def drain(sqs, url):
    bodies = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        bodies += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(messages)])


@pytest.fixture
def due_work(db_secret):
    """Insert ``n`` rows due now (or in ``due_in_s`` seconds); return their ids."""
    import pg8000.native

    from common import db

    def add(n, due_in_s=-1, task_type="report.build"):
        connection = pg8000.native.Connection(**db.connect_params(db_secret))
        try:
            rows = [connection.run("INSERT INTO due_work (task_type, payload, due_at) VALUES "
                                   "(:t, CAST(:p AS jsonb), now() + make_interval(secs => :s)) RETURNING id",
                                   t=task_type, p=json.dumps({"n": i}), s=due_in_s)[0][0] for i in range(n)]
        finally:
            connection.close()
        return rows
    return add


@pytest.fixture
def scheduler(handler_factory, db_secret, queues):
    return handler_factory("scheduler")


def test_due_work_is_enqueued_in_batches_of_ten_and_summarised(scheduler, due_work, queues, event_factory, db_secret):
    # GIVEN 23 due rows and 2 rows due later
    ids = due_work(23)
    due_work(2, due_in_s=3600)
    sqs, summary_url = queues
    # WHEN the schedule fires
    summary = scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    # THEN the 23 are enqueued in three rounds (10+10+3), marked enqueued, and the later ones left
    assert (summary["enqueued"], summary["failed"], summary["rounds"]) == (23, 0, 3)
    tasks = drain(sqs, QUEUE_URL)
    assert sorted(t["business_key"] for t in tasks) == sorted(f"due-work:{i}" for i in ids)
    assert tasks[0]["kind"] == "report.build" and "n" in tasks[0]["payload"]
    assert db_rows(db_secret, "SELECT status, count(*) FROM due_work GROUP BY status ORDER BY 1") == [
        ["enqueued", 23], ["pending", 2]]
    # AND one run summary is published
    assert [s["enqueued"] for s in drain(sqs, summary_url)] == [23]


def test_a_second_run_finds_nothing_to_do(scheduler, due_work, event_factory):
    due_work(3)
    scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    summary = scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    assert (summary["enqueued"], summary["stopped"]) == (0, "no_due_work")


def test_failed_entries_are_retried_then_reported(scheduler, due_work, event_factory, db_secret, monkeypatch):
    # GIVEN SendMessageBatch that fails one entry once, and another entry on every attempt
    ids = due_work(3)
    calls = []
    real_send = scheduler.aws.client("sqs").send_message_batch

    def flaky_send(QueueUrl, Entries):  # noqa: N803 - boto3's parameter names
        calls.append([e["Id"] for e in Entries])
        keep = [e for e in Entries if e["Id"] != str(ids[2]) and not (e["Id"] == str(ids[1]) and len(calls) <= 1)]
        response = real_send(QueueUrl=QueueUrl, Entries=keep) if keep else {"Successful": []}
        response["Failed"] = [{"Id": e["Id"], "Code": "InternalError", "SenderFault": False, "Message": "boom"}
                              for e in Entries if e not in keep]
        return response
    monkeypatch.setattr(scheduler.aws.client("sqs"), "send_message_batch", flaky_send)
    monkeypatch.setattr(scheduler, "BACKOFF", scheduler.BACKOFF.__class__(base_s=0.0, cap_s=0.0))
    # WHEN the schedule fires
    summary = scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    # THEN failed entries were resent, the persistent failure is reported and left pending for the next run
    assert calls[0] == [str(i) for i in ids] and calls[1] == [str(ids[1]), str(ids[2])] and calls[2] == [str(ids[2])]
    assert summary["enqueued"] == 2 and summary["failed"] == 1 and summary["failed_ids"] == [ids[2]]
    row = db_rows(db_secret, "SELECT status, attempts, last_error FROM due_work WHERE id = :id", id=ids[2])[0]
    assert row[0] == "pending" and row[1] == 1 and "InternalError" in row[2]
    assert db_rows(db_secret, "SELECT due_at > now() FROM due_work WHERE id = :id", id=ids[2]) == [[True]]


def test_stops_before_the_timeout_and_leaves_the_rest(scheduler, due_work, event_factory, db_secret):
    # GIVEN due work and less time left than the safety margin
    due_work(5)
    # WHEN the schedule fires, THEN nothing is claimed and the run says why it stopped
    summary = scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext(remaining_ms=1500))
    assert (summary["enqueued"], summary["stopped"]) == (0, "time_budget")
    assert db_rows(db_secret, "SELECT count(*) FROM due_work WHERE status = 'pending'") == [[5]]


def test_stale_claims_are_taken_again(scheduler, due_work, event_factory, db_secret):
    # GIVEN a row claimed by a run that died 20 minutes ago
    (row_id,) = due_work(1)
    from handler_kit import db_rows as run_sql
    run_sql(db_secret, "UPDATE due_work SET status = 'claimed', claimed_at = now() - interval '20 minutes' "
                       "WHERE id = :id RETURNING id", id=row_id)
    # WHEN the schedule fires, THEN it is enqueued
    assert scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())["enqueued"] == 1


@pytest.mark.parametrize("event", [{}, [], "x", None, {"source": "aws.s3", "detail-type": "Object Created"},
                                   {"Records": [{"eventSource": "aws:sqs"}]}, {"source": 1, "detail-type": ["x"]}])
def test_wrong_or_empty_events_raise_a_clear_error(scheduler, event):
    logs = LogCapture(scheduler)
    with pytest.raises(scheduler.HandlerError) as raised:
        scheduler.handler(event, LambdaContext())
    assert raised.value.code == "invalid_event"
    assert logs.records("scheduler run failed")[0]["level"] == "ERROR"


@pytest.mark.parametrize("detail, code", [
    ({"blob": "x" * 300_000}, "payload_too_large"),       # oversized
    ({"text": "\udcff"}, "invalid_event"),                # not UTF-8 (undecodable byte as a lone surrogate)
])
def test_oversized_or_non_utf8_scheduled_events_are_refused(scheduler, event_factory, detail, code):
    # GIVEN a Scheduled Event whose detail is oversized or not UTF-8
    event = event_factory("eventbridge_scheduled", detail=detail)
    # WHEN it is handled, THEN it is refused with a clear error before any work
    with pytest.raises(scheduler.HandlerError) as raised:
        scheduler.handler(event, LambdaContext())
    assert raised.value.code == code


def test_database_outage_raises_for_retry(handler_factory, queues, event_factory):
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="lwb-test/db", SecretString=json.dumps({"host": "/nonexistent", "port": 5432, "username": "u",
                                                     "password": "", "dbname": "d"}))
    scheduler = handler_factory("scheduler")
    with pytest.raises(scheduler.HandlerError) as raised:
        scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    assert raised.value.code == "database_unavailable"


def test_malformed_database_secret_raises_a_config_error(handler_factory, queues, event_factory):
    boto3.client("secretsmanager", region_name="us-east-1").create_secret(Name="lwb-test/db", SecretString="{not json")
    scheduler = handler_factory("scheduler")
    with pytest.raises(scheduler.HandlerError) as raised:
        scheduler.handler(event_factory("eventbridge_scheduled"), LambdaContext())
    assert raised.value.code == "secret_unavailable"
