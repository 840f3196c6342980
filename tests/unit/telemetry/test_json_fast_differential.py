"""The JSON fast paths against the careful path: identical frames, identical accounting.

``parse_reports`` reads JSON ``platform.report`` records first with the compiled reader
(``workbook.telemetry.jsoncompiled``: over a list of strings, or over Arrow's buffers), then with
Arrow's JSON reader (``workbook.telemetry.jsonfast``), then with the numpy JSON path, and leaves
the rest to the regular expressions (the careful path). Whatever the fast paths vouch for must read exactly as
the careful path reads it, and what they leave must be counted exactly as it counts it. The
oracle here is the careful path itself, run alone on the same lines: on the collection's real
records, and on generated ones (key orders, spacing, missing optional metrics, SnapStart
restores, Managed Instances records, X-Ray traces, non-ASCII request ids written raw or escaped,
numbers of every form, and broken JSON of many kinds).
"""
from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbook.logs import parse_reports
from workbook.telemetry import fastpath, jsoncompiled, jsonfast, reports

COLLECTION = yaml.safe_load((Path(__file__).parent / "report_lines" / "collection.yaml").read_text(encoding="utf-8"))
JSON_LINES = [entry["line"] for entry in COLLECTION["lines"] if "line" in entry and "{" in entry["line"]]


FAST_PATHS = ("json_compiled", "json_fast", "json_numpy", "text_fast")


def careful(monkeypatch, lines) -> pd.DataFrame:
    """The careful path alone: every JSON fast path (and the text one) switched off."""
    return only(monkeypatch, lines)


def only(monkeypatch, lines, *kept: str) -> pd.DataFrame:
    """``parse_reports`` with only the fast paths ``kept`` (and the careful path)."""
    with monkeypatch.context() as patch:
        for name in FAST_PATHS:
            if name not in kept:
                patch.setattr(reports, name, lambda *args, **kwargs: None)
        return parse_reports(lines)


def compiled_both_ways(monkeypatch, lines) -> list[pd.DataFrame]:
    """The compiled reader alone (then the careful path), over the Python strings and over Arrow's
    buffers (an iterator is not a list: it goes to Arrow first), its lines split between threads
    however few they are (each thread's rows are then moved together: lines left in one part move
    the next part's rows)."""
    with monkeypatch.context() as patch:
        patch.setattr(jsoncompiled, "THREADED", 1)
        return [only(patch, lines, "json_compiled"), only(patch, iter(lines), "json_compiled")]


def test_the_compiled_reader_is_built():
    # GIVEN the installed package WHEN the compiled reader is imported THEN it is there (a tree that
    # was not built would pass every test below on the other paths alone)
    assert jsoncompiled.AVAILABLE, ("workbook/telemetry/_reportjson.c is not built: install the package again "
                                    "(`make bootstrap`, or `.venv/bin/pip install -e .`) where a C compiler is")


def assert_same(fast: pd.DataFrame, slow: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.attrs == slow.attrs


def test_the_collection_reads_the_same_on_every_path(monkeypatch):
    # GIVEN the collection's JSON records (reports, broken ones, other JSON), many times over, in
    # batches small enough that failing batches are split
    lines = JSON_LINES * 40
    monkeypatch.setattr(jsonfast, "_BATCH", 256)
    monkeypatch.setattr(jsonfast, "_SMALLEST", 16)
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 300)
    slow = careful(monkeypatch, lines)
    # WHEN read with every path, with the compiled reader alone (over strings and over Arrow), with
    # Arrow's reader alone and with the numpy path alone
    every = parse_reports(lines)
    reader_alone = only(monkeypatch, lines, "json_fast")
    numpy_alone = only(monkeypatch, lines, "json_numpy")
    # THEN each gives the careful path's frame and counts
    for fast in (every, reader_alone, numpy_alone, *compiled_both_ways(monkeypatch, lines)):
        assert_same(fast, slow)
    assert slow.attrs["malformed"] == 40 * 2 and slow.attrs["ignored"] == 40 * 2


def test_the_reader_vouches_for_records_as_lambda_writes_them():
    # GIVEN records as Lambda writes them: cold, warm, restored, timed out, with and without X-Ray
    lines = [line for line in JSON_LINES if line.startswith("{") and "\"spans\"" not in line and ": " not in line
             and "\"type\":\"platform.report\"" in line and "durationMs" in line and line.endswith("}")]
    # WHEN the reader reads them THEN it vouches for every one (the careful path is not doing the work)
    cols, ok = jsonfast.json_fast(pa.array(lines * 600, type=pa.large_string()))
    assert ok.all() and len(ok) == 600 * len(lines)
    # AND so does the compiled reader, over the strings and over Arrow's buffers
    for given_lines in (lines * 600, pa.array(lines * 600, type=pa.large_string())):
        cols, ok = jsoncompiled.json_compiled(given_lines)
        assert ok.all() and len(ok) == 600 * len(lines) and len(cols["request_id"]) == len(ok)


