"""notification-handler: delivers SNS notifications to the external webhook, through a circuit breaker.

Two event shapes:

* SQS batches from the notification queue, whose bodies are SNS envelopes (or raw messages when
  raw delivery is on): failures are reported per record (``batchItemFailures``), so each failed
  notification is retried and finally dead-lettered; nothing is dropped silently.
* direct SNS events (one record): a failure raises, so Lambda's asynchronous retry and DLQ apply.

The webhook URL and token come from the API keys secret (cached). Delivery uses
:class:`common.httpclient.HttpClient`: per-attempt timeout, backoff with full jitter, and a
breaker kept across warm invocations; while it is open every record fails fast without a call.
Redirects are never followed (a 3xx is a failed delivery); only ``https://`` to public addresses,
unless params ``webhook.allow_private_targets`` admits loopback and private ones (the local sink).
"""
from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from common import budgets, config, events, httpclient, limits, runtime
from common import tracer as tracing
from common.errors import CircuitOpenError, HandlerError, InvalidEvent, SecretUnavailable, ValidationError
from common.logger import logger
from common.metrics import count, metrics
from common.secrets import default_cache

CONFIG = config.load("notification-handler")
tracer = tracing.create(patch_modules=("botocore", "httplib"))
MAX_MESSAGE_BYTES = limits.SQS_MAX_MESSAGE_BYTES
BREAKER = httpclient.breaker("webhook", failure_threshold=5, reset_timeout_s=30.0)
CLIENT = httpclient.HttpClient(BREAKER, timeout_s=budgets.HTTP_TIMEOUT_S, max_attempts=budgets.HTTP_MAX_ATTEMPTS,
                               backoff=httpclient.Backoff(base_s=budgets.HTTP_BACKOFF_BASE_S,
                                                          cap_s=budgets.HTTP_BACKOFF_CAP_S),
                               policy=httpclient.TargetPolicy(allow_private=CONFIG.webhook_allow_private_targets))

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def webhook_settings() -> tuple[str, str]:
    """(url, token) from the API keys secret."""
    secret = default_cache().get_json(CONFIG.api_keys_secret_arn)
    url, token = secret.get("webhook_url"), secret.get("webhook_token")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise SecretUnavailable("the API keys secret has no valid webhook_url")
    return url, token if isinstance(token, str) else ""


def notification_from_envelope(envelope: Any, fallback_id: str, raw_delivery: bool = True) -> dict[str, Any]:
    """The webhook payload for an SNS envelope (SQS body or the ``Sns`` field of an SNS record).

    ``raw_delivery``: whether a body that is not an SNS envelope is the published message itself
    (SQS subscriptions with raw message delivery). A direct SNS record always holds an envelope.
    """
    if not isinstance(envelope, dict):
        raise ValidationError("SNS envelope must be a JSON object")
    if "Type" in envelope or "TopicArn" in envelope or not raw_delivery:
        if envelope.get("Type") not in ("Notification", None):
            raise ValidationError(f"unsupported SNS message type {str(envelope.get('Type'))[:40]!r}")
        message = envelope.get("Message")
        if not isinstance(message, str):
            raise ValidationError("SNS envelope has no Message string")
        message_id = envelope.get("MessageId") if isinstance(envelope.get("MessageId"), str) else fallback_id
        body: Any = message
        try:
            body = events.decode_json_text(message, "SNS Message", MAX_MESSAGE_BYTES)
        except ValidationError as error:
            if "UTF-8" in error.message:
                raise
            body = message  # plain-text notifications are forwarded as text
        return {"id": message_id, "topic": envelope.get("TopicArn"), "subject": envelope.get("Subject"),
                "timestamp": envelope.get("Timestamp"), "message": body}
    # raw message delivery: the SQS body is the published message itself
    return {"id": fallback_id, "topic": None, "subject": None, "timestamp": None, "message": envelope}


_TOKEN = re.compile(r"[A-Za-z0-9._:@/+=-]{1,200}")


