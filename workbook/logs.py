"""Lambda REPORT lines into pandas: one row per invocation.

``parse_reports(lines)`` reads both log formats Lambda writes:

* text: ``REPORT RequestId: ...\\tDuration: 12.34 ms\\tBilled Duration: 13 ms\\t...``, with an
  optional ``Init Duration``, ``Status`` / ``Error Type`` and a following ``XRAY TraceId`` line;
* JSON (``logFormat: JSON``): a ``{"type": "platform.report", "record": {...}}`` record.

Parsing is vectorised with Arrow's RE2 kernels (one pass per field over the whole batch), so
a million lines take a second or two rather than the tens of seconds a Python loop needs.
Malformed report lines (truncated, missing a field) are counted in ``df.attrs["malformed"]``
and skipped; lines that are not reports at all (START, END, application logs) are counted in
``df.attrs["ignored"]``.

Loaders: ``load_reports`` reads REPORT lines for functions over a time range. On AWS it uses
Logs Insights (splitting the time range to stay under Insights' 10,000-row limit); everywhere
else, and whenever Insights has nothing useful to say, it uses ``FilterLogEvents``, paginated.
"""
from __future__ import annotations

import logging
import threading
import time
import warnings
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbook import aws
from workbook.errors import WorkbookError

if TYPE_CHECKING:  # pragma: no cover
    from infra.config import Settings

__all__ = [
    "COLUMNS",
    "Status",
    "LogsError",
    "parse_reports",
    "load_reports",
    "load_reports_filter",
    "load_reports_insights",
    "log_group_name",
    "function_from_log_group",
]

log = logging.getLogger(__name__)

COLUMNS = (
    "request_id",
    "function",
    "timestamp",
    "duration_ms",
    "billed_duration_ms",
    "memory_size_mb",
    "max_memory_used_mb",
    "init_duration_ms",
    "cold_start",
    "status",
    "error_type",
    "xray_trace_id",
)

INSIGHTS_ROW_LIMIT = 10_000
REPORT_FILTER_PATTERN = '?REPORT ?"platform.report"'


