"""The first JSON fast path of ``parse_reports``: ``platform.report`` records in Lambda's own layout.

Lambda writes a report record compactly, with its keys in one order:
``{"time":"...","type":"platform.report","record":{"requestId":"...","metrics":{"durationMs":...,
...},"tracing":{...},"status":"...","errorType":"..."}}`` (the metrics after ``durationMs``, the
tracing object and the error type each there or not). Each such layout is a template here: its
literal text, with slots for string and number values. A line is read against a template
with the positions of its quotes alone (one pass over the bytes finds them all):

* the line holds exactly as many quotes as the template, so no value holds one;
* each literal piece is where the quotes before it put it, and holds the template's bytes
  (compared eight bytes at a time);
* the line starts with the first piece and ends with the last;
* every string value is non-empty, and every number is digits with at most one inner point
  (integers: digits only, at most 18).

A line that passes is the template with its slots filled, so the careful path's regular
expressions (``workbook.telemetry.fields.JSON_FIELDS``) read exactly those slots, and the
same Arrow casts give the same values. Lines no template takes go on to the other paths.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbook.telemetry import fastpath
from workbook.telemetry.fields import FLOATS

__all__ = ["json_layout"]

_STRING, _NUMBER = "\x00", "\x01"
_QUOTE = ord('"')
_HEAD = '{"time":"\x00","type":"platform.report","record":{"requestId":"\x00","metrics":{'
_METRICS = (  # the metrics Lambda writes, in its order: warm, cold, SnapStart restore
    ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"),
    ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"),
    ("durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "restoreDurationMs",
     "billedRestoreDurationMs"),
)
_TRACING = ',"tracing":{"spanId":"\x00","type":"\x00","value":"\x00"}'
_COLUMN = {"time": "time", "requestId": "request_id", "durationMs": "duration_ms",
           "billedDurationMs": "billed_duration_ms", "memorySizeMB": "memory_size_mb",
           "maxMemoryUsedMB": "max_memory_used_mb", "initDurationMs": "init_duration_ms",
           "restoreDurationMs": "restore_duration_ms", "billedRestoreDurationMs": "billed_restore_duration_ms",
           "status": "status_raw", "errorType": "error_type", "value": "_tracing",
           "spanId": "_span_id", "type": "_trace_type"}
_STRINGS = ("time", "request_id", "status_raw", "error_type", "_tracing")
_MAX_NUMBER = 16          # bytes (digits and a point): longer numbers go to the other paths; exact in int64
_PAD = 72                 # bytes past the end: the longest piece (7 words) read from the last byte


class _Template:
    """One layout: its literal pieces, where each sits among the line's quotes, and its slots."""

    def __init__(self, text: str):
        pieces, slots, piece = [], [], []
        for char in text:
            if char in (_STRING, _NUMBER):
                pieces.append("".join(piece))
                slots.append(char)
                piece = []
            else:
                piece.append(char)
        pieces.append("".join(piece))
        self.quotes = text.count('"')
        self.literal = []
        self.pieces = []   # (first quote's index among the line's quotes, its offset in the piece, words, masks, length)
        seen = 0
        for piece in pieces:
            raw = piece.encode()
            assert '"' in piece, piece   # every piece is located by a quote
            words, masks = [], []
            for at in range(0, len(raw), 8):
                chunk = raw[at : at + 8]
                words.append(int.from_bytes(chunk.ljust(8, b"\0"), "little"))
                masks.append(int.from_bytes(b"\xff" * len(chunk) + b"\0" * (8 - len(chunk)), "little"))
            self.pieces.append((seen, piece.index('"'), np.array(words, dtype=np.uint64),
                                np.array(masks, dtype=np.uint64), len(raw)))
            self.literal.append(np.frombuffer(raw, dtype=np.uint8))
            seen += piece.count('"')
        # each slot's column: the key before it (strings: the last quoted name before the slot)
        self.slots = []
        for i, kind in enumerate(slots):
            before = pieces[i]
            key = before.rsplit('"', 3)[-3] if kind == _STRING else before.rsplit('"', 2)[-2]
            self.slots.append((kind, _COLUMN.get(key)))


