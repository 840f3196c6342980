"""One harness per handler for the real-event and fuzz tests: set up, invoke, check.

Each harness gives its handler what it talks to (in-process moto, the session's PostgreSQL, a
local webhook, the secrets extension emulator), invokes it with any event, and checks:

* no unhandled exception: the handler answers, or raises one of its own input errors
  (``InvalidEvent`` and the rest of ``common.errors.InputError``) for an event it cannot take;
* for what it can take, the outcome the documented contract gives, computed here by an oracle
  written from the contract (handlers/README.md and each module's docstring), not from the code;
* nothing lost: an SQS batch response lists exactly the records that failed, and every other
  record is really done: its row in PostgreSQL, its webhook delivery, its outputs in S3, its
  message on the queue.

Tests import the pytest fixtures with ``from handler_harness import *``.
"""
from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import importlib
import io
import json
import math
import os
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pytest
from handler_kit import ExtensionEmulator, LambdaContext, WebhookServer

__all__ = ["Outcome", "api_harness", "auth_harness", "data_harness", "file_harness", "notification_harness",
           "scheduler_harness", "tmp_root"]

MAX_MESSAGE_BYTES = 256 * 1024
MAX_DEPTH = 64
UPLOADS, PROCESSED, BUS = "lwb-test-uploads", "lwb-test-processed", "lwb-test-bus"


@dataclass
class Outcome:
    """What one invocation did: the response, or the exception it raised."""

    response: Any = None
    error: BaseException | None = None

    def __repr__(self) -> str:
        return f"Outcome(response={str(self.response)[:300]!r}, error={self.error!r})"


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def _quiet(module: Any) -> None:
    """Send the handler's JSON logs nowhere: thousands of examples would fill the capture.

    The stream is replaced without ``setStream``, which flushes the old one first: the module is
    imported once per worker, so its handler may still hold the capture of an earlier test, closed
    by now ("ValueError: I/O operation on closed file", seen when a worker ran the tests in another order).
    """
    handler = module.logger.registered_handler
    handler.acquire()
    try:
        handler.stream = _Discard()
    finally:
        handler.release()


def _errors() -> Any:
    return importlib.import_module("common.errors")


def invoke(module: Any, event: Any, context: LambdaContext | None = None) -> Outcome:
    try:
        return Outcome(response=module.handler(event, context or LambdaContext()))
    except Exception as error:  # noqa: BLE001 - the harness judges every exception
        return Outcome(error=error)


def assert_input_error(outcome: Outcome, *kinds: str) -> None:
    """The handler refused the event with one of its own 4xx errors (``kinds`` by class name)."""
    errors = _errors()
    assert outcome.error is not None, f"expected the event to be refused, got {outcome}"
    assert isinstance(outcome.error, errors.InputError), f"unhandled exception: {outcome.error!r}"
    if kinds:
        assert type(outcome.error).__name__ in kinds, f"expected {kinds}, got {outcome.error!r}"


def assert_no_exception(outcome: Outcome) -> None:
    if outcome.error is not None:
        raise AssertionError(f"unexpected exception {outcome.error!r}") from outcome.error


# --- the contract, written independently of the handlers --------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def strict_json(text: str) -> tuple[bool, Any]:
    """(True, value) when ``text`` is RFC 8259 JSON nested at most MAX_DEPTH levels, else (False, None)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return False, None
    return (True, value) if storable(value, check_text=False) else (False, None)


def json_text(body: Any, max_bytes: int = MAX_MESSAGE_BYTES) -> tuple[str, Any]:
    """Decode a message body: ("ok", value), ("too_large", None) or ("invalid", None)."""
    if not isinstance(body, str):
        return "invalid", None
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        return "invalid", None
    if size > max_bytes:
        return "too_large", None
    ok, value = strict_json(body)
    return ("ok", value) if ok else ("invalid", None)


def storable(value: Any, max_depth: int = MAX_DEPTH, check_text: bool = True) -> bool:
    """Whether PostgreSQL can store ``value`` as text/jsonb, within the handlers' nesting limit.

    ``check_text=False``: check the nesting only.
    """
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if not check_text and not isinstance(item, (list, dict)):
            continue
        if isinstance(item, str):
            if "\x00" in item or any(0xD800 <= ord(ch) <= 0xDFFF for ch in item):
                return False
        elif isinstance(item, float) and not math.isfinite(item):
            return False
        elif isinstance(item, (list, dict)):
            if depth + 1 > max_depth:
                return False
            children = list(item.items()) if isinstance(item, dict) else [(None, child) for child in item]
            for key, child in children:
                stack.append((child, depth + 1))
                if key is not None:
                    stack.append((key, depth + 1))
    return True


def records_from(event: Any, sources: tuple[str, ...]) -> list[dict] | None:
    """The event's Records when it is a non-empty list of objects from ``sources``; else None."""
    if not isinstance(event, dict) or not isinstance(event.get("Records"), list) or not event["Records"]:
        return None
    found = event["Records"]
    for record in found:
        if not isinstance(record, dict):
            return None
        source = record.get("eventSource") or record.get("EventSource")
        if not isinstance(source, str) or source not in sources:
            return None
    return found