def test_the_compiled_reader_vouches_for_managed_instances_records():
    # GIVEN the collection's Lambda Managed Instances records (spans beside the metrics)
    lines = [line for line in JSON_LINES if line.startswith("{") and '"spans"' in line]
    assert len(lines) == 2
    # WHEN the compiled reader reads them THEN it vouches for every one (the careful path reads
    # them the same: test_the_collection_reads_the_same_on_every_path)
    cols, ok = jsoncompiled.json_compiled(lines * 100)
    assert ok.all() and cols["duration_ms"].to_pylist()[:2] == [2.406, 11.75]


def test_the_compiled_reader_reads_records_after_a_prefix(monkeypatch):
    # GIVEN the collection's JSON records after a CloudWatch Logs export's timestamp, and after a
    # prefix with a quote in it (the careful path reads the whole line: such a line is left to it)
    lines = [f"2024-01-01T12:00:00.000Z {line}" for line in JSON_LINES] + [f'2024-01-01 "x" {JSON_LINES[0]}']
    # WHEN read with the compiled reader alone THEN the careful path's frame and counts
    slow = careful(monkeypatch, lines)
    assert_same(only(monkeypatch, lines, "json_compiled"), slow)
    assert len(slow) > 0


# ---------------------------------------------------------------------------------------------
# Generated records.
# ---------------------------------------------------------------------------------------------
DIGITS = st.text("0123456789", min_size=1, max_size=9)
REQUEST_IDS = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(codec="utf-8", exclude_characters='"\\', exclude_categories=("Cs", "Cc")), min_size=1,
            max_size=40),                                                     # anything, non-ASCII included
    st.sampled_from(["réq-é-1", "请求-42", "req 🚀", "a\u00e9b"]),
)


@st.composite
def numbers(draw, integer: bool) -> str:
    """A JSON number as an emitter might write it (the careful path reads its text)."""
    whole = draw(DIGITS).lstrip("0") or "0"
    form = draw(st.sampled_from(["int", "int", "fraction", "zero-fraction", "exponent", "long"]))
    if form == "int":
        return whole
    if form == "zero-fraction":
        return whole + ".0"
    if form == "exponent":
        return whole + draw(st.sampled_from(["e2", "E-1", "e+3", ".5e1"]))
    if form == "long":
        return draw(st.text("123456789", min_size=15, max_size=18)) + ("" if integer else "." + draw(DIGITS))
    return f"{whole}.{draw(DIGITS)}"


@st.composite
def records(draw) -> str:
    """One JSON line: a platform.report record in a drawn shape, or another JSON line, maybe broken."""
    kind = draw(st.sampled_from(["report"] * 6 + ["managed", "other"]))
    metrics = {"durationMs": draw(numbers(False))}
    if kind == "report":
        for key in ("billedDurationMs", "memorySizeMB", "maxMemoryUsedMB"):
            if draw(st.integers(0, 9)):          # now and then one is missing
                metrics[key] = draw(numbers(True))
        start = draw(st.sampled_from(["warm", "warm", "cold", "restore"]))
        if start == "cold":
            metrics["initDurationMs"] = draw(numbers(False))
        elif start == "restore":
            metrics["restoreDurationMs"] = draw(numbers(False))
            metrics["billedRestoreDurationMs"] = draw(numbers(True))
    keys = draw(st.permutations(list(metrics)))
    record = {"requestId": json.dumps(draw(REQUEST_IDS), ensure_ascii=draw(st.booleans())),
              "metrics": "{" + ",".join(f'"{key}":{metrics[key]}' for key in keys) + "}",
              "status": json.dumps(draw(st.sampled_from(["success", "timeout", "error", "failure", "", "Success"])))}
    if draw(st.booleans()):
        record["errorType"] = json.dumps(draw(st.sampled_from(["Runtime.OutOfMemory", "Runtime.ExitError", "Sandbox.Timedout"])))
    if draw(st.booleans()):
        root = draw(st.sampled_from(["1-5e1b4151-5ac6c58f3e0f7e9c1f2a3b4c", "1-abc", "", "1-a;Root=1-b"]))
        record["tracing"] = json.dumps({"spanId": "0a1b2c3d4e5f6789", "type": "X-Amzn-Trace-Id",
                                        "value": f"Root={root};Parent=1122334455667788;Sampled=1"})
    if kind == "managed" or draw(st.integers(0, 19)) == 0:
        record["spans"] = '[{"name":"responseLatency","start":"2025-01-01T00:00:00.000Z","durationMs":0.5}]'
    doc = {"type": json.dumps("platform.report" if kind != "other" else draw(st.sampled_from(
               ["platform.start", "platform.runtimeDone", "function"]))),
           "record": "{" + ",".join(f'"{key}":{record[key]}' for key in draw(st.permutations(list(record)))) + "}"}
    if draw(st.integers(0, 4)):
        doc["time"] = json.dumps(draw(st.sampled_from(["2025-11-01T10:00:00.000Z", "2024-04-01T00:00:05.5Z",
                                                        "2024-02-29T23:59:59.999999Z", "not a time"])))
    order = draw(st.permutations(list(doc)))
    colon, comma = draw(st.sampled_from([(":", ","), (": ", ", "), (" : ", " ,"), (":", ", ")]))
    line = "{" + comma.join(f'"{key}"{colon}{doc[key]}' for key in order) + "}"
    return draw(broken(line))


