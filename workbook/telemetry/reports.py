"""Lambda REPORT lines into pandas: one row per invocation.

``parse_reports(lines)`` reads both log formats Lambda writes, as AWS and its tools leave them:

* text: ``REPORT RequestId: ...\\tDuration: 12.34 ms\\tBilled Duration: 13 ms\\t...``, with an
  optional ``Init Duration`` (a cold start), ``Restore Duration`` and ``Billed Restore Duration``
  (a SnapStart restore), ``Status`` / ``Error Type`` and a following ``XRAY TraceId`` line; any run
  of whitespace between fields (tabs, a console copy's spaces, the docs' single space);
* JSON (``logFormat: JSON``, or the Telemetry API): a ``{"type": "platform.report", "record":
  {...}}`` record, including Lambda Managed Instances' records that carry only ``durationMs``;
* either one after a timestamp prefix, as a CloudWatch Logs export, ``sam logs``, ``aws logs
  tail`` or a copied Logs Insights row write it (``workbook.telemetry.timestamps.PREFIX``).

JSON records go first through a compiled single-pass reader (``workbook.telemetry.jsoncompiled``:
a list of strings is read straight from the Python objects), then Arrow's JSON reader
(``workbook.telemetry.jsonfast``); the numpy fast paths (``workbook.telemetry.fastpath``) take
the lines in Lambda's own layout;
the rest go through Arrow's RE2 kernels (one pass per field over the whole batch), so a million
lines take about a second rather than the tens of seconds a Python loop needs. Report lines
that cannot be parsed (truncated, a field missing or not a number) are counted in
``df.attrs["malformed"]`` (with up to three of them in ``malformed_sample``) and skipped; lines
that are not reports at all (START, END, application logs) are counted in ``df.attrs["ignored"]``.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from workbook.telemetry.fastpath import json_numpy, text_fast
from workbook.telemetry.fields import (
    FLOATS,
    INTS,
    JSON_FIELDS,
    JSON_REQUIRED,
    TEXT_FIELDS,
    TEXT_REQUIRED,
    extract_fields,
    to_numbers,
)
from workbook.telemetry.jsoncompiled import json_compiled
from workbook.telemetry.jsonfast import json_fast
from workbook.telemetry.timestamps import EXPORT_PREFIX, NAT, PREFIX, event_times_to_ns, iso_to_ns, to_datetime_utc

__all__ = ["COLUMNS", "Status", "StartType", "parse_reports", "function_from_log_group"]

COLUMNS = (
    # The contract (DESIGN.md, workbook.logs.parse_reports): these ten, in this order.
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
    # Added after them.
    "start_type",
    # The version that ran (``$LATEST`` or N), read from the log stream name ``2024/01/01/[N]...``
    # of a FilterLogEvents event (``logStreamName``) or a Logs Insights row (``@logStream``); NA
    # when the input does not say (plain strings).
    "version",
    "restore_duration_ms",
    "billed_restore_duration_ms",
    "error_type",
    "xray_trace_id",
)
MALFORMED_SAMPLE = 3
_TYPE_REPORT = r'"type"\s*:\s*"platform\.report"'
_UNRECOGNISED = r"REPORT\s+RequestId:"


class Status(str, Enum):
    """How an invocation ended, as its REPORT says."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"


class StartType(str, Enum):
    """How the execution environment that served an invocation started."""

    WARM = "warm"          # reused: no Init or Restore Duration
    COLD = "cold"          # initialised for this invocation: Init Duration
    RESTORE = "restore"    # resumed from a SnapStart snapshot: Restore Duration (a cold start too)


@dataclass
class _Events:
    """The input, split: messages as Arrow strings, and what the events say beside them."""

    messages: Any                       # pa.LargeStringArray
    times_ns: np.ndarray | None         # the events' own times (int64 ns, NAT where none)
    functions: list | None
    streams: list | None = None         # each event's log stream name, where the input gives one


_STREAM_VERSION = r"^\d{4}/\d{2}/\d{2}/\[(?P<version>[^\]\s]*)\]"
# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------