def sqs_batch(event: Any) -> list[dict] | None:
    """An SQS batch as Lambda delivers one: records from aws:sqs, each with a message id."""
    found = records_from(event, ("aws:sqs",))
    if found is None or not all(isinstance(r.get("messageId"), str) and r["messageId"] for r in found):
        return None
    return found


def batch_failures(outcome: Outcome, batch: list[dict]) -> set[str]:
    """The failed ids of a partial-batch response, checked for shape and membership."""
    assert_no_exception(outcome)
    response = outcome.response
    assert isinstance(response, dict) and set(response) == {"batchItemFailures"}, response
    failed = set()
    for item in response["batchItemFailures"]:
        assert set(item) == {"itemIdentifier"} and isinstance(item["itemIdentifier"], str) and item["itemIdentifier"]
        failed.add(item["itemIdentifier"])
    assert failed <= {record["messageId"] for record in batch}, "a failure id that is not in the batch"
    return failed


class _Sql:
    """One pg8000 connection for the harness's own reads and resets."""

    def __init__(self, secret: dict[str, Any]):
        import pg8000.native

        from common import db

        self.connection = pg8000.native.Connection(**db.connect_params(secret))
        db.migrate(self.connection)
        # A throwaway test database need not wait for each commit to reach the disk; this halves
        # the cost of a fuzz example. Connections opened from now on (the handler's) inherit it.
        self.connection.run("ALTER DATABASE postgres SET synchronous_commit TO off")

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        return self.connection.run(sql, **params) or []

    def close(self) -> None:
        self.connection.close()


# --- data-processor ----------------------------------------------------------------------------

_KIND = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def data_message(record: dict) -> dict | None:
    """The message a data-processor record carries, or None when its contract rejects it."""
    status, message = json_text(record.get("body"))
    if status != "ok" or not isinstance(message, dict):
        return None
    kind, key, payload = message.get("kind"), message.get("business_key"), message.get("payload")
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        return None
    if key is not None and not (isinstance(key, str) and 1 <= len(key) <= 200 and storable(key)):
        return None
    if not isinstance(payload, dict) or not storable(payload) or not storable(record["messageId"]):
        return None
    return {"kind": kind, "business_key": key, "payload": payload}


def content_sha256(payload: dict) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class DataProcessorHarness:
    def __init__(self, module: Any, secret: dict[str, Any]):
        self.module, self.sql = module, _Sql(secret)
        _quiet(module)

    def reset(self) -> None:
        self.sql.run("DELETE FROM processed_records")   # TRUNCATE costs tens of ms a time

    def check(self, event: Any, outcome: Outcome) -> None:
        batch = sqs_batch(event)
        if batch is None:
            assert_input_error(outcome, "InvalidEvent")
            assert self.sql.run("SELECT count(*) FROM processed_records") == [[0]]
            return
        failed = batch_failures(outcome, batch)
        messages = [data_message(record) for record in batch]
        expected_failed = {record["messageId"] for record, message in zip(batch, messages, strict=True) if message is None}
        assert failed == expected_failed, (failed, expected_failed)
        # Every record not listed was stored: replay the upserts in order and compare the table.
        expected: dict[str, dict] = {}
        for record, message in zip(batch, messages, strict=True):
            if message is not None:
                key = message["business_key"] or f"message:{record['messageId']}"
                previous = expected.get(key, {"deliveries": 0})
                expected[key] = {"message_id": record["messageId"], "kind": message["kind"],
                                 "deliveries": previous["deliveries"] + 1, "sha256": content_sha256(message["payload"]),
                                 "field_count": len(message["payload"])}
        rows = self.sql.run("SELECT record_key, message_id, kind, deliveries, result FROM processed_records")
        stored = {key: {"message_id": mid, "kind": kind, "deliveries": deliveries, "sha256": result["sha256"],
                        "field_count": result["field_count"]} for key, mid, kind, deliveries, result in rows}
        assert stored == expected