class Status(str, Enum):
    """How an invocation ended, as its REPORT says."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"


class LogsError(WorkbookError):
    """Reading CloudWatch Logs failed; the message says what to check."""


# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------
# One short pattern per field: RE2 finds a literal-prefixed match quickly and only runs its
# (slower) capturing engine on the few matched characters, which beats one long pattern.
_TEXT_FIELDS = {
    "request_id": r"^REPORT RequestId: (?P<v>[0-9A-Za-z-]+)",
    "duration_ms": r"\tDuration: (?P<v>[0-9]+(?:\.[0-9]+)?) ms",
    "billed_duration_ms": r"\tBilled Duration: (?P<v>[0-9]+) ms",
    "memory_size_mb": r"\tMemory Size: (?P<v>[0-9]+) MB",
    "max_memory_used_mb": r"\tMax Memory Used: (?P<v>[0-9]+) MB",
    "init_duration_ms": r"\tInit Duration: (?P<v>[0-9]+(?:\.[0-9]+)?) ms",
    "status_raw": r"\tStatus: (?P<v>[A-Za-z_]+)",
    "error_type": r"\tError Type: (?P<v>[A-Za-z0-9_.]+)",
    "xray_trace_id": r"XRAY TraceId: (?P<v>[0-9A-Za-z-]+)",
}
_JSON_FIELDS = {
    "request_id": r'"requestId"\s*:\s*"(?P<v>[^"]+)"',
    "duration_ms": r'"durationMs"\s*:\s*(?P<v>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)',
    "billed_duration_ms": r'"billedDurationMs"\s*:\s*(?P<v>[0-9]+)',
    "memory_size_mb": r'"memorySizeMB"\s*:\s*(?P<v>[0-9]+)',
    "max_memory_used_mb": r'"maxMemoryUsedMB"\s*:\s*(?P<v>[0-9]+)',
    "init_duration_ms": r'"initDurationMs"\s*:\s*(?P<v>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)',
    "status_raw": r'"status"\s*:\s*"(?P<v>[^"]+)"',
    "error_type": r'"errorType"\s*:\s*"(?P<v>[^"]+)"',
    "xray_trace_id": r'Root=(?P<v>[0-9A-Za-z-]+)',
    "time": r'"time"\s*:\s*"(?P<v>[^"]+)"',
}
_REQUIRED = ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")
_FLOATS = ("duration_ms", "init_duration_ms")
_INTS = ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb")


def parse_reports(lines: Iterable[str | dict[str, Any]], function: str | None = None) -> pd.DataFrame:
    """Parse REPORT lines (text or JSON ``platform.report``) into one row per invocation.

    ``lines`` holds strings, or dicts as FilterLogEvents returns them (``message``,
    ``timestamp`` in epoch ms, ``logStreamName``; an added ``function`` or ``logGroupName``
    names the function). ``function`` fills the column for plain strings.

    Columns: see ``COLUMNS``; durations in ms, memory in MB, ``timestamp`` in UTC (from the
    event, else the JSON record's ``time``, else NaT). ``df.attrs``: ``malformed`` (report
    lines that could not be parsed: truncated, a field missing), ``ignored`` (other lines:
    START, END, application logs), ``total`` (lines read).
    """
    messages, timestamps, functions = _split_input(lines, function)
    total = len(messages)
    if total == 0:
        return _empty(total=0, malformed=0, ignored=0)
    arr = messages if isinstance(messages, pa.Array) else pa.array(messages, type=pa.large_string(), from_pandas=True)
    return _parse_arrow(arr, timestamps, functions)


def _split_input(lines: Iterable[Any], function: str | None) -> tuple[Any, np.ndarray | None, list | None]:
    if isinstance(lines, (str, bytes)):
        lines = [lines]
    if isinstance(lines, pd.Series):
        lines = lines.tolist()
    lines = lines if isinstance(lines, list) else list(lines)
    if not lines:
        return [], None, None
    first = lines[0]
    if isinstance(first, str):
        arr = _strings_to_arrow(lines)
        if arr is not None:  # the common case, a list of strings: straight into Arrow
            return arr, None, ([function] * len(lines) if function else None)
    messages, timestamps, functions = [], [], []
    for item in lines:
        if isinstance(item, dict):
            messages.append(item.get("message") or item.get("@message"))
            timestamps.append(_to_epoch_ms(item.get("timestamp", item.get("@timestamp"))))
            functions.append(
                item.get("function")
                or function_from_log_group(item.get("logGroupName") or item.get("@log"))
                or function
            )
        else:
            messages.append(item.decode() if isinstance(item, bytes) else item)
            timestamps.append(np.nan)
            functions.append(function)
    return messages, np.asarray(timestamps, dtype="float64"), functions


def _strings_to_arrow(lines: list) -> Any:
    """A list of str as an Arrow array: one join and one copy (4x faster than ``pa.array``).

    Returns None when the list holds anything but strings.
    """
    try:
        joined = "".join(lines)
    except TypeError:
        return None
    data = joined.encode("utf-8")
    if len(data) != len(joined):  # non-ASCII text: character and byte offsets differ
        return pa.array(lines, type=pa.large_string())
    lengths = np.fromiter(map(len, lines), dtype=np.int64, count=len(lines))
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(lines), pa.py_buffer(offsets), pa.py_buffer(data))


def _to_epoch_ms(value: Any) -> float:
    if value is None:
        return np.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, datetime):
        return pd.Timestamp(value).tz_localize("UTC").value / 1e6 if value.tzinfo is None else value.timestamp() * 1000.0
    text = str(value)
    if text.isdigit():
        return float(text)
    try:  # Insights: "2024-01-01 12:00:00.000" (UTC)
        stamp = pd.Timestamp(text)
    except ValueError:
        return np.nan
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return stamp.value / 1e6


_POOL: Any = None


def _pool():
    """Arrow's string kernels release the GIL: run one field per thread."""
    global _POOL
    if _POOL is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)), thread_name_prefix="parse-reports")
    return _POOL


def _extract_all(arr, patterns: dict[str, str]) -> dict[str, Any]:
    def one(item):
        name, pattern = item
        return name, pc.struct_field(pc.extract_regex(arr, pattern), "v")

    if len(arr) < 20_000 or threading.current_thread().name.startswith(_CHUNK_THREADS):
        return dict(map(one, patterns.items()))
    return dict(_pool().map(one, patterns.items()))


_CHUNK_THREADS = "parse-chunks"
_CHUNK_POOL: Any = None


def _map_chunks(function, arr) -> list:
    """``function`` over chunks of ``arr``, on threads: numpy and Arrow release the GIL in bulk work."""
    global _CHUNK_POOL
    chunks = [arr.slice(i, _FAST_CHUNK) for i in range(0, len(arr), _FAST_CHUNK)]
    if threading.current_thread().name.startswith(_CHUNK_THREADS):
        return [function(chunk) for chunk in chunks]
    if _CHUNK_POOL is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _CHUNK_POOL = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)), thread_name_prefix=_CHUNK_THREADS)
    return list(_CHUNK_POOL.map(function, chunks))


