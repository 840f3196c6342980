"""file-processor: S3 ObjectCreated events for the uploads bucket.

For each object under UPLOAD_PREFIX (keys arrive URL-encoded), the handler streams it into a
private directory in /tmp while hashing it, then:

* images (JPEG, PNG): a resized copy (longest side 1024 px) and a thumbnail (128 px) with Pillow;
* documents (text, CSV, JSON, PDF): metadata such as lines, rows, keys or pages;
* every file: its SHA-256 checksum.

Results go to the processed bucket (``resized/``, ``thumbnails/``, ``metadata/``) with S3 object
metadata, and one ``FileProcessed`` event goes to EVENT_BUS_NAME. Unsupported, oversized and
corrupt files are rejected with a structured log line, a metric and a ``FileRejected`` event, and
the invocation succeeds: retrying them would only loop. Dependency failures (S3, EventBridge)
raise, so the asynchronous retry and the on-failure destination apply. The /tmp directory is
removed after every record, whatever happens.

Invoked by dataPipeline's first step with a ``FileProcessed`` event (no ``Records``), it returns
``{"message": ...}``, the data processor's message for the file (see :func:`pipeline_message`).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from common import aws, config, events, runtime
from common import tracer as tracing
from common.errors import HandlerError, InputError, InvalidEvent, PayloadTooLarge, UnsupportedMedia, ValidationError
from common.logger import logger
from common.metrics import count, metrics

CONFIG = config.load("file-processor")
tracer = tracing.create(patch_modules=("botocore",))
RESIZED_MAX_PX = 1024
THUMBNAIL_PX = 128
CHUNK_BYTES = 1024 * 1024
MAX_KEY_BYTES = 1024            # S3's limit on an object key
EVENT_SOURCE = "workbook.file-processor"
Image.MAX_IMAGE_PIXELS = 50_000_000  # decompression-bomb guard: a larger image is rejected

IMAGE_TYPES = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}
DOCUMENT_TYPES = {".txt": "text", ".csv": "csv", ".json": "json", ".pdf": "pdf"}
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png"}


@dataclass(frozen=True)
class S3Object:
    """One uploaded object named by an event record (key URL-decoded)."""

    bucket: str
    key: str
    size: int | None
    etag: str | None = None

    @property
    def suffix(self) -> str:
        return os.path.splitext(self.key)[1].lower()


def s3_object(record: dict[str, Any]) -> S3Object:
    """The object of an S3 event record; keys are URL-encoded with '+' for spaces."""
    try:
        bucket = record["s3"]["bucket"]["name"]
        raw_key = record["s3"]["object"]["key"]
    except (KeyError, TypeError):
        raise InvalidEvent("S3 record has no s3.bucket.name or s3.object.key") from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str) or not bucket or not raw_key:
        raise InvalidEvent("S3 record's bucket name and object key must be non-empty strings")
    size = record["s3"]["object"].get("size")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise InvalidEvent("S3 record's object size must be an integer")
    key = urllib.parse.unquote_plus(raw_key)
    try:
        key_bytes = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidEvent("S3 record's object key is not UTF-8") from None
    if key_bytes > MAX_KEY_BYTES:
        raise InvalidEvent(f"S3 record's object key has {key_bytes} bytes; S3 keys have at most {MAX_KEY_BYTES}")
    etag = record["s3"]["object"].get("eTag")
    return S3Object(bucket=bucket, key=key, size=size, etag=etag if isinstance(etag, str) else None)


def check_acceptable(obj: S3Object) -> str:
    """The processing kind for ``obj``, or an :class:`InputError` saying why it is rejected."""
    if obj.bucket != CONFIG.uploads_bucket:
        raise ValidationError(f"object is in bucket {obj.bucket!r}, not the uploads bucket")
    if not obj.key.startswith(CONFIG.upload_prefix):
        raise ValidationError(f"key is outside the upload prefix {CONFIG.upload_prefix!r}")
    if obj.size is not None and obj.size > CONFIG.max_object_bytes:
        raise PayloadTooLarge(f"object has {obj.size} bytes; the limit is {CONFIG.max_object_bytes}")
    if obj.suffix in IMAGE_TYPES:
        return "image"
    if obj.suffix in DOCUMENT_TYPES:
        return "document"
    raise UnsupportedMedia(f"unsupported file type {obj.suffix or '(none)'!r}; supported: "
                           + ", ".join(sorted(IMAGE_TYPES) + sorted(DOCUMENT_TYPES)))


def download(obj: S3Object, directory: str) -> tuple[str, str, int]:
    """Stream the object to a file in ``directory``; return (path, sha256 hex, bytes)."""
    path = os.path.join(directory, "object" + obj.suffix)
    digest = hashlib.sha256()
    written = 0
    try:
        response = aws.client("s3").get_object(Bucket=obj.bucket, Key=obj.key)
    except aws.AWS_ERRORS as error:
        if aws.error_code(error) in ("NoSuchKey", "404"):
            raise ValidationError("object no longer exists") from None
        raise aws.translate(error, "GetObject") from None
    body = response["Body"]
    try:
        with open(path, "wb") as out:
            for chunk in iter(lambda: body.read(CHUNK_BYTES), b""):
                written += len(chunk)
                if written > CONFIG.max_object_bytes:
                    raise PayloadTooLarge(f"object is larger than {CONFIG.max_object_bytes} bytes")
                digest.update(chunk)
                out.write(chunk)
    except aws.AWS_ERRORS as error:
        raise aws.translate(error, "GetObject (streaming)") from None
    finally:
        body.close()
    return path, digest.hexdigest(), written


def image_outputs(path: str, suffix: str) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Metadata and the (resized, thumbnail) renditions of an image file."""
    image_format = IMAGE_TYPES[suffix]
    try:
        with Image.open(path) as image:
            if image.format != image_format:
                raise UnsupportedMedia(f"file content is {image.format or 'unknown'}, not {image_format}")
            image.load()
            metadata = {"type": "image", "format": image.format, "width": image.width, "height": image.height,
                        "mode": image.mode}
            renditions: dict[str, bytes] = {}
            for name, bound in (("resized", RESIZED_MAX_PX), ("thumbnails", THUMBNAIL_PX)):
                copy = image.copy()
                copy.thumbnail((bound, bound))
                if image_format == "JPEG" and copy.mode not in ("RGB", "L"):
                    copy = copy.convert("RGB")
                buffer = io.BytesIO()
                copy.save(buffer, format=image_format)
                renditions[name] = buffer.getvalue()
                metadata[f"{name}_size"] = f"{copy.width}x{copy.height}"
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError(f"image cannot be decoded: {type(error).__name__}") from None
    return metadata, renditions