@pytest.fixture
def data_harness(handler_factory, db_secret, aws):
    import boto3

    boto3.client("sns", region_name="us-east-1").create_topic(Name="lwb-test-notifications")
    harness = DataProcessorHarness(handler_factory("data_processor"), db_secret)
    yield harness
    harness.sql.close()


# --- notification-handler -------------------------------------------------------------------------

def envelope_notification(envelope: Any, fallback_id: str, raw_delivery: bool) -> dict | None:
    """What the webhook receives for an SNS envelope (or raw message), or None when it is refused."""
    if not isinstance(envelope, dict):
        return None
    if "Type" in envelope or "TopicArn" in envelope or not raw_delivery:
        if envelope.get("Type") not in ("Notification", None) or not isinstance(envelope.get("Message"), str):
            return None
        status, value = json_text(envelope["Message"])
        if status == "too_large":
            return None
        if status == "invalid":
            try:
                envelope["Message"].encode("utf-8")
            except UnicodeEncodeError:
                return None                          # not UTF-8: refused, never forwarded
            value = envelope["Message"]              # plain text is forwarded as text
        message_id = envelope["MessageId"] if isinstance(envelope.get("MessageId"), str) else fallback_id
        return {"id": message_id, "topic": envelope.get("TopicArn"), "subject": envelope.get("Subject"),
                "timestamp": envelope.get("Timestamp"), "message": value}
    return {"id": fallback_id, "topic": None, "subject": None, "timestamp": None, "message": envelope}


def _as_sent(notification: dict) -> Any:
    return json.loads(json.dumps(notification, separators=(",", ":"), default=str))


_HEADER_SAFE = re.compile(r"[\x21-\x7e]{1,300}")


class NotificationHarness:
    def __init__(self, module: Any, webhook: WebhookServer):
        self.module, self.webhook = module, webhook
        module.CLIENT._sleep = lambda _s: None
        module.CLIENT.timeout_s = 2.0
        _quiet(module)

    def reset(self) -> None:
        self.webhook.received.clear()
        self.module.BREAKER.reset()

    def _received(self) -> list[dict]:
        for request in self.webhook.received:
            key = request["headers"].get("idempotency-key", "")
            assert _HEADER_SAFE.fullmatch(key), f"Idempotency-Key {key!r} is not a header-safe token"
        return [json.loads(request["body"]) for request in self.webhook.received]

    def check(self, event: Any, outcome: Outcome) -> None:
        found = records_from(event, ("aws:sqs", "aws:sns"))
        kinds = {r.get("eventSource") or r.get("EventSource") for r in found} if found else set()
        if not found or len(kinds) != 1 or (kinds == {"aws:sqs"} and sqs_batch(event) is None):
            assert_input_error(outcome, "InvalidEvent")
            assert self.webhook.received == []
            return
        if kinds == {"aws:sqs"}:
            self._check_sqs(found, outcome)
        else:
            self._check_sns(found, outcome)

    def _check_sqs(self, batch: list[dict], outcome: Outcome) -> None:
        failed = batch_failures(outcome, batch)
        expected = []
        expected_failed = set()
        for record in batch:
            status, envelope = json_text(record.get("body"))
            notification = envelope_notification(envelope, record["messageId"], True) if status == "ok" else None
            if notification is None:
                expected_failed.add(record["messageId"])
            else:
                expected.append(_as_sent(notification))
        assert failed == expected_failed, (failed, expected_failed)
        assert self._received() == expected            # every record not listed was delivered, in order

    def _check_sns(self, records: list[dict], outcome: Outcome) -> None:
        expected = []
        for record in records:
            sns = record.get("Sns")
            message_id = sns.get("MessageId") if isinstance(sns, dict) and isinstance(sns.get("MessageId"), str) else "?"
            notification = envelope_notification(sns, message_id, False)
            if notification is None:
                assert_input_error(outcome)           # raised: Lambda retries the event, then its DLQ
                assert self._received() == expected
                return
            expected.append(_as_sent(notification))
        assert_no_exception(outcome)
        assert outcome.response == {"delivered": len(records)}
        assert self._received() == expected


