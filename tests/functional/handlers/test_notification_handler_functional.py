"""notification-handler: SNS notifications (via SQS or direct) delivered to the webhook through a breaker."""
from __future__ import annotations

import json
import uuid

import boto3
import pytest
from handler_kit import LambdaContext, LogCapture, WebhookServer


@pytest.fixture
def webhook():
    with WebhookServer() as server:
        yield server


@pytest.fixture
def notifier_factory(handler_factory, aws, webhook):
    """The handler with the API keys secret pointing at the local webhook, and no backoff sleeps."""
    def build(secret=None, **env):
        secret = secret or {"webhook_url": webhook.url, "webhook_token": "hook-token", "api_keys": {"ops": "k1"}}
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="lwb-test/api-keys", SecretString=json.dumps(secret))
        module = handler_factory("notification_handler", **env)
        module.CLIENT._sleep = lambda _s: None
        module.CLIENT.timeout_s = 0.5
        return module
    return build


@pytest.fixture
def notifier(notifier_factory):
    return notifier_factory()


@pytest.fixture
def sqs_record(event_factory):
    template = event_factory("sqs_sns_envelope")["Records"][0]

    def build(body=None, message=None):
        record = json.loads(json.dumps(template))
        record["messageId"] = str(uuid.uuid4())
        if message is not None:
            envelope = json.loads(record["body"])
            envelope["Message"] = message
            envelope["MessageId"] = str(uuid.uuid4())
            body = json.dumps(envelope)
        if body is not None:
            record["body"] = body
        return record
    return build


def test_sqs_wrapped_sns_notification_is_delivered(notifier, event_factory, webhook):
    # GIVEN an SQS record carrying an SNS envelope (real shape)
    event = event_factory("sqs_sns_envelope")
    # WHEN it is handled
    response = notifier.handler(event, LambdaContext())
    # THEN it is delivered with the token and an idempotency key, and nothing fails
    assert response == {"batchItemFailures": []}
    (request,) = webhook.received
    assert request["headers"]["authorization"] == "Bearer hook-token"
    assert request["headers"]["idempotency-key"] == "a9b2d7c4-1b5e-5a6e-9c0e-2d7f1b3e4a55"
    assert json.loads(request["body"])["message"] == {"type": "run-summary", "enqueued": 10}


def test_direct_sns_event_is_delivered(notifier, event_factory, webhook):
    assert notifier.handler(event_factory("sns_direct"), LambdaContext()) == {"delivered": 1}
    assert json.loads(webhook.received[0]["body"])["subject"] == "data-processor batch summary"


def test_raw_delivery_and_plain_text_messages_are_forwarded(notifier, sqs_record, webhook):
    # GIVEN a raw-delivery body and an SNS envelope whose message is plain text
    event = {"Records": [sqs_record(body=json.dumps({"alert": "disk"})), sqs_record(message="plain words")]}
    # WHEN handled, THEN both are delivered as they are
    assert notifier.handler(event, LambdaContext()) == {"batchItemFailures": []}
    assert [json.loads(r["body"])["message"] for r in webhook.received] == [{"alert": "disk"}, "plain words"]


def test_webhook_failure_is_reported_per_record_after_retries(notifier, sqs_record, webhook):
    # GIVEN a webhook that fails every call for the first record, then recovers
    webhook.script = ["fail", "fail", "fail"]
    first, second = sqs_record(message='{"n": 1}'), sqs_record(message='{"n": 2}')
    # WHEN a batch of two is handled
    response = notifier.handler({"Records": [first, second]}, LambdaContext())
    # THEN the first is reported failed after three attempts (so SQS retries, then dead-letters it)
    assert response == {"batchItemFailures": [{"itemIdentifier": first["messageId"]}]}
    assert [r["behaviour"] for r in webhook.received] == ["fail", "fail", "fail", "ok"]


