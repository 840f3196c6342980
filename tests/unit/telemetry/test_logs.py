"""workbook.telemetry (and workbook.logs, its documented name): parsing REPORT lines (text and JSON) and loading them from CloudWatch Logs."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore.stub import Stubber

from workbook.logs import parse_reports
from workbook.telemetry import fastpath, logs, notes, reports


def text_report(request_id="r1", duration=12.34, billed=13, memory=128, used=18, init=None, status=None, error_type=None,
                xray=None):
    line = (f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {memory} MB\tMax Memory Used: {used} MB\t")
    if init is not None:
        line += f"Init Duration: {init:.2f} ms\t"
    if status:
        line += f"Status: {status}\t"
    if error_type:
        line += f"Error Type: {error_type}\t"
    if xray:
        line += f"\nXRAY TraceId: {xray}\tSegmentId: 0a1b2c3d4e5f6789\tSampled: true\t"
    return line


def json_report(request_id="j1", duration=10.5, billed=11, memory=256, used=70, init=None, status="success",
                error_type=None, trace=None, time_="2025-11-01T10:00:00.000Z"):
    metrics = {"durationMs": duration, "billedDurationMs": billed, "memorySizeMB": memory, "maxMemoryUsedMB": used}
    if init is not None:
        metrics["initDurationMs"] = init
    record = {"requestId": request_id, "metrics": metrics, "status": status}
    if error_type:
        record["errorType"] = error_type
    if trace:
        record["tracing"] = {"spanId": "s", "type": "X-Amzn-Trace-Id", "value": f"Root={trace};Parent=p;Sampled=1"}
    # compact, as Lambda writes it
    return json.dumps({"time": time_, "type": "platform.report", "record": record}, separators=(",", ":"))


def counts(df):
    return {key: df.attrs[key] for key in ("total", "malformed", "ignored")}


# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------
def test_text_report_of_a_cold_start():
    df = parse_reports([text_report(init=125.67)], function="fn")
    row = df.iloc[0]
    assert list(df.columns) == list(reports.COLUMNS)
    assert row["request_id"] == "r1" and row["function"] == "fn"
    assert (row["duration_ms"], row["billed_duration_ms"], row["memory_size_mb"], row["max_memory_used_mb"]) == (12.34, 13, 128, 18)
    assert row["init_duration_ms"] == 125.67 and bool(row["cold_start"]) and row["status"] == "ok"


@pytest.mark.parametrize("kwargs, status", [
    ({}, "ok"),
    ({"status": "timeout"}, "timeout"),
    ({"status": "error", "error_type": "Runtime.OutOfMemory"}, "out_of_memory"),
    ({"status": "error", "error_type": "Runtime.ExitError"}, "error"),
])
def test_text_status(kwargs, status):
    assert parse_reports([text_report(**kwargs)])["status"].iloc[0] == status


@pytest.mark.parametrize("kwargs, status", [
    ({}, "ok"),
    ({"status": "timeout"}, "timeout"),
    ({"status": "error", "error_type": "Runtime.OutOfMemory"}, "out_of_memory"),
    ({"status": "failure"}, "error"),
])
def test_json_status(kwargs, status):
    assert parse_reports([json_report(**kwargs)])["status"].iloc[0] == status


def test_xray_trace_id_in_both_formats():
    df = parse_reports([text_report(xray="1-5e1b4151-43a0913a12345678901234567"), json_report(trace="1-abc-def")])
    assert df["xray_trace_id"].tolist() == ["1-5e1b4151-43a0913a12345678901234567", "1-abc-def"]


def test_json_report_fields_and_time():
    df = parse_reports([json_report(init=200.1), json_report(time_="2025-11-01T12:00:00.123456+02:00")])
    # an offset is honoured; below the millisecond (Lambda writes ms) precision is a microsecond
    assert abs(df["timestamp"].iloc[1] - pd.Timestamp("2025-11-01T10:00:00.123456Z")) < pd.Timedelta(microseconds=1)
    row = df.iloc[0]
    assert row["timestamp"] == pd.Timestamp("2025-11-01T10:00:00Z")
    assert row["init_duration_ms"] == 200.1 and bool(row["cold_start"])
    assert row["memory_size_mb"] == 256


def test_truncated_and_malformed_lines_are_counted_and_skipped():
    lines = [
        text_report(request_id="ok1"),
        "REPORT RequestId: cut\tDuration: 3.1 ms\tBilled Dura",
        "REPORT RequestId: bad\tDuration: abc ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB",
        json_report(request_id="ok2"),
        json_report(request_id="cut2")[:80],
        "START RequestId: x Version: $LATEST",
        "END RequestId: x",
        "an application log line",
        "",
    ]
    df = parse_reports(lines)
    assert df["request_id"].tolist() == ["ok1", "ok2"]
    assert counts(df) == {"total": 9, "malformed": 3, "ignored": 4}
    # the first malformed lines are kept, so the reader can see what was wrong
    assert df.attrs["malformed_sample"][:2] == lines[1:3]


def test_empty_input():
    df = parse_reports([])
    assert df.empty and list(df.columns) == list(reports.COLUMNS) and df.attrs["malformed"] == 0


def test_dicts_from_filter_log_events_fill_function_and_timestamp():
    events = [
        {"message": text_report(), "timestamp": 1_700_000_000_000, "logStreamName": "s", "logGroupName": "/aws/lambda/fa"},  # fixed epoch: parsed in memory only
        {"message": json_report(), "timestamp": 1_700_000_001_000, "function": "fb"},  # fixed epoch: parsed in memory only
    ]
    df = parse_reports(events)
    assert df["function"].tolist() == ["fa", "fb"]
    assert df["timestamp"].tolist() == [pd.Timestamp(1_700_000_000_000, unit="ms", tz="UTC"),  # fixed epoch: parsed in memory only
                                        pd.Timestamp(1_700_000_001_000, unit="ms", tz="UTC")]  # fixed epoch: parsed in memory only


def test_mixed_formats_keep_input_order_and_a_large_batch_parses_like_a_small_one():
    lines = [text_report(request_id=f"t{i}", init=100.0 if i % 7 == 0 else None) if i % 3 else json_report(request_id=f"j{i}")
             for i in range(30_000)]
    big = parse_reports(lines)
    small = pd.concat([parse_reports(lines[i:i + 1000]) for i in range(0, 30_000, 1000)], ignore_index=True)
    assert big["request_id"].tolist()[:4] == ["j0", "t1", "t2", "j3"]
    pd.testing.assert_frame_equal(big, small)


def test_collapsing_whitespace_runs_agrees_with_arrows_regex_replace():
    # The console-copy fast path collapses runs of spaces and tabs with numpy over the bytes; RE2
    # (Arrow's replace_substring_regex) decides the same lines: empty ones, runs at either end,
    # non-ASCII bytes, and an array that is a slice of a larger one.
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    rng = random.Random(5)
    for trial in range(400):
        alphabet = ["a", " ", "\t", "b", "é" if trial % 5 == 0 else "c"]
        lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14))) for _ in range(rng.randint(1, 25))]
        arr = pa.array(lines, type=pa.large_string())
        if trial % 3 == 0:
            arr = arr.slice(1)
        collapsed, body = fastpath._collapse_runs(arr, None)
        assert body is None
        assert collapsed.to_pylist() == pc.replace_substring_regex(arr, r"[ \t]{2,}", "\t").to_pylist(), lines
    # a line after a prefix is left to the careful normalisation (its start would move)
    assert fastpath._collapse_runs(pa.array(["x  REPORT"], type=pa.large_string()), np.array([3])) is None


def test_a_console_copy_parses_like_lambdas_own_lines():
    # GIVEN Lambda's lines and the same lines as consoles render them (tabs as 1 to 8 spaces)
    import random

    rng = random.Random(3)
    lines = [text_report(request_id=f"r{i}", init=100.0 if i % 7 == 0 else None) for i in range(70_000)]
    copies = [line.replace("\t", " " * rng.choice([2, 4, 8])) for line in lines]
    copies[5] = lines[5].replace("\t", " ", 1).replace("\t", "    ")   # one space after the id, as in the AWS docs
    # THEN both parse to the same rows (the copy through the run-collapsing pass, in chunks on threads)
    pd.testing.assert_frame_equal(parse_reports(copies), parse_reports(lines))


def test_non_ascii_lines_parse():
    df = parse_reports(["héllo", text_report()])
    assert len(df) == 1 and df.attrs["ignored"] == 1


# ---------------------------------------------------------------------------------------------
# Loading: moto's server on loopback is the acceptance test.
# ---------------------------------------------------------------------------------------------
def _seed(logs_client, function, lines, start_ms):
    group = f"/aws/lambda/{function}"
    logs_client.create_log_group(logGroupName=group)
    logs_client.create_log_stream(logGroupName=group, logStreamName="2025/11/01/[$LATEST]abc")
    events = [{"timestamp": start_ms + i * 1000, "message": line} for i, line in enumerate(lines)]
    logs_client.put_log_events(logGroupName=group, logStreamName="2025/11/01/[$LATEST]abc", logEvents=events)


def test_filter_log_events_loader_against_moto_server(local_endpoint):
    from workbook import aws

    client = aws.client("logs")
    start = int(time.time() * 1000) - 600_000
    lines = []
    for i in range(7):
        lines += [f"START RequestId: r{i} Version: $LATEST", "app log", f"END RequestId: r{i}",
                  text_report(request_id=f"r{i}", init=150.0 if i == 0 else None)]
    _seed(client, "lwb-local-l01-api-processor", lines, start)
    _seed(client, "lwb-local-l01-scheduler", [json_report(request_id="j1")], start)
    df = logs.load_reports_filter(["lwb-local-l01-api-processor", "lwb-local-l01-scheduler", "lwb-local-l01-no-logs"],
                                  start, start + 120_000, client=client, page_size=5)
    assert sorted(df["request_id"]) == sorted([f"r{i}" for i in range(7)] + ["j1"])
    assert df.attrs["calls"] > 3  # nextToken was followed
    api = df[df["function"] == "lwb-local-l01-api-processor"]
    assert api["cold_start"].sum() == 1 and api["timestamp"].notna().all()


def test_load_reports_on_the_local_endpoint_falls_back_and_says_so_once(local_endpoint):
    from workbook import aws

    client = aws.client("logs")
    start = int(time.time() * 1000) - 60_000
    _seed(client, "fn", [text_report()], start)
    with pytest.warns(UserWarning, match="FilterLogEvents"):
        df = logs.load_reports(["fn"], start, start + 10_000)
    assert len(df) == 1 and df.attrs["source"] == "filter_log_events"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logs.load_reports(["fn"], start, start + 10_000)  # said once: no second warning


def test_empty_range_is_refused():
    with pytest.raises(ValueError, match="empty or reversed"):
        logs.load_reports_filter(["fn"], 2_000, 1_000, client=object())


def test_function_without_logs_gives_an_empty_frame(local_endpoint):
    df = logs.load_reports_filter(["never-ran"], 0, 1_000)
    assert df.empty and list(df.columns) == list(reports.COLUMNS)


@pytest.mark.parametrize("code, message", [("ThrottlingException", "throttled"), ("AccessDeniedException", "denied")])
def test_throttled_or_denied_filter_log_events_is_a_clear_error(code, message):
    client = boto3.client("logs", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("filter_log_events", service_error_code=code, http_status_code=400)
        with pytest.raises(logs.LogsError, match=message):
            logs.load_reports_filter(["fn"], 0, 1_000, client=client)


class _AlwaysThrottled(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self):
        type(self).hits += 1
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_throttling_is_retried_with_backoff_then_reported(monkeypatch):
    from workbook import aws

    _AlwaysThrottled.hits = 0
    server = HTTPServer(("127.0.0.1", 0), _AlwaysThrottled)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        aws.reset_clients()
        # The workbook's clients retry 8 times (adaptive); 3 standard attempts keep this test short.
        from botocore.config import Config

        client = boto3.client("logs", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{server.server_port}",
                              config=Config(retries={"max_attempts": 3, "mode": "standard"}))
        with pytest.raises(logs.LogsError, match="throttled after the client's retries"):
            logs.load_reports_filter(["fn"], 0, 1_000, client=client)
        assert _AlwaysThrottled.hits >= 3  # retried before giving up
    finally:
        server.shutdown()
        server.server_close()
        aws.reset_clients()


class FakeInsights:
    """Logs Insights over a list of event timestamps (s), with its 10,000-row limit."""

    def __init__(self, stamps_s, with_message=True):
        self.stamps = stamps_s
        self.queries = {}
        self.with_message = with_message

    def start_query(self, logGroupNames, startTime, endTime, queryString):  # noqa: N803 - boto3's names
        qid = str(len(self.queries))
        self.queries[qid] = (startTime, endTime)
        return {"queryId": qid}

    def get_query_results(self, queryId):  # noqa: N803
        lo, hi = self.queries[queryId]
        hits = [t for t in self.stamps if lo <= t <= hi][:10_000]
        rows = []
        for t in hits:
            fields = [{"field": "@timestamp", "value": pd.Timestamp(t, unit="s").strftime("%Y-%m-%d %H:%M:%S.000")},
                      {"field": "@log", "value": "123:/aws/lambda/fn"}]
            if self.with_message:
                fields.append({"field": "@message", "value": text_report(request_id=f"r{t}")})
            rows.append(fields)
        return {"status": "Complete", "results": rows}


def test_insights_splits_the_range_past_10000_rows():
    stamps = list(range(0, 25_000))  # one REPORT a second
    client = FakeInsights(stamps)
    df = logs.load_reports_insights(["fn"], 0, 25_000 * 1000 - 1, client=client, poll_s=0)
    assert len(df) == 25_000 and df["request_id"].is_unique
    assert df.attrs["queries"] > 3


def test_insights_rows_keep_their_exact_time_and_the_function_name():
    # GIVEN Logs Insights rows: @timestamp "2024-01-01 12:00:00.766" (UTC, ms) and @log "<account>:/aws/lambda/<name>"
    stamp = pd.Timestamp("2024-01-01T12:00:00.766Z")
    rows = [{"@timestamp": "2024-01-01 12:00:00.766", "@message": text_report(request_id="i1"),
             "@log": "123456789012:/aws/lambda/lwb-prod-p01-api-processor"}]
    # WHEN parsed
    df = parse_reports(rows)
    # THEN the time is the row's to the ns (no float ms on the way) and the function is the name alone
    assert df["timestamp"].iloc[0].value == stamp.value == 1_704_110_400_766_000_000
    assert df["function"].iloc[0] == "lwb-prod-p01-api-processor"
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_filter_log_events_epoch_ms_are_exact():
    # GIVEN FilterLogEvents' epoch milliseconds WHEN parsed THEN each is its integer ms, to the ns
    events = [{"message": text_report(request_id=f"e{i}"), "timestamp": 1_700_000_000_000 + i} for i in (1, 766, 999)]  # fixed epoch: parsed in memory only
    df = parse_reports(events)
    assert df["timestamp"].map(lambda t: t.value).tolist() == [(1_700_000_000_000 + i) * 1_000_000 for i in (1, 766, 999)]  # fixed epoch: parsed in memory only


def test_insights_without_messages_falls_back_to_filter_log_events(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(notes, "_NOTES_SAID", set())
    called = {}

    def fake_filter(names, start, end, client=None, **kw):
        called["yes"] = True
        return parse_reports([text_report()])

    monkeypatch.setattr(logs, "load_reports_filter", fake_filter)
    with pytest.warns(UserWarning, match="no usable rows"):
        df = logs.load_reports(["fn"], 0, 5_000, client=FakeInsights([1, 2, 3], with_message=False))
    assert called and len(df) == 1


def test_fast_text_path_in_chunks_matches_the_regex_path(monkeypatch):
    lines = [text_report(request_id=f"req-{i}" * (1 + i % 3), duration=i * 1.25, billed=int(i * 1.25) + 1,
                         init=50.5 if i % 11 == 0 else None, status="timeout" if i % 13 == 0 else None,
                         xray="1-abc-def" if i % 5 == 0 else None) for i in range(3_000)]
    lines[7] = lines[7][:40]  # truncated
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 1_000)
    fast = parse_reports(lines)
    monkeypatch.setattr(reports, "text_fast", lambda *args, **kwargs: None)
    slow = parse_reports(lines)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.attrs == slow.attrs and counts(fast) == {"total": 3_000, "malformed": 1, "ignored": 0}


def test_json_numpy_path_matches_the_regex_path(monkeypatch):
    lines = [json_report(request_id=f"j{i}", duration=i * 0.5, billed=i // 2 + 1, init=12.5 if i % 7 == 0 else None,
                         status="timeout" if i % 9 == 0 else "success", trace="1-a-b" if i % 4 == 0 else None)
             for i in range(2_500)]
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 1_000)
    monkeypatch.setattr(reports, "json_compiled", lambda *args, **kwargs: None)
    monkeypatch.setattr(reports, "json_fast", lambda *args, **kwargs: None)   # the numpy path alone
    complete = parse_reports(lines)
    lines[10] = lines[10][:100]                        # a truncated record: the numpy path, line by line
    lines[20] = lines[20].replace('"requestId"', '"requestID"')
    numpy_path = parse_reports(lines)
    monkeypatch.setattr(reports, "json_numpy", lambda *args, **kwargs: None)
    regex = parse_reports(lines)
    pd.testing.assert_frame_equal(numpy_path, regex)
    spaced = parse_reports([json.dumps(json.loads(line)) for line in lines[:50] if line.endswith("}")])
    assert len(spaced) == 48  # spaced JSON too (the regex path takes it)
    assert numpy_path.attrs == regex.attrs and counts(regex) == {"total": 2_500, "malformed": 2, "ignored": 0}
    pd.testing.assert_frame_equal(complete.drop(index=[10, 20]).reset_index(drop=True), regex)


def test_json_numpy_path_with_mixed_key_orders(monkeypatch):
    lines = []
    for i in range(1_200):
        record = {"requestId": f"m{i}", "metrics": {"durationMs": 1.5 + i, "billedDurationMs": 2 + i, "memorySizeMB": 128,
                                                    "maxMemoryUsedMB": 60}, "status": "success"}
        if i % 3 == 0:  # another key order, same number of keys
            record = {"status": "success", "metrics": dict(reversed(list(record["metrics"].items()))), "requestId": f"m{i}"}
        if i % 5 == 0:
            record["metrics"]["initDurationMs"] = 99.5
        lines.append(json.dumps({"type": "platform.report", "time": "2025-11-01T10:00:00.000Z", "record": record},
                                separators=(",", ":")))
    monkeypatch.setattr(fastpath, "_FAST_CHUNK", 500)
    monkeypatch.setattr(reports, "json_compiled", lambda *args, **kwargs: None)
    monkeypatch.setattr(reports, "json_fast", lambda *args, **kwargs: None)   # the numpy path alone
    numpy_path = parse_reports(lines)
    monkeypatch.setattr(reports, "json_numpy", lambda *args, **kwargs: None)
    regex = parse_reports(lines)
    pd.testing.assert_frame_equal(numpy_path, regex)
    assert len(regex) == 1_200 and regex["cold_start"].sum() == 240