@pytest.fixture
def notification_harness(handler_factory, aws):
    import boto3

    with WebhookServer() as webhook:
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="lwb-test/api-keys", SecretString=json.dumps({"webhook_url": webhook.url, "webhook_token": "t"}))
        yield NotificationHarness(handler_factory("notification_handler"), webhook)


# --- file-processor ------------------------------------------------------------------------------

SUPPORTED_SUFFIXES = {".jpg", ".jpeg", ".png", ".txt", ".csv", ".json", ".pdf"}
MAX_OBJECT_BYTES = 1024 * 1024         # the harness's limit (the handler's MAX_OBJECT_BYTES)


def _image(fmt: str, size: tuple[int, int] = (64, 40)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _pdf() -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=100, height=100)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@functools.cache
def upload_corpus() -> dict[str, tuple[bytes, str]]:
    """Objects in the uploads bucket: key -> (content, expected outcome: 'processed' or a reason code)."""
    deep_json = ("[" * 50_000 + "]" * 50_000).encode()
    return {
        "incoming/photo été 🌴.png": (_image("PNG"), "processed"),
        "incoming/holiday photo été 🌴.png": (_image("PNG"), "processed"),
        "incoming/cam/IMG 0001.JPG": (_image("JPEG"), "processed"),
        "incoming/notes/readme.txt": (b"hello world\nsecond line\n", "processed"),
        "incoming/q1+q2 totals(1).csv": (b"id,name\n1,a\n2,b\n", "processed"),
        "incoming/data/日本語.json": ('{"名前": "値", "n": [1, 2]}'.encode(), "processed"),
        "incoming/reports/annual report.pdf": (_pdf(), "processed"),
        "incoming/reports/2026/annual report.pdf": (_pdf(), "processed"),
        "incoming/scans/page #1.png": (_image("PNG"), "processed"),
        "incoming/empty.csv": (b"", "processed"),
        "incoming/line\nbreak.txt": (b"a key with a newline in it\n", "processed"),
        "incoming/tab\tand\rcr.json": (b"{}", "processed"),
        "incoming/broken.png": (b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 10, "validation_error"),
        "incoming/jpeg named.png": (_image("JPEG"), "unsupported_media_type"),
        "incoming/deep.json": (deep_json, "validation_error"),
        "incoming/latin1.txt": (b"caf\xe9 cr\xe8me", "validation_error"),
        "incoming/garbage.pdf": (b"%PDF-1.4\n%\xe2\xe3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF", "validation_error"),
        "incoming/too big.txt": (b"x" * (MAX_OBJECT_BYTES + 1), "payload_too_large"),
    }


def s3_expectation(record: dict, corpus: dict[str, tuple[bytes, str]]) -> str:
    """'ignored', 'processed', or the reason code a record is rejected with (the order of the checks is the contract's)."""
    event_name = record.get("eventName")
    if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated"):
        return "ignored"
    try:
        bucket, raw_key = record["s3"]["bucket"]["name"], record["s3"]["object"]["key"]
        size = record["s3"]["object"].get("size")
    except (KeyError, TypeError, AttributeError):
        return "invalid_event"
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not bucket or not raw_key:
        return "invalid_event"
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        return "invalid_event"
    key = urllib.parse.unquote_plus(raw_key)
    try:
        if len(key.encode("utf-8")) > 1024:
            return "invalid_event"
    except UnicodeEncodeError:
        return "invalid_event"
    if bucket != UPLOADS or not key.startswith("incoming/"):
        return "validation_error"
    if size is not None and size > MAX_OBJECT_BYTES:
        return "payload_too_large"
    if os.path.splitext(key)[1].lower() not in SUPPORTED_SUFFIXES:
        return "unsupported_media_type"
    if key not in corpus:
        return "validation_error"                # no such object
    return corpus[key][1]


def is_pipeline_input(event: Any) -> bool:
    """An event the file processor reads as dataPipeline's input: an object with no Records that is not s3:TestEvent."""
    return isinstance(event, dict) and "Records" not in event and event.get("Event") != "s3:TestEvent"