def _parse_arrow(arr, timestamps: np.ndarray | None, functions: list | None) -> pd.DataFrame:
    total = len(arr)
    arr = pc.fill_null(arr, "")
    is_text = pc.starts_with(arr, "REPORT")
    is_json = pc.and_(pc.starts_with(arr, "{"), pc.match_substring(arr, "platform.report"))
    n_text = pc.sum(pc.cast(is_text, pa.int64())).as_py() or 0
    n_json = pc.sum(pc.cast(is_json, pa.int64())).as_py() or 0
    frames = []
    malformed = 0
    for count, mask, patterns, is_json_format in ((n_text, is_text, _TEXT_FIELDS, False), (n_json, is_json, _JSON_FIELDS, True)):
        if not count:
            continue
        if count == total:
            subset, indices = arr, None
        else:
            indices = pc.indices_nonzero(mask)
            subset = pc.take(arr, indices)
        fast = _json_numpy(subset) if is_json_format else _text_fast(subset)
        if fast is not None:
            cols, good = fast
            n_good = int(good.sum())
            if n_good == count:
                frame, _ = _finish(cols, pa.array(good), indices, count)
                frames.append(frame)
            elif n_good:
                keep = pa.array(np.flatnonzero(good))
                good_indices = keep if indices is None else pc.take(indices, keep)
                frame, _ = _finish({k: pc.take(v, keep) for k, v in cols.items()},
                                   pa.array(np.ones(n_good, dtype=bool)), good_indices, n_good)
                frames.append(frame)
            if n_good == count:
                continue
            # The lines the fast path could not vouch for go through the regular expressions.
            rest = pa.array(np.flatnonzero(~good))
            subset = pc.take(subset, rest)
            indices = rest if indices is None else pc.take(indices, rest)
            count = len(rest)
        cols = _extract_all(subset, patterns)
        valid = pc.is_valid(cols["request_id"])
        for name in _REQUIRED[1:]:
            valid = pc.and_(valid, pc.is_valid(cols[name]))
        if is_json_format:  # a truncated record loses its closing brace
            valid = pc.and_(valid, pc.ends_with(pc.utf8_rtrim_whitespace(subset), "}"))
        frame, bad = _finish(cols, valid, indices, count)
        malformed += bad
        frames.append(frame)

    ignored = total - n_text - n_json
    if not frames:
        return _empty(total=total, malformed=malformed, ignored=ignored)
    if len(frames) > 1:
        df = pd.concat(frames, ignore_index=True).sort_values("_line", kind="stable").reset_index(drop=True)
    else:
        df = frames[0]
    line = df.pop("_line").to_numpy()
    stamps = df.pop("_time_ms").to_numpy(dtype="float64")
    if timestamps is not None:
        from_input = timestamps[line]
        stamps = np.where(np.isnan(from_input), stamps, from_input)
    df["timestamp"] = pd.to_datetime(stamps, unit="ms", utc=True)
    if functions is not None:
        names = np.asarray(functions, dtype=object)[line]
        df["function"] = _string(pa.array(names, type=pa.large_string(), from_pandas=True))
    else:
        df["function"] = _string(pa.nulls(len(df), pa.large_string()))
    df = df[list(COLUMNS)]
    df.attrs.update(total=total, malformed=malformed, ignored=ignored)
    return df


_TEXT_LAYOUT = (  # (label after the tab, first byte offset checked, suffix) of the four fields after the id
    ("Duration: ", " ms"),
    ("Billed Duration: ", " ms"),
    ("Memory Size: ", " MB"),
    ("Max Memory Used: ", " MB"),
)
_REQUEST_PREFIX = b"REPORT RequestId: "
_FAST_CHUNK = 65_536


def _fast_eligible(arr) -> bool:
    """The numpy fast paths read Arrow's large-string buffers directly: no nulls, at least one line."""
    return len(arr) > 0 and not arr.null_count and isinstance(arr, pa.LargeStringArray)


def _chunked(fast, arr) -> tuple[dict, np.ndarray] | None:
    """``fast`` over chunks of ``arr`` (threads), joined; None when any chunk declines."""
    parts = _map_chunks(fast, arr)
    if any(part is None for part in parts):
        return None
    cols = {name: pa.chunked_array([part[0][name] for part in parts]) for name in parts[0][0]}
    return cols, np.concatenate([part[1] for part in parts])


