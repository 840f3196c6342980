"""A reference REPORT parser for the tests: plain Python, one line at a time, exact arithmetic.

It shares no code and no pattern with ``workbook.telemetry``: a text line is read as a walk over
its whitespace-separated tokens (words up to a ``Label:`` token, then the value, then the unit),
a JSON record through ``json.loads`` with ``Decimal`` numbers, a prefix token by token, and times
as integer nanoseconds from the digits. It is slow and meant to be obviously right.

``reference_parse(items)`` returns, per input item, ``("report", row)``, ``("malformed", None)``
or ``("ignored", None)``.
"""
from __future__ import annotations

import calendar
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

TEXT_LABELS = {  # label -> (column, unit or None, integer?)
    "REPORT RequestId": ("request_id", None, False),
    "Duration": ("duration_ms", "ms", False),
    "Billed Duration": ("billed_duration_ms", "ms", True),
    "Memory Size": ("memory_size_mb", "MB", True),
    "Max Memory Used": ("max_memory_used_mb", "MB", True),
    "Init Duration": ("init_duration_ms", "ms", False),
    "Restore Duration": ("restore_duration_ms", "ms", False),
    "Billed Restore Duration": ("billed_restore_duration_ms", "ms", True),
    "Status": ("status_raw", None, False),
    "Error Type": ("error_type", None, False),
    "XRAY TraceId": ("xray_trace_id", None, False),
}
TEXT_REQUIRED = ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")
JSON_METRICS = {  # key -> (column, integer?)
    "durationMs": ("duration_ms", False),
    "billedDurationMs": ("billed_duration_ms", True),
    "memorySizeMB": ("memory_size_mb", True),
    "maxMemoryUsedMB": ("max_memory_used_mb", True),
    "initDurationMs": ("init_duration_ms", False),
    "restoreDurationMs": ("restore_duration_ms", False),
    "billedRestoreDurationMs": ("billed_restore_duration_ms", True),
}
NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
STREAM = re.compile(r"[0-9]{4}/[0-9]{2}/[0-9]{2}/\[[^\]\s]*\][0-9A-Za-z]*")
DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
CLOCK = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?")
EMPTY_ROW = {
    "request_id": None, "function": None, "timestamp_ns": None, "duration_ms": None, "billed_duration_ms": None,
    "memory_size_mb": None, "max_memory_used_mb": None, "init_duration_ms": None, "restore_duration_ms": None,
    "billed_restore_duration_ms": None, "status_raw": None, "error_type": None, "xray_trace_id": None,
}


def reference_parse(items: list[Any]) -> list[tuple[str, dict | None]]:
    return [_one(item) for item in items]


def _one(item: Any) -> tuple[str, dict | None]:
    event_ns, function = None, None
    if isinstance(item, dict):
        message = item.get("message") or item.get("@message") or ""
        event_ns = _event_ns(item.get("timestamp", item.get("@timestamp")))
        group = item.get("function") or item.get("logGroupName") or item.get("@log")
        function = group.split("/aws/lambda/", 1)[1] if group and "/aws/lambda/" in group else group
    else:
        message = item
    stripped = message.strip()
    if len(stripped) > 1 and stripped[0] == "|" and stripped[-1] == "|":   # a markdown table row: its cells
        message = " ".join(cell.strip() for cell in stripped[1:-1].split("|"))
    prefix_ns, body = _split_prefix(message)
    if body is None:
        tokens = message.split()
        pairs = zip(tokens, tokens[1:], strict=False)
        return ("malformed", None) if any(a == "REPORT" and b == "RequestId:" for a, b in pairs) else ("ignored", None)
    kind, row = _text(body) if body.startswith("REPORT") else _json(body)
    if kind != "report":
        return kind, None
    row["function"] = function
    for stamp in (event_ns, prefix_ns, row.pop("record_ns", None)):
        if stamp is not None:
            row["timestamp_ns"] = stamp
            break
    return "report", row


def _split_prefix(line: str) -> tuple[int | None, str | None]:
    """(time of the prefix or None, the record) or (None, None) when the line is no record after a known prefix."""
    rest, stamp, streams = line.lstrip(), None, {"before": 0, "after": 0}
    while True:
        if (rest.startswith("REPORT") and (len(rest) == 6 or rest[6].isspace())) or rest.startswith("{"):
            if streams["before"] and stamp is None:
                return None, None
            return stamp, rest
        parts = rest.split(None, 1)
        if not parts:
            return None, None
        token, rest = parts[0], (parts[1] if len(parts) > 1 else "")
        side = "before" if stamp is None else "after"
        if STREAM.fullmatch(token) and streams[side] == 0:   # one log stream name each side of the time
            streams[side] += 1
        elif stamp is None and "T" in token and DATE.fullmatch(token.split("T", 1)[0]):
            stamp = _iso_ns(*token.split("T", 1))
        elif stamp is None and DATE.fullmatch(token) and rest.split(None, 1):
            clock, *after = rest.split(None, 1)
            stamp, rest = _iso_ns(token, clock), (after[0] if after else "")
        else:
            return None, None
        if stamp is None and not streams["before"]:
            return None, None
        if stamp == -1:
            return None, None
        rest = rest.lstrip()