def parse_reports(lines: Iterable[str | dict[str, Any]], function: str | None = None) -> pd.DataFrame:
    """Parse REPORT lines (text or JSON ``platform.report``) into one row per invocation.

    ``lines`` holds strings, or dicts as FilterLogEvents returns them (``message``,
    ``timestamp`` in epoch ms, ``logStreamName``; an added ``function`` or ``logGroupName``
    names the function) or as Logs Insights does (``@message``, ``@timestamp``, ``@log``).
    ``function`` fills the column for plain strings.

    Columns: see ``COLUMNS``; durations in ms, memory in MB (nullable integers: a Managed
    Instances record has no billed duration or memory), ``timestamp`` datetime64[ns, UTC] exact to
    the unit the source gives (the event's time, else a prefix's, else the JSON record's ``time``,
    else NaT). ``cold_start`` is true for a cold start or a SnapStart restore; ``start_type``
    tells them apart. ``df.attrs``: ``malformed`` (report lines that could not be parsed:
    truncated, a field missing or not a number), ``malformed_sample`` (up to three of them),
    ``ignored`` (other lines: START, END, application logs), ``total`` (lines read).
    """
    if isinstance(lines, list) and lines and isinstance(lines[0], str) and lines[0].startswith("{"):
        read = _read_compiled(lines, function)   # JSON records: straight from the strings
        if read is not None:
            return read
    events = _split_input(lines, function)
    if len(events.messages) == 0:
        return _empty(total=0, malformed=0, ignored=0)
    return _parse_arrow(events)


def _read_compiled(lines: list, function: str | None) -> pd.DataFrame | None:
    """A list of strings that starts with a JSON record: the compiled reader over the Python strings
    themselves, the other paths over the lines it leaves. None when it reads none of them."""
    found = json_compiled(lines, aligned=False)
    if found is None:
        return None
    cols, ok = found
    total = len(lines)
    done = _frame(cols, np.flatnonzero(ok), None)
    functions = [function] * total if function else None
    if ok.all():
        attrs = {"total": total, "malformed": 0, "ignored": 0, "malformed_sample": []}
        return _finish([done], attrs, _Events(None, None, functions))
    left = np.flatnonzero(~ok)
    arr = pa.array([lines[i] for i in left], type=pa.large_string(), from_pandas=True)
    return _parse_arrow(_Events(arr, None, functions), read=(done, left, total))


def _split_input(lines: Iterable[Any], function: str | None) -> _Events:
    if isinstance(lines, (str, bytes)):
        lines = [lines]
    if isinstance(lines, pd.Series):
        lines = lines.tolist()
    lines = lines if isinstance(lines, list) else list(lines)
    if not lines:
        return _Events(pa.array([], pa.large_string()), None, None)
    if isinstance(lines[0], str):
        arr = _strings_to_arrow(lines)
        if arr is not None:  # the common case, a list of strings: straight into Arrow
            return _Events(arr, None, [function] * len(lines) if function else None)
    messages, times, functions, streams = [], [], [], []
    for item in lines:
        if isinstance(item, dict):
            streams.append(item.get("logStreamName") or item.get("@logStream"))
            messages.append(item.get("message") or item.get("@message"))
            times.append(item.get("timestamp", item.get("@timestamp")))
            functions.append(
                item.get("function")
                or function_from_log_group(item.get("logGroupName") or item.get("@log"))
                or function
            )
        else:
            messages.append(item.decode() if isinstance(item, bytes) else item)
            times.append(None)
            functions.append(function)
            streams.append(None)
    arr = pa.array(messages, type=pa.large_string(), from_pandas=True)
    return _Events(arr, event_times_to_ns(times), functions, streams if any(streams) else None)