def _byte_view(arr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lines' bytes as one uint8 array, with each line's start and end offsets into it."""
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=len(arr) + 1, offset=arr.offset * 8)
    whole = np.frombuffer(data_buf, dtype=np.uint8)
    base = int(offsets[0])
    return whole[base : int(offsets[-1])], offsets[:-1] - base, offsets[1:] - base


def _text_fast(arr) -> tuple[dict, np.ndarray] | None:
    """Parse text REPORT lines with numpy over Arrow's buffers: no regular expression per line.

    The five leading fields of a REPORT line come in a fixed order, separated by tabs, so the
    tabs locate them and the digits are read in bulk. Returns the columns (as Arrow arrays)
    and a mask of the lines it vouches for; the others go through the regular expressions.
    Optional fields (Init Duration, Status, Error Type, XRAY) are extracted only from lines
    that have anything after Max Memory Used.
    """
    if not _fast_eligible(arr):
        return None
    if len(arr) > _FAST_CHUNK:  # chunks keep the working set in cache and the peak memory low
        return _chunked(_text_fast, arr)
    data, starts, ends = _byte_view(arr)
    n, size = len(arr), len(data)
    if size == 0:
        return None
    tabs = np.flatnonzero(data == 9)
    tabs = np.concatenate([tabs, np.full(6, size + 64, dtype=tabs.dtype)])
    first = np.searchsorted(tabs, starts)
    t = [tabs[first + j] for j in range(5)]
    ok = (t[3] < ends) & (t[0] - starts > len(_REQUEST_PREFIX))

    def at(positions):
        return data[np.minimum(positions, size - 1)]

    for j, byte in ((7, ord("R")), (16, ord(":"))):
        ok &= at(starts + j) == byte
    field_end = [t[1], t[2], t[3], np.minimum(t[4], ends)]
    numbers = []
    for j, ((label, suffix), width) in enumerate(zip(_TEXT_LAYOUT, (16, 9, 6, 6))):
        begin = t[j] + 1
        ok &= at(begin + len(label) - 2) == ord(":")
        end = field_end[j]
        ok &= at(end - 2) == ord(suffix[1])   # "ms" / "MB"; the cast below rejects anything else
        field_lo, field_hi = begin + len(label), end - 3
        ok &= (field_hi > field_lo) & (field_hi - field_lo <= width)
        numbers.append((field_lo, field_hi))
    request_id = _slice_strings(data, starts + len(_REQUEST_PREFIX), t[0], ok)
    cols = {"request_id": request_id}
    try:  # Arrow parses the digits; a value that is not a number sends the chunk to the careful path
        for name, (lo, hi), kind in zip(("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb"),
                                        numbers, (pa.float64(), pa.int64(), pa.int64(), pa.int64())):
            cols[name] = pc.cast(_slice_strings(data, lo, hi, ok), kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    # Optional fields: only where something follows the Max Memory Used field.
    tail = np.flatnonzero(ok & (ends - field_end[3] > 1))
    optional = {name: _TEXT_FIELDS[name] for name in ("init_duration_ms", "status_raw", "error_type", "xray_trace_id")}
    if len(tail):
        found = _extract_all(pc.take(arr, pa.array(tail)), optional)
        where = np.full(n, -1, dtype=np.int64)
        where[tail] = np.arange(len(tail))
        index = pa.array(where, mask=where < 0)
        for name, values in found.items():
            cols[name] = pc.take(values, index)
    else:
        for name in optional:
            cols[name] = pa.nulls(n, pa.string())
    return cols, ok


# JSON keys read by the fast path: (column, key, kind) with kind number | string.
_JSON_KEYS = (
    ("request_id", "requestId", "string"),
    ("duration_ms", "durationMs", "number"),
    ("billed_duration_ms", "billedDurationMs", "number"),
    ("memory_size_mb", "memorySizeMB", "number"),
    ("max_memory_used_mb", "maxMemoryUsedMB", "number"),
    ("init_duration_ms", "initDurationMs", "number"),
    ("status_raw", "status", "string"),
    ("error_type", "errorType", "string"),
    ("_tracing", "value", "string"),
    ("time", "time", "string"),
    ("_type", "type", "string"),
)


def _key_hash(key: str) -> int:
    return int.from_bytes(key.encode()[-4:].rjust(4, b'"'), "big")


def _json_key_positions(data, key_end, last4, starts, ends) -> dict[str, np.ndarray]:
    """Where each wanted key ends (its closing quote) in each line; -1 where absent.

    Lambda writes its records with the keys always in one order, so lines with the same
    number of keys share a layout: each layout's columns are told apart once, by the last
    four bytes of their key (all rows of a column must agree) plus the opening quote and the
    first letter. A layout whose columns disagree is located key by key.
    """
    n = len(starts)
    first = np.searchsorted(key_end, starts)
    counts = np.searchsorted(key_end, ends) - first
    wanted = {key: _key_hash(key) for _, key, _ in _JSON_KEYS}
    positions = {key: np.full(n, -1, dtype=np.int64) for key in wanted}
    for count in np.unique(counts):
        rows = np.flatnonzero(counts == count)
        if count == 0:
            continue
        matrix = first[rows, None] + np.arange(count)
        hashes = last4[matrix]
        uniform = (hashes == hashes[0]).all(axis=0)
        if not uniform.all():
            for key, h in wanted.items():  # mixed layouts: find the key in each row
                hit = (hashes == h) & _name_matches(data, key_end[matrix], key)
                has = hit.any(axis=1)
                column = hit.argmax(axis=1)
                positions[key][rows[has]] = key_end[matrix[has, column[has]]]
            continue
        for c in range(int(count)):
            for key, h in wanted.items():
                if hashes[0, c] != h:
                    continue
                ends_c = key_end[matrix[:, c]]
                named = _name_matches(data, ends_c, key)
                fill = named & (positions[key][rows] < 0)          # the first occurrence in a line wins
                positions[key][rows[fill]] = ends_c[fill]
    return positions


def _name_matches(data, key_ends, key: str):
    raw = key.encode()
    return ((data[np.maximum(key_ends - len(raw) - 1, 0)] == ord('"'))
            & (data[np.maximum(key_ends - len(raw), 0)] == raw[0]))


def _json_numpy(arr) -> tuple[dict, np.ndarray] | None:
    """Read ``platform.report`` records with numpy over Arrow's buffers, in any key order.

    Every ``"key":`` of a line is located at once (a quote followed by a colon), keys are told
    apart by their names, and values are sliced out and handed to Arrow's casts. Returns None
    when a value is not a number; lines it cannot vouch for (not a compact, complete record)
    are left out of the returned mask for the regular expressions to sort out.
    """
    if not _fast_eligible(arr):
        return None
    if len(arr) > _FAST_CHUNK:
        return _chunked(_json_numpy, arr)
    data, starts, ends = _byte_view(arr)
    size = len(data)
    if size < 2:
        return None
    ok = (ends > starts) & (data[np.maximum(ends - 1, 0)] == ord("}"))
    # One pass over the bytes: the quotes. Keys end with '"' then ':'; every value ends before
    # the next quote (strings: at it; numbers: before the ',' and '}' that precede it).
    quotes = np.flatnonzero(data == 34)
    key_end = quotes[data[np.minimum(quotes + 1, size - 1)] == 58]
    last4 = np.zeros(len(key_end), dtype=np.uint32)
    for j in range(4):
        last4 = (last4 << 8) | data[np.maximum(key_end - 4 + j, 0)].astype(np.uint32)
    positions = _json_key_positions(data, key_end, last4, starts, ends)
    cols: dict[str, Any] = {}
    type_at = positions["type"] + 3
    expected = b'platform.report"'
    for offset in (0, 9, len(expected) - 1):           # "platform.report", checked at three bytes
        ok &= (positions["type"] >= 0) & (data[np.minimum(type_at + offset, size - 1)] == expected[offset])
    for column, key, kind in _JSON_KEYS:
        if column == "_type":
            continue
        position = positions[key]
        present = position >= 0
        if kind == "string":
            lo = position + 3
            present &= data[np.minimum(position + 2, size - 1)] == ord('"')
            hi = quotes[np.minimum(np.searchsorted(quotes, np.where(present, lo, 0)), len(quotes) - 1)]
        else:
            lo = position + 2
            after = quotes[np.minimum(np.searchsorted(quotes, np.where(present, lo, 0)), len(quotes) - 1)]
            hi = np.minimum(np.where(after > lo, after, ends), ends)
            for _ in range(4):  # back over the ',' / '}' (and whitespace) that close the number
                back = data[np.maximum(hi - 1, 0)]
                hi = np.where((hi > lo) & ((back == 44) | (back == 125) | (back == 32)), hi - 1, hi)
        present &= (hi > lo) & (hi < ends)
        if column in _REQUIRED:
            ok &= present
        cols[column] = (present, lo, hi)
    for column, (present, lo, hi) in cols.items():
        present = present & ok
        cols[column] = _slice_strings(data, np.where(present, lo, 0), np.where(present, hi, 0), present)
    try:
        for name in _FLOATS:
            cols[name] = pc.cast(cols[name], pa.float64())
        for name in _INTS:
            cols[name] = pc.cast(cols[name], pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    tracing = cols.pop("_tracing")
    cols["xray_trace_id"] = pc.struct_field(pc.extract_regex(tracing, r"Root=(?P<v>[0-9A-Za-z-]+)"), "v")
    return cols, ok


def _slice_strings(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray):
    """An Arrow string array of data[lo:hi] per row (null where not ok), built in one gather."""
    lengths = np.where(ok, hi - lo, 0)
    offsets = np.zeros(len(lo) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    common = lengths[ok][:1]
    if len(common) and ok.all() and (lengths == common[0]).all():
        # request ids are UUIDs: one length, so a 2-D gather does it
        values = data[lo[:, None] + np.arange(int(common[0]))]
    else:
        index = np.repeat(lo - offsets[:-1], lengths) + np.arange(offsets[-1])
        values = data[index]
    validity = None if ok.all() else pa.py_buffer(np.packbits(ok, bitorder="little"))
    return pa.LargeStringArray.from_buffers(len(lo), pa.py_buffer(offsets), pa.py_buffer(values.tobytes()), validity)


def _finish(cols: dict, valid, indices, count: int) -> tuple[pd.DataFrame, int]:
    """Keep the valid rows of one format, convert types, derive status and cold_start."""
    valid = pc.fill_null(valid, False)
    n_valid = pc.sum(pc.cast(valid, pa.int64())).as_py() or 0
    bad = count - n_valid
    if bad:
        keep = pc.indices_nonzero(valid)
        cols = {name: pc.take(col, keep) for name, col in cols.items()}
        line = (pc.take(indices, keep) if indices is not None else keep).to_numpy()
    else:
        line = indices.to_numpy() if indices is not None else np.arange(count)
    out: dict[str, Any] = {"_line": line}
    out["request_id"] = _string(cols["request_id"])
    for name in _FLOATS:
        out[name] = pc.cast(cols[name], pa.float64()).to_numpy(zero_copy_only=False)
    for name in _INTS:
        out[name] = pc.cast(cols[name], pa.int64()).to_numpy(zero_copy_only=False)
    out["init_duration_ms"] = out["init_duration_ms"].astype("float64")
    out["cold_start"] = pc.is_valid(cols["init_duration_ms"]).to_numpy(zero_copy_only=False)
    if "time" in cols and not pa.types.is_timestamp(cols["time"].type):
        try:  # ISO 8601 with a zone: Arrow parses it far faster than pandas; pandas takes the odd ones
            cols = {**cols, "time": pc.cast(cols["time"], pa.timestamp("ns", tz="UTC"))}
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    if "time" in cols and pa.types.is_timestamp(cols["time"].type):
        nanos = pc.cast(pc.cast(cols["time"], pa.timestamp("ns", tz="UTC")), pa.int64())
        out["_time_ms"] = pc.cast(nanos, pa.float64(), safe=False).to_numpy(zero_copy_only=False) / 1e6
    elif "time" in cols:
        time_values = cols["time"]
        parsed = pd.to_datetime(pd.Series(time_values.to_pandas()), utc=True, errors="coerce", format="ISO8601")
        nanos = parsed.dt.as_unit("ns").astype("int64").to_numpy(dtype="float64")
        out["_time_ms"] = np.where(parsed.notna().to_numpy(), nanos / 1e6, np.nan)
    else:
        out["_time_ms"] = np.full(len(line), np.nan)
    out["status"] = _status(cols["status_raw"], cols["error_type"])
    out["error_type"] = _string(cols["error_type"])
    out["xray_trace_id"] = _string(cols["xray_trace_id"])
    return pd.DataFrame(out, copy=False), int(bad)


def _string(values) -> pd.api.extensions.ExtensionArray:
    """An Arrow string array as a pandas string array, without a copy where pandas allows."""
    try:
        return pd.arrays.ArrowStringArray(values.cast(pa.large_string()))
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - older pandas
        return pd.array(values.to_pylist(), dtype="string")


def _status(status_raw, error_type) -> pd.Categorical:
    """ok / error / timeout / out_of_memory from the REPORT's Status and Error Type."""
    raw = pc.utf8_lower(pc.fill_null(status_raw, "success"))
    is_ok = pc.or_(pc.equal(raw, "success"), pc.equal(raw, "ok"))
    is_timeout = pc.equal(raw, "timeout")
    is_oom = pc.fill_null(pc.match_substring(error_type, "OutOfMemory"), False)
    codes = np.full(len(raw), 1, dtype="int8")  # error
    codes[is_ok.to_numpy(zero_copy_only=False)] = 0
    codes[is_timeout.to_numpy(zero_copy_only=False)] = 2
    codes[is_oom.to_numpy(zero_copy_only=False)] = 3
    return pd.Categorical.from_codes(codes, categories=[s.value for s in Status])


def _empty(total: int, malformed: int, ignored: int) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "request_id": pd.Series([], dtype="string"),
            "function": pd.Series([], dtype="string"),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "duration_ms": pd.Series([], dtype="float64"),
            "billed_duration_ms": pd.Series([], dtype="int64"),
            "memory_size_mb": pd.Series([], dtype="int64"),
            "max_memory_used_mb": pd.Series([], dtype="int64"),
            "init_duration_ms": pd.Series([], dtype="float64"),
            "cold_start": pd.Series([], dtype="bool"),
            "status": pd.Categorical([], categories=[s.value for s in Status]),
            "error_type": pd.Series([], dtype="string"),
            "xray_trace_id": pd.Series([], dtype="string"),
        }
    )
    df.attrs.update(total=total, malformed=malformed, ignored=ignored)
    return df


