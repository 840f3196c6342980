"""Checks and decoders for incoming event shapes and message bodies, shared by the handlers."""
from __future__ import annotations

import json
from typing import Any

from common.errors import InvalidEvent, PayloadTooLarge, ValidationError



def records(event: Any, source: str | tuple[str, ...]) -> list[dict[str, Any]]:
    """The ``Records`` of an event whose every record comes from ``source`` (``aws:sqs``, ``aws:sns``...)."""
    sources = (source,) if isinstance(source, str) else source
    if not isinstance(event, dict):
        raise InvalidEvent(f"expected a JSON object event with Records, got {type(event).__name__}")
    found = event.get("Records")
    if not isinstance(found, list) or not found:
        raise InvalidEvent("event has no Records (expected an event from " + " or ".join(sources) + ")")
    for index, record in enumerate(found):
        if not isinstance(record, dict):
            raise InvalidEvent(f"record {index} is not an object")
        record_source = record.get("eventSource") or record.get("EventSource")
        if record_source not in sources:
            raise InvalidEvent(f"record {index} comes from {str(record_source)[:40]!r}, expected " + " or ".join(sources))
    return found


def decode_json_text(text: Any, what: str, max_bytes: int) -> Any:
    """Parse a JSON message body: it must be UTF-8 text of at most ``max_bytes`` bytes."""
    if isinstance(text, (bytes, bytearray)):
        raw = bytes(text)
    elif isinstance(text, str):
        try:
            raw = text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(f"{what} is not valid UTF-8 text") from None
    else:
        raise ValidationError(f"{what} must be a string, got {type(text).__name__}")
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"{what} has {len(raw)} bytes; the limit is {max_bytes}")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{what} is not valid UTF-8 text") from None
    try:
        return json.loads(decoded)
    except ValueError as error:
        raise ValidationError(f"{what} is not valid JSON: {getattr(error, 'msg', error)}") from None


__all__ = ["decode_json_text", "records"]