def _strings_to_arrow(lines: list) -> Any:
    """A list of str as an Arrow array, in one call (Arrow copies each string once: no joined copy
    of the whole input, which doubled the peak memory and took 7x longer on 1M lines).

    Returns None when the list holds anything but strings (bytes and None pass, as the
    per-item path would read them).
    """
    try:
        return pa.array(lines, type=pa.large_string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None


@dataclass
class _Kind:
    """The lines of one format: where they are, where their record starts, and their prefix's time."""

    indices: Any            # pa.Int64Array into the input, or None for all of it
    body: np.ndarray | None  # byte offset of the record in each line (None: all at 0)
    prefix_ns: np.ndarray | None


def _classify(arr) -> tuple[_Kind, _Kind, Any, int]:
    """Text reports, JSON reports, unrecognised report-like lines (indices) and the count of the rest.

    Lines that start with the record are found by prefix tests; the others that mention a report
    go through the prefix grammar once. A line with ``REPORT RequestId:`` after a prefix the
    grammar does not know is a report all the same: it is counted as malformed, never ignored.
    """
    total = len(arr)
    is_text = pc.or_(pc.or_(pc.starts_with(arr, "REPORT "), pc.starts_with(arr, "REPORT\t")), pc.equal(arr, "REPORT"))
    is_json = pc.starts_with(arr, "{")
    # Every JSON line is offered to the JSON path: the fast path vouches only for platform.report
    # records, and ``_parse_kind`` counts the others it leaves as not reports (no substring scan of
    # every record here).
    json_idx = pc.indices_nonzero(is_json)
    rest = pc.indices_nonzero(pc.invert(pc.or_(is_text, is_json)))
    if len(rest):  # lines that mention a report: "REPORT" first (found early in a line), then the rarer test
        has_report = pc.match_substring(_subset(arr, rest), "REPORT").to_numpy(zero_copy_only=False)
        without = pa.array(np.flatnonzero(~has_report))
        json_like = pc.match_substring(pc.take(arr, pc.take(rest, without)), "platform.report").to_numpy(zero_copy_only=False)
        has_report[without.to_numpy()[json_like]] = True
        rest = _subset(rest, pa.array(np.flatnonzero(has_report)))
    text_idx = pc.indices_nonzero(is_text)
    text = _Kind(None if len(text_idx) == total else text_idx, None, None)
    json = _Kind(None if len(json_idx) == total else json_idx, None, None)
    unrecognised = _read_prefixes(arr, rest, text, json) if len(rest) else pa.array([], pa.int64())
    ignored = total - _count(text, total) - _count(json, total) - len(unrecognised)
    return text, json, unrecognised, ignored


def _subset(arr, indices):
    """``arr`` at ``indices`` (sorted, distinct, as ``indices_nonzero`` gives them): ``arr`` itself
    when they are all of it, as they are for an input of one format, so nothing is copied."""
    return arr if len(indices) == len(arr) else pc.take(arr, indices)


def _read_prefixes(arr, rest, text: _Kind, json: _Kind):
    """Add the lines ``rest`` (indices) that are records after a known prefix to ``text`` or ``json``.

    A CloudWatch Logs export's prefix (``2024-01-01T12:00:00.000Z ``, fixed width) is read by
    position; the others through the prefix grammar. Returns the lines that mention
    ``REPORT RequestId:`` after a prefix the grammar does not know.
    """
    total = len(arr)
    candidates = _subset(arr, rest)
    n = len(candidates)
    matched, is_text = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    lengths, stamps = np.zeros(n, dtype=np.int64), np.full(n, NAT, dtype=np.int64)
    export = pc.match_substring_regex(candidates, EXPORT_PREFIX).to_numpy(zero_copy_only=False)
    for where, read in ((np.flatnonzero(export), _export_prefix), (np.flatnonzero(~export), _any_prefix)):
        if len(where):
            found, body_text, length, stamp = read(_subset(candidates, pa.array(where)))
            matched[where], is_text[where], lengths[where], stamps[where] = found, body_text, length, stamp
    for kind, mask in ((text, matched & is_text), (json, matched & ~is_text)):
        where = np.flatnonzero(mask)
        if len(where):
            _merge(kind, _subset(rest, pa.array(where)), lengths[where], stamps[where], total)
    unknown = np.flatnonzero(~matched)
    report_like = pc.match_substring_regex(pc.take(candidates, pa.array(unknown)), _UNRECOGNISED)
    return pc.take(pc.take(rest, pa.array(unknown)), pc.indices_nonzero(report_like))


def _export_prefix(lines) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    width = len("2024-01-01T12:00:00.000Z ")
    stamps = iso_to_ns(pc.utf8_slice_codeunits(lines, 0, width - 1))
    body_text = pc.starts_with(pc.utf8_slice_codeunits(lines, width, width + 6), "REPORT").to_numpy(zero_copy_only=False)
    return np.ones(len(lines), dtype=bool), body_text, np.full(len(lines), width, dtype=np.int64), stamps


def _any_prefix(lines) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    found = pc.extract_regex(lines, PREFIX)
    matched = pc.is_valid(found).to_numpy(zero_copy_only=False)
    body_text = pc.fill_null(pc.starts_with(pc.struct_field(found, "body"), "REPORT"), False).to_numpy(zero_copy_only=False)
    lengths = pc.fill_null(pc.binary_length(pc.struct_field(found, "prefix")), 0).to_numpy(zero_copy_only=False)
    return matched, body_text, lengths, iso_to_ns(pc.struct_field(found, "ts"))


def _count(kind: _Kind, total: int) -> int:
    return total if kind.indices is None else len(kind.indices)


def _merge(kind: _Kind, indices, body: np.ndarray, prefix_ns: np.ndarray, total: int) -> None:
    """Add prefixed lines to a kind's lines, keeping input order."""
    base = kind.indices if kind.indices is not None else pa.array(np.arange(total))
    merged = np.concatenate([base.to_numpy(), indices.to_numpy()])
    order = np.argsort(merged, kind="stable")
    zeros = np.zeros(len(base), dtype=np.int64)
    kind.body = np.concatenate([zeros if kind.body is None else kind.body, body])[order]
    nats = np.full(len(base), NAT, dtype=np.int64)
    kind.prefix_ns = np.concatenate([nats if kind.prefix_ns is None else kind.prefix_ns, prefix_ns])[order]
    kind.indices = pa.array(merged[order])


def _parse_arrow(events: _Events, read: tuple | None = None) -> pd.DataFrame:
    """Every line of ``events``; ``read``: rows already read by ``_read_compiled`` (their frame, the
    input positions of the lines in ``events``, and the input's length)."""
    arr = pc.fill_null(events.messages, "")
    total = len(arr)
    text, json, unrecognised, ignored = _classify(arr)
    frames, refused = [], unrecognised.to_pylist()
    for kind, fields, required, fast in ((text, TEXT_FIELDS, TEXT_REQUIRED, text_fast),
                                         (json, JSON_FIELDS, JSON_REQUIRED, json_fast)):
        if _count(kind, total) == 0:
            continue
        frame, bad, not_reports = _parse_kind(arr, kind, fields, required, fast, is_json=fields is JSON_FIELDS)
        if len(frame):
            frames.append(frame)
        ignored += not_reports
        refused += bad
    sample = [arr[i].as_py()[:300] for i in sorted(refused)[:MALFORMED_SAMPLE]]
    attrs = {"total": total, "malformed": len(refused), "ignored": ignored, "malformed_sample": sample}
    if read is not None:   # back to the input's line numbers, beside the rows read before
        done, positions, attrs["total"] = read
        for frame in frames:
            frame["_line"] = positions[frame["_line"].to_numpy()]
        frames.append(done)
    return _finish(frames, attrs, events)


def _finish(frames: list, attrs: dict, events: _Events) -> pd.DataFrame:
    """The rows of every path in input order, with the time, the function and the version."""
    if not frames:
        return _empty(**attrs)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if not df["_line"].is_monotonic_increasing:  # formats, and fast and careful paths, back in input order
        df = df.sort_values("_line", kind="stable").reset_index(drop=True)
    line = df.pop("_line").to_numpy()
    stamps = df.pop("_time_ns").to_numpy(dtype=np.int64)
    if events.times_ns is not None:
        from_input = events.times_ns[line]
        stamps = np.where(from_input == NAT, stamps, from_input)
    df["timestamp"] = to_datetime_utc(stamps)
    names = None if events.functions is None else np.asarray(events.functions, dtype=object)[line]
    df["function"] = _as_string(pa.array(names, type=pa.large_string(), from_pandas=True) if names is not None
                                else pa.nulls(len(df), pa.large_string()))
    df["version"] = _versions(events.streams, line)
    df = df[list(COLUMNS)]
    df.attrs.update(attrs)
    return df


def _parse_kind(arr, kind: _Kind, fields, required, fast, is_json: bool) -> tuple[pd.DataFrame, list, int]:
    """One format's lines: the fast path first, the regular expressions for what it cannot vouch for.

    Returns the rows, the input positions of malformed lines, and how many lines turned out not
    to be reports (JSON that mentions ``platform.report`` without being one).
    """
    indices = kind.indices
    subset = arr if indices is None else _subset(arr, indices)
    body, prefix_ns = kind.body, kind.prefix_ns
    parts: list[pd.DataFrame] = []
    # Text lines the fast path refuses get a second chance with runs of whitespace collapsed (a
    # console copy's spaces), then a third with their whitespace made Lambda's own (the docs'
    # single space): the regular expressions take the rest.
    # JSON records the compiled reader leaves go to Arrow's reader, then numpy.
    attempts = [json_compiled, fast, json_numpy] if is_json else [
        fast, lambda lines, offsets: fast(lines, offsets, normalise="runs"),
        lambda lines, offsets: fast(lines, offsets, normalise=True)]
    for attempt in attempts:
        count = len(subset)
        result = attempt(subset, body) if count else None
        if result is None:
            continue
        cols, good = result
        n_good = int(good.sum())
        if n_good:
            keep = pa.array(np.flatnonzero(good)) if n_good < count else None
            picked = cols if keep is None else {k: pc.take(v, keep) for k, v in cols.items()}
            parts.append(_frame(picked, _positions(indices, keep, count), _pick(prefix_ns, keep)))
        if n_good == count:
            return (parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)), [], 0
        if n_good == 0:  # all refused: the same lines go on, uncopied
            continue
        rest = pa.array(np.flatnonzero(~good))
        subset, indices = pc.take(subset, rest), (rest if indices is None else pc.take(indices, rest))
        prefix_ns, body = _pick(prefix_ns, rest), _pick(body, rest)
    not_reports = 0
    if is_json:  # a JSON line that is not a platform.report record is not a report
        typed = pc.match_substring(subset, "platform.report")
        if pc.any(typed).as_py():
            typed = pc.and_(typed, pc.match_substring_regex(subset, _TYPE_REPORT))
        if not pc.all(typed).as_py():
            keep = pc.indices_nonzero(typed)
            not_reports = len(subset) - len(keep)
            subset, indices, prefix_ns = pc.take(subset, keep), _take_indices(indices, keep), _pick(prefix_ns, keep)
    cols, bad = extract_fields(subset, fields)
    cols, not_whole = to_numbers(cols)
    valid = pc.invert(bad) if not_whole is None else pc.and_(pc.invert(bad), pc.invert(pc.fill_null(not_whole, False)))
    for name in required:
        valid = pc.and_(valid, pc.is_valid(cols[name]))
    if is_json:  # a truncated record loses its closing brace
        valid = pc.and_(valid, pc.ends_with(pc.utf8_rtrim_whitespace(subset), "}"))
    valid = pc.fill_null(valid, False)
    keep = pc.indices_nonzero(valid)
    lines = _positions(indices, None, len(subset))
    refused = lines[~valid.to_numpy(zero_copy_only=False)].tolist()
    if len(keep):
        parts.append(_frame({k: pc.take(v, keep) for k, v in cols.items()}, lines[keep.to_numpy()], _pick(prefix_ns, keep)))
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else (parts[0] if parts else _frame_empty())
    return frame, refused, not_reports


