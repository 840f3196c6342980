"""The first JSON fast path of ``parse_reports``: ``platform.report`` records read in one compiled pass.

``_reportjson.c`` (built with the package: ``pip install -e .``) reads each line once, in C, as
a strict subset of JSON: the keys of a ``platform.report`` record, each once, in the objects they
belong to, strings with no escape, numbers whose value it computes exactly. What it reads is what
the careful path (``workbook.telemetry.fields.JSON_FIELDS``, regular expressions over the text)
reads from the same line; every other line is left to the next path (Arrow's JSON reader, the
numpy path, then the careful path), which counts it. The C file's header lists the rules.

It reads a list of ``str`` straight from the Python objects (no Arrow copy of the input first: a
million records take about a third of the time Arrow's conversion alone takes), or an Arrow
large-string array from its buffers (lines after a timestamp prefix included).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from workbook.telemetry.fields import WORKERS

try:
    from workbook.telemetry import _reportjson
except ImportError:  # pragma: no cover - a source tree that was not built: the other paths read everything
    _reportjson = None

__all__ = ["AVAILABLE", "json_compiled"]

AVAILABLE = _reportjson is not None
THREADED = 65_536   # lines from which the reader splits them between threads (fewer: a thread costs more than it saves)


def json_compiled(lines, body: np.ndarray | None = None, aligned: bool = True) -> tuple[dict, np.ndarray] | None:
    """Read ``platform.report`` records from ``lines`` (a list of str, or an Arrow large-string array).

    ``body`` holds, per line, the byte offset where the record starts (after a timestamp prefix;
    None: 0). Returns the columns (Arrow arrays named as ``extract_fields`` names them) and a mask
    of the lines read; None when it reads nothing (not built, an item not a str, nulls). With
    ``aligned`` the columns have a row per line (null where a line was left), else a row per line read.
    """
    if _reportjson is None:
        return None
    if isinstance(lines, list):
        if body is not None:
            return None
        raw = _reportjson.read_strings(lines, _threads(len(lines)))
    else:
        if len(lines) == 0 or lines.null_count or not isinstance(lines, pa.LargeStringArray):
            return None
        _, offsets, data = lines.buffers()
        n = len(lines)
        offsets = np.frombuffer(offsets, dtype=np.int64, count=n + 1, offset=lines.offset * 8)
        starts = None if body is None else np.ascontiguousarray(body, dtype=np.int64)
        raw = _reportjson.read_buffers(offsets, data if data is not None else b"", starts, _threads(n))
    if raw is None:
        return None
    ok = np.frombuffer(raw.pop("ok"), dtype=bool)
    rows = raw.pop("rows")
    if rows == 0:
        return None
    cols = {name: _column(rows, *parts) for name, parts in raw.items()}
    if aligned and rows < len(ok):
        where = np.cumsum(ok) - 1
        index = pa.array(where, mask=~ok)
        cols = {name: values.take(index) for name, values in cols.items()}
    return cols, ok


def _threads(lines: int) -> int:
    return WORKERS if lines >= THREADED else 1


def _column(rows: int, kind: str, *buffers: bytes) -> Any:
    valid = np.frombuffer(buffers[-1], dtype=bool)
    everywhere = bool(valid.all())
    if kind == "string":
        offsets, data = buffers[0], buffers[1]
        bitmap = None if everywhere else pa.py_buffer(np.packbits(valid, bitorder="little"))
        return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data), bitmap,
                                                null_count=0 if everywhere else int(rows - valid.sum()))
    values = np.frombuffer(buffers[0], dtype=np.float64 if kind == "float64" else np.int64)
    return pa.array(values, mask=None if everywhere else ~valid)