@st.composite
def broken(draw, line: str) -> str:
    """The line as it is (mostly), or broken in one of the ways logs break."""
    how = draw(st.sampled_from(["none"] * 8 + ["truncate", "delete", "duplicate", "string-number", "unknown-key",
                                               "nested", "trailing", "double"]))
    if how == "none":
        return line
    if how == "truncate":
        return line[: draw(st.integers(1, len(line) - 1))]
    if how == "delete":
        at = draw(st.integers(0, len(line) - 1))
        return line[:at] + line[at + 1 :]
    if how == "duplicate":
        return line.replace('"metrics":{', '"metrics":{"durationMs":1.5,', 1).replace('"requestId":', '"requestId":"x","requestId":', 1)
    if how == "string-number":
        return line.replace('"durationMs":', '"durationMs":"', 1).replace(',"', '","', 1)
    if how == "unknown-key":
        return line.replace('"metrics":{', '"metrics":{"producedBytes":12,', 1)
    if how == "nested":
        return line.replace('"record":{', '"record":{"extra":{"requestId":"other","durationMs":9},', 1)
    if how == "trailing":
        return line + draw(st.sampled_from([" ", "}", " x", "\t"]))
    return line + line                                   # two records on one line


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(records(), min_size=1, max_size=12))
def test_generated_records_read_the_same_on_every_path(lines):
    # GIVEN generated JSON lines of every shape, broken or not
    # WHEN read with every path and with the careful path alone
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonfast, "_SMALLEST", 2)
        fast = parse_reports(lines)
        slow = careful(patch, lines)
        compiled = compiled_both_ways(patch, lines)
    # THEN the frames and the counts are identical
    assert_same(fast, slow)
    for frame in compiled:
        assert_same(frame, slow)


def test_a_large_generated_batch_reads_the_same(monkeypatch):
    # GIVEN 20,000 records as Lambda writes them (200 broken or not reports), read in batches of 1,000 that the bad lines split
    rng = random.Random(20261207)
    lines = [_lambda_record(rng) for _ in range(20_000)]
    for at in rng.sample(range(20_000), 200):
        line = lines[at]
        cut = rng.randrange(1, len(line))
        lines[at] = rng.choice([line[:cut], line[:cut] + line[cut + 1 :], line.replace('"status":', '"status":7,"x":', 1),
                                line.replace('"type":"platform.report"', '"type":"platform.start"')])
    monkeypatch.setattr(jsonfast, "_BATCH", 1_000)
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 4_000)
    # WHEN read with every path and with the careful path alone THEN the frames and counts are identical
    fast = parse_reports(lines)
    slow = careful(monkeypatch, lines)
    assert_same(fast, slow)
    for frame in compiled_both_ways(monkeypatch, lines):
        assert_same(frame, slow)
    assert len(fast) > 19_000
    # AND the compiled reader did the work: it read every line but the 200 changed ones (some of which still read)
    assert jsoncompiled.json_compiled(lines)[1].sum() >= 19_800


def _lambda_record(rng: random.Random) -> str:
    metrics = {"durationMs": round(rng.uniform(0, 900_000), rng.choice([0, 1, 2, 3])),
               "billedDurationMs": rng.randint(1, 900_000), "memorySizeMB": rng.choice([128, 512, 1769, 10240]),
               "maxMemoryUsedMB": rng.randint(30, 10240)}
    if rng.random() < 0.05:
        metrics["initDurationMs"] = round(rng.uniform(50, 5_000), 3)
    record = {"requestId": str(uuid.UUID(int=rng.getrandbits(128))), "metrics": metrics,
              "status": rng.choice(["success"] * 20 + ["timeout", "error"])}
    return json.dumps({"time": "2025-11-01T10:00:00.000Z", "type": "platform.report", "record": record},
                      separators=(",", ":"))


