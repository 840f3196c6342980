"""file-processor: S3 ObjectCreated events, images and documents, results to the processed bucket."""
from __future__ import annotations

import hashlib
import io
import json
import tempfile

import boto3
import pytest
from handler_kit import LambdaContext, LogCapture
from PIL import Image

UPLOADS, PROCESSED, BUS = "lwb-test-uploads", "lwb-test-processed", "lwb-test-bus"


@pytest.fixture
def buckets(aws):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=UPLOADS)
    s3.create_bucket(Bucket=PROCESSED)
    return s3


@pytest.fixture
def bus_events(aws):
    """The event bus with a rule sending the file processor's events to a queue; returns a reader."""
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    events.create_event_bus(Name=BUS)
    queue_url = sqs.create_queue(QueueName="bus-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=BUS, EventPattern=json.dumps({"source": ["workbook.file-processor"]}))
    events.put_targets(Rule="all", EventBusName=BUS, Targets=[{"Id": "q", "Arn": queue_arn}])

    def read():
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]
    return read


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """The handler's /tmp, redirected so the test can see what is left behind."""
    root = tmp_path / "lambda-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def processor(handler_factory, buckets, bus_events, tmp_root):
    return handler_factory("file_processor")


@pytest.fixture
def upload(buckets, event_factory):
    """Put ``data`` at ``key`` in the uploads bucket; return the S3 event for it (key URL-encoded)."""
    def put(key, data, encoded_key=None, size=None):
        buckets.put_object(Bucket=UPLOADS, Key=key, Body=data)
        event = event_factory("s3_object_created")
        event["Records"][0]["s3"]["object"].update(key=encoded_key or key, size=len(data) if size is None else size)
        return event
    return put


def image_bytes(fmt="PNG", size=(2000, 1000), mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 0).save(buffer, format=fmt)
    return buffer.getvalue()