def _iso_ns(day: str, clock: str) -> int:
    """ns since the epoch from an ISO date and time, by integer arithmetic; -1 if not a time."""
    d, c = DATE.fullmatch(day), CLOCK.fullmatch(clock)
    if not d or not c:
        return -1
    year, month, dom = (int(x) for x in d.groups())
    hour, minute, second = (int(x) for x in c.groups()[:3])
    fraction, zone = c.group(4) or "", c.group(5)
    seconds = calendar.timegm((year, month, dom, hour, minute, second, 0, 0, 0))
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60)
    return seconds * 10**9 + int(fraction.ljust(9, "0"))


def _event_ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value * 10**6
    text = str(value)
    if text.isdigit():
        return int(text) * 10**6
    day, _, clock = text.replace("T", " ").partition(" ")
    stamp = _iso_ns(day, clock)
    return None if stamp == -1 else stamp


def _text(body: str) -> tuple[str, dict | None]:
    tokens = body.split()
    found: dict[str, tuple[str | None, str | None]] = {}
    words: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.endswith(":") and len(token) > 1:
            label = " ".join([*words, token[:-1]])
            words = []
            value = tokens[i + 1] if i + 1 < len(tokens) else None
            i += 2
            unit = None
            if i < len(tokens) and tokens[i] in ("ms", "MB"):   # the unit, whatever the field
                unit = tokens[i]
                i += 1
            found.setdefault(label, (value, unit))
        else:
            words.append(token)
            i += 1
    row = dict(EMPTY_ROW)
    for label, (column, unit, integer) in TEXT_LABELS.items():
        if label not in found:
            continue
        value, seen_unit = found[label]
        if unit is None:
            row[column] = value
            continue
        if value is None or not NUMBER.fullmatch(value) or seen_unit != unit:
            return "malformed", None
        number = Decimal(value)
        if integer and number != number.to_integral_value():
            return "malformed", None
        row[column] = int(number) if integer else number
    if any(row[column] is None for column in TEXT_REQUIRED):
        return "malformed", None
    return "report", row


def _json(body: str) -> tuple[str, dict | None]:
    looks_like_report = re.search(r'"type"\s*:\s*"platform\.report"', body) is not None
    try:
        doc = json.loads(body, parse_float=Decimal)
    except ValueError:
        return ("malformed" if looks_like_report else "ignored"), None
    if not isinstance(doc, dict) or doc.get("type") != "platform.report":
        return "ignored", None
    record = doc.get("record")
    metrics = record.get("metrics") if isinstance(record, dict) else None
    if not isinstance(metrics, dict) or not isinstance(record.get("requestId"), str) or not record["requestId"]:
        return "malformed", None
    row = dict(EMPTY_ROW)
    row["request_id"] = record["requestId"]
    for key, (column, integer) in JSON_METRICS.items():
        value = metrics.get(key)
        if value is None:
            continue
        try:
            number = Decimal(value)
        except (InvalidOperation, TypeError):
            return "malformed", None
        if integer and number != number.to_integral_value():
            return "malformed", None
        row[column] = int(number) if integer else number
    if row["duration_ms"] is None:
        return "malformed", None
    row["status_raw"] = record.get("status")
    row["error_type"] = record.get("errorType")
    tracing = record.get("tracing")
    if isinstance(tracing, dict):
        root = re.search(r"Root=([0-9A-Za-z-]+)", str(tracing.get("value", "")))
        row["xray_trace_id"] = root.group(1) if root else None
    if isinstance(doc.get("time"), str):
        day, _, clock = doc["time"].partition("T")
        stamp = _iso_ns(day, clock)
        row["record_ns"] = None if stamp == -1 else stamp
    return "report", row


def status_of(row: dict) -> str:
    """ok / error / timeout / out_of_memory, as the workbook names them."""
    raw = (row["status_raw"] or "success").lower()
    if row["error_type"] and "OutOfMemory" in row["error_type"]:
        return "out_of_memory"
    if raw == "timeout":
        return "timeout"
    return "ok" if raw in ("success", "ok") else "error"


def start_type_of(row: dict) -> str:
    if row["restore_duration_ms"] is not None:
        return "restore"
    return "cold" if row["init_duration_ms"] is not None else "warm"
