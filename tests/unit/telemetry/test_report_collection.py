"""Every REPORT record in the collection (tests/unit/telemetry/report_lines/collection.yaml) parses to the values it states.

Two oracles: the values each entry states, written from the documented formats; and a plain-Python
reference parser (``reference.py``: tokens, ``json.loads`` and ``Decimal``, no shared pattern),
compared with ``parse_reports`` on the same lines.
"""
from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.unit.telemetry.reference import reference_parse, start_type_of, status_of
from workbook.logs import parse_reports
from workbook.telemetry import fastpath, reports

COLLECTION = yaml.safe_load((Path(__file__).parent / "report_lines" / "collection.yaml").read_text(encoding="utf-8"))
ENTRIES = COLLECTION["lines"]
FLOATS = ("duration_ms", "init_duration_ms", "restore_duration_ms")
INTS = ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb", "billed_restore_duration_ms")
STRINGS = ("request_id", "function", "error_type", "xray_trace_id")


def item(entry):
    return entry["event"] if "event" in entry else entry["line"]


def expected_row(entry) -> dict:
    """The entry's full row: stated values, and the defaults for what it leaves out."""
    stated = dict(entry["expected"])
    row = {name: None for name in (*FLOATS, *INTS, *STRINGS)}
    row.update(timestamp=None, status="ok", start_type="warm")
    row.update(stated)
    row["cold_start"] = row["start_type"] != "warm"
    for name in FLOATS:
        row[name] = None if row[name] is None else float(Decimal(str(row[name])))
    if row["timestamp"] is not None:
        row["timestamp"] = pd.Timestamp(row["timestamp"]).value
    return row


def parsed_rows(df: pd.DataFrame) -> list[dict]:
    """The rows of a parse_reports frame in the same plain shape as ``expected_row`` (None for missing)."""

    def plain(values):
        return [None if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) else value
                for value in values]

    columns = {name: plain(df[name].tolist()) for name in (*FLOATS, *STRINGS)}
    columns.update({name: [None if pd.isna(v) else int(v) for v in df[name].tolist()] for name in INTS})
    columns["timestamp"] = [None if pd.isna(v) else v.value for v in df["timestamp"].tolist()]
    columns.update(status=df["status"].astype(str).tolist(), start_type=df["start_type"].astype(str).tolist(),
                   cold_start=[bool(v) for v in df["cold_start"].tolist()])
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def parsed_row(df: pd.DataFrame, i: int) -> dict:
    return parsed_rows(df.iloc[i : i + 1])[0]


def test_the_collection_covers_every_format():
    # GIVEN the collection WHEN its entries are counted by source THEN every documented shape is in it
    sources = {entry["source"] for entry in ENTRIES}
    assert sources == set(COLLECTION["sources"])
    outcomes = [entry["expected"] if isinstance(entry["expected"], str) else "row" for entry in ENTRIES]
    assert outcomes.count("row") >= 35 and outcomes.count("malformed") >= 5 and outcomes.count("ignored") >= 5


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["name"] for entry in ENTRIES])
def test_each_line_parses_to_the_values_it_states(entry):
    # GIVEN one line of the collection
    # WHEN it is parsed on its own
    df = parse_reports([item(entry)])
    # THEN it is a row with exactly the stated values, or counted as malformed or ignored
    if entry["expected"] == "malformed":
        assert len(df) == 0 and df.attrs["malformed"] == 1 and df.attrs["ignored"] == 0
        assert df.attrs["malformed_sample"] == [item(entry)[:300]]
    elif entry["expected"] == "ignored":
        assert len(df) == 0 and df.attrs["ignored"] == 1 and df.attrs["malformed"] == 0
    else:
        assert len(df) == 1 and df.attrs["malformed"] == df.attrs["ignored"] == 0
        assert parsed_row(df, 0) == expected_row(entry)


def _rows_by_position(df, entries):
    rows = [entry for entry in entries if not isinstance(entry["expected"], str)]
    assert len(df) == len(rows)
    return {entry["name"]: parsed_row(df, i) for i, entry in enumerate(rows)}


def test_the_whole_collection_in_one_batch_and_many_times_over(monkeypatch):
    # GIVEN every line of the collection, once, and then repeated past the fast paths' chunk size
    items = [item(entry) for entry in ENTRIES]
    once = parse_reports(items)
    assert once.attrs["malformed"] == sum(entry["expected"] == "malformed" for entry in ENTRIES)
    assert once.attrs["ignored"] == sum(entry["expected"] == "ignored" for entry in ENTRIES)
    for name, row in _rows_by_position(once, ENTRIES).items():
        assert row == expected_row(next(e for e in ENTRIES if e["name"] == name)), name
    # WHEN only the strings are repeated (a plain list takes the fast paths) in chunks of 1,000
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 1_000)
    strings = [entry for entry in ENTRIES if "line" in entry]
    repeated = [entry["line"] for entry in strings] * 60
    many = parse_reports(repeated)
    # THEN every copy parses as the single line did
    rows = [entry for entry in strings if not isinstance(entry["expected"], str)]
    assert len(many) == 60 * len(rows)
    for i, row in enumerate(parsed_rows(many)):
        assert row == expected_row(rows[i % len(rows)])
    assert many.attrs["malformed"] == 60 * sum(entry["expected"] == "malformed" for entry in strings)