def pdf_bytes():
    from pypdf import PdfWriter
    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Quarterly report", "/Author": "Ops"})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_image_with_url_encoded_key_gets_resized_copy_thumbnail_metadata_and_event(processor, upload, buckets,
                                                                                  bus_events, tmp_root):
    # GIVEN a PNG uploaded under a key with a space and a non-ASCII character (URL-encoded in the event)
    data = image_bytes()
    key = "incoming/holiday photoé.png"
    event = upload(key, data, encoded_key="incoming/holiday+photo%C3%A9.png")
    # WHEN the ObjectCreated event is handled
    result = processor.handler(event, LambdaContext())
    # THEN a resized copy and a thumbnail are written with metadata, and the checksum is right
    assert result["results"][0]["status"] == "processed"
    resized = buckets.get_object(Bucket=PROCESSED, Key=f"resized/{key}")
    thumbnail = buckets.get_object(Bucket=PROCESSED, Key=f"thumbnails/{key}")
    assert Image.open(io.BytesIO(resized["Body"].read())).size == (1024, 512)
    assert Image.open(io.BytesIO(thumbnail["Body"].read())).size == (128, 64)
    assert resized["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
    metadata = json.loads(buckets.get_object(Bucket=PROCESSED, Key=f"metadata/{key}.json")["Body"].read())
    assert metadata["width"] == 2000 and metadata["format"] == "PNG"
    # AND one FileProcessed event reaches the bus, and /tmp is clean
    published = bus_events()
    assert [e["detail-type"] for e in published] == ["FileProcessed"] and published[0]["detail"]["key"] == key
    assert list(tmp_root.iterdir()) == []


@pytest.mark.parametrize("name, data, expected", [
    ("notes.txt", b"hello world\nsecond line here\n", {"type": "text", "lines": 2, "words": 5}),
    ("table.csv", b"id,name,amount\n1,a,2\n2,b,3\n", {"type": "csv", "columns": 3, "rows": 2}),
    ("doc.json", b'{"b": 1, "a": [1, 2]}', {"type": "json", "top_level": "dict", "keys": ["a", "b"]}),
    ("photo.jpg", image_bytes("JPEG", (300, 200)), {"type": "image", "format": "JPEG", "width": 300}),
])
def test_documents_get_metadata_and_checksum(processor, upload, buckets, name, data, expected):
    # GIVEN a document upload
    event = upload(f"incoming/{name}", data)
    # WHEN it is handled
    result = processor.handler(event, LambdaContext())["results"][0]
    # THEN its metadata and checksum are extracted and stored
    assert result["status"] == "processed"
    assert expected.items() <= result.items()
    stored = buckets.get_object(Bucket=PROCESSED, Key=f"metadata/incoming/{name}.json")
    assert stored["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()


def test_pdf_metadata(processor, upload):
    result = processor.handler(upload("incoming/report.pdf", pdf_bytes()), LambdaContext())["results"][0]
    assert result["status"] == "processed" and result["pages"] == 2 and result["title"] == "Quarterly report"


@pytest.mark.parametrize("key, data, size, reason", [
    ("incoming/tool.exe", b"MZ\x90\x00", None, "unsupported_media_type"),          # unsupported type
    ("incoming/noext", b"abc", None, "unsupported_media_type"),
    ("incoming/big.txt", b"x" * 10, 6 * 1024 * 1024, "payload_too_large"),       # oversized (declared)
    ("incoming/broken.png", b"\x89PNG not really", None, "validation_error"),     # corrupt image
    ("incoming/fake.png", image_bytes("JPEG", (10, 10)), None, "unsupported_media_type"),  # content mismatch
    ("incoming/bad.json", b"{not json", None, "validation_error"),                # invalid JSON
    ("incoming/latin1.txt", "caf\u00e9".encode("latin-1"), None, "validation_error"),  # non-UTF-8 text
    ("incoming/bad.pdf", b"%PDF-1.4 garbage", None, "validation_error"),
    ("elsewhere/file.txt", b"abc", None, "validation_error"),                      # outside the prefix
])
def test_unacceptable_files_are_rejected_clearly_without_a_crash(processor, upload, bus_events, tmp_root, key, data,
                                                                 size, reason):
    # GIVEN an upload that cannot be processed
    event = upload(key, data, size=size)
    logs = LogCapture(processor)
    # WHEN it is handled
    result = processor.handler(event, LambdaContext())["results"][0]
    # THEN it is rejected with a reason: logged, announced on the bus, no exception, /tmp clean
    assert (result["status"], result["reason"]) == ("rejected", reason)
    assert logs.records("upload rejected")[0]["error"] == reason
    assert [e["detail-type"] for e in bus_events()] == ["FileRejected"]
    assert list(tmp_root.iterdir()) == []


def test_object_larger_than_declared_is_stopped_while_streaming(handler_factory, buckets, bus_events, tmp_root, upload):
    # GIVEN a 2 KiB limit and an event that does not state the size
    processor = handler_factory("file_processor", MAX_OBJECT_BYTES="2048")
    event = upload("incoming/large.txt", b"y" * 5000)
    del event["Records"][0]["s3"]["object"]["size"]
    # WHEN it is handled, THEN the download stops at the limit and the file is rejected
    result = processor.handler(event, LambdaContext())["results"][0]
    assert result["reason"] == "payload_too_large" and list(tmp_root.iterdir()) == []


def test_deleted_object_is_rejected(processor, event_factory, bus_events):
    event = event_factory("s3_object_created")
    event["Records"][0]["s3"]["object"]["key"] = "incoming/gone.txt"
    result = processor.handler(event, LambdaContext())["results"][0]
    # THEN it is rejected as gone, naming the object (not as a failure that S3's retries would repeat)
    assert (result["status"], result["reason"], result["detail"]) == ("rejected", "validation_error",
                                                                      "object no longer exists")
    assert result["key"] == "incoming/gone.txt"


def test_s3_test_event_and_other_event_names_are_ignored(processor, event_factory):
    # GIVEN S3's initial test event, and an ObjectRemoved record
    assert processor.handler(event_factory("s3_test_event"), LambdaContext()) == {"records": 0, "results": []}
    removed = event_factory("s3_object_created")
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    # THEN nothing is processed and nothing fails
    assert processor.handler(removed, LambdaContext())["results"][0]["status"] == "ignored"


@pytest.mark.parametrize("s3_field", [{}, {"bucket": {"name": UPLOADS}}, {"bucket": {"name": 5}, "object": {"key": []}},
                                      {"bucket": {"name": UPLOADS}, "object": {"key": "incoming/a.txt", "size": "big"}}])
def test_records_with_missing_or_wrong_fields_are_rejected(processor, event_factory, bus_events, s3_field):
    event = event_factory("s3_object_created")
    event["Records"][0]["s3"] = s3_field
    result = processor.handler(event, LambdaContext())["results"][0]
    assert (result["status"], result["reason"]) == ("rejected", "invalid_event")


@pytest.mark.parametrize("event", [{}, [], "x", {"Records": []}, {"Records": [{"eventSource": "aws:sns"}]},
                                   {"Records": [{"eventSource": "aws:sqs", "body": "{not json"}]},
                                   {"Records": [{"eventSource": "aws:sqs", "body": b"\xff\xfe".decode("latin-1")}]}])
def test_wrong_or_empty_events_raise_a_clear_error(processor, event):
    logs = LogCapture(processor)
    with pytest.raises(processor.HandlerError):
        processor.handler(event, LambdaContext())
    assert logs.records("invalid event")[0]["level"] == "ERROR"


def test_s3_events_wrapped_in_sqs_are_unwrapped(processor, upload, event_factory):
    # GIVEN an S3 event delivered through a queue (S3 -> SQS notification)
    s3_event = upload("incoming/queued.txt", b"one two\n")
    sqs_event = event_factory("sqs_batch")
    sqs_event["Records"] = sqs_event["Records"][:1]
    sqs_event["Records"][0]["body"] = json.dumps(s3_event)
    # WHEN handled, THEN the object is processed
    assert processor.handler(sqs_event, LambdaContext())["results"][0]["status"] == "processed"


def test_stops_before_the_timeout(processor, upload, tmp_root):
    # GIVEN less time left than the safety margin
    event = upload("incoming/late.txt", b"abc")
    # WHEN handled, THEN it raises OutOfTime (the async invoke is retried) and leaves /tmp clean
    with pytest.raises(processor.HandlerError) as raised:
        processor.handler(event, LambdaContext(remaining_ms=1000))
    assert raised.value.code == "out_of_time" and list(tmp_root.iterdir()) == []