def document_metadata(path: str, suffix: str) -> dict[str, Any]:
    """Metadata of a text, CSV, JSON or PDF file."""
    kind = DOCUMENT_TYPES[suffix]
    if kind == "pdf":
        return _pdf_metadata(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if kind == "text":
                lines = words = characters = 0
                for line in handle:
                    lines += 1
                    words += len(line.split())
                    characters += len(line)
                return {"type": "text", "lines": lines, "words": words, "characters": characters}
            if kind == "csv":
                reader = csv.reader(handle)
                header = next(reader, [])
                rows = sum(1 for _ in reader)
                return {"type": "csv", "columns": len(header), "header": header[:50], "rows": rows}
            value = json.load(handle)
    except UnicodeDecodeError:
        raise ValidationError(f"{kind} file is not UTF-8") from None
    except csv.Error as error:
        raise ValidationError(f"CSV cannot be parsed: {error}") from None
    except RecursionError:
        raise ValidationError("JSON nests too deeply to parse") from None
    except ValueError as error:
        raise ValidationError(f"JSON cannot be parsed: {getattr(error, 'msg', error)}") from None
    summary: dict[str, Any] = {"type": "json", "top_level": type(value).__name__}
    if isinstance(value, dict):
        summary["keys"] = sorted(value)[:50]
    elif isinstance(value, list):
        summary["items"] = len(value)
    return summary


def _pdf_metadata(path: str) -> dict[str, Any]:
    # pypdf is imported on the PDF path only: it doubles the INIT of a function that mostly sees images.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        info = reader.metadata or {}
        return {"type": "pdf", "pages": len(reader.pages), "encrypted": bool(reader.is_encrypted),
                "title": str(info.get("/Title") or "")[:200], "author": str(info.get("/Author") or "")[:200],
                "producer": str(info.get("/Producer") or "")[:200]}
    except Exception as error:  # noqa: BLE001 - pypdf raises many kinds (IndexError, RecursionError...) on bad files
        if not isinstance(error, (PdfReadError, ValueError, KeyError, TypeError, OSError)):
            logger.info("unusual PDF parser error", extra={"pdf_error": type(error).__name__})
        raise ValidationError(f"PDF cannot be read: {type(error).__name__}") from None


_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def _ascii_metadata(values: dict[str, Any]) -> dict[str, str]:
    """S3 user metadata travels in HTTP headers: printable ASCII only, short.

    Keys may hold any character, CR and LF included (``%0A`` in the event), and http.client
    refuses a header value with those: everything outside printable ASCII becomes '?'.
    """
    return {key: _NOT_PRINTABLE_ASCII.sub("?", str(value))[:256] for key, value in values.items()}


def _put(key: str, body: bytes, content_type: str, metadata: dict[str, Any]) -> None:
    try:
        aws.client("s3").put_object(Bucket=CONFIG.processed_bucket, Key=key, Body=body, ContentType=content_type,
                                    Metadata=_ascii_metadata(metadata))
    except aws.AWS_ERRORS as error:
        raise aws.translate(error, f"PutObject {key}") from None


def emit(detail_type: str, detail: dict[str, Any]) -> None:
    """Put one event on EVENT_BUS_NAME; a failed entry raises (the invocation is retried)."""
    try:
        response = aws.client("events").put_events(Entries=[{
            "Source": EVENT_SOURCE, "DetailType": detail_type, "EventBusName": CONFIG.event_bus_name,
            "Detail": json.dumps(detail, default=str)}])
    except aws.AWS_ERRORS as error:
        raise aws.translate(error, "PutEvents") from None
    if response.get("FailedEntryCount"):
        entry = (response.get("Entries") or [{}])[0]
        raise aws.translate(Exception(entry.get("ErrorCode", "FailedEntry")), "PutEvents")


@tracer.capture_method
def process_object(obj: S3Object, kind: str, work_dir: str) -> dict[str, Any]:
    """Download, analyse and publish one accepted object; return its result."""
    path, sha256, size = download(obj, work_dir)
    base_metadata = {"source-bucket": obj.bucket, "source-key": obj.key, "sha256": sha256, "bytes": size}
    outputs: list[str] = []
    if kind == "image":
        metadata, renditions = image_outputs(path, obj.suffix)
        content_type = CONTENT_TYPES[metadata["format"]]
        for folder, data in renditions.items():
            key = f"{folder}/{obj.key}"
            _put(key, data, content_type, {**base_metadata, "rendition": folder})
            outputs.append(key)
    else:
        metadata = document_metadata(path, obj.suffix)
    result = {**base_metadata, **metadata}
    metadata_key = f"metadata/{obj.key}.json"
    _put(metadata_key, json.dumps(result, default=str).encode("utf-8"), "application/json",
         {**base_metadata, "type": metadata["type"]})
    outputs.append(metadata_key)
    result["outputs"] = outputs
    emit("FileProcessed", {"bucket": obj.bucket, "key": obj.key, "processed_bucket": CONFIG.processed_bucket,
                           **{k: v for k, v in result.items() if k not in ("header",)}})
    count("FileProcessed")
    return result


def reject(obj: S3Object | None, error: InputError, record_index: int) -> dict[str, Any]:
    """Log, count and announce a rejected upload; return the record's outcome."""
    where = {"bucket": obj.bucket, "key": obj.key} if obj else {"record": record_index}
    logger.warning("upload rejected", extra={"error": error.code, "detail": error.message, **where})
    count("FileRejected")
    if obj is not None:
        emit("FileRejected", {**where, "reason": error.code, "detail": error.message})
    return {"status": "rejected", "reason": error.code, "detail": error.message, **where}


def s3_records(event: Any) -> list[dict[str, Any]]:
    """S3 records of a direct S3 event, or of S3 events wrapped in SQS bodies; [] for s3:TestEvent."""
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        return []
    found: list[dict[str, Any]] = []
    for index, record in enumerate(events.records(event, ("aws:s3", "aws:sqs"))):
        if record.get("eventSource") == "aws:sqs":
            try:
                inner = events.decode_json_text(record.get("body"), "SQS body", 256 * 1024)
            except InputError as error:
                raise InvalidEvent(f"SQS record {index} does not carry an S3 event: {error.message}") from None
            if isinstance(inner, dict) and inner.get("Event") == "s3:TestEvent":
                continue
            found.extend(events.records(inner, "aws:s3"))
        else:
            found.append(record)
    return found


def pipeline_message(event: dict[str, Any]) -> dict[str, Any]:
    """dataPipeline's ProcessFile step: a ``FileProcessed`` event -> the data processor's message.

    The pipeline's contract (``infra/pipeline.py``): the execution's input is the event this
    function put on the bus; the result is ``{"kind": "file.<type>", "business_key", "payload"}``
    with the event's detail as the payload. The business key is derived from bucket and key, so a
    file processed again updates the same row. A malformed input raises :class:`InvalidEvent`
    naming the field, which fails the step (and the execution, through its Catch).
    """
    detail_type, source = event.get("detail-type"), event.get("source")
    if detail_type != "FileProcessed" or source != EVENT_SOURCE:
        raise InvalidEvent("event has no Records and is not dataPipeline's input: expected a FileProcessed event "
                           f"from {EVENT_SOURCE!r}, got detail-type {str(detail_type)[:40]!r} from {str(source)[:40]!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("FileProcessed event: field 'detail' must be an object")
    for field in ("bucket", "key", "type"):
        if not isinstance(detail.get(field), str) or not detail[field]:
            raise InvalidEvent(f"FileProcessed event: field 'detail.{field}' must be a non-empty string")
    if not re.fullmatch(r"[a-z0-9]{1,20}", detail["type"]):
        raise InvalidEvent("FileProcessed event: field 'detail.type' must be 1-20 lowercase letters or digits")
    location = f"{detail['bucket']}/{detail['key']}"
    return {"kind": f"file.{detail['type']}",
            "business_key": "file:" + hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest(),
            "payload": detail}


def _temp_root() -> str:
    return tempfile.gettempdir()


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: process each ObjectCreated record of the event; dataPipeline's first step."""
    if isinstance(event, dict) and "Records" not in event and event.get("Event") != "s3:TestEvent":
        try:
            return {"message": pipeline_message(event)}
        except HandlerError as error:
            logger.error("invalid event", extra={"error": error.code, "detail": error.message, "pipeline": True})
            count("InvalidEvent")
            raise
    try:
        batch = s3_records(event)
    except HandlerError as error:
        logger.error("invalid event", extra={"error": error.code, "detail": error.message})
        count("InvalidEvent")
        raise
    if batch:
        # S3's request id ties the upload, this invocation and the emitted events together.
        elements = batch[0].get("responseElements")
        request_id = elements.get("x-amz-request-id") if isinstance(elements, dict) else None
        logger.set_correlation_id(request_id if isinstance(request_id, str) else None)
    results: list[dict[str, Any]] = []
    for index, record in enumerate(batch):
        runtime.ensure_time(context, CONFIG.safety_margin_ms, f"record {index}")
        event_name = record.get("eventName")
        if not isinstance(event_name, str) or not event_name.startswith("ObjectCreated"):
            logger.info("ignoring non-ObjectCreated record", extra={"event_name": str(event_name)[:64]})
            results.append({"status": "ignored", "event_name": str(event_name)[:64]})
            continue
        obj: S3Object | None = None
        work_dir = tempfile.mkdtemp(prefix="file-processor-", dir=_temp_root())
        try:
            obj = s3_object(record)
            logger.append_keys(bucket=obj.bucket, key=obj.key)
            results.append({"status": "processed", **process_object(obj, check_acceptable(obj), work_dir)})
        except InputError as error:
            results.append(reject(obj, error, index))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
            logger.remove_keys(["bucket", "key"])
    return {"records": len(batch), "results": results}
