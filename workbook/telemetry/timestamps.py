"""Times of REPORT records as integer nanoseconds since the epoch, exact to the unit the source gives.

Sources of a time, in the order ``parse_reports`` trusts them:

* the event's own time, when the input is a dict: FilterLogEvents' ``timestamp`` (epoch ms, an
  int), Logs Insights' ``@timestamp`` (``2024-01-01 12:00:00.000``, UTC);
* a prefix written before the record by the tool that printed it (see ``PREFIX``);
* the JSON record's ``time`` (``2022-10-21T14:05:05.766Z``).

Nothing goes through float milliseconds: ``.766Z`` is 766,000,000 ns, not 766,000,244.
``NAT`` (the int64 minimum, as numpy and pandas use it) marks a missing time.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EXPORT_PREFIX", "ISO_8601", "LOG_STREAM", "NAT", "PREFIX", "epoch_ms", "event_times_to_ns", "iso_to_ns",
           "to_datetime_utc"]

NAT = np.iinfo(np.int64).min
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# ISO 8601 as the tools write it: ``T`` or a space between date and time, up to nine fraction
# digits, and ``Z``, an offset, or nothing (UTC: sam logs, Logs Insights and `aws logs tail` print UTC).
ISO_8601 = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
# A Lambda log stream name: ``2023/06/02/[$LATEST]88ab...`` or ``2023/06/02/[72]88ab...``. The
# bracket holds the version that ran (the place to read a ``version`` column from, later).
LOG_STREAM = r"\d{4}/\d{2}/\d{2}/\[[^\]\s]*\][0-9A-Za-z]*"
# What tools write before a record, then the record (text ``REPORT`` or a JSON object):
#   CloudWatch Logs export to S3:  2024-01-01T12:00:00.000Z REPORT RequestId: ...
#   sam logs:                      2023/06/02/[72]88ab... 2023-06-02T11:27:25.060000 REPORT RequestId: ...
#   aws logs tail:                 2024-01-01T12:00:00.123000+00:00 2024/01/01/[$LATEST]88ab... REPORT ...
#   a Logs Insights row copied:    2024-01-01 12:00:00.000<TAB>REPORT RequestId: ...
#   ... copied as a markdown table: | 2024-01-01 12:00:00.000 | REPORT RequestId: ... |
# (a markdown row's closing `|` is left on the record: the text fields end before it).
PREFIX = (rf"^(?P<prefix>\s*(?:(?:\|\s*)?(?:(?P<stream>{LOG_STREAM})\s+)?(?P<ts>{ISO_8601})(?:\s*\|)?\s+"
          rf"(?:{LOG_STREAM}(?:\s*\|)?\s+)?)?)"
          r"(?P<body>REPORT(?:\s|$)|\{)")

# The commonest prefix, a CloudWatch Logs export's (fixed width: read by position, not by the grammar).
EXPORT_PREFIX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (?:REPORT(?:\s|$)|\{)"
_HAS_ZONE = r"(?:Z|[+-]\d{2}(?::?\d{2})?)$"
_ISO_PARTS = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?")


def iso_to_ns(strings: Any) -> np.ndarray:
    """ISO 8601 strings (an Arrow array) as int64 ns since the epoch; ``NAT`` where null or not a time.

    Arrow parses them exactly (integer fields, no float). A string without a zone is UTC. When
    Arrow refuses the batch (one odd string), each string is parsed on its own.
    """
    if len(strings) == 0:
        return np.empty(0, dtype=np.int64)
    kind = strings.type
    strings = pc.if_else(pc.equal(strings, ""), pa.scalar(None, kind), strings)  # an unmatched group is ""
    try:  # the common case: every string has its zone (an export's Z, a JSON record's time)
        return pc.fill_null(pc.cast(pc.cast(strings, pa.timestamp("ns", tz="UTC")), pa.int64()), NAT).to_numpy(
            zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    zoned = pc.if_else(pc.match_substring_regex(strings, _HAS_ZONE), strings,
                       pc.binary_join_element_wise(strings, pa.scalar("Z", kind), pa.scalar("", kind)))
    try:
        stamps = pc.cast(zoned, pa.timestamp("ns", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return np.fromiter((_iso_one(text) for text in strings.to_pylist()), dtype=np.int64, count=len(strings))
    return pc.fill_null(pc.cast(stamps, pa.int64()), NAT).to_numpy(zero_copy_only=False)


def _iso_one(text: str | None) -> int:
    """One ISO 8601 string as ns, exactly (the fraction is read as an integer), or ``NAT``."""
    match = _ISO_PARTS.fullmatch(text.strip()) if text else None
    if match is None:
        return NAT
    day, clock, fraction, zone = match.groups()
    try:
        whole = datetime.fromisoformat(f"{day}T{clock}{_zone(zone)}")
    except ValueError:
        return NAT
    seconds = (whole - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((fraction or "").ljust(9, "0"))


def _zone(zone: str | None) -> str:
    if not zone or zone == "Z":
        return "+00:00"
    digits = zone[1:].replace(":", "")
    return f"{zone[0]}{digits[:2]}:{digits[2:4] or '00'}"


def event_times_to_ns(values: list[Any]) -> np.ndarray:
    """The times of input events (epoch ms numbers, ISO strings, datetimes, None) as int64 ns.

    Epoch milliseconds are multiplied as integers; a float with a fraction (not what AWS sends)
    is read through its decimal text, so it loses nothing either.
    """
    out = np.full(len(values), NAT, dtype=np.int64)
    texts: dict[int, str] = {}
    for i, value in enumerate(values):
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, np.integer)):
            out[i] = int(value) * 1_000_000
        elif isinstance(value, (float, np.floating)):
            if value == value:  # not NaN
                out[i] = _decimal_ms_to_ns(repr(float(value)))
        elif isinstance(value, (datetime, pd.Timestamp, np.datetime64)):
            stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
            out[i] = stamp.as_unit("ns").value
        else:
            text = str(value).strip()
            if text.isdigit():
                out[i] = int(text) * 1_000_000
            else:
                texts[i] = text
    if texts:
        positions = np.fromiter(texts, dtype=np.int64, count=len(texts))
        out[positions] = iso_to_ns(pa.array(list(texts.values()), type=pa.string()))
    return out


def _decimal_ms_to_ns(text: str) -> int:
    try:
        return int((Decimal(text) * 1_000_000).to_integral_value())
    except (InvalidOperation, ValueError, OverflowError):
        return NAT


def to_datetime_utc(ns: np.ndarray) -> pd.DatetimeIndex:
    """int64 ns (``NAT`` for missing) as pandas datetime64[ns, UTC]."""
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("M8[ns]")).tz_localize("UTC")


def epoch_ms(value: datetime | pd.Timestamp | float | int) -> int:
    """A time as integer epoch milliseconds (a number is taken as epoch ms already; naive times are UTC)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return int(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1_000_000)