def _positions(indices, keep, count: int) -> np.ndarray:
    """Input line numbers of the rows kept (``keep`` into ``indices``; None: all)."""
    if indices is None:
        return np.arange(count) if keep is None else keep.to_numpy()
    return (indices if keep is None else pc.take(indices, keep)).to_numpy()


def _take_indices(indices, keep):
    return keep if indices is None else pc.take(indices, keep)


def _pick(values: np.ndarray | None, keep) -> np.ndarray | None:
    if values is None or keep is None:
        return values
    return values[keep.to_numpy() if hasattr(keep, "to_numpy") else keep]


def _frame(cols: dict, line: np.ndarray, prefix_ns: np.ndarray | None) -> pd.DataFrame:
    """Typed rows of one format: numbers, start type, status, and the time (prefix, else the record's)."""
    n = len(line)
    # int64 always: Arrow's indices are uint64, and uint64 beside int64 concatenates to float64.
    out: dict[str, Any] = {"_line": np.asarray(line, dtype=np.int64)}
    out["request_id"] = _as_string(cols["request_id"])
    for name in FLOATS:
        out[name] = pc.cast(cols[name], pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
    for name in INTS:
        out[name] = _as_int(cols[name])
    has_init = pc.is_valid(cols["init_duration_ms"]).to_numpy(zero_copy_only=False)
    has_restore = pc.is_valid(cols["restore_duration_ms"]).to_numpy(zero_copy_only=False)
    codes = np.where(has_restore, 2, np.where(has_init, 1, 0)).astype("int8")
    out["start_type"] = pd.Categorical.from_codes(codes, categories=[s.value for s in StartType])
    out["cold_start"] = codes > 0
    times = np.full(n, NAT, dtype=np.int64) if prefix_ns is None else prefix_ns
    if "time" in cols:
        record_times = iso_to_ns(cols["time"])
        times = np.where(times == NAT, record_times, times)
    out["_time_ns"] = times
    out["status"] = _status(cols["status_raw"], cols["error_type"])
    out["error_type"] = _as_string(cols["error_type"])
    out["xray_trace_id"] = _as_string(cols["xray_trace_id"])
    return pd.DataFrame(out, copy=False)


def _frame_empty() -> pd.DataFrame:
    df = _empty(0, 0, 0)
    df["_line"] = np.empty(0, dtype=np.int64)
    df["_time_ns"] = np.empty(0, dtype=np.int64)
    return df.drop(columns=["timestamp", "function", "version"])


def _versions(streams: list | None, line: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """The version in each row's log stream name (``[$LATEST]`` or ``[N]``); NA where there is none."""
    if streams is None:
        return _as_string(pa.nulls(len(line), pa.large_string()))
    names = pa.array(np.asarray(streams, dtype=object)[line], type=pa.large_string(), from_pandas=True)
    found = pc.extract_regex(names, _STREAM_VERSION)
    return _as_string(pc.struct_field(found, "version"))


def _as_string(values) -> pd.api.extensions.ExtensionArray:
    """An Arrow string array as a pandas string array, without a copy where pandas allows."""
    try:
        return pd.arrays.ArrowStringArray(values.cast(pa.large_string()))
    except (TypeError, ValueError, AttributeError):  # pragma: no cover - older pandas
        return pd.array(values.to_pylist(), dtype="string")


def _as_int(values) -> pd.arrays.IntegerArray:
    """An Arrow int64 array as a pandas nullable Int64 array (missing stays missing)."""
    values = pc.cast(values, pa.int64())
    data = pc.fill_null(values, 0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    mask = pc.is_null(values).to_numpy(zero_copy_only=False)
    return pd.arrays.IntegerArray(data, mask)


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


def _empty(total: int, malformed: int, ignored: int, malformed_sample: list | None = None) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "request_id": pd.Series([], dtype="string"),
            "function": pd.Series([], dtype="string"),
            "timestamp": pd.Series([], dtype="datetime64[ns, UTC]"),
            "duration_ms": pd.Series([], dtype="float64"),
            "billed_duration_ms": pd.Series([], dtype="Int64"),
            "memory_size_mb": pd.Series([], dtype="Int64"),
            "max_memory_used_mb": pd.Series([], dtype="Int64"),
            "init_duration_ms": pd.Series([], dtype="float64"),
            "cold_start": pd.Series([], dtype="bool"),
            "status": pd.Categorical([], categories=[s.value for s in Status]),
            "start_type": pd.Categorical([], categories=[s.value for s in StartType]),
            "version": pd.Series([], dtype="string"),
            "restore_duration_ms": pd.Series([], dtype="float64"),
            "billed_restore_duration_ms": pd.Series([], dtype="Int64"),
            "error_type": pd.Series([], dtype="string"),
            "xray_trace_id": pd.Series([], dtype="string"),
        }
    )
    df.attrs.update(total=total, malformed=malformed, ignored=ignored, malformed_sample=list(malformed_sample or []))
    return df


def function_from_log_group(group: str | None) -> str | None:
    """The function name of a ``/aws/lambda/<name>`` log group, or of Insights' ``@log`` (``<account>:/aws/lambda/<name>``).

    Other names pass through.
    """
    if not group:
        return None
    account, found, name = group.partition("/aws/lambda/")
    if found and (not account or (account.endswith(":") and account[:-1].isdigit())):
        return name
    return group