def s3_event_records(event: Any) -> list[dict] | None:
    """The S3 records of a direct or SQS-wrapped S3 event ([] for s3:TestEvent); None if it is neither."""
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        return []
    found = records_from(event, ("aws:s3", "aws:sqs"))
    if found is None:
        return None
    s3_records = []
    for record in found:
        if record.get("eventSource") != "aws:sqs":
            s3_records.append(record)
            continue
        status, inner = json_text(record.get("body"))
        if status != "ok":
            return None
        if isinstance(inner, dict) and inner.get("Event") == "s3:TestEvent":
            continue
        inner_records = records_from(inner, ("aws:s3",))
        if inner_records is None:
            return None
        s3_records.extend(inner_records)
    return s3_records


class FileProcessorHarness:
    def __init__(self, module: Any, s3: Any, tmp_root: Any):
        self.module, self.s3, self.tmp_root = module, s3, tmp_root
        self.corpus = dict(upload_corpus())
        for key, (data, _) in self.corpus.items():
            s3.put_object(Bucket=UPLOADS, Key=key, Body=data)
        self.outputs: list[str] = []      # what the last example wrote to the processed bucket
        _quiet(module)

    def reset(self) -> None:
        # Each example starts from an empty processed bucket, so an output seen was written by it.
        if self.outputs:
            self.s3.delete_objects(Bucket=PROCESSED, Delete={"Objects": [{"Key": key} for key in self.outputs]})
            self.outputs = []

    def check(self, event: Any, outcome: Outcome) -> None:
        assert list(self.tmp_root.iterdir()) == [], "the handler left files in /tmp"
        if is_pipeline_input(event):
            # dataPipeline's first step (infra/pipeline.py): a well-formed FileProcessed event becomes the
            # data processor's message; anything else without Records is refused as InvalidEvent.
            detail = event.get("detail")
            if (event.get("detail-type") == "FileProcessed" and event.get("source") == "workbook.file-processor"
                    and isinstance(detail, dict) and all(isinstance(detail.get(f), str) and detail[f]
                                                         for f in ("bucket", "key", "type"))
                    and re.fullmatch(r"[a-z0-9]{1,20}", detail["type"])):
                assert_no_exception(outcome)
                message = outcome.response["message"]
                assert message["kind"] == f"file.{detail['type']}" and message["payload"] == detail
                assert message["business_key"].startswith("file:") and len(message["business_key"]) <= 200
            else:
                assert_input_error(outcome, "InvalidEvent")
            return
        if outcome.response:
            self.outputs = [key for result in outcome.response["results"] for key in result.get("outputs", [])]
        records = s3_event_records(event)
        if records is None:
            assert_input_error(outcome, "InvalidEvent")
            return
        assert_no_exception(outcome)
        response = outcome.response
        assert response["records"] == len(records) and len(response["results"]) == len(records)
        for record, result in zip(records, response["results"], strict=True):
            expected = s3_expectation(record, self.corpus)
            if expected == "ignored":
                assert result["status"] == "ignored", result
            elif expected == "processed":
                assert result["status"] == "processed", (record["s3"]["object"]["key"], result)
                key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
                stored = json.loads(self.s3.get_object(Bucket=PROCESSED, Key=f"metadata/{key}.json")["Body"].read())
                assert stored["sha256"] == hashlib.sha256(self.corpus[key][0]).hexdigest()
                for output in result["outputs"]:
                    head = self.s3.head_object(Bucket=PROCESSED, Key=output)
                    for value in head["Metadata"].values():
                        assert re.fullmatch(r"[\x20-\x7e]*", value), f"metadata {value!r} is not printable ASCII"
            else:
                assert result["status"] == "rejected" and result["reason"] == expected, (record.get("s3"), result)


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """The handler's /tmp, redirected so the harness can see what is left behind."""
    root = tmp_path / "lambda-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def file_harness(handler_factory, aws, tmp_root):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=UPLOADS)
    s3.create_bucket(Bucket=PROCESSED)
    boto3.client("events", region_name="us-east-1").create_event_bus(Name=BUS)
    return FileProcessorHarness(handler_factory("file_processor", MAX_OBJECT_BYTES=str(MAX_OBJECT_BYTES)), s3, tmp_root)


# --- scheduler --------------------------------------------------------------------------------------

def is_scheduled_event(event: Any) -> str:
    """'ok', 'too_large' or 'invalid' for the scheduler's contract (Scheduled Events from EventBridge or Scheduler)."""
    if not isinstance(event, dict) or not event:
        return "invalid"
    try:
        size = len(json.dumps(event, ensure_ascii=False).encode("utf-8"))
    except (ValueError, TypeError, RecursionError):
        return "invalid"
    if size > 256 * 1024:
        return "too_large"
    if event.get("source") not in ("aws.events", "aws.scheduler") or event.get("detail-type") != "Scheduled Event":
        return "invalid"
    return "ok"


