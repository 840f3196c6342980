"""The input limits: the one home of every size, count and pixel limit the handlers enforce.

The handlers refuse input over these limits with a clear error, and the workbook reads the same
file (``workbook.tuning.limits`` loads it by path, as ``workbook.tuning.floors`` loads
``budgets.py``) to build the worst-case probes that power tuning measures: the memory floor is
set by the largest input the function accepts, on the axis that drives its memory, not by the
inputs that happened to arrive. Change a limit here and the handler, the probes and the floor
follow.

Bytes unless the name says otherwise. ``MiB`` is 1,048,576 bytes.
"""
from __future__ import annotations

from typing import NamedTuple

MiB = 1024 * 1024

# --- file-processor: every upload ------------------------------------------------------------
#: An object's size: params ``uploads.max_object_mb`` sets MAX_OBJECT_BYTES (common.config); this is its default.
MAX_OBJECT_BYTES_DEFAULT = 50 * MiB

# --- file-processor: images (JPEG, PNG) ------------------------------------------------------
#: Width x height of an image, read from its header before anything is decoded.
IMAGE_MAX_PIXELS = 50_000_000
#: Channels of the decoded image: Pillow holds L and P in 1 byte a pixel, and RGB, RGBA, CMYK, LA in 4.
IMAGE_MAX_CHANNELS = 4
#: What decoding an image may hold at once: the decoded pixels (at JPEG's draft scale), plus, for a
#: progressive JPEG, libjpeg's coefficient buffer (2 bytes per sample at full size, whatever the scale).
#: 4 bytes x IMAGE_MAX_PIXELS: a maximum-pixel RGBA PNG fits, a progressive CMYK JPEG fits up to 25M pixels.
IMAGE_MAX_DECODE_BYTES = IMAGE_MAX_CHANNELS * IMAGE_MAX_PIXELS
#: Memory the function keeps for everything but the decode (the runtime, its imports, the renditions):
#: at a configured memory of M MB, an image may take at most (M - this) MiB to decode, so a function
#: configured too small refuses a large image with an error instead of running out of memory.
#: Measured in the local sandbox: the maximum-pixel RGBA PNG peaks 110 MB above its 191 MiB decode in a
#: fresh environment, and up to 60 MB more in a warm one.
IMAGE_RESERVED_MB = 192
#: Decompressed PNG text chunks (tEXt, zTXt, iTXt) the decoder may keep (Pillow's own default is 64 MiB).
PNG_MAX_TEXT_BYTES = 1 * MiB

# --- file-processor: documents ---------------------------------------------------------------
#: A JSON document: parsed whole, it takes up to ~30x its size in Python objects (``[{},{},...]``).
JSON_MAX_BYTES = 6 * MiB
#: One CSV row in characters (its physical lines together): rows are read one at a time, so memory follows the longest.
CSV_MAX_ROW_CHARS = 1 * MiB
#: A PDF: pypdf reads the whole file into memory, and one object per page.
PDF_MAX_BYTES = 20 * MiB
PDF_MAX_PAGES = 10_000
#: Text files are counted in chunks of this many characters (no limit: memory stays constant).
TEXT_CHUNK_CHARS = 64 * 1024

# --- api-processor ---------------------------------------------------------------------------
#: A request body (after base64 decoding; API Gateway itself takes up to 10 MB).
API_MAX_BODY_BYTES = 64 * 1024

# --- SQS consumers (data-processor, notification-handler) and file-processor's SQS bodies --------
#: One message body, SQS's own maximum. A batch holds params ``<queue>.batch_size`` of them.
SQS_MAX_MESSAGE_BYTES = 256 * 1024

# --- scheduler -------------------------------------------------------------------------------
#: An EventBridge event, EventBridge's own limit.
SCHEDULED_EVENT_MAX_BYTES = 256 * 1024

# --- auth-handler ----------------------------------------------------------------------------
#: A bearer token: params ``jwt.max_token_bytes`` sets JWT_MAX_TOKEN_BYTES (common.config); this is its default.
JWT_MAX_TOKEN_BYTES_DEFAULT = 8192


class Limit(NamedTuple):
    """One limit a function enforces, for the workbook's tables and probes."""

    name: str          # the constant above (or the environment variable that overrides it)
    value: int
    unit: str
    what: str