def test_a_4xx_is_not_retried_and_does_not_open_the_breaker(notifier, sqs_record, webhook):
    webhook.script = ["reject"]
    record = sqs_record(message="x")
    response = notifier.handler({"Records": [record]}, LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert webhook.calls == 1 and notifier.BREAKER.state.value == "closed"


def test_open_breaker_fails_fast_across_warm_invocations(notifier, sqs_record, webhook):
    # GIVEN a webhook that is down: the first invocation's failures open the breaker
    webhook.default = "fail"
    notifier.handler({"Records": [sqs_record(message="a"), sqs_record(message="b")]}, LambdaContext())
    assert notifier.BREAKER.state.value == "open"
    calls_when_opened = webhook.calls
    logs = LogCapture(notifier)
    # WHEN the next (warm) invocation arrives with three records
    batch = [sqs_record(message=str(n)) for n in range(3)]
    response = notifier.handler({"Records": batch}, LambdaContext())
    # THEN every record fails fast, the webhook is not called, and the log says the circuit is open
    assert len(response["batchItemFailures"]) == 3 and webhook.calls == calls_when_opened
    assert {r["error"] for r in logs.records("notification not delivered")} == {"circuit_open"}


def test_direct_sns_failure_raises_for_async_retry(notifier, event_factory, webhook):
    webhook.default = "fail"
    with pytest.raises(notifier.HandlerError) as raised:
        notifier.handler(event_factory("sns_direct"), LambdaContext())
    assert raised.value.code == "upstream_error"


@pytest.mark.parametrize("body", [
    "",                                                           # empty
    "{not json",                                                  # invalid JSON
    "\udcff\udcfe",                                               # not UTF-8
    json.dumps({"Type": "Notification", "Message": 5}),           # wrong type
    json.dumps({"Type": "SubscriptionConfirmation", "Message": "x", "TopicArn": "t"}),
    json.dumps({"Type": "Notification", "TopicArn": "t"}),        # missing Message
    json.dumps({"Type": "Notification", "Message": "\udcff"}),    # message not UTF-8
    json.dumps({"Type": "Notification", "Message": "y" * 300_000}),  # oversized
    "[1, 2]",
    None,
])
def test_bad_records_fail_alone(notifier, sqs_record, body, webhook):
    # GIVEN a bad record next to a good one
    bad, good = sqs_record(), sqs_record(message="ok")
    bad["body"] = body
    # WHEN the batch is handled
    response = notifier.handler({"Records": [bad, good]}, LambdaContext())
    # THEN only the bad one fails, and the good one is delivered
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert webhook.calls == 1


@pytest.mark.parametrize("event", [{}, [], "x", {"Records": []}, {"Records": [{"eventSource": "aws:s3"}]},
                                   {"Records": [{"eventSource": "aws:sqs"}]},
                                   {"Records": [{"eventSource": "aws:sqs", "messageId": "a"}, {"EventSource": "aws:sns"}]}])
def test_wrong_or_empty_events_raise_a_clear_error(notifier, event):
    logs = LogCapture(notifier)
    with pytest.raises(notifier.HandlerError):
        notifier.handler(event, LambdaContext())
    assert logs.records("invalid event")[0]["level"] == "ERROR"


def test_direct_sns_record_with_a_bad_envelope_raises(notifier, event_factory):
    event = event_factory("sns_direct")
    event["Records"][0]["Sns"] = "not an object"
    with pytest.raises(notifier.HandlerError):
        notifier.handler(event, LambdaContext())


def test_records_fail_when_time_runs_low(notifier, sqs_record, webhook):
    response = notifier.handler({"Records": [sqs_record(message="x")]}, LambdaContext(remaining_ms=1000))
    assert len(response["batchItemFailures"]) == 1 and webhook.calls == 0


def test_secret_without_webhook_url_fails_records(notifier_factory, sqs_record):
    notifier = notifier_factory(secret={"webhook_token": "t"})
    response = notifier.handler({"Records": [sqs_record(message="x")]}, LambdaContext())
    assert len(response["batchItemFailures"]) == 1
