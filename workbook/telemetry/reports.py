"""Lambda REPORT lines into pandas: one row per invocation.

``parse_reports(lines)`` reads both log formats Lambda writes:

* text: ``REPORT RequestId: ...\\tDuration: 12.34 ms\\tBilled Duration: 13 ms\\t...``, with an
  optional ``Init Duration``, ``Status`` / ``Error Type`` and a following ``XRAY TraceId`` line;
* JSON (``logFormat: JSON``): a ``{"type": "platform.report", "record": {...}}`` record.

The numpy fast paths (``workbook.telemetry.fastpath``) take the lines in Lambda's own layout;
the rest go through Arrow's RE2 kernels (one pass per field over the whole batch), so a million
lines take about a second rather than the tens of seconds a Python loop needs. Malformed report
lines (truncated, missing a field) are counted in ``df.attrs["malformed"]`` and skipped; lines
that are not reports at all (START, END, application logs) are counted in ``df.attrs["ignored"]``.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbook.telemetry.fastpath import json_fast, text_fast
from workbook.telemetry.fields import FLOATS, INTS, JSON_FIELDS, REQUIRED, TEXT_FIELDS, extract_all

__all__ = ["COLUMNS", "Status", "parse_reports", "function_from_log_group"]

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


class Status(str, Enum):
    """How an invocation ended, as its REPORT says."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"

# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------


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


def _parse_arrow(arr, timestamps: np.ndarray | None, functions: list | None) -> pd.DataFrame:
    total = len(arr)
    arr = pc.fill_null(arr, "")
    is_text = pc.starts_with(arr, "REPORT")
    is_json = pc.and_(pc.starts_with(arr, "{"), pc.match_substring(arr, "platform.report"))
    n_text = pc.sum(pc.cast(is_text, pa.int64())).as_py() or 0
    n_json = pc.sum(pc.cast(is_json, pa.int64())).as_py() or 0
    frames = []
    malformed = 0
    for count, mask, patterns, is_json_format in ((n_text, is_text, TEXT_FIELDS, False), (n_json, is_json, JSON_FIELDS, True)):
        if not count:
            continue
        if count == total:
            subset, indices = arr, None
        else:
            indices = pc.indices_nonzero(mask)
            subset = pc.take(arr, indices)
        fast = json_fast(subset) if is_json_format else text_fast(subset)
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
        cols = extract_all(subset, patterns)
        valid = pc.is_valid(cols["request_id"])
        for name in REQUIRED[1:]:
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
        df["function"] = _as_string(pa.array(names, type=pa.large_string(), from_pandas=True))
    else:
        df["function"] = _as_string(pa.nulls(len(df), pa.large_string()))
    df = df[list(COLUMNS)]
    df.attrs.update(total=total, malformed=malformed, ignored=ignored)
    return df




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
    out["request_id"] = _as_string(cols["request_id"])
    for name in FLOATS:
        out[name] = pc.cast(cols[name], pa.float64()).to_numpy(zero_copy_only=False)
    for name in INTS:
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
    out["error_type"] = _as_string(cols["error_type"])
    out["xray_trace_id"] = _as_string(cols["xray_trace_id"])
    return pd.DataFrame(out, copy=False), int(bad)


def _as_string(values) -> pd.api.extensions.ExtensionArray:
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




def function_from_log_group(group: str | None) -> str | None:
    """The function name of a ``/aws/lambda/<name>`` log group (other names pass through)."""
    if not group:
        return None
    return group.rsplit("/", 1)[-1] if group.startswith("/aws/lambda/") else group
