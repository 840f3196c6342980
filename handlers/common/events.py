"""Checks and decoders for incoming event shapes and message bodies, shared by the handlers."""
from __future__ import annotations

import json
import math
from typing import Any

from common.errors import InvalidEvent, PayloadTooLarge, ValidationError

#: How deeply a JSON document the handlers read may nest. Python's json module gives up near 1,000
#: levels (fewer the deeper the caller's stack), and nothing the stack sends nests more than a few.
MAX_JSON_DEPTH = 64


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
        if not isinstance(record_source, str) or record_source not in sources:
            raise InvalidEvent(f"record {index} comes from {str(record_source)[:40]!r}, expected " + " or ".join(sources))
    return found


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(text: str, what: str, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text as RFC 8259 defines it, nested at most ``max_depth`` levels; else :class:`ValidationError`.

    Unlike ``json.loads`` it rejects ``NaN`` and ``Infinity`` (PostgreSQL's jsonb and most JSON
    readers refuse them), and it turns the errors json raises besides ``JSONDecodeError`` (a
    ValueError on an integer of more than 4,300 digits) into the same clear 400. The depth limit
    is explicit because json's own, a RecursionError, depends on how deep the caller's stack
    already is: the same document would parse in one handler and fail in another.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise ValidationError(f"{what} nests more than {max_depth} levels deep") from None
    except json.JSONDecodeError as error:
        raise ValidationError(f"{what} is not valid JSON: {error.msg} at position {error.pos}") from None
    except ValueError as error:
        raise ValidationError(f"{what} is not valid JSON: {str(error)[:120]}") from None
    if _depth_exceeds(value, max_depth):
        raise ValidationError(f"{what} nests more than {max_depth} levels deep")
    return value


def _depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether containers nest more than ``max_depth`` levels (iterative: any depth is safe)."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            if depth >= max_depth:
                return True
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def decode_json_text(text: Any, what: str, max_bytes: int, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON message body: UTF-8 text of at most ``max_bytes`` bytes, nested at most ``max_depth`` levels."""
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
    return loads_strict(decoded, what, max_depth)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which PostgreSQL cannot store"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not UTF-8"
    return None


def check_storable(value: Any, what: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`ValidationError` unless ``value`` can be stored as PostgreSQL text or jsonb.

    JSON allows what PostgreSQL refuses: NUL characters, lone UTF-16 surrogates (from ``\\ud800``
    escapes) and, through Python, non-finite numbers. Nesting is bounded by ``max_depth``.
    Iterative, so a deep document cannot exhaust the stack here.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                raise ValidationError(f"{what} {problem}")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationError(f"{what} holds a number JSON cannot represent ({item})")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise ValidationError(f"{what} nests more than {max_depth} levels deep")
            if isinstance(item, dict):
                for key, child in item.items():
                    pending.append((key, depth + 1))
                    pending.append((child, depth + 1))
            else:
                pending.extend((child, depth + 1) for child in item)


__all__ = ["MAX_JSON_DEPTH", "check_storable", "decode_json_text", "loads_strict", "records"]