def test_the_regex_path_alone_gives_the_same_rows(monkeypatch):
    # GIVEN the collection WHEN the numpy fast paths are switched off THEN the regular expressions give the same frame
    items = [entry["line"] for entry in ENTRIES if "line" in entry]
    fast = parse_reports(items)
    monkeypatch.setattr(reports, "text_fast", lambda *args, **kwargs: None)
    monkeypatch.setattr(reports, "json_fast", lambda *args, **kwargs: None)
    monkeypatch.setattr(reports, "json_numpy", lambda *args, **kwargs: None)
    monkeypatch.setattr(reports, "json_compiled", lambda *args, **kwargs: None)
    slow = parse_reports(items)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.attrs == slow.attrs


def reference_frame_agrees(items, df) -> None:
    """The reference parser's verdict on every item matches parse_reports' rows and counts."""
    verdicts = reference_parse(items)
    assert df.attrs["malformed"] == sum(kind == "malformed" for kind, _ in verdicts)
    assert df.attrs["ignored"] == sum(kind == "ignored" for kind, _ in verdicts)
    rows = [row for kind, row in verdicts if kind == "report"]
    assert len(df) == len(rows)
    for i, (ref, got) in enumerate(zip(rows, parsed_rows(df), strict=True)):
        want = {
            "request_id": ref["request_id"], "function": ref["function"], "timestamp": ref["timestamp_ns"],
            "status": status_of(ref), "start_type": start_type_of(ref), "cold_start": start_type_of(ref) != "warm",
            "error_type": ref["error_type"], "xray_trace_id": ref["xray_trace_id"],
            **{name: None if ref[name] is None else float(ref[name]) for name in FLOATS},
            **{name: ref[name] for name in INTS},
        }
        assert got == want, (i, items)


def test_the_reference_parser_agrees_on_the_collection():
    # GIVEN the collection WHEN both parsers read it THEN they agree on every line
    items = [item(entry) for entry in ENTRIES]
    reference_frame_agrees(items, parse_reports(items))
    # AND the reference agrees with what each entry states (so it is an oracle, not a copy)
    for entry, (kind, _) in zip(ENTRIES, reference_parse(items), strict=True):
        assert kind == (entry["expected"] if isinstance(entry["expected"], str) else "report"), entry["name"]


# --- one answer per line -------------------------------------------------------------------------
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st


def _alone(entry_item) -> tuple[list[dict], int, int]:
    df = parse_reports([entry_item])
    return parsed_rows(df), df.attrs["malformed"], df.attrs["ignored"]


ALONE = {entry["name"]: _alone(item(entry)) for entry in ENTRIES}


_BY_NAME = {entry["name"]: entry for entry in ENTRIES}
# Batches: a few lines with repeats, or a long run of distinct lines in any order (most pairs meet).
BATCHES = st.one_of(
    st.lists(st.sampled_from(ENTRIES), min_size=1, max_size=40),
    st.permutations(ENTRIES).flatmap(lambda order: st.integers(1, len(order)).map(lambda k: order[:k])),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BATCHES, st.booleans())
# Found before the fix: the docs' custom-runtime line read alone took "f8ac1208... Init Duration: 48.26 ms"
# for its request id; beside a line that sends the batch to the careful path, it was malformed.
@example([_BY_NAME["custom-runtime-init-first"], _BY_NAME["text-duration-not-a-number"]], True)
@example([_BY_NAME["custom-runtime-init-first"], _BY_NAME["iso-offset-and-nanoseconds"]], True)
# Found by this property: an event's text report beside a JSON line that gives no row raised IndexError
# (the text rows' line numbers were uint64, the empty JSON frame's int64: concatenated, float64).
@example([_BY_NAME["filter-log-events-event"], _BY_NAME["truncated-json"]], False)
def test_a_line_gives_the_same_answer_alone_and_in_any_batch(entries, strings_only):
    # GIVEN any batch of lines of the collection (repeats and any order; strings alone take the fast paths)
    if strings_only:
        entries = [entry for entry in entries if "line" in entry] or [ENTRIES[0]]
    # WHEN the batch is parsed
    df = parse_reports([item(entry) for entry in entries])
    # THEN each line gives the row (or the count) it gives alone, in input order
    expected_rows = [row for entry in entries for row in ALONE[entry["name"]][0]]
    assert parsed_rows(df) == expected_rows
    assert df.attrs["malformed"] == sum(ALONE[entry["name"]][1] for entry in entries)
    assert df.attrs["ignored"] == sum(ALONE[entry["name"]][2] for entry in entries)
