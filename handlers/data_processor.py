"""data-processor: SQS batches with partial-batch responses (``batchItemFailures``).

Each record is validated, transformed and upserted idempotently into ``processed_records``,
keyed on its ``business_key`` (or the SQS message id), so a redelivery updates the same row. A
bad record fails alone; SQS redelivers it and moves it to the DLQ after maxReceiveCount while the
rest of the batch is deleted. When every record fails, the handler still returns them all as item
failures rather than raising: the outcome is the same redelivery, without an error storm in the
logs. One summary per batch goes to the notifications topic.

Message body (JSON object)::

    {"kind": "order.created", "business_key": "order-42", "payload": {...}}

dataPipeline's ProcessData step invokes it with ``{"pipeline": {"execution", "message"}}``: one
message, stored the same way, and an error raised when it cannot be (see :func:`pipeline_record`).
"""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from common import aws, config, db, events, limits, runtime
from common import tracer as tracing
from common.errors import HandlerError, InvalidEvent, ValidationError
from common.logger import logger
from common.metrics import count, metrics

CONFIG = config.load("data-processor")
tracer = tracing.create(patch_modules=("botocore", "pg8000"))
MAX_MESSAGE_BYTES = limits.SQS_MAX_MESSAGE_BYTES
_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def parse_message(body: Any) -> dict[str, Any]:
    """The validated message of an SQS body; :class:`ValidationError` says what is wrong."""
    message = events.decode_json_text(body, "message body", MAX_MESSAGE_BYTES)
    if not isinstance(message, dict):
        raise ValidationError("message body must be a JSON object")
    kind = message.get("kind")
    # fullmatch: with match(), '$' also accepts a trailing newline ("order.created\n").
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise ValidationError("field 'kind' must be a string of 1-64 letters, digits or ._:-", field="kind")
    business_key = message.get("business_key")
    if business_key is not None and (not isinstance(business_key, str) or not 1 <= len(business_key) <= 200):
        raise ValidationError("field 'business_key' must be a string of 1-200 characters", field="business_key")
    events.check_storable(business_key, "field 'business_key'")
    payload = message.get("payload")
    if not isinstance(payload, dict):
        raise ValidationError("field 'payload' must be a JSON object", field="payload")
    events.check_storable(payload, "field 'payload'")
    return {"kind": kind, "business_key": business_key, "payload": payload}


