"""The numpy fast paths of ``parse_reports``: REPORT lines read straight from Arrow's buffers.

Both formats Lambda writes keep their fields in a fixed order, so the separators (tabs in text,
quotes and colons in JSON) locate the fields and the digits are read in bulk, with no regular
expression per line. Each fast path returns the columns (Arrow arrays) and a mask of the lines it
vouches for; ``workbook.telemetry.reports`` sends the others through the regular expressions.

Large inputs go in chunks on threads: numpy and Arrow release the GIL in bulk work, and chunks
keep the working set in cache and the peak memory low.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbook.telemetry.fields import (
    CHUNK_THREADS,
    FLOATS,
    INTS,
    JSON_REQUIRED,
    JSON_XRAY,
    OPTIONAL_TEXT,
    TEXT_FIELDS,
    WORKERS,
    extract_fields,
    to_numbers,
)

__all__ = ["text_fast", "json_numpy", "xray_as_careful"]

_CHUNK_POOL: ThreadPoolExecutor | None = None


def _map_chunks(function, arr, body: np.ndarray | None) -> list:
    """``function(chunk, body of the chunk)`` over chunks of ``arr``, on threads."""
    global _CHUNK_POOL
    chunks = [(arr.slice(i, _FAST_CHUNK), None if body is None else body[i : i + _FAST_CHUNK])
              for i in range(0, len(arr), _FAST_CHUNK)]
    if threading.current_thread().name.startswith(CHUNK_THREADS):
        return [function(*chunk) for chunk in chunks]
    if _CHUNK_POOL is None:
        _CHUNK_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=CHUNK_THREADS)
    return list(_CHUNK_POOL.map(lambda chunk: function(*chunk), chunks))


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


def _chunked(fast, arr, body: np.ndarray | None = None) -> tuple[dict, np.ndarray] | None:
    """``fast`` over chunks of ``arr`` (threads), joined; None when any chunk declines."""
    parts = _map_chunks(fast, arr, body)
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


def _normalise_whitespace(arr, body: np.ndarray | None) -> tuple[Any, np.ndarray]:
    """Text lines with Lambda's whitespace, and where their records now start: numpy over the bytes.

    Each run of spaces and tabs becomes one byte: a space after a colon (``Duration:  12`` ->
    ``Duration: 12``); a tab where it holds a tab or is longer than one byte (a console copy's
    spaces), follows a unit (``ms``, ``MB``) or the request id (the AWS docs' single spaces);
    otherwise the space it was (inside ``Billed Duration``). A run at the start of a line stays.
    """
    data, starts, ends = _byte_view(arr)
    size = len(data)
    ws = (data == 32) | (data == 9)
    first_byte = np.zeros(size, dtype=bool)
    first_byte[starts[starts < size]] = True
    run_start = ws & (first_byte | ~np.concatenate([[False], ws[:-1]]))
    spaces = np.flatnonzero(ws)                       # work on the whitespace only: a fifth of the bytes
    opens = run_start[spaces]
    run_of = np.cumsum(opens) - 1
    runs, first = spaces[opens], first_byte[spaces[opens]]
    length = np.bincount(run_of, minlength=len(runs))
    has_tab = np.bincount(run_of[data[spaces] == 9], minlength=len(runs)) > 0
    before, before2 = data[np.maximum(runs - 1, 0)], data[np.maximum(runs - 2, 0)]
    after_unit = ((before2 == ord("m")) & (before == ord("s"))) | ((before2 == ord("M")) & (before == ord("B")))
    body_at = starts + (0 if body is None else body)
    id_run = np.searchsorted(runs, body_at + len(_REQUEST_PREFIX) + 1)   # the first run after the id starts
    is_id_end = np.zeros(len(runs) + 1, dtype=bool)
    is_id_end[id_run] = True
    tab = has_tab | (length > 1) | after_unit | is_id_end[: len(runs)]
    value = np.where(before == ord(":"), 32, np.where(tab, 9, 32)).astype(np.uint8)
    out = data.copy()
    out[runs] = np.where(first, data[runs], value)
    dropped = spaces[~opens]                          # the rest of each run

    def kept_before(positions):
        return positions - np.searchsorted(dropped, positions)

    offsets = kept_before(np.append(starts, ends[-1] if len(ends) else 0))
    keep = np.ones(size, dtype=bool)
    keep[dropped] = False
    normalised = pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(offsets.astype(np.int64)),
                                                  pa.py_buffer(out[keep].tobytes()))
    return normalised, kept_before(body_at) - kept_before(starts)


def _collapse_runs(arr, body: np.ndarray | None) -> tuple[Any, None] | None:
    """Text lines with each run of two or more spaces and tabs made one tab (a console copy's
    tabs-as-spaces), with numpy over the bytes: cheaper than ``_normalise_whitespace``.

    Only for lines with no prefix (a prefix's own runs would move the record's start); None
    otherwise. The fast path's strict layout then accepts exactly the lines whose fields this
    gives Lambda's tabs, and ``_normalise_whitespace`` takes the rest (the docs' single spaces).
    """
    if body is not None and body.any():
        return None
    data, starts, ends = _byte_view(arr)
    size = len(data)
    if size == 0:
        return arr, None
    ws = (data == 32) | (data == 9)
    follows = np.empty(size, dtype=bool)               # a space or tab right before, in the same line
    follows[0], follows[1:] = False, ws[:-1]
    follows[starts[starts < size]] = False
    drop = ws & follows                                # all of a run but its first byte
    dropped = np.flatnonzero(drop)
    if not len(dropped):
        return arr, None
    # a run of two or more starts one byte before the first of its dropped bytes
    runs = dropped[np.diff(dropped, prepend=-2) != 1] - 1
    out = data.copy()
    out[runs] = 9
    offsets = np.append(starts, ends[-1] if len(ends) else 0)
    offsets = offsets - np.searchsorted(dropped, offsets)
    collapsed = pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(offsets.astype(np.int64)),
                                                 pa.py_buffer(out[~drop].tobytes()))
    return collapsed, None


def _text_fast(arr, body: np.ndarray | None = None, normalise: bool | str = False) -> tuple[dict, np.ndarray] | None:
    """Parse text REPORT lines with numpy over Arrow's buffers: no regular expression per line.

    ``body`` holds, per line, the byte offset of ``REPORT`` (after a timestamp prefix; None: 0);
    ``normalise`` first gives the lines Lambda's whitespace (``_normalise_whitespace``), or with
    ``"runs"``, only collapses runs of whitespace (``_collapse_runs``).
    The five leading fields of a REPORT line come in a fixed order, separated by tabs as Lambda
    writes them, so the tabs locate them and the digits are read in bulk. Returns the columns
    (as Arrow arrays) and a mask of the lines it vouches for; the others (spaces for tabs, other
    fields in between) go through the regular expressions. Optional fields (Init and Restore
    Duration, Status, Error Type, XRAY) are extracted only from lines that have anything after
    Max Memory Used.

    Long because the fields are located in one pass over shared arrays; split, each part would
    pass the same seven index arrays around.
    """
    if not _fast_eligible(arr):
        return None
    if len(arr) > _FAST_CHUNK:  # chunks keep the working set in cache and the peak memory low
        return _chunked(lambda chunk, offsets: _text_fast(chunk, offsets, normalise), arr, body)
    if normalise == "runs" and len(arr):
        collapsed = _collapse_runs(arr, body)
        if collapsed is None:
            return None
        arr, body = collapsed
    elif normalise and len(arr):
        arr, body = _normalise_whitespace(arr, body)
    data, starts, ends = _byte_view(arr)
    n, size = len(arr), len(data)
    if size == 0:
        return None
    if body is not None:
        starts = starts + body
    tabs = np.flatnonzero(data == 9)
    tabs = np.concatenate([tabs, np.full(6, size + 64, dtype=tabs.dtype)])
    first = np.searchsorted(tabs, starts)
    t = [tabs[first + j] for j in range(5)]
    ok = (t[3] < ends) & (t[0] - starts > len(_REQUEST_PREFIX))

    def at(positions):
        return data[np.minimum(positions, size - 1)]

    for j, byte in ((0, ord("R")), (7, ord("R")), (16, ord(":")), (17, ord(" "))):
        ok &= at(starts + j) == byte
    ok &= at(starts + len(_REQUEST_PREFIX)) > 32      # the id starts right after one space...
    ok &= at(t[0] - 1) > 32                           # ...and ends at the tab...
    spaces = np.append(np.flatnonzero(data == 32), size + 64)
    ok &= spaces[np.searchsorted(spaces, starts + len(_REQUEST_PREFIX))] > t[0]   # ...with no space inside it
    field_end = [t[1], t[2], t[3], np.minimum(t[4], ends)]
    numbers = []
    for j, ((label, suffix), width) in enumerate(zip(_TEXT_LAYOUT, (16, 9, 6, 6), strict=True)):
        begin = t[j] + 1
        ok &= (at(begin) == ord(label[0])) & (at(begin + len(label) - 2) == ord(":"))
        end = field_end[j]
        for k, byte in enumerate(suffix.encode()):  # " ms" / " MB"; the cast below rejects anything else
            ok &= at(end - 3 + k) == byte
        field_lo, field_hi = begin + len(label), end - 3
        ok &= (field_hi > field_lo) & (field_hi - field_lo <= width)
        numbers.append((field_lo, field_hi))
    request_id = _slice_strings(data, starts + len(_REQUEST_PREFIX), t[0], ok)
    cols = {"request_id": request_id}
    for name, (lo, hi) in zip(("duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb"),
                              numbers, strict=True):
        cols[name] = _slice_strings(data, lo, hi, ok)
    try:  # Arrow parses the digits; a value that is not a number sends the chunk to the careful path
        cols, not_whole = to_numbers(cols)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not_whole is not None:
        ok &= ~pc.fill_null(not_whole, False).to_numpy(zero_copy_only=False)
    # Optional fields: only where something follows the Max Memory Used field.
    tail = np.flatnonzero(ok & (ends - field_end[3] > 1))
    optional = [field for field in TEXT_FIELDS if field.column in OPTIONAL_TEXT]
    if len(tail):
        found, bad = extract_fields(pc.take(arr, pa.array(tail)), optional)
        ok[tail[bad.to_numpy(zero_copy_only=False)]] = False
        where = np.full(n, -1, dtype=np.int64)
        where[tail] = np.arange(len(tail))
        index = pa.array(where, mask=where < 0)
        for name, values in found.items():
            cols[name] = pc.take(values, index)
    else:
        for name in OPTIONAL_TEXT:
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
    ("restore_duration_ms", "restoreDurationMs", "number"),
    ("billed_restore_duration_ms", "billedRestoreDurationMs", "number"),
    ("status_raw", "status", "string"),
    ("error_type", "errorType", "string"),
    ("_tracing", "value", "string"),
    ("time", "time", "string"),
    ("_type", "type", "string"),
    ("_spans", "spans", "string"),   # Managed Instances: spans hold durationMs too; the regex path reads those
    ("_metrics", "metrics", "object"),
)


def _key_hash(key: str) -> int:
    return int.from_bytes(key.encode()[-4:].rjust(4, b'"'), "big")


def _json_key_positions(data, key_end, last4, starts, ends) -> dict[str, np.ndarray]:
    """Which key (an index into ``key_end``, its closing quotes) is each wanted key in each line; -1 where absent.

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
                positions[key][rows[has]] = matrix[has, column[has]]
            continue
        for c in range(int(count)):
            for key, h in wanted.items():
                if hashes[0, c] != h:
                    continue
                named = _name_matches(data, key_end[matrix[:, c]], key)
                fill = named & (positions[key][rows] < 0)          # the first occurrence in a line wins
                positions[key][rows[fill]] = matrix[fill, c]
    return positions