def _templates() -> dict[int, list[_Template]]:
    out: dict[int, list[_Template]] = {}
    for metrics in _METRICS:
        body = ",".join(f'"{key}":\x01' for key in metrics)
        for tracing in ("", _TRACING):
            for error in ("", ',"errorType":"\x00"'):
                template = _Template(f'{_HEAD}{body}}}{tracing},"status":"\x00"{error}}}}}')
                out.setdefault(template.quotes, []).append(template)
    return out


_TEMPLATES = _templates()
_HIGH = np.uint64(0x8080808080808080)
_SEVEN = np.uint64(0x7F7F7F7F7F7F7F7F)
_ZEROS = np.uint64(0x3030303030303030)      # "0" in every byte
_POINTS = np.uint64(0x1E1E1E1E1E1E1E1E)     # "." ^ "0" in every byte
_NIBBLES = np.uint64(0xF0F0F0F0F0F0F0F0)
_SIX = np.uint64(0x0606060606060606)
_CARRY = np.uint64(0x1010101010101010)
_WIDTH = 1024             # bytes: longer lines go to the other paths
_BRACES = (ord("{"), ord("}"))


def _layout(arr, body: np.ndarray | None) -> tuple[dict, np.ndarray] | None:
    """One chunk: each line copied into a row of a dense matrix (one gather), its quotes found
    there, and each template checked on the lines with its number of quotes."""
    n = len(arr)
    if body is not None and body.any():   # records after a prefix: the other paths read them
        return None
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    base = int(offsets[0])
    size = int(offsets[-1]) - base
    if size == 0:
        return None
    starts, lengths = offsets[:-1] - base, np.diff(offsets)
    width = min(-(-int(lengths.max()) // 8) * 8, _WIDTH)
    padded = np.zeros(size + width, dtype=np.uint8)
    padded[:size] = np.frombuffer(data_buf, dtype=np.uint8, count=size, offset=base)
    data = padded[:size]
    quotes = np.flatnonzero(data == _QUOTE)
    first = np.searchsorted(quotes, starts)
    counts = np.searchsorted(quotes, starts + lengths) - first
    counts[lengths > width] = -1                      # longer lines: the other paths
    window = _rows(padded, size + 1, width)
    ok = np.zeros(n, dtype=bool)
    spans: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for count, templates in _TEMPLATES.items():
        sel = np.flatnonzero(counts == count)
        if not len(sel):
            continue
        for template in templates:
            if not len(sel):
                break
            taken, found = _match(template, window, quotes, starts[sel], first[sel], lengths[sel], width)
            at = sel[taken]
            if len(at):
                ok[at] = True
                for column, (lo, hi) in found.items():
                    if column not in spans:
                        spans[column] = (np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64))
                    spans[column][0][at] = starts[at] + lo[taken]
                    spans[column][1][at] = starts[at] + hi[taken]
            sel = sel[~taken]
    cols = {}
    for column in ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb",
                   "init_duration_ms", "restore_duration_ms", "billed_restore_duration_ms", "status_raw",
                   "error_type", "_tracing", "time"):
        if column not in spans:
            cols[column] = pa.nulls(n, pa.large_string() if column in _STRINGS else
                                    (pa.float64() if column in FLOATS else pa.int64()))
            continue
        lo, hi = spans[column]
        present = ok & (hi > lo)
        if column in _STRINGS:
            cols[column] = _spans(data, lo, hi, present, starts)
            continue
        kind = pa.float64() if column in FLOATS else pa.int64()
        try:   # digits, a point inside a float: only a second point fails the cast
            cols[column] = _spans(data, lo, hi, present, starts, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            strings = _spans(data, lo, hi, present, starts)
            twice = pc.fill_null(pc.match_substring_regex(strings, r"\..*\."), False).to_numpy(zero_copy_only=False)
            ok &= ~twice
            cols[column] = _spans(data, lo, hi, present & ~twice, starts, kind)
    tracing = cols.pop("_tracing")
    cols["xray_trace_id"] = pc.struct_field(pc.extract_regex(tracing, r"(?s)^.*Root=(?P<v>[0-9A-Za-z-]+)"), "v")
    return cols, ok


def _rows(data: np.ndarray, count: int, width: int) -> np.ndarray:
    """``width`` bytes from each of the first ``count`` bytes of ``data`` on, as one item each: a
    gather of items copies each row whole."""
    return np.ndarray(shape=(count,), dtype=np.dtype((np.void, width)), buffer=data, strides=(1,))


def _match(template: _Template, window: np.ndarray, quotes: np.ndarray, starts: np.ndarray, first: np.ndarray,
           lengths: np.ndarray, width: int):
    """Rows (lines starting at ``starts``) that are ``template`` with its slots filled, and each
    slot's (lo, hi) span within its line. ``window``: row i is the chunk's bytes from i on;
    ``quotes``: where the chunk's quotes are; ``first``: each row's first quote."""
    pieces = template.pieces
    at = np.empty((len(starts), len(pieces)), dtype=np.int64)   # each piece's start in its line
    for i, (anchor, offset, *_) in enumerate(pieces):
        at[:, i] = quotes[first + anchor] - (starts + offset)
    size = np.array([piece[4] for piece in pieces])
    lo, hi = at[:, :-1] + size[:-1], at[:, 1:]          # the slots: between one piece and the next
    ok = (at[:, 0] == 0) & (at[:, -1] + size[-1] == lengths) & (hi > lo).all(axis=1)
    numbers = [i for i, (kind, _) in enumerate(template.slots) if kind == _NUMBER]
    ok &= ((hi[:, numbers] - lo[:, numbers]) <= _MAX_NUMBER).all(axis=1)
    # Rows with the same pieces at the same places (a shape) share one expected line.
    key = at @ np.random.default_rng(len(pieces)).integers(1, 2**62, len(pieces))
    _, first_of, shape = np.unique(key, return_index=True, return_inverse=True)
    ok &= (at == at[first_of][shape]).all(axis=1)
    tables = _Shapes(template, at[first_of], size, width)
    count = len(first_of)
    if count * 64 <= len(starts):   # few shapes: the lines by shape, each shape's rows compared at once
        order = np.argsort(shape, kind="stable")
        lines = window[starts[order]].view(np.uint8).reshape(len(starts), width)   # each line, then the next's bytes
        words = lines.view("<u8")
        same = np.empty(len(order), dtype=bool)
        bounds = np.searchsorted(shape[order], np.arange(count + 1))
        for u in range(count):
            b, e = bounds[u], bounds[u + 1]
            same[b:e] = ((words[b:e] & tables.mask[u]) == tables.expected[u]).all(axis=1)
            same[b:e] &= ~tables.wrong(lines[b:e], words[b:e], u)
        ok[order] &= same
    else:   # many shapes: each line beside its shape's tables
        lines = window[starts].view(np.uint8).reshape(len(starts), width)
        words = lines.view("<u8")
        ok &= ((words & tables.mask[shape]) == tables.expected[shape]).all(axis=1)
        ok &= ~tables.wrong(lines, words, shape)
    found = {}
    for s, (_, column) in enumerate(template.slots):
        if column is not None:
            found[column] = (lo[:, s], hi[:, s])
    return ok, found


class _Shapes:
    """One template at each shape (its pieces' places): the expected bytes, and which bytes must be
    digits, digits or points, or no brace."""

    def __init__(self, template: _Template, shapes: np.ndarray, size: np.ndarray, width: int):
        count = len(shapes)
        index = np.arange(count)[:, None]
        expected = np.zeros((count, width), dtype=np.uint8)
        mask = np.zeros((count, width), dtype=np.uint8)
        digit = np.zeros((count, width), dtype=bool)        # must be a digit
        numeric = np.zeros((count, width), dtype=bool)      # a digit or a point
        braceless = np.zeros((count, width), dtype=bool)    # no brace (X-Ray's span id and type)
        for i, length in enumerate(size):
            place = np.clip(shapes[:, i, None], 0, width - length) + np.arange(length)
            expected[index, place] = template.literal[i]
            mask[index, place] = 0xFF
        span = np.arange(_MAX_NUMBER)
        for s, (kind, column) in enumerate(template.slots):
            start, stop = shapes[:, s] + size[s], shapes[:, s + 1]
            if kind == _NUMBER:
                place = np.clip(start[:, None] + span, 0, width - 1)
                place = np.where(span < (stop - start)[:, None], place, place[:, :1])
                numeric[index, place] = True
                if column not in FLOATS:
                    digit[index, place] = True
                digit[np.arange(count), np.clip(start, 0, width - 1)] = True
                digit[np.arange(count), np.clip(stop - 1, 0, width - 1)] = True
            elif column in ("_span_id", "_trace_type"):   # the careful path reads X-Ray's value past these with [^{}]*
                columns = np.arange(width)
                braceless |= (columns >= start[:, None]) & (columns < stop[:, None])
        self.mask = mask.view("<u8")
        self.expected = expected.view("<u8") & self.mask
        number = np.where(numeric, np.uint8(0xFF), np.uint8(0)).view("<u8")
        band = np.flatnonzero(number.any(axis=0))
        self.low, self.high = (int(band[0]), int(band[-1]) + 1) if len(band) else (0, 0)
        part = slice(self.low, self.high)
        self.number = number[:, part]
        self.zeros = self.number & _ZEROS
        self.points = self.number & _POINTS
        # a point where a digit must be: in an integer, or a number's first or last byte
        self.no_point = np.where(digit, np.uint8(0x80), np.uint8(0)).view("<u8")[:, part]
        self.braceless = np.flatnonzero(braceless.any(axis=0))
        self.braces = braceless[:, self.braceless] if len(self.braceless) else None

    def wrong(self, lines: np.ndarray, words: np.ndarray, shape) -> np.ndarray:
        """Rows whose numbers are not digits (with a point inside a float), or whose span id or type
        holds a brace. Eight bytes at a time: the number bytes less "0" are 0-9, a point 0x1e."""
        value = (words[:, self.low : self.high] & self.number[shape]) ^ self.zeros[shape]
        point = value ^ self.points[shape]                   # zero where a point is (and outside numbers)
        points = ~(((point & _SEVEN) + _SEVEN) | point) & _HIGH & self.number[shape]
        value ^= (points >> np.uint64(7)) * np.uint64(0x1E)  # points read as zeros
        bad = (value & _NIBBLES) | ((value + _SIX) & _CARRY) | (points & self.no_point[shape])
        wrong = bad.any(axis=1)
        if self.braces is not None:
            part = lines[:, self.braceless]
            wrong |= (self.braces[shape] & ((part == _BRACES[0]) | (part == _BRACES[1]))).any(axis=1)
        return wrong


def _spans(data: np.ndarray, lo: np.ndarray, hi: np.ndarray, present: np.ndarray, starts: np.ndarray,
           kind: pa.DataType | None = None):
    """data[lo:hi] per row (null where not present) as Arrow strings, or cast to ``kind``.

    The spans lie in their own lines, in order; an absent one is empty at its line's start, so
    the offsets of the spans with the bytes between them only grow: one array over the chunk's
    bytes holds them all, every other element, and a cast reads them where they are.
    """
    n = len(lo)
    everywhere = present.all()
    if not everywhere:
        lo, hi = np.where(present, lo, starts), np.where(present, hi, starts)
    length = hi - lo
    if kind is None and everywhere and n and (length == length[0]).all():   # one length (ids, times): one gather
        width = int(length[0])
        values = _rows(data, max(len(data) - width + 1, 0), width)[lo]
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(np.arange(n + 1, dtype=np.int64) * width),
                                                pa.py_buffer(values))
    offsets = np.empty(2 * n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1::2], offsets[2::2] = lo, hi
    valid = np.zeros(2 * n, dtype=bool)
    valid[1::2] = present
    whole = pa.LargeStringArray.from_buffers(2 * n, pa.py_buffer(offsets), pa.py_buffer(data),
                                             pa.py_buffer(np.packbits(valid, bitorder="little")))
    if kind is None:
        return pc.take(whole, pa.array(np.arange(1, 2 * n, 2, dtype=np.int64)))
    values = pc.cast(whole, kind)
    numbers = np.frombuffer(values.buffers()[1], dtype=kind.to_pandas_dtype(), count=2 * n)[1::2]
    return pa.array(numbers, mask=None if everywhere else ~present)


def json_layout(arr, body: np.ndarray | None = None) -> tuple[dict, np.ndarray] | None:
    """Read ``platform.report`` records (an Arrow large-string array) written in Lambda's own layout.

    Returns the columns (Arrow arrays named as ``extract_fields`` names them, null where a line is
    not vouched for) and a mask of the lines it vouches for; None where it takes none.
    """
    if not fastpath._fast_eligible(arr):
        return None
    if len(arr) > fastpath._FAST_CHUNK:
        return fastpath._chunked(_layout, arr, body)
    return _layout(arr, body)