# ---------------------------------------------------------------------------------------------
# Records in Lambda's own layout and key order, values drawn wide, one byte changed: what a
# fast path that checks a key by a few of its bytes, or a value without its neighbours, gets wrong.
# ---------------------------------------------------------------------------------------------
STRING_VALUES = st.one_of(REQUEST_IDS, st.sampled_from(["", "a{b", "x}y", "success", "timeout", "error"]))


@st.composite
def lambda_layout(draw) -> str:
    """A record in the layout Lambda writes, its values drawn wide (numbers of every form, empty and
    non-ASCII strings, braces), maybe one byte changed."""
    metrics = [("durationMs", draw(numbers(False)))] + [(key, draw(numbers(True))) for key in
                                                         ("billedDurationMs", "memorySizeMB", "maxMemoryUsedMB")]
    start = draw(st.sampled_from(["warm", "cold", "restore"]))
    if start == "cold":
        metrics.append(("initDurationMs", draw(numbers(False))))
    elif start == "restore":
        metrics += [("restoreDurationMs", draw(numbers(False))), ("billedRestoreDurationMs", draw(numbers(True)))]
    def text(value) -> str:   # JSON text, escaped or not
        return json.dumps(value, ensure_ascii=draw(st.booleans()))

    tracing = ""
    if draw(st.booleans()):
        root = draw(st.sampled_from(["1-5e1b4151-5ac6c58f3e0f7e9c1f2a3b4c", "1-abc", "", "1-a;Root=1-b", "1-{x}"]))
        tracing = (f',"tracing":{{"spanId":{text(draw(STRING_VALUES))},"type":{text(draw(STRING_VALUES))},'
                   f'"value":{text(f"Root={root};Parent=1122334455667788;Sampled=1")}}}')
    error = f',"errorType":{text(draw(STRING_VALUES))}' if draw(st.booleans()) else ""
    time = draw(st.sampled_from(["2025-11-01T10:00:00.000Z", "2024-04-01T00:00:05.5Z", "2024-02-29T23:59:59.999999Z",
                                 "not a time", ""]))
    body = ",".join(f'"{key}":{value}' for key, value in metrics)
    line = (f'{{"time":{text(time)},"type":"platform.report","record":{{"requestId":{text(draw(STRING_VALUES))},'
            f'"metrics":{{{body}}}{tracing},"status":{text(draw(STRING_VALUES))}{error}}}}}')
    how = draw(st.sampled_from(["none"] * 4 + ["replace", "insert", "delete"]))
    if how == "none":
        return line
    at = draw(st.integers(0, len(line) - 1))
    byte = draw(st.sampled_from(list('"{}:,. 0123456789aeEMsx-\\')))
    return line[:at] + (byte if how != "delete" else "") + line[at + (how != "insert") :]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(lambda_layout(), min_size=1, max_size=12))
def test_lambda_layout_records_read_the_same_on_every_path(lines):
    # GIVEN records in Lambda's layout, with values of every form, some with a byte changed
    # WHEN read with every path, with the numpy path alone (in chunks of 3 lines), and with the careful path alone
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(jsonfast, "_SMALLEST", 2)
        patch.setattr(fastpath, "_FAST_CHUNK", 3)
        fast = parse_reports(lines)
        numpy_alone = only(patch, lines, "json_numpy")
        slow = careful(patch, lines)
        compiled = compiled_both_ways(patch, lines)
    # THEN the frames and the counts are identical
    assert_same(fast, slow)
    assert_same(numpy_alone, slow)
    for frame in compiled:
        assert_same(frame, slow)


def test_a_lambda_record_with_a_key_changed_reads_as_the_careful_path_reads_it(monkeypatch):
    # GIVEN Lambda's records, one with a key misspelt (same length, same first letter and last four
    # bytes as the numpy path once compared), one with a stray quote inside a key, one with a brace
    # in the X-Ray span id
    rng = random.Random(11)
    lines = [_lambda_record(rng) for _ in range(50)]
    lines[3] = lines[3].replace('"requestId"', '"rXquestId"')
    lines[5] = lines[5].replace('"requestId"', '"r"questId"')
    lines[7] = lines[7].replace('"status":', '"tracing":{"spanId":"a{b","type":"X","value":"Root=1-ab"},"status":', 1)
    slow = careful(monkeypatch, lines)
    # WHEN read with every path, and with the numpy path alone THEN each reads them as the careful path does
    assert_same(parse_reports(lines), slow)
    assert_same(only(monkeypatch, lines, "json_numpy"), slow)
    for frame in compiled_both_ways(monkeypatch, lines):
        assert_same(frame, slow)
    assert slow.attrs["malformed"] == 2 and len(slow) == 48 and slow["xray_trace_id"].isna().all()