class SchedulerHarness:
    def __init__(self, module: Any, secret: dict[str, Any], sqs: Any, queue_url: str):
        self.module, self.sql, self.sqs, self.queue_url = module, _Sql(secret), sqs, queue_url
        _quiet(module)

    def reset(self, rows: list[tuple[str, Any, int]] = ()) -> None:
        self.sql.run("DELETE FROM due_work")   # TRUNCATE costs tens of ms a time
        for task_type, payload, due_in_s in rows:
            self.sql.run("INSERT INTO due_work (task_type, payload, due_at) "
                         "VALUES (:t, CAST(:p AS jsonb), now() + make_interval(secs => :s))",
                         t=task_type, p=json.dumps(payload), s=due_in_s)

    def _drain(self) -> list[dict]:
        # One receive takes them all: an example has at most 3 rows, moto returns up to 10 at once.
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if messages:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        return [json.loads(m["Body"]) for m in messages]

    def check(self, event: Any, outcome: Outcome) -> None:
        verdict = is_scheduled_event(event)
        rows = self.sql.run("SELECT id, task_type, payload, status, message_id, due_at <= now(), attempts, "
                            "claimed_at IS NULL FROM due_work ORDER BY id")
        if verdict != "ok":
            assert_input_error(outcome, "InvalidEvent" if verdict == "invalid" else "PayloadTooLarge")
            # No row was claimed, so none was sent (a message is sent for a claimed row only): the
            # queue need not be read, which halves the cost of these examples.
            assert all(row[3] == "pending" and row[6] == 0 and row[7] for row in rows)
            return
        messages = self._drain()
        assert_no_exception(outcome)
        summary = outcome.response
        due = [row for row in rows if row[5]]
        assert summary["enqueued"] == len(due) and summary["failed"] == 0, summary
        assert all(row[3] == "enqueued" and row[4] for row in due) and all(row[3] == "pending" for row in rows if not row[5])
        # Nothing lost: one message per enqueued row, carrying its type and payload.
        assert sorted((m["business_key"], m["kind"], json.dumps(m["payload"], sort_keys=True)) for m in messages) == \
            sorted((f"due-work:{row[0]}", row[1], json.dumps(row[2], sort_keys=True)) for row in due)


@pytest.fixture
def scheduler_harness(handler_factory, db_secret, aws):
    import boto3

    sqs = boto3.client("sqs", region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="lwb-test-tasks")["QueueUrl"]
    boto3.client("sns", region_name="us-east-1").create_topic(Name="lwb-test-notifications")
    harness = SchedulerHarness(handler_factory("scheduler"), db_secret, sqs, queue_url)
    yield harness
    harness.sql.close()


# --- auth-handler -------------------------------------------------------------------------------------

HS256_KEY = "fuzz-hs256-key-0123456789abcdef0123456789abcdef"


def authorization_value(event: Any) -> Any:
    """The Authorization value the contract reads: identitySource[0], else the header (any case)."""
    if not isinstance(event, dict):
        return None
    sources = event.get("identitySource")
    if isinstance(sources, list) and sources and isinstance(sources[0], str):
        return sources[0]
    headers = event.get("headers")
    if isinstance(headers, dict):
        for name, value in headers.items():
            if isinstance(name, str) and name.lower() == "authorization":
                return value
    return None


class AuthHarness:
    def __init__(self, module: Any, valid_tokens: dict[str, str]):
        self.module, self.valid_tokens = module, valid_tokens    # token -> its sub
        _quiet(module)

    def reset(self) -> None:
        pass

    def check(self, event: Any, outcome: Outcome) -> None:
        assert_no_exception(outcome)       # an authorizer never raises: every failure is a deny
        value = authorization_value(event)
        token = None
        if isinstance(value, str) and len(value) <= 8192 + 7:
            scheme, _, rest = value.strip().partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        if token in self.valid_tokens:
            assert outcome.response["isAuthorized"] is True, outcome
            assert outcome.response["context"]["principal"] == self.valid_tokens[token]
        else:
            assert outcome.response == {"isAuthorized": False}, outcome


def mint_token(sub: str, key: str = HS256_KEY, **claims: Any) -> str:
    import time

    import jwt

    now = int(time.time())
    body = {"sub": sub, "iss": "https://auth.local/", "aud": "lwb-api", "iat": now, "nbf": now, "exp": now + 3600,
            "scope": "items:read"}
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm="HS256")