def _metrics_in_place(data, key_end, which) -> np.ndarray:
    """Lines whose metrics are where the careful path reads them: inside ``"metrics":{...}``,
    before any brace."""
    size = len(data)
    metrics_at = np.where(which["metrics"] >= 0, key_end[np.maximum(which["metrics"], 0)], 0)
    ok = (which["metrics"] >= 0) & (data[np.minimum(metrics_at + 2, size - 1)] == ord("{"))
    braces = np.append(np.flatnonzero((data == ord("{")) | (data == ord("}"))), size + 8)
    metrics_end = braces[np.minimum(np.searchsorted(braces, metrics_at + 2, side="right"), len(braces) - 1)]
    for key in {key for column, key, _ in _JSON_KEYS if column in FLOATS or column in INTS}:
        at = np.where(which[key] >= 0, key_end[np.maximum(which[key], 0)], 0)
        ok &= (which[key] < 0) | ((at > metrics_at) & (at < metrics_end))
    return ok


def _name_matches(data, key_ends, key: str):
    """Keys that are ``key``, every byte (the careful path's patterns name the whole key)."""
    raw = key.encode()
    ok = data[np.maximum(key_ends - len(raw) - 1, 0)] == ord('"')
    for at, byte in enumerate(raw):
        ok &= data[np.maximum(key_ends - len(raw) + at, 0)] == byte
    return ok


