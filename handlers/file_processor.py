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
import functools
import gc
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from common import aws, config, events, limits, runtime
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
# The limits live in common/limits.py (the workbook's worst-case probes read them there). Pillow's own
# guard only warns between 1x and 2x MAX_IMAGE_PIXELS: check_image refuses at 1x, before decoding.
Image.MAX_IMAGE_PIXELS = limits.IMAGE_MAX_PIXELS
PngImagePlugin.MAX_TEXT_MEMORY = limits.PNG_MAX_TEXT_BYTES
#: The configured memory (Lambda sets it in every execution environment): it caps what one image may decode.
_MEMORY_SIZE = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
MEMORY_MB = int(_MEMORY_SIZE) if _MEMORY_SIZE.isascii() and _MEMORY_SIZE.isdigit() else 0
#: Reduce by whole factors to at most this many times the target size before the final resampling (Pillow's thumbnail default).
REDUCING_GAP = 2.0
#: Rows reduced at a time: an RGBA image is premultiplied a strip at a time, never as a full-size copy.
STRIP_ROWS = 512

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


def fit_size(width: int, height: int, bound: int) -> tuple[int, int]:
    """The size ``Image.thumbnail((bound, bound))`` gives a ``width`` x ``height`` image (aspect kept, never enlarged)."""
    if width <= bound and height <= bound:
        return width, height
    aspect = width / height

    def round_aspect(number: float, key: Any) -> int:
        return max(min(math.floor(number), math.ceil(number), key=key), 1)

    x, y = bound, bound
    if x / y >= aspect:
        x = round_aspect(y * aspect, key=lambda n: abs(aspect - n / y))
    else:
        y = round_aspect(x / aspect, key=lambda n: 0 if n == 0 else abs(aspect - x / n))
    return x, y


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow holds per pixel of ``mode`` (RGB is stored in 4 bytes, like RGBA)."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return limits.IMAGE_MAX_CHANNELS


def decode_bytes(image: Image.Image) -> int:
    """What decoding ``image`` holds at once, from its header (after ``draft``): ``limits.image_decode_bytes``."""
    width, height = getattr(image, "_workbook_full_size", image.size)
    samples = 0.0
    if image.format == "JPEG" and image.info.get("progressive"):
        layers = getattr(image, "layer", None) or [("", 1, 1, 0)] * len(image.getbands())
        h_max = max(layer[1] for layer in layers) or 1
        v_max = max(layer[2] for layer in layers) or 1
        samples = sum(layer[1] * layer[2] / (h_max * v_max) for layer in layers)
    scale = max(1, round(width / image.width)) if image.width else 1
    return limits.image_decode_bytes(width, height, _bytes_per_pixel(image.mode), scale=scale,
                                     progressive_samples=samples)