#: The limits each function enforces on its input, keyed as everywhere else (params, CLI, outputs).
LIMITS: dict[str, tuple[Limit, ...]] = {
    "file-processor": (
        Limit("MAX_OBJECT_BYTES", MAX_OBJECT_BYTES_DEFAULT, "bytes", "any object (params uploads.max_object_mb)"),
        Limit("IMAGE_MAX_PIXELS", IMAGE_MAX_PIXELS, "pixels", "an image's width x height"),
        Limit("IMAGE_MAX_CHANNELS", IMAGE_MAX_CHANNELS, "bytes/pixel", "a decoded image's channels"),
        Limit("IMAGE_MAX_DECODE_BYTES", IMAGE_MAX_DECODE_BYTES, "bytes", "what decoding an image holds"),
        Limit("PNG_MAX_TEXT_BYTES", PNG_MAX_TEXT_BYTES, "bytes", "a PNG's decompressed text chunks"),
        Limit("JSON_MAX_BYTES", JSON_MAX_BYTES, "bytes", "a JSON document"),
        Limit("CSV_MAX_ROW_CHARS", CSV_MAX_ROW_CHARS, "characters", "one CSV row"),
        Limit("PDF_MAX_BYTES", PDF_MAX_BYTES, "bytes", "a PDF"),
        Limit("PDF_MAX_PAGES", PDF_MAX_PAGES, "pages", "a PDF's pages"),
        Limit("SQS_MAX_MESSAGE_BYTES", SQS_MAX_MESSAGE_BYTES, "bytes", "an SQS body carrying S3 events"),
    ),
    "api-processor": (Limit("API_MAX_BODY_BYTES", API_MAX_BODY_BYTES, "bytes", "a request body"),),
    "data-processor": (Limit("SQS_MAX_MESSAGE_BYTES", SQS_MAX_MESSAGE_BYTES, "bytes",
                             "a message body (x params task_queue.batch_size a batch)"),),
    "notification-handler": (Limit("SQS_MAX_MESSAGE_BYTES", SQS_MAX_MESSAGE_BYTES, "bytes",
                                   "a message body or SNS Message (x params notification_queue.batch_size a batch)"),),
    "scheduler": (Limit("SCHEDULED_EVENT_MAX_BYTES", SCHEDULED_EVENT_MAX_BYTES, "bytes", "the scheduled event"),),
    "auth-handler": (Limit("JWT_MAX_TOKEN_BYTES", JWT_MAX_TOKEN_BYTES_DEFAULT, "bytes",
                           "the bearer token (params jwt.max_token_bytes)"),),
}


def jpeg_draft_scale(width: int, height: int, target: tuple[int, int]) -> int:
    """The DCT scale (1, 2, 4 or 8) Pillow's ``draft`` decodes a ``width`` x ``height`` JPEG at, for ``target``."""
    scale = min(width // max(target[0], 1), height // max(target[1], 1))
    return next(a for a in (8, 4, 2, 1) if scale >= a)


def image_decode_bytes(width: int, height: int, bytes_per_pixel: int, *, scale: int = 1,
                       progressive_samples: float = 0.0) -> int:
    """What decoding an image holds at once: its pixels at ``scale`` (JPEG's draft), plus for a progressive JPEG
    libjpeg's coefficients, 2 bytes for each of ``progressive_samples`` samples a pixel at full size (4 for CMYK,
    3 for 4:4:4 RGB, 1.5 for 4:2:0)."""
    decoded = -(-width // scale) * -(-height // scale) * bytes_per_pixel
    return int(decoded + 2 * progressive_samples * width * height)


def image_decode_budget_bytes(memory_mb: int | None) -> int:
    """What decoding one image may hold at a configured memory of ``memory_mb`` (None or 0: unknown, no memory cap)."""
    if not memory_mb:
        return IMAGE_MAX_DECODE_BYTES
    return max(0, min(IMAGE_MAX_DECODE_BYTES, (int(memory_mb) - IMAGE_RESERVED_MB) * MiB))


__all__ = ["API_MAX_BODY_BYTES", "CSV_MAX_ROW_CHARS", "IMAGE_MAX_CHANNELS", "IMAGE_MAX_DECODE_BYTES",
           "IMAGE_MAX_PIXELS", "IMAGE_RESERVED_MB", "JSON_MAX_BYTES", "JWT_MAX_TOKEN_BYTES_DEFAULT", "LIMITS",
           "MAX_OBJECT_BYTES_DEFAULT", "PDF_MAX_BYTES", "PDF_MAX_PAGES", "PNG_MAX_TEXT_BYTES",
           "SCHEDULED_EVENT_MAX_BYTES", "SQS_MAX_MESSAGE_BYTES", "TEXT_CHUNK_CHARS", "Limit", "MiB",
           "image_decode_budget_bytes", "image_decode_bytes", "jpeg_draft_scale"]