def _json_numpy(arr, body: np.ndarray | None = None) -> tuple[dict, np.ndarray] | None:
    """Read ``platform.report`` records with numpy over Arrow's buffers, in any key order.

    Every ``"key":`` of a line is located at once (a quote followed by a colon), keys are told
    apart by their names, and values are sliced out and handed to Arrow's casts. Returns None
    when a value is not a number; lines it cannot vouch for (not a compact, complete record)
    are left out of the returned mask for the regular expressions to sort out. A timestamp
    prefix (``body``) holds no quote, so it is read past as it is.
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
    quotes = np.append(quotes, [size + 8, size + 8])     # two past the end: "the next quotes" always exist
    is_key = data[np.minimum(quotes + 1, size - 1)] == 58
    is_key[-2:] = False
    key_quote = np.flatnonzero(is_key)                   # each key's closing quote, as an index into quotes
    key_end = quotes[key_quote]
    if not len(key_end):  # not one key in the chunk: nothing to vouch for
        return None
    last4 = np.zeros(len(key_end), dtype=np.uint32)
    for j in range(4):
        last4 = (last4 << 8) | data[np.maximum(key_end - 4 + j, 0)].astype(np.uint32)
    which = _json_key_positions(data, key_end, last4, starts, ends)
    cols: dict[str, Any] = {}
    type_at = np.where(which["type"] >= 0, key_end[which["type"]], 0) + 3
    expected = b'platform.report"'
    ok &= which["type"] >= 0
    for offset, byte in enumerate(expected):            # "platform.report", every byte
        ok &= data[np.minimum(type_at + offset, size - 1)] == byte
    ok &= which["spans"] < 0
    ok &= _metrics_in_place(data, key_end, which)
    for column, key, kind in _JSON_KEYS:
        if column in ("_type", "_spans", "_metrics"):
            continue
        present = which[key] >= 0
        found = present.copy()
        index = key_quote[np.where(present, which[key], 0)]   # the key's closing quote; the value follows
        position = quotes[index]
        if kind == "string":
            lo = position + 3
            present &= quotes[index + 1] == position + 2     # "key":"value": the value's quotes are the next two
            hi = quotes[index + 2]
        else:
            lo = position + 2
            after = quotes[index + 1]                        # a number ends before the next quote
            hi = np.minimum(np.where(after > lo, after, ends), ends)
            for _ in range(4):  # back over the ',' / '}' (and whitespace) that close the number
                back = data[np.maximum(hi - 1, 0)]
                hi = np.where((hi > lo) & ((back == 44) | (back == 125) | (back == 32)), hi - 1, hi)
        present &= (hi > lo) & (hi < ends)
        ok &= present | ~found    # a key whose value it cannot read (spaced, say): the careful path reads it
        if column in JSON_REQUIRED:
            ok &= present
        cols[column] = (present, lo, hi)
    for column, (present, lo, hi) in cols.items():
        cols[column] = _take_strings(data, lo, hi, present & ok)
    try:
        cols, not_whole = to_numbers(cols)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not_whole is not None:
        ok &= ~pc.fill_null(not_whole, False).to_numpy(zero_copy_only=False)
    cols.pop("_tracing")
    cols["xray_trace_id"] = xray_as_careful(arr)
    return cols, ok


def xray_as_careful(arr):
    """The X-Ray trace id of each line as the careful path reads it (its own pattern over the line:
    the last ``Root=`` of a ``tracing`` object's ``value``, no brace before it); null where none.
    Only lines that mention ``tracing`` are searched."""
    has = pc.match_substring(arr, '"tracing"')
    if not pc.any(has).as_py():
        return pa.nulls(len(arr), pa.large_string())
    return pc.struct_field(pc.extract_regex(arr, JSON_XRAY.pattern), "v")


def _take_strings(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray):
    """An Arrow string array of data[lo:hi] per row (null where not ok), copied by Arrow's take:
    the values are the odd elements of an array over ``data`` itself, whose even elements are
    the bytes in between (each row's value lies in its own line, so the offsets only grow)."""
    n = len(lo)
    hi = np.maximum.accumulate(np.where(ok, hi, 0)) if n else hi
    lo = np.where(ok, lo, hi)
    offsets = np.empty(2 * n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1::2], offsets[2::2] = lo, hi
    spans = pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(offsets), pa.py_buffer(data))
    return pc.take(spans, pa.array(np.arange(1, 2 * n, 2, dtype=np.int64), mask=None if ok.all() else ~ok))


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




text_fast = _text_fast
json_numpy = _json_numpy
