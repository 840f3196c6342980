"""The second JSON fast path of ``parse_reports`` (after ``jsoncompiled``): records through Arrow's JSON reader.

Arrow's reader (C++, on every core) parses newline-delimited JSON into typed columns against a
schema: the keys of a ``platform.report`` record, with every number read as a double. It reads
a record as JSON means it; the careful path (``workbook.telemetry.fields.JSON_FIELDS``, regular
expressions over the text) reads its text. The two agree on a record that holds nothing but
those keys, in the objects they belong to, each once, with strings that hold no escapes. So a
line is vouched for only when:

* it holds no backslash (an escape: JSON decodes it, the careful path keeps it as it is);
* the reader read it (one line, one record: broken JSON, a key twice, a string where a number
  belongs fail their batch, and the batch is split until the bad lines are alone);
* it holds no other key at any depth (a Managed Instances record's ``spans``, say: such keys
  are read too, and any line that has one is left);
* ``"type"`` is ``"platform.report"``, the request id and the duration are there, no string is
  empty, and the integer metrics are whole numbers below 2**53 (exact as doubles);
* the X-Ray span id and type hold no brace (the careful path reads the value past them).

Arrow converts the numbers' text as its casts convert the careful path's (correctly rounded),
so both give the same values. The lines left go on to ``workbook.telemetry.fastpath.json_numpy``
and then the careful path, line by line.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from workbook.telemetry.fields import FLOATS

__all__ = ["json_fast"]

_BATCH = 131_072          # lines per read: a batch that fails is split in halves...
_SMALLEST = 512           # ...down to this many lines, then left to the next path
_BLOCK_BYTES = 1 << 20    # the reader's block: one per thread at a time

_NUMBER = pa.float64()
_METRICS = {"durationMs": "duration_ms", "billedDurationMs": "billed_duration_ms", "memorySizeMB": "memory_size_mb",
            "maxMemoryUsedMB": "max_memory_used_mb", "initDurationMs": "init_duration_ms",
            "restoreDurationMs": "restore_duration_ms", "billedRestoreDurationMs": "billed_restore_duration_ms"}
_SCHEMA = pa.schema([
    ("time", pa.string()),
    ("type", pa.string()),
    ("record", pa.struct([
        ("requestId", pa.string()),
        ("metrics", pa.struct([(key, _NUMBER) for key in _METRICS])),
        ("status", pa.string()),
        ("errorType", pa.string()),
        ("tracing", pa.struct([("spanId", pa.string()), ("type", pa.string()), ("value", pa.string())])),
    ])),
])
_PARSE = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="infer", newlines_in_values=False)
_EXACT = 2.0**53
_SCAN = 1 << 23           # bytes compared at a time in the search for a backslash


def _read(lines) -> list[tuple[int, pa.Table]]:
    """(first line, table) for the parts of ``lines`` the reader reads; a part that fails is split
    in halves, down to ``_SMALLEST`` lines (then left out)."""
    joined = pc.binary_join_element_wise(lines, pa.scalar("\n", lines.type), pa.scalar("", lines.type))
    try:
        table = pj.read_json(pa.BufferReader(joined.buffers()[2]), parse_options=_PARSE,
                             read_options=pj.ReadOptions(block_size=_BLOCK_BYTES))
    except pa.ArrowInvalid:
        table = None
    if table is not None and table.num_rows == len(lines):
        return [(0, table)]
    if len(lines) <= _SMALLEST:
        return []
    half = len(lines) // 2
    return _read(lines.slice(0, half)) + [(half + start, part) for start, part in _read(lines.slice(half))]


def _field(values, name: str):
    return pc.struct_field(values, name)


def _unexpected(values, expected: pa.DataType) -> np.ndarray | None:
    """Rows that hold a key the schema does not name, at any depth (None: none do)."""
    if not pa.types.is_struct(values.type):
        return None
    names = {expected.field(i).name: expected.field(i).type for i in range(expected.num_fields)}
    found = None
    for i in range(values.type.num_fields):
        name = values.type.field(i).name
        child = _field(values, name)
        if name not in names:
            mask = pc.is_valid(child).to_numpy()
        else:
            mask = _unexpected(child, names[name])
        if mask is not None:
            found = mask if found is None else (found | mask)
    return found


def _columns(table: pa.Table) -> tuple[dict, np.ndarray]:
    """The columns of one read part (chunked, as the reader gives them), and the rows vouched for."""
    n = table.num_rows
    ok = np.ones(n, dtype=bool)
    for name in table.column_names:   # a key the schema does not name, at the top or inside
        extra = pc.is_valid(table.column(name)).to_numpy() if name not in _SCHEMA.names else \
            _unexpected(table.column(name), _SCHEMA.field(name).type)
        if extra is not None:
            ok &= ~extra
    record = table.column("record")
    metrics, tracing = _field(record, "metrics"), _field(record, "tracing")
    cols = {
        "time": table.column("time"),
        "request_id": _field(record, "requestId"),
        "status_raw": _field(record, "status"),
        "error_type": _field(record, "errorType"),
    }
    value = _field(tracing, "value")
    for key in ("spanId", "type"):   # the careful path reads X-Ray's value past these with [^{}]*: no brace
        ok &= ~pc.fill_null(pc.match_substring_regex(_field(tracing, key), "[{}]"), False).to_numpy(zero_copy_only=False)
    ok &= pc.fill_null(pc.equal(table.column("type"), "platform.report"), False).to_numpy()
    ok &= pc.is_valid(cols["request_id"]).to_numpy()
    for values in (*cols.values(), value):   # the careful path reads an empty string as no value
        ok &= pc.fill_null(pc.not_equal(values, ""), True).to_numpy()
    for key, name in _METRICS.items():
        values = _field(metrics, key)
        if name in FLOATS:
            cols[name] = values
            continue
        # the careful path casts an integer's text: here the double must be that integer, exactly
        whole = pc.and_(pc.equal(values, pc.floor(values)), pc.less(pc.abs(values), _EXACT))
        ok &= pc.fill_null(whole, True).to_numpy()
        cols[name] = pc.cast(pc.if_else(pc.fill_null(whole, False), values, pa.scalar(None, _NUMBER)), pa.int64())
    ok &= pc.is_valid(cols["duration_ms"]).to_numpy()
    # the careful path's pattern takes the last "Root=" of the value that an id follows
    cols["xray_trace_id"] = pc.struct_field(pc.extract_regex(value, r"(?s)^.*Root=(?P<v>[0-9A-Za-z-]+)"), "v")
    return cols, ok


def json_fast(arr, body: np.ndarray | None = None) -> tuple[dict, np.ndarray] | None:
    """Read ``platform.report`` records (an Arrow large-string array) with Arrow's JSON reader.

    Returns the columns (Arrow arrays named as ``extract_fields`` names them, null where a line is
    not vouched for) and a mask of the lines it vouches for; None where it takes none (records
    after a prefix: ``body``).
    """
    n = len(arr)
    if n == 0 or arr.null_count or (body is not None and body.any()):
        return None
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = np.frombuffer(data_buf, dtype=np.uint8)[offsets[0] : offsets[-1]]
    eligible = np.ones(n, dtype=bool)
    if any((data[i : i + _SCAN] == ord("\\")).any() for i in range(0, len(data), _SCAN)):  # rare
        slashes = np.flatnonzero(data == ord("\\"))
        eligible[np.searchsorted(offsets[1:] - offsets[0], slashes, side="right")] = False
    rows = np.flatnonzero(eligible)
    lines = arr if len(rows) == n else pc.take(arr, pa.array(rows))
    parts = []
    for start in range(0, len(lines), _BATCH):
        batch = lines.slice(start, _BATCH)
        parts += [(start + first, table) for first, table in _read(batch)]
    if not parts:
        return None
    where = np.full(n, -1, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    pieces = []
    row_base = 0
    for first, table in parts:
        cols, vouched = _columns(table)
        at = rows[first : first + table.num_rows]
        ok[at] = vouched
        where[at] = row_base + np.arange(table.num_rows)
        row_base += table.num_rows
        pieces.append(cols)
    names = list(pieces[0])
    if len(pieces) == 1 and row_base == n:   # every line read at once: the rows are the lines
        return pieces[0], ok
    merged = {name: pa.chunked_array([chunk for piece in pieces for chunk in piece[name].chunks]) for name in names}
    if row_base == n:   # every line read, in order: the parts are the lines
        return merged, ok
    index = pa.array(np.where(ok, where, 0), mask=~ok)
    return {name: pc.take(values, index) for name, values in merged.items()}, ok