@pytest.fixture
def auth_harness(handler_factory, monkeypatch):
    with ExtensionEmulator({"lwb-test/jwt": json.dumps({"hs256_key": HS256_KEY})}) as extension:
        monkeypatch.setenv("AWS_SESSION_TOKEN", extension.session_token)
        module = handler_factory("auth_handler", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=str(extension.port))
        yield AuthHarness(module, {mint_token("user-1"): "user-1", mint_token("😀 ünïcode"): "😀 ünïcode"})


# --- api-processor -----------------------------------------------------------------------------------

def http_request(event: Any) -> dict | None:
    """The request an HTTP API (2.0) or Function URL event carries, or None when it is not one."""
    if not isinstance(event, dict) or event.get("version") != "2.0" or event.get("type") == "REQUEST" or "routeArn" in event:
        return None
    context = event.get("requestContext")
    http = context.get("http") if isinstance(context, dict) else None
    if not isinstance(http, dict) or not isinstance(http.get("method"), str) or not isinstance(event.get("rawPath"), str):
        return None
    stage = context.get("stage", "$default")
    if not isinstance(stage, str) or not isinstance(context.get("routeKey", ""), str):
        return None
    for name in ("routeKey", "rawQueryString"):
        if event.get(name) is not None and not isinstance(event[name], str):
            return None
    for name in ("headers", "queryStringParameters", "pathParameters", "stageVariables"):
        value = event.get(name)
        if value is not None and not (isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                                      for k, v in value.items())):
            return None
    cookies = event.get("cookies")
    if cookies is not None and not (isinstance(cookies, list) and all(isinstance(c, str) for c in cookies)):
        return None
    if event.get("body") is not None and not isinstance(event["body"], str):
        return None
    if not isinstance(event.get("isBase64Encoded", False), bool):
        return None
    if context.get("authorizer") is not None and not isinstance(context["authorizer"], dict):
        return None
    path = event["rawPath"] if stage == "$default" else event["rawPath"][len("/" + stage):]
    return {"method": http["method"].upper(), "path": path, "body": event.get("body"),
            "base64": event.get("isBase64Encoded", False)}


def valid_create(request: dict) -> str | None:
    """The stored name when a POST /items request's body is a valid item, else None."""
    body = request["body"]
    if not isinstance(body, str) or not body or len(body) > 64 * 1024 * 4 // 3 + 4:
        return None
    if request["base64"]:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            return None
    if len(raw) > 64 * 1024:
        return None
    try:
        ok, item = strict_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if not ok or not isinstance(item, dict) or set(item) - {"name", "description", "attributes", "version"}:
        return None
    for name, kind in (("name", str), ("description", str), ("attributes", dict)):
        if name in item and (not isinstance(item[name], kind) or not storable(item[name])):
            return None
    version = item.get("version")
    if "version" in item and (isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**31):
        return None
    name = item.get("name")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200 or len(item.get("description", "")) > 2000:
        return None
    return name.strip()


ALLOWED_STATUS = {200, 201, 204, 400, 404, 409, 413}


class ApiHarness:
    def __init__(self, module: Any, secret: dict[str, Any]):
        self.module, self.sql = module, _Sql(secret)
        _quiet(module)

    def reset(self) -> None:
        pass

    def check(self, event: Any, outcome: Outcome) -> None:
        assert_no_exception(outcome)
        response = outcome.response
        assert isinstance(response, dict) and isinstance(response.get("statusCode"), int), response
        status, body_text = response["statusCode"], response.get("body") or ""
        assert "Traceback" not in body_text
        body = json.loads(body_text) if body_text else None
        request = http_request(event)
        if request is None:
            assert status == 400 and body["error"] == "invalid_event", response
            return
        assert status in ALLOWED_STATUS, response
        if status >= 400:
            assert body["error"] and body["message"], response
        if request["method"] == "POST" and request["path"] == "/items":
            name = valid_create(request)
            if name is None:
                assert status in (400, 413), response
            else:
                assert status == 201, response
                assert self.sql.run("SELECT name FROM items WHERE id = :id", id=body["id"]) == [[name]]


@pytest.fixture
def api_harness(handler_factory, db_secret):
    harness = ApiHarness(handler_factory("api_processor"), db_secret)
    yield harness
    harness.sql.close()
