"""The fields of a REPORT record: their patterns in both formats, their types, and extraction by regular expression.

Text REPORT lines are matched as people and tools really leave them: any run of whitespace
between fields (tabs as Lambda writes them, spaces from a console copy, one space in the AWS
docs), and fields that other tools add in between (the Datadog extension's ``Runtime Duration``).
A field's label found with a value that is not a number in the right unit makes the line
malformed rather than dropping the field quietly.

``extract_fields`` runs one Arrow RE2 pass per field over a whole batch (one short pattern per
field: RE2 finds a literal-prefixed match quickly and only runs its slower capturing engine on
the few matched characters). Arrow's string kernels release the GIL, so large batches extract
one field per thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Field:
    """One field of a REPORT record: its column, its pattern (group ``v``), its type and, in text, its unit."""

    column: str
    pattern: str
    kind: str = "str"            # str | float | int
    unit: str | None = None      # text only: the pattern also captures the unit in group ``u``


_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_JSON_NUMBER = r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_VALUE_UNIT = r":\s*(?P<v>[0-9.]*)(?P<u>\s*[A-Za-z]*)"   # a number, a space and its unit, validated after


def _text(column: str, label: str, kind: str, unit: str) -> Field:
    return Field(column, label + _VALUE_UNIT, kind, unit)


# Each pattern starts with a literal, which RE2 finds fast. Duration follows the request id
# directly, or after Init Duration (Datadog's extension adds "Runtime Duration" and "Post Runtime Duration" later in the
# line). "Restore Duration" is read with every "Billed Restore Duration" masked (``_MASK``).
TEXT_FIELDS = (
    Field("request_id", r"REPORT\s+RequestId:[ \t]*(?P<v>[^\s]+)"),
    # (Init Duration may come first: the custom-runtime page of the AWS docs writes it so.)
    _text("duration_ms", r"RequestId:[ \t]*[^\s]+\s+(?:Init\s+Duration:\s*[0-9.]+\s*ms\s+)?Duration", "float", "ms"),
    _text("billed_duration_ms", r"Billed\s+Duration", "int", "ms"),
    _text("memory_size_mb", r"Memory\s+Size", "int", "MB"),
    _text("max_memory_used_mb", r"Max\s+Memory\s+Used", "int", "MB"),
    _text("init_duration_ms", r"Init\s+Duration", "float", "ms"),
    _text("restore_duration_ms", r"Restore\s+Duration", "float", "ms"),
    _text("billed_restore_duration_ms", r"Billed\s+Restore\s+Duration", "int", "ms"),
    Field("status_raw", r"Status:\s*(?P<v>[A-Za-z_.]+)"),
    Field("error_type", r"Error\s+Type:\s*(?P<v>[A-Za-z0-9_.]+)"),
    Field("xray_trace_id", r"XRAY\s+TraceId:\s*(?P<v>[0-9A-Za-z-]+)"),
)
_MASK = ("restore_duration_ms", r"Billed\s+Restore\s+Duration", "Billed-Restore-Duration")


def _metric(column: str, key: str, kind: str) -> Field:
    # Inside the "metrics" object (no nested object there): a Managed Instances record also
    # carries "spans", whose entries have their own "durationMs".
    return Field(column, rf'"metrics"\s*:\s*\{{[^{{}}]*?"{key}"\s*:\s*(?P<v>{_JSON_NUMBER})', kind)


JSON_FIELDS = (
    Field("request_id", r'"requestId"\s*:\s*"(?P<v>[^"]+)"'),
    _metric("duration_ms", "durationMs", "float"),
    _metric("billed_duration_ms", "billedDurationMs", "int"),
    _metric("memory_size_mb", "memorySizeMB", "int"),
    _metric("max_memory_used_mb", "maxMemoryUsedMB", "int"),
    _metric("init_duration_ms", "initDurationMs", "float"),
    _metric("restore_duration_ms", "restoreDurationMs", "float"),
    _metric("billed_restore_duration_ms", "billedRestoreDurationMs", "int"),
    Field("status_raw", r'"status"\s*:\s*"(?P<v>[^"]+)"'),
    Field("error_type", r'"errorType"\s*:\s*"(?P<v>[^"]+)"'),
    Field("xray_trace_id", r'"tracing"\s*:\s*\{[^{}]*"value"\s*:\s*"[^"]*Root=(?P<v>[0-9A-Za-z-]+)'),
    Field("time", r'"time"\s*:\s*"(?P<v>[^"]+)"'),
)
JSON_XRAY = next(field for field in JSON_FIELDS if field.column == "xray_trace_id")
# A text line must carry all five; a platform.report record only its request id and duration
# (Lambda Managed Instances report "metrics": {"durationMs": ...} and nothing else).
TEXT_REQUIRED = ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")
JSON_REQUIRED = ("request_id", "duration_ms")
FLOATS = ("duration_ms", "init_duration_ms", "restore_duration_ms")
INTS = ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "billed_restore_duration_ms")
OPTIONAL_TEXT = ("init_duration_ms", "restore_duration_ms", "billed_restore_duration_ms", "status_raw", "error_type",
                 "xray_trace_id")


CHUNK_THREADS = "parse-chunks"
WORKERS = max(2, min(8, os.cpu_count() or 2))
_FIELD_POOL: ThreadPoolExecutor | None = None


def map_fields(function: Callable[[Any], Any], items: Iterable[Any], rows: int) -> list[Any]:
    """``function`` over per-field ``items`` (Arrow's string kernels release the GIL: one field per thread).

    Small inputs, and work already inside a chunk thread, run serially.
    """
    global _FIELD_POOL
    if rows < 20_000 or threading.current_thread().name.startswith(CHUNK_THREADS):
        return list(map(function, items))
    if _FIELD_POOL is None:
        _FIELD_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="parse-reports")
    return list(_FIELD_POOL.map(function, items))


def extract_fields(arr, fields: Iterable[Field]) -> tuple[dict[str, Any], Any]:
    """Each field's value (strings; null where absent) over every line of ``arr``, and the lines to refuse.

    A line is refused (``bad``) where a text field's label is there but its value is not a
    number, or its unit is not the field's.
    """
    def one(field: Field):
        lines = arr
        if field.column == _MASK[0] and field.unit is not None:   # text: not the billed one
            lines = pc.replace_substring_regex(arr, _MASK[1], _MASK[2])
        found = pc.extract_regex(lines, field.pattern)
        value = pc.struct_field(found, "v")
        if field.unit is None:
            return field.column, value, None
        ok = pc.and_(pc.match_substring_regex(value, rf"^{_NUMBER}$"),
                     pc.match_substring_regex(pc.struct_field(found, "u"), rf"^\s+{field.unit}$"))
        return field.column, pc.if_else(ok, value, pa.scalar(None, value.type)), pc.invert(ok)

    cols: dict[str, Any] = {}
    bad = None
    for column, value, refused in map_fields(one, list(fields), len(arr)):
        cols[column] = value
        if refused is not None:
            refused = pc.fill_null(refused, False)
            bad = refused if bad is None else pc.or_(bad, refused)
    return cols, (bad if bad is not None else pa.array(np.zeros(len(arr), dtype=bool)))


def to_numbers(cols: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """FLOATS as float64 and INTS as int64 (Arrow, null where absent), and the lines whose integers are not whole.

    An integer field written with a fraction of zeros (``2600.0``, as some emitters write every
    number) is that integer; any other fraction, or a number past int64, refuses the line. Plain
    digits (up to 18) are read exactly, whatever else is in the batch.
    """
    out = dict(cols)
    not_whole = None
    for name in FLOATS:
        if name in cols:
            out[name] = pc.cast(cols[name], pa.float64())
    for name in INTS:
        if name not in cols:
            continue
        try:
            out[name] = pc.cast(cols[name], pa.int64())
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        # Some value is not plain digits: those are read as doubles, the plain ones still exactly (so
        # a value reads the same whatever else is in its batch).
        text = cols[name]
        plain = pc.fill_null(pc.match_substring_regex(text, r"^-?[0-9]{1,18}$"), False)
        exact = pc.cast(pc.if_else(plain, text, pa.scalar(None, text.type)), pa.int64())
        rest = pc.if_else(plain, pa.scalar(None, text.type), text)
        real = pc.cast(rest, pa.float64())
        # a fraction, or a number past int64 (which the cast below would refuse), refuses the line
        whole = pc.fill_null(pc.and_(pc.equal(real, pc.floor(real)), pc.less(pc.abs(real), 2.0**63)), True)
        out[name] = pc.coalesce(exact, pc.cast(pc.if_else(whole, real, pa.scalar(None, pa.float64())), pa.int64()))
        broken = pc.invert(whole)
        not_whole = broken if not_whole is None else pc.or_(not_whole, broken)
    return out, not_whole
