"""scheduler: on each EventBridge schedule, enqueue the due work found in PostgreSQL.

Each round claims up to 10 due rows (``FOR UPDATE SKIP LOCKED``, so overlapping runs never take
the same row), sends them with one SendMessageBatch, retries the failed entries with backoff and
full jitter, and marks each row ``enqueued`` or back to ``pending``, due again after an
exponential delay (attempt counted, error kept; after MAX_ATTEMPTS it becomes ``failed``).
Claims older than CLAIM_TIMEOUT are taken again, so a run that died mid-round loses nothing.
The run stops when no due work remains, when
SAFETY_MARGIN_MS of the timeout is left, or after MAX_ROUNDS, and leaves the rest for the next run.
A summary of the run goes to the notifications topic.

Task message (what data-processor consumes)::

    {"kind": <task_type>, "business_key": "due-work:<id>", "payload": {...}}
"""
from __future__ import annotations

import json
import time
from typing import Any

from common import aws, budgets, config, db, limits, runtime
from common import tracer as tracing
from common.errors import HandlerError, InvalidEvent, PayloadTooLarge
from common.httpclient import Backoff
from common.logger import correlation_paths, logger
from common.metrics import count, metrics

CONFIG = config.load("scheduler")
tracer = tracing.create(patch_modules=("botocore", "pg8000"))
BATCH_SIZE = 10                 # SendMessageBatch's limit
SEND_ATTEMPTS = budgets.SQS_SEND_ATTEMPTS
MAX_ATTEMPTS = 5                # per row, across runs, before it is marked failed
MAX_ROUNDS = 500
CLAIM_TIMEOUT = "15 minutes"
BACKOFF = Backoff(base_s=budgets.SQS_SEND_BACKOFF_BASE_S, cap_s=budgets.SQS_SEND_BACKOFF_CAP_S)


MAX_EVENT_BYTES = limits.SCHEDULED_EVENT_MAX_BYTES


#: Who may send the Scheduled Event: an EventBridge schedule rule (the stack's own), or an
#: EventBridge Scheduler schedule whose Lambda target input is written in the same shape.
SCHEDULE_SOURCES = ("aws.events", "aws.scheduler")