def transform(message: dict[str, Any]) -> dict[str, Any]:
    """The stored result of a message: normalised keys, field count and a content checksum."""
    payload = message["payload"]
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return {
        "kind": message["kind"],
        "fields": sorted(re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_") for key in payload),
        "field_count": len(payload),
        "sha256": hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
    }


def upsert(record_key: str, message_id: str, message: dict[str, Any], result: dict[str, Any]) -> int:
    """Insert or update the record; return how many deliveries it has had (1 the first time)."""
    rows = db.database().run(
        """INSERT INTO processed_records (record_key, message_id, kind, payload, result)
           VALUES (:key, :message_id, :kind, CAST(:payload AS jsonb), CAST(:result AS jsonb))
           ON CONFLICT (record_key) DO UPDATE
               SET message_id = EXCLUDED.message_id, kind = EXCLUDED.kind, payload = EXCLUDED.payload,
                   result = EXCLUDED.result, deliveries = processed_records.deliveries + 1, updated_at = now()
           RETURNING deliveries""",
        key=record_key, message_id=message_id, kind=message["kind"],
        payload=json.dumps(message["payload"]), result=json.dumps(result))
    return int(rows[0][0])


@tracer.capture_method
def record_handler(record: SQSRecord, lambda_context: Any = None) -> dict[str, Any]:
    """Process one SQS record; raise to report it as a batch item failure."""
    try:
        runtime.ensure_time(lambda_context, CONFIG.safety_margin_ms, "the next record")
        message = parse_message(record.raw_event.get("body"))
        events.check_storable(record.message_id, "messageId")   # stored, and part of the fallback key
        record_key = message["business_key"] or f"message:{record.message_id}"
        deliveries = upsert(record_key, record.message_id, message, transform(message))
    except HandlerError as error:
        logger.warning("record failed", extra={"message_id": record.message_id, "error": error.code,
                                               "detail": error.message, "retryable": error.retryable})
        count("RecordFailed")
        raise
    if deliveries > 1:
        logger.info("redelivered record upserted again", extra={"message_id": record.message_id,
                                                                "record_key": record_key, "deliveries": deliveries})
        count("RecordRedelivered")
    count("RecordProcessed")
    return {"record_key": record_key, "deliveries": deliveries}


def pipeline_record(request: Any, lambda_context: Any = None) -> dict[str, Any]:
    """dataPipeline's ProcessData step: store one message; raise when it cannot be stored.

    The pipeline's contract (``infra/pipeline.py``): ``{"pipeline": {"execution": NAME, "message":
    {"kind", "business_key", "payload"}}}`` in, ``{"record_key", "deliveries"}`` out. The record is
    validated and upserted exactly as a queued one (the execution name stands for the message id).
    A record that fails raises its :class:`HandlerError`, so the step fails and the execution's
    Catch publishes the failure, instead of a ``batchItemFailures`` entry nobody reads.
    """
    try:
        if not isinstance(request, dict):
            raise InvalidEvent("field 'pipeline' must be an object with 'execution' and 'message'")
        execution, message = request.get("execution"), request.get("message")
        if not isinstance(execution, str) or not 1 <= len(execution) <= 80:
            raise InvalidEvent("field 'pipeline.execution' must be the execution's name (1-80 characters)")
        events.check_storable(execution, "field 'pipeline.execution'")
        if not isinstance(message, dict):
            raise ValidationError("field 'pipeline.message' must be a JSON object", field="message")
        runtime.ensure_time(lambda_context, CONFIG.safety_margin_ms, "the pipeline's record")
        parsed = parse_message(json.dumps(message, ensure_ascii=False, allow_nan=True))
        record_key = parsed["business_key"] or f"execution:{execution}"
        deliveries = upsert(record_key, f"execution:{execution}", parsed, transform(parsed))
    except HandlerError as error:
        logger.warning("pipeline record failed", extra={"execution": str(request.get("execution"))[:80]
                                                        if isinstance(request, dict) else None,
                                                        "error": error.code, "detail": error.message})
        count("RecordFailed")
        raise
    count("RecordProcessed")
    return {"record_key": record_key, "deliveries": deliveries}


def publish_summary(received: int, failed_ids: list[str]) -> None:
    """One SNS summary for the batch; a publish failure is logged and counted, never fatal."""
    summary = {"type": "batch-summary", "function": "data-processor", "received": received,
               "succeeded": received - len(failed_ids), "failed": len(failed_ids),
               "failed_message_ids": failed_ids[:50]}
    try:
        aws.client("sns").publish(
            TopicArn=CONFIG.notifications_topic_arn, Message=json.dumps(summary),
            Subject="data-processor batch summary",
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "batch-summary"}})
    except aws.AWS_ERRORS as error:
        logger.error("batch summary not published", extra={"aws_error": aws.error_code(error), **summary})
        count("SummaryPublishFailed")


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: one SQS batch in, ``batchItemFailures`` out; or dataPipeline's one record."""
    if isinstance(event, dict) and "pipeline" in event and "Records" not in event:
        return pipeline_record(event["pipeline"], context)
    try:
        batch = events.records(event, "aws:sqs")
        for index, record in enumerate(batch):
            if not isinstance(record.get("messageId"), str) or not record["messageId"]:
                # SQS reads an empty itemIdentifier as "the whole batch failed": never report one.
                raise InvalidEvent(f"record {index} has no messageId")
    except HandlerError as error:
        # Not an SQS batch: nothing can be reported per record, so the invocation fails as a whole.
        logger.error("invalid event", extra={"error": error.code, "detail": error.message})
        count("InvalidEvent")
        raise
    logger.set_correlation_id(batch[0]["messageId"])
    response = process_partial_response(event=event, record_handler=record_handler, processor=processor,
                                        context=context)
    failed_ids = [item["itemIdentifier"] for item in response.get("batchItemFailures", [])]
    metrics.add_metric(name="BatchSize", unit="Count", value=len(batch))
    publish_summary(len(batch), failed_ids)
    return response
