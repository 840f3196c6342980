"""Generated REPORT records in every documented shape: parse_reports gives the values they were made from.

Each record is drawn as values (ids, durations as exact decimals, memory, start type, status, a
time to the ns at some precision), then written out as a tool would write it: text with any
whitespace between fields or a ``platform.report`` record in any key order, compact or spaced, a
Managed Instances record, after a timestamp prefix or inside a FilterLogEvents / Logs Insights
event, with START, END and application lines in between. Two checks on every batch: the rows
equal the drawn values, and the reference parser (``reference.py``) agrees with them.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.telemetry.test_report_collection import parsed_rows, reference_frame_agrees
from workbook.logs import parse_reports
from workbook.telemetry import fastpath

SEPARATORS = ("\t", " ", "  ", "\t ", " \t", "    ", "\t\t")
NOISE = ("START RequestId: {id} Version: $LATEST", "END RequestId: {id}", "an application log line for {id}",
         '{{"time":"2024-01-01T00:00:00.000Z","type":"platform.start","record":{{"requestId":"{id}","version":"$LATEST"}}}}',
         "INIT_START Runtime Version: python:3.12.v38")


class Chooser:
    """Draws through hypothesis (``data``) or a seeded ``random.Random`` (``rng``), with one interface."""

    def __init__(self, data=None, rng=None):
        self.data, self.rng = data, rng

    def choice(self, options):
        options = list(options)
        return self.data.draw(st.sampled_from(options)) if self.data else self.rng.choice(options)

    def integer(self, lo, hi):
        return self.data.draw(st.integers(lo, hi)) if self.data else self.rng.randint(lo, hi)

    def chance(self, p=0.5):
        return self.data.draw(st.booleans()) if self.data else self.rng.random() < p

    def shuffled(self, items):
        items = list(items)
        if self.data:
            return self.data.draw(st.permutations(items))
        self.rng.shuffle(items)
        return items


def _time(c: Chooser, digits: int) -> int:
    """A time in ns with ``digits`` fraction digits (the rest are zeros, as the writer would print)."""
    seconds = c.integer(946_684_800, 4_102_444_799)
    fraction = c.integer(0, 10**digits - 1) * 10 ** (9 - digits) if digits else 0
    return seconds * 10**9 + fraction


def _iso(ns: int, digits: int, sep: str = "T", zone: str = "Z", offset_s: int = 0) -> str:
    seconds, fraction = divmod(ns, 10**9)
    text = time.strftime(f"%Y-%m-%d{sep}%H:%M:%S", time.gmtime(seconds + offset_s))
    return text + (f".{fraction:09d}"[: digits + 1] if digits else "") + zone


def draw_record(c: Chooser) -> tuple[object, dict]:
    """One record written in a drawn shape, and the row it must parse to."""
    fmt = c.choice(["text", "json", "json"])
    row = {"request_id": str(uuid.UUID(int=c.integer(0, 2**128 - 1))), "function": None, "timestamp": None,
           "error_type": None, "xray_trace_id": None, "init_duration_ms": None, "restore_duration_ms": None,
           "billed_restore_duration_ms": None}
    scale = 100 if fmt == "text" else 1000
    duration = Decimal(c.integer(0, 900_000 * scale)) / scale
    memory = c.integer(128, 10_240)
    row.update(duration_ms=duration, billed_duration_ms=c.integer(1, 900_000), memory_size_mb=memory,
               max_memory_used_mb=c.integer(1, memory))
    start = c.choice(["warm", "warm", "cold", "restore"])
    if start == "cold":
        row["init_duration_ms"] = Decimal(c.integer(1, 10_000 * scale)) / scale
    elif start == "restore":
        row["restore_duration_ms"] = Decimal(c.integer(1, 10_000 * scale)) / scale
        row["billed_restore_duration_ms"] = c.integer(0, 10_000)
    ending = c.choice(["ok", "ok", "timeout", "out_of_memory", "error"])
    if ending in ("out_of_memory", "error"):
        row["error_type"] = "Runtime.OutOfMemory" if ending == "out_of_memory" else "Runtime.ExitError"
    if c.chance(0.3):
        row["xray_trace_id"] = f"1-{c.integer(0, 16**8 - 1):08x}-{c.integer(0, 16**24 - 1):024x}"
    row.update(status=ending, start_type=start, cold_start=start != "warm")
    body = _text(c, row) if fmt == "text" else _json(c, row)
    line = _prefixed(c, row, body)
    return _wrapped(c, row, line), row


def _text(c: Chooser, row: dict) -> str:
    fields = [f"REPORT RequestId: {row['request_id']}", f"Duration: {row['duration_ms']:.2f} ms",
              f"Billed Duration: {row['billed_duration_ms']} ms", f"Memory Size: {row['memory_size_mb']} MB",
              f"Max Memory Used: {row['max_memory_used_mb']} MB"]
    if row["init_duration_ms"] is not None:
        fields.append(f"Init Duration: {row['init_duration_ms']:.2f} ms")
    if row["restore_duration_ms"] is not None:
        fields += [f"Restore Duration: {row['restore_duration_ms']:.2f} ms",
                   f"Billed Restore Duration: {row['billed_restore_duration_ms']} ms"]
    if row["status"] == "timeout":
        fields.append("Status: timeout")
    elif row["error_type"]:
        fields += ["Status: error", f"Error Type: {row['error_type']}"]
    line = fields[0] + "".join(c.choice(SEPARATORS) + field for field in fields[1:]) + c.choice(["", "\t", " ", "\n"])
    if row["xray_trace_id"]:
        line += f"\nXRAY TraceId: {row['xray_trace_id']}\tSegmentId: 0a1b2c3d4e5f6789\tSampled: true\t"
    return line


def _json(c: Chooser, row: dict) -> str:
    as_float = c.chance(0.2)        # some emitters write every number as a float

    def integer(value):
        return Decimal(value).quantize(Decimal("0.0")) if as_float else value

    managed = c.chance(0.2) and row["start_type"] == "warm"
    metrics = {"durationMs": row["duration_ms"]}
    if managed:  # Lambda Managed Instances: the duration alone
        for name in ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb"):
            row[name] = None
    else:
        metrics.update(billedDurationMs=integer(row["billed_duration_ms"]), memorySizeMB=integer(row["memory_size_mb"]),
                       maxMemoryUsedMB=integer(row["max_memory_used_mb"]))
    if row["init_duration_ms"] is not None:
        metrics["initDurationMs"] = row["init_duration_ms"]
    if row["restore_duration_ms"] is not None:
        metrics.update(restoreDurationMs=row["restore_duration_ms"],
                       billedRestoreDurationMs=integer(row["billed_restore_duration_ms"]))
    status = {"ok": "success", "timeout": "timeout"}.get(row["status"], "error")
    record = {"requestId": row["request_id"], "metrics": {key: metrics[key] for key in c.shuffled(metrics)}, "status": status}
    if row["error_type"]:
        record["errorType"] = row["error_type"]
    if row["xray_trace_id"]:
        record["tracing"] = {"spanId": "0a1b2c3d4e5f6789", "type": "X-Amzn-Trace-Id",
                             "value": f"Root={row['xray_trace_id']};Parent=1122334455667788;Sampled=1"}
    if managed and c.chance():
        record["spans"] = [{"name": "responseLatency", "start": "2025-01-01T00:00:00.000Z", "durationMs": 0.5}]
    record = {key: record[key] for key in c.shuffled(record)}
    doc = {"type": "platform.report", "record": record}
    if c.chance(0.8):
        record_ns = _time(c, 3)
        doc["time"] = _iso(record_ns, 3)
        row["timestamp"] = record_ns
    doc = {key: doc[key] for key in c.shuffled(doc)}
    separators = c.choice([(",", ":"), (", ", ": ")])
    return json.dumps(doc, separators=separators, default=float)  # a Decimal as a JSON number


def _prefixed(c: Chooser, row: dict, body: str) -> str:
    """The record after a prefix, as an export, sam logs, aws logs tail or an Insights copy writes it."""
    shape = c.choice(["none", "none", "export", "sam", "tail", "insights", "offset", "nanos"])
    if shape == "none":
        return body
    stream = f"2024/01/02/[{c.choice(['$LATEST', '7', '42'])}]{c.integer(0, 16**32 - 1):032x}"
    digits = {"export": 3, "sam": c.choice([0, 6]), "tail": 6, "insights": 3, "offset": c.choice([0, 1, 3]), "nanos": 9}[shape]
    ns = _time(c, digits)
    row["timestamp"] = ns
    sep = c.choice([" ", "\t", "   "])
    if shape == "export":
        return _iso(ns, 3) + sep + body
    if shape == "sam":
        return f"{stream} {_iso(ns, digits, zone='')} {body}"
    if shape == "tail":
        return f"{_iso(ns, 6, zone='+00:00')} {stream} {body}"
    if shape == "insights":
        return _iso(ns, 3, sep=" ", zone="") + "\t" + body
    if shape == "offset":
        hours = c.integer(-11, 12)
        return _iso(ns, digits, zone=f"{'+' if hours >= 0 else '-'}{abs(hours):02d}:30", offset_s=hours * 3600 + (1800 if hours >= 0 else -1800)) + sep + body
    return _iso(ns, 9) + sep + body


def _wrapped(c: Chooser, row: dict, line: str) -> object:
    """The line itself, or inside a FilterLogEvents or Logs Insights event (whose time wins)."""
    shape = c.choice(["line", "line", "line", "filter", "insights"])
    if shape == "line":
        return line
    ns = _time(c, 3)
    row["timestamp"] = ns
    if shape == "filter":
        row["function"] = "lwb-dev-d01-api-processor"
        return {"timestamp": ns // 10**6, "message": line, "logGroupName": "/aws/lambda/lwb-dev-d01-api-processor",
                "logStreamName": "2024/01/02/[$LATEST]00112233445566778899aabbccddeeff"}
    row["function"] = "lwb-dev-d01-scheduler"
    return {"@timestamp": _iso(ns, 3, sep=" ", zone=""), "@message": line, "@log": "123456789012:/aws/lambda/lwb-dev-d01-scheduler"}


def draw_batch(c: Chooser, size: int) -> tuple[list, list[dict]]:
    items, rows = [], []
    for _ in range(size):
        if c.chance(0.15):
            items.append(c.choice(NOISE).format(id=uuid.UUID(int=c.integer(0, 2**128 - 1))))
            continue
        record, row = draw_record(c)
        items.append(record)
        rows.append(row)
    return items, rows


def expected(row: dict) -> dict:
    out = dict(row)
    for name in ("duration_ms", "init_duration_ms", "restore_duration_ms"):
        out[name] = None if row[name] is None else float(row[name])
    return out


def check(items, rows):
    df = parse_reports(items)
    assert df.attrs["malformed"] == 0
    assert len(df) == len(rows)
    for i, (got, row) in enumerate(zip(parsed_rows(df), rows, strict=True)):
        assert got == expected(row), (i, items[:50])
    reference_frame_agrees(items, df)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_generated_records_parse_to_their_values(data):
    # GIVEN a batch of records in drawn shapes, with other lines in between
    items, rows = draw_batch(Chooser(data=data), data.draw(st.integers(1, 12)))
    # WHEN parse_reports reads them THEN every row holds the drawn values, and the reference agrees
    check(items, rows)


def test_a_large_generated_batch_takes_the_fast_paths_and_agrees(monkeypatch):
    # GIVEN 6,000 plain lines in every shape, read in chunks of 1,000 (the fast paths' unit, and threads)
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 1_000)
    chooser = Chooser(rng=random.Random(20261201))
    items, rows = [], []
    while len(items) < 6_000:
        record, row = draw_record(chooser)
        if isinstance(record, str):
            items.append(record)
            rows.append(row)
    # WHEN parsed in one call THEN every row holds its drawn values and the reference agrees
    check(items, rows)