# ---------------------------------------------------------------------------------------------
# Loading from CloudWatch Logs.
# ---------------------------------------------------------------------------------------------
def log_group_name(function_name: str) -> str:
    """The log group Lambda writes to: ``/aws/lambda/<function name>``."""
    return f"/aws/lambda/{function_name}"


def function_from_log_group(group: str | None) -> str | None:
    if not group:
        return None
    return group.rsplit("/", 1)[-1] if group.startswith("/aws/lambda/") else group


_NOTES_SAID: set[str] = set()


def note_once(key: str, message: str) -> None:
    """Say a fallback once per process: a warning (shown in notebooks) and a log record."""
    if key in _NOTES_SAID:
        return
    _NOTES_SAID.add(key)
    log.info(message)
    warnings.warn(message, stacklevel=3)


def _epoch_ms(value: datetime | pd.Timestamp | float | int) -> int:
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1_000_000)


def _check_range(start_ms: int, end_ms: int) -> None:
    if end_ms < start_ms:
        raise ValueError(f"the time range is empty or reversed: start {start_ms} ms is after end {end_ms} ms")


def load_reports(
    function_names: Sequence[str],
    start: datetime | pd.Timestamp | int,
    end: datetime | pd.Timestamp | int,
    *,
    region: str | None = None,
    client: Any = None,
    use_insights: bool | None = None,
) -> pd.DataFrame:
    """REPORT rows for the deployed functions (their full names) between ``start`` and ``end``.

    On AWS the fast path is Logs Insights; on the local endpoint (or when Insights is denied or
    returns nothing usable) FilterLogEvents, paginated, serves. The path taken is in
    ``df.attrs["source"]``.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    if use_insights is None:
        use_insights = not aws.is_local()
    if not use_insights and aws.is_local():
        note_once(
            "logs-insights-local",
            "workbook.logs: the local endpoint has no usable Logs Insights; reading REPORT lines with FilterLogEvents.",
        )
    if use_insights:
        try:
            df = load_reports_insights(function_names, start_ms, end_ms, client=client)
            if df.attrs.get("usable", True):
                return df
            note_once(
                "logs-insights-empty",
                "workbook.logs: Logs Insights returned no usable rows; falling back to FilterLogEvents.",
            )
        except LogsError as exc:
            note_once("logs-insights-failed", f"workbook.logs: Logs Insights unavailable ({exc}); using FilterLogEvents.")
    return load_reports_filter(function_names, start_ms, end_ms, client=client)


def load_reports_filter(
    function_names: Sequence[str], start: Any, end: Any, *, region: str | None = None, client: Any = None,
    page_size: int | None = None,
) -> pd.DataFrame:
    """REPORT rows through FilterLogEvents with a REPORT filter pattern, following nextToken.

    ``df.attrs["calls"]`` counts the FilterLogEvents calls made.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    events: list[dict] = []
    calls = 0
    for name in function_names:
        group = log_group_name(name)
        kwargs = dict(logGroupName=group, startTime=start_ms, endTime=end_ms, filterPattern=REPORT_FILTER_PATTERN)
        if page_size:
            kwargs["limit"] = int(page_size)
        token = None
        while True:
            if token:
                kwargs["nextToken"] = token
            calls += 1
            try:
                page = client.filter_log_events(**kwargs)
            except client.exceptions.ResourceNotFoundException:
                log.info("no log group %s (the function has not run yet)", group)
                break
            except Exception as exc:  # botocore ClientError after the client's own retries
                raise _translate(exc, f"FilterLogEvents on {group}") from exc
            for event in page.get("events", []):
                event["function"] = name
                events.append(event)
            new_token = page.get("nextToken")
            if not new_token or new_token == token:
                break
            token = new_token
    df = parse_reports(events)
    df.attrs.update(source="filter_log_events", calls=calls)
    return df


