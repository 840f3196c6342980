"""notification-handler against a local webhook that fails, hangs and recovers on cue.

The secret lives on moto's server; the breaker and backoff are the real ones (only the reset timeout
is shortened so recovery can be observed without a long wait).
"""
from __future__ import annotations

import json
import uuid

import pytest
from handler_kit import LambdaContext, WebhookServer, forget_handler_modules


@pytest.fixture
def webhook():
    with WebhookServer(hang_s=1.5) as server:
        yield server


@pytest.fixture
def notifier(handler_factory, local_aws, webhook, moto_endpoint):
    local_aws("secretsmanager").create_secret(Name="lwb-test/api-keys", SecretString=json.dumps(
        {"webhook_url": webhook.url, "webhook_token": "t0k", "api_keys": {}}))
    module = handler_factory("notification_handler", AWS_ENDPOINT_URL=moto_endpoint)
    module.BREAKER.reset_timeout_s = 0.3
    module.CLIENT.timeout_s = 0.25
    module.CLIENT.backoff.base_s = 0.01
    module.CLIENT.backoff.cap_s = 0.05
    sleeps: list[float] = []
    real_sleep = module.CLIENT._sleep
    module.CLIENT._sleep = lambda s: (sleeps.append(s), real_sleep(s))
    module.sleeps = sleeps
    yield module
    forget_handler_modules()


def batch(n):
    return {"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "rh", "eventSource": "aws:sqs", "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lwb-test-notification-queue", "attributes": {},
        "messageAttributes": {}, "md5OfBody": "x",
        "body": json.dumps({"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": "arn:t",
                            "Message": json.dumps({"n": i})})} for i in range(n)]}


def failures(response):
    return len(response["batchItemFailures"])


def test_fails_hangs_opens_fails_fast_then_recovers(notifier, webhook):
    # GIVEN a webhook that answers 503 twice, then hangs past the client timeout three times
    webhook.script = ["fail", "fail", "hang", "hang", "hang"]
    webhook.default = "fail"
    # WHEN a batch of three arrives
    response = notifier.handler(batch(3), LambdaContext())
    # THEN the first record is retried with backoff (full jitter within the envelope) and fails;
    # the breaker opens at five consecutive failures, so the rest fail fast
    assert failures(response) == 3
    assert webhook.calls == 5 and notifier.BREAKER.state.value == "open"
    assert all(0 <= s <= 0.05 for s in notifier.sleeps)
    # AND while it is open, a warm invocation fails fast without calling the webhook
    response = notifier.handler(batch(2), LambdaContext())
    assert failures(response) == 2 and webhook.calls == 5
    # WHEN the webhook recovers and the reset timeout passes
    webhook.default = "ok"
    import time
    time.sleep(0.35)
    response = notifier.handler(batch(4), LambdaContext())
    # THEN one trial call closes the breaker and the whole batch is delivered
    assert failures(response) == 0 and notifier.BREAKER.state.value == "closed"
    assert webhook.calls == 9
    assert all(r["headers"]["authorization"] == "Bearer t0k" for r in webhook.received)


def test_failed_trial_reopens_the_breaker(notifier, webhook):
    # GIVEN an open breaker
    webhook.default = "fail"
    notifier.handler(batch(2), LambdaContext())
    assert notifier.BREAKER.state.value == "open"
    import time
    time.sleep(0.35)
    # WHEN the half-open trial fails
    calls = webhook.calls
    response = notifier.handler(batch(2), LambdaContext())
    # THEN exactly one call went out and the breaker is open again
    assert failures(response) == 2 and webhook.calls == calls + 1 and notifier.BREAKER.state.value == "open"


def test_a_hanging_webhook_cannot_outlast_the_invocation(notifier, webhook):
    # GIVEN a webhook that hangs, and an invocation with 2.4 s left (2 s safety margin)
    webhook.default = "hang"
    notifier.CLIENT.timeout_s = 5.0
    # WHEN one notification is handled
    response = notifier.handler(batch(1), LambdaContext(remaining_ms=2400))
    # THEN the per-attempt timeout is cut to the time left, and the record fails (retried later)
    assert failures(response) == 1 and webhook.calls == 1