def check_event(event: Any) -> None:
    """Accept Scheduled Events only (source aws.events or aws.scheduler, detail-type Scheduled Event)."""
    if not isinstance(event, dict) or not event:
        raise InvalidEvent("expected an EventBridge Scheduled Event object")
    try:
        size = len(json.dumps(event, ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, UnicodeEncodeError, RecursionError):
        raise InvalidEvent("event is not UTF-8 JSON") from None
    if size > MAX_EVENT_BYTES:
        raise PayloadTooLarge(f"event has {size} bytes; EventBridge events are at most {MAX_EVENT_BYTES}")
    source, detail_type = event.get("source"), event.get("detail-type")
    if not isinstance(source, str) or source not in SCHEDULE_SOURCES or detail_type != "Scheduled Event":
        raise InvalidEvent(f"expected source {' or '.join(map(repr, SCHEDULE_SOURCES))} and detail-type "
                           f"'Scheduled Event', got {str(source)[:40]!r} / {str(detail_type)[:40]!r}")


def claim_due_work(limit: int) -> list[dict[str, Any]]:
    """Claim up to ``limit`` due rows and return them (id, task_type, payload, attempts)."""
    rows = db.database().run(
        f"""UPDATE due_work SET status = 'claimed', claimed_at = now()
            WHERE id IN (SELECT id FROM due_work
                         WHERE (status = 'pending' AND due_at <= now())
                            OR (status = 'claimed' AND claimed_at < now() - interval '{CLAIM_TIMEOUT}')
                         ORDER BY due_at, id LIMIT :limit FOR UPDATE SKIP LOCKED)
            RETURNING id, task_type, payload, attempts""", limit=limit)
    claimed = []
    for row_id, task_type, payload, attempts in sorted(rows):
        if isinstance(payload, str):
            payload = json.loads(payload)
        claimed.append({"id": row_id, "task_type": task_type, "payload": payload, "attempts": attempts})
    return claimed


def task_message(row: dict[str, Any]) -> str:
    """The SQS body for one due-work row."""
    return json.dumps({"kind": row["task_type"], "business_key": f"due-work:{row['id']}", "payload": row["payload"]},
                      separators=(",", ":"), default=str)


def send_batch(rows: list[dict[str, Any]], sleep=time.sleep) -> tuple[dict[int, str], dict[int, str]]:
    """SendMessageBatch with retry of failed entries; return ({id: message id}, {id: last error})."""
    pending = {str(row["id"]): row for row in rows}
    sent: dict[int, str] = {}
    errors: dict[int, str] = {}
    for attempt in range(SEND_ATTEMPTS):
        if not pending:
            break
        entries = [{"Id": entry_id, "MessageBody": task_message(row)} for entry_id, row in pending.items()]
        try:
            response = aws.client("sqs").send_message_batch(QueueUrl=CONFIG.task_queue_url, Entries=entries)
        except aws.AWS_ERRORS as error:
            code = aws.error_code(error)
            errors.update({int(entry_id): code for entry_id in pending})
        else:
            for success in response.get("Successful", []):
                row = pending.pop(success["Id"], None)
                if row is not None:
                    sent[row["id"]] = success.get("MessageId", "")
                    errors.pop(row["id"], None)
            for failure in response.get("Failed", []):
                errors[int(failure["Id"])] = f"{failure.get('Code', 'Failed')}: {failure.get('Message', '')}"[:500]
                if failure.get("SenderFault"):
                    pending.pop(failure["Id"], None)  # a bad entry: resending it unchanged will fail again
        if pending and attempt + 1 < SEND_ATTEMPTS:
            sleep(BACKOFF.delay_s(attempt))
    return sent, {row_id: error for row_id, error in errors.items() if row_id not in sent}


def record_outcome(sent: dict[int, str], failed: dict[int, str]) -> None:
    """Mark sent rows enqueued and failed rows pending again (or failed after MAX_ATTEMPTS)."""
    with db.database().transaction() as connection:
        for row_id, message_id in sent.items():
            connection.run("UPDATE due_work SET status = 'enqueued', enqueued_at = now(), message_id = :m, "
                           "attempts = attempts + 1, last_error = NULL WHERE id = :id", id=row_id, m=message_id)
        for row_id, error in failed.items():
            # Due again later (30 s, 60 s, 120 s...), so this run does not spin on it.
            connection.run("UPDATE due_work SET attempts = attempts + 1, last_error = :e, claimed_at = NULL, "
                           "due_at = now() + make_interval(secs => least(3600, 30 * power(2, attempts))), "
                           "status = CASE WHEN attempts + 1 >= :max THEN 'failed' ELSE 'pending' END WHERE id = :id",
                           id=row_id, e=error, max=MAX_ATTEMPTS)


def publish_summary(summary: dict[str, Any]) -> None:
    """The run summary to SNS; a failure is logged and counted, never fatal (the work is enqueued)."""
    try:
        aws.client("sns").publish(TopicArn=CONFIG.notifications_topic_arn, Subject="scheduler run summary",
                                  Message=json.dumps(summary),
                                  MessageAttributes={"kind": {"DataType": "String", "StringValue": "run-summary"}})
    except aws.AWS_ERRORS as error:
        logger.error("run summary not published", extra={"aws_error": aws.error_code(error), **summary})
        count("SummaryPublishFailed")


@tracer.capture_method
def run(context: Any) -> dict[str, Any]:
    """Enqueue due work until none is left, time runs low or MAX_ROUNDS; return the run summary."""
    summary: dict[str, Any] = {"type": "run-summary", "function": "scheduler", "enqueued": 0, "failed": 0,
                               "rounds": 0, "stopped": "no_due_work", "failed_ids": []}
    for _ in range(MAX_ROUNDS):
        if not runtime.has_time(context, CONFIG.safety_margin_ms):
            summary["stopped"] = "time_budget"
            break
        rows = claim_due_work(BATCH_SIZE)
        if not rows:
            break
        sent, failed = send_batch(rows)
        record_outcome(sent, failed)
        summary["rounds"] += 1
        summary["enqueued"] += len(sent)
        summary["failed"] += len(failed)
        summary["failed_ids"].extend(sorted(failed)[: max(0, 50 - len(summary["failed_ids"]))])
        if failed:
            logger.warning("tasks not enqueued", extra={"failed": {str(k): v for k, v in failed.items()}})
    else:
        summary["stopped"] = "max_rounds"
    metrics.add_metric(name="TasksEnqueued", unit="Count", value=summary["enqueued"])
    metrics.add_metric(name="TasksFailed", unit="Count", value=summary["failed"])
    return summary


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point for the EventBridge schedule."""
    try:
        check_event(event)
        summary = run(context)
    except HandlerError as error:
        # Raised on purpose: EventBridge's async retry and the on-failure destination apply.
        logger.error("scheduler run failed", extra={"error": error.code, "detail": error.message})
        count("RunFailed")
        raise
    logger.info("scheduler run finished", extra=summary)
    publish_summary(summary)
    return summary