_INSIGHTS_QUERY = (
    "fields @timestamp, @message, @log "
    '| filter @message like /^REPORT / or @message like /"platform.report"/ '
    "| sort @timestamp asc "
    f"| limit {INSIGHTS_ROW_LIMIT}"
)


def load_reports_insights(
    function_names: Sequence[str],
    start: Any,
    end: Any,
    *,
    region: str | None = None,
    client: Any = None,
    poll_s: float = 1.0,
    timeout_s: float = 300.0,
) -> pd.DataFrame:
    """REPORT rows through Logs Insights, splitting the range while a query hits 10,000 rows.

    ``df.attrs["usable"]`` is False when Insights answered but with no ``@message`` field (the
    local endpoint), so the caller can fall back.
    """
    start_ms, end_ms = _epoch_ms(start), _epoch_ms(end)
    _check_range(start_ms, end_ms)
    client = client or aws.client("logs", region)
    groups = [log_group_name(name) for name in function_names]
    rows: list[dict] = []
    usable = True
    queries = 0
    # Insights takes at most 50 log groups per query.
    for chunk_start in range(0, len(groups), 50):
        chunk = groups[chunk_start : chunk_start + 50]
        pending = [(start_ms // 1000, -(-end_ms // 1000))]
        while pending:
            lo, hi = pending.pop()
            results = _run_insights(client, chunk, lo, hi, poll_s, timeout_s)
            queries += 1
            if len(results) >= INSIGHTS_ROW_LIMIT and hi - lo > 1:
                mid = (lo + hi) // 2
                pending.extend([(mid, hi), (lo, mid)])
                continue
            if len(results) >= INSIGHTS_ROW_LIMIT:
                note_once("logs-insights-dense", "workbook.logs: over 10,000 REPORT lines in one second; some rows are missing.")
            for result in results:
                fields = {f["field"]: f.get("value") for f in result}
                if "@message" not in fields:
                    usable = False
                    continue
                rows.append(fields)
    df = parse_reports(rows)
    # Split ranges share their boundary second: drop the duplicates it brings.
    if len(df):
        df = df.drop_duplicates(subset=["request_id", "function"], ignore_index=True)
    df.attrs.update(source="logs_insights", usable=usable and (len(df) > 0 or not rows), queries=queries)
    return df


def _run_insights(client: Any, groups: list[str], start_s: int, end_s: int, poll_s: float, timeout_s: float) -> list:
    try:
        query_id = client.start_query(
            logGroupNames=groups, startTime=int(start_s), endTime=int(end_s), queryString=_INSIGHTS_QUERY
        )["queryId"]
    except Exception as exc:
        raise _translate(exc, "Logs Insights StartQuery") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            answer = client.get_query_results(queryId=query_id)
        except Exception as exc:
            raise _translate(exc, "Logs Insights GetQueryResults") from exc
        status = answer.get("status")
        if status in ("Complete", None):
            return answer.get("results", [])
        if status in ("Failed", "Cancelled", "Timeout"):
            raise LogsError(f"Logs Insights query {query_id} ended with status {status}")
        if time.monotonic() > deadline:
            raise LogsError(f"Logs Insights query {query_id} did not finish in {timeout_s:.0f} s")
        time.sleep(poll_s)


def _translate(exc: Exception, what: str) -> Exception:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ("AccessDeniedException", "AccessDenied", "UnauthorizedOperation"):
            return LogsError(f"{what} was denied ({code}: {message}); grant logs:FilterLogEvents / logs:StartQuery to the caller")
        if code in ("ThrottlingException", "LimitExceededException", "TooManyRequestsException"):
            return LogsError(f"{what} was throttled after the client's retries ({code}); try a shorter range or later")
        return LogsError(f"{what} failed: {code}: {message}")
    if isinstance(exc, BotoCoreError):
        return LogsError(f"{what} failed: {exc}")
    return exc


def load_for_env(settings: "Settings", start: Any, end: Any, keys: Sequence[str] | None = None, **kwargs: Any) -> pd.DataFrame:
    """REPORT rows for an environment's functions; ``function`` holds the function key."""
    from infra import specs

    keys = list(keys or specs.FUNCTION_KEYS)
    names = {settings.function_name(key): key for key in keys}
    df = load_reports(list(names), start, end, region=settings.params.aws_region, **kwargs)
    if len(df):
        df["function"] = df["function"].map(lambda n: names.get(n, n)).astype("string")
    return df