def check_image(image: Image.Image, memory_mb: int | None = None) -> None:
    """Refuse, from the header alone, an image over the pixel limit or one whose decode cannot fit.

    The decode budget is ``limits.IMAGE_MAX_DECODE_BYTES``, and at a configured memory of
    ``memory_mb`` the memory left after ``limits.IMAGE_RESERVED_MB``: a function configured below
    the tuning floor refuses a large image with this error instead of running out of memory.
    """
    width, height = getattr(image, "_workbook_full_size", image.size)
    if width * height > limits.IMAGE_MAX_PIXELS:
        raise PayloadTooLarge(f"image is {width}x{height} = {width * height:,} pixels; the limit is "
                              f"{limits.IMAGE_MAX_PIXELS:,} (IMAGE_MAX_PIXELS in common/limits.py)")
    needed = decode_bytes(image)
    if needed > limits.IMAGE_MAX_DECODE_BYTES:
        raise PayloadTooLarge(f"image is {width}x{height} {image.mode}"
                              f"{' progressive' if image.info.get('progressive') else ''}: decoding it needs "
                              f"{needed / limits.MiB:,.0f} MiB; the limit is {limits.IMAGE_MAX_DECODE_BYTES / limits.MiB:,.0f}"
                              " MiB (IMAGE_MAX_DECODE_BYTES in common/limits.py)")
    budget = limits.image_decode_budget_bytes(memory_mb)
    if needed > budget:
        raise PayloadTooLarge(f"image is {width}x{height} {image.mode}: decoding it needs {needed / limits.MiB:,.0f} MiB, "
                              f"more than this function's {memory_mb} MB leaves ({budget / limits.MiB:,.0f} MiB after "
                              f"{limits.IMAGE_RESERVED_MB} MB reserved); raise file-processor's memory_mb in "
                              "params/<env>.yaml to the tuning floor")


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """``image.reduce(factor)`` computed a strip at a time: an RGBA or LA image is never premultiplied whole."""
    if factor <= 1:
        return image
    # RGBA and LA are reduced premultiplied (as Pillow's own reduce does); 16-bit grey as 32-bit (reduce has no I;16)
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(image.mode) or ("I" if image.mode.startswith("I;16") else None)
    width, height = image.size
    out = Image.new(image.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, STRIP_ROWS // factor)
    for top in range(0, height, rows):
        strip = image.crop((0, top, width, min(top + rows, height)))
        if premultiplied:
            strip = strip.convert(premultiplied).reduce(factor).convert(image.mode)
        else:
            strip = strip.reduce(factor)
        out.paste(strip, (0, top // factor))
    return out


def _resample(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` at ``size``: whole-factor reduction first (in strips), then one bicubic resampling of the small image."""
    if image.size == size:
        return image
    if image.mode in ("1", "P"):
        return image.resize(size, Image.Resampling.NEAREST)
    factor = int(min(image.width / size[0], image.height / size[1]) / REDUCING_GAP)
    return _reduced(image, factor).resize(size, Image.Resampling.BICUBIC)


def image_outputs(path: str, suffix: str, memory_mb: int | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Metadata and the (resized, thumbnail) renditions of an image file, holding one decoded copy at most.

    Memory is bounded before anything is decoded (:func:`check_image`); a JPEG is decoded at the
    smallest DCT scale that still covers the resized copy (``draft``); the renditions are made from
    the decoded image without copying it (``reduce`` in strips, then one resampling), and the
    thumbnail from the resized copy.
    """
    image_format = IMAGE_TYPES[suffix]
    memory_mb = MEMORY_MB if memory_mb is None else memory_mb
    try:
        with Image.open(path) as image:
            if image.format != image_format:
                raise UnsupportedMedia(f"file content is {image.format or 'unknown'}, not {image_format}")
            width, height, mode = image.width, image.height, image.mode
            resized_size = fit_size(width, height, RESIZED_MAX_PX)
            image._workbook_full_size = (width, height)
            if image_format == "JPEG":
                image.draft(None, resized_size)
            check_image(image, memory_mb)
            image.load()
            metadata = {"type": "image", "format": image_format, "width": width, "height": height, "mode": mode}
            resized = _resample(image, resized_size)
            renditions: dict[str, bytes] = {}
            for name, rendition in (("resized", resized),
                                    ("thumbnails", _resample(resized, fit_size(width, height, THUMBNAIL_PX)))):
                if image_format == "JPEG" and rendition.mode not in ("RGB", "L"):
                    rendition = rendition.convert("RGB")
                buffer = io.BytesIO()
                rendition.save(buffer, format=image_format)
                renditions[name] = buffer.getvalue()
                metadata[f"{name}_size"] = f"{rendition.width}x{rendition.height}"
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise ValidationError(f"image cannot be decoded: {type(error).__name__}") from None
    return metadata, renditions


def check_document(kind: str, size: int) -> None:
    """Refuse a JSON or PDF document over its own size limit (``common/limits.py``) before it is read."""
    limit = {"json": limits.JSON_MAX_BYTES, "pdf": limits.PDF_MAX_BYTES}.get(kind)
    if limit is not None and size > limit:
        name = "JSON_MAX_BYTES" if kind == "json" else "PDF_MAX_BYTES"
        raise PayloadTooLarge(f"{kind.upper()} document has {size:,} bytes; the limit is {limit:,} "
                              f"({name} in common/limits.py)")


def text_counts(chunks: Iterable[str]) -> dict[str, int]:
    """Lines, words and characters of text arriving in chunks, as ``for line in file`` with ``newline=""``
    counts them (lines end at \\n, \\r or \\r\\n; words are runs of non-whitespace), in constant memory."""
    lines = words = characters = 0
    previous = ""                       # the last character of the previous chunk
    for chunk in chunks:
        if not chunk:
            continue
        characters += len(chunk)
        words += len(chunk.split())
        if previous and not previous.isspace() and not chunk[0].isspace():
            words -= 1                  # one word split across the boundary
        lines += chunk.count("\n") + chunk.count("\r") - chunk.count("\r\n")
        if previous == "\r" and chunk[0] == "\n":
            lines -= 1                  # a \r\n split across the boundary
        previous = chunk[-1]
    if previous and previous not in "\r\n":
        lines += 1                      # a last line without its end
    return {"lines": lines, "words": words, "characters": characters}


class _RowBound:
    """The lines of a CSV file, refusing a row (its lines since the last row began) over ``CSV_MAX_ROW_CHARS``."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._lines: Iterator[str] = iter(handle)
        self.pending = 0

    def __iter__(self) -> _RowBound:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.pending += len(line)
        if self.pending > limits.CSV_MAX_ROW_CHARS:
            raise PayloadTooLarge(f"a CSV row has more than {limits.CSV_MAX_ROW_CHARS:,} characters "
                                  "(CSV_MAX_ROW_CHARS in common/limits.py)")
        return line


def document_metadata(path: str, suffix: str) -> dict[str, Any]:
    """Metadata of a text, CSV, JSON or PDF file, in memory bounded by ``common/limits.py``."""
    kind = DOCUMENT_TYPES[suffix]
    check_document(kind, os.path.getsize(path))
    if kind == "pdf":
        return _pdf_metadata(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            if kind == "text":
                return {"type": "text", **text_counts(iter(lambda: handle.read(limits.TEXT_CHUNK_CHARS), ""))}
            if kind == "csv":
                lines = _RowBound(handle)
                reader = csv.reader(lines)
                header = next(reader, [])
                rows = 0
                lines.pending = 0
                for _ in reader:
                    rows += 1
                    lines.pending = 0
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


def pdf_page_count(reader: Any) -> int:
    """The pages of a PDF, counted in its page tree without loading more than ``PDF_MAX_PAGES`` of them.

    The tree's own ``/Count`` can lie, and pypdf flattens every page it finds: walk the kids and
    refuse as soon as the limit is passed.
    """
    stack, pages, visited = [reader.trailer["/Root"]["/Pages"]], 0, 0
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        reference = getattr(node, "idnum", None)
        node = node.get_object()
        if reference is not None:
            if reference in seen:
                raise ValidationError("PDF page tree has a cycle")
            seen.add(reference)
        visited += 1
        kids = node.get("/Kids") if hasattr(node, "get") else None
        if kids is None:
            pages += 1
        else:
            stack.extend(kids.get_object())
        if pages > limits.PDF_MAX_PAGES or visited > 2 * limits.PDF_MAX_PAGES + 1:
            raise PayloadTooLarge(f"PDF has more than {limits.PDF_MAX_PAGES:,} pages (PDF_MAX_PAGES in "
                                  "common/limits.py)")
    return pages


def _pdf_metadata(path: str) -> dict[str, Any]:
    # pypdf is imported on the PDF path only: it doubles the INIT of a function that mostly sees images.
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = len(reader.pages) if reader.is_encrypted else pdf_page_count(reader)
        info = reader.metadata or {}
        return {"type": "pdf", "pages": pages, "encrypted": bool(reader.is_encrypted),
                "title": str(info.get("/Title") or "")[:200], "author": str(info.get("/Author") or "")[:200],
                "producer": str(info.get("/Producer") or "")[:200]}
    except InputError:
        raise
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


@functools.cache
def _malloc_trim() -> Any:
    try:
        import ctypes
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None                                    # not glibc: nothing to trim


def release_memory() -> None:
    """Give a record's memory back to the system before the next one, so a warm environment peaks as a fresh one.

    The decoded image and pypdf's objects are freed, but pypdf's objects hold reference cycles and
    glibc keeps freed heap pages: one process that read the largest PDF, then the largest JSON, then
    the maximum-pixel PNG, twice, peaked at 498 MB, against 306 MB with this after each record (the
    worst-case probes are measured in fresh environments). ``gc.collect()`` frees the cycles,
    ``malloc_trim(0)`` returns the free pages (glibc only).
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def s3_records(event: Any) -> list[dict[str, Any]]:
    """S3 records of a direct S3 event, or of S3 events wrapped in SQS bodies; [] for s3:TestEvent."""
    if isinstance(event, dict) and event.get("Event") == "s3:TestEvent":
        return []
    found: list[dict[str, Any]] = []
    for index, record in enumerate(events.records(event, ("aws:s3", "aws:sqs"))):
        if record.get("eventSource") == "aws:sqs":
            try:
                inner = events.decode_json_text(record.get("body"), "SQS body", limits.SQS_MAX_MESSAGE_BYTES)
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
            release_memory()
    return {"records": len(batch), "results": results}


# Everything INIT created lives as long as the environment: out of the collector's sight, release_memory's
# gc.collect() after each record scans only that record's objects (under a millisecond instead of 13-47 ms here).
gc.freeze()