def idempotency_key(message_id: Any) -> str:
    """The Idempotency-Key header for a message id: the id itself when it is a plain token.

    SNS and SQS ids are UUIDs; anything else (spaces, CR/LF, non-ASCII, very long) cannot travel
    in an HTTP header as it is, so it is replaced by a digest that stays stable across retries.
    """
    text = str(message_id)
    if _TOKEN.fullmatch(text):
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def deliver(notification: dict[str, Any], context: Any) -> None:
    """POST one notification to the webhook, or raise (CircuitOpenError fails fast)."""
    runtime.ensure_time(context, CONFIG.safety_margin_ms, "the webhook call")
    if BREAKER.state is httpclient.BreakerState.OPEN:
        raise CircuitOpenError("webhook circuit is open; failing fast", retry_after_s=round(BREAKER.retry_after_s(), 3))
    url, token = webhook_settings()
    headers = {"Idempotency-Key": idempotency_key(notification["id"])}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def time_left_s() -> float:
        return (runtime.remaining_ms(context) - CONFIG.safety_margin_ms) / 1000.0

    started = time.perf_counter()
    CLIENT.post_json(url, notification, headers=headers, time_left_s=time_left_s)
    metrics.add_metric(name="WebhookLatency", unit="Milliseconds", value=(time.perf_counter() - started) * 1000)


def _handle(notification_source: Any, message_id: str, context: Any, raw_delivery: bool = True) -> None:
    try:
        deliver(notification_from_envelope(notification_source, message_id, raw_delivery), context)
    except HandlerError as error:
        logger.warning("notification not delivered", extra={"message_id": message_id, "error": error.code,
                                                            "detail": error.message, "breaker": BREAKER.state.value})
        count("CircuitOpenFailFast" if isinstance(error, CircuitOpenError) else "DeliveryFailed")
        raise
    count("NotificationDelivered")


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: Any = None) -> None:
    """One SQS record whose body is an SNS envelope (or a raw message)."""
    try:
        envelope = events.decode_json_text(record.raw_event.get("body"), "SQS body", MAX_MESSAGE_BYTES)
    except HandlerError as error:
        logger.warning("notification not delivered", extra={"message_id": record.message_id, "error": error.code,
                                                            "detail": error.message})
        count("DeliveryFailed")
        raise
    _handle(envelope, record.message_id, lambda_context)


def _handle_sns(event: dict[str, Any], context: Any) -> dict[str, Any]:
    delivered = 0
    for record in event["Records"]:
        sns = record.get("Sns")
        message_id = sns.get("MessageId") if isinstance(sns, dict) and isinstance(sns.get("MessageId"), str) else "?"
        _handle(sns, message_id, context, raw_delivery=False)  # raises: the async invoke is retried, then dead-lettered
        delivered += 1
    return {"delivered": delivered}


def _first_message_id(record: dict[str, Any]) -> str | None:
    """The SQS or SNS message id of a record, used as the invocation's correlation id."""
    sns = record.get("Sns")
    candidate = record.get("messageId") or (sns.get("MessageId") if isinstance(sns, dict) else None)
    return candidate if isinstance(candidate, str) else None


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for SQS batches of SNS envelopes and for direct SNS events."""
    try:
        batch = events.records(event, ("aws:sqs", "aws:sns"))
        kinds = {record.get("eventSource") or record.get("EventSource") for record in batch}
        if len(kinds) != 1:
            raise InvalidEvent("event mixes SQS and SNS records")
        if kinds == {"aws:sqs"} and not all(isinstance(record.get("messageId"), str) and record["messageId"]
                                            for record in batch):
            raise InvalidEvent("an SQS record has no messageId")
    except HandlerError as error:
        logger.error("invalid event", extra={"error": error.code, "detail": error.message})
        count("InvalidEvent")
        raise
    logger.set_correlation_id(_first_message_id(batch[0]))
    if kinds == {"aws:sns"}:
        return _handle_sns(event, context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
