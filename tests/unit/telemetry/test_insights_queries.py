"""The aggregate route's Logs Insights queries (workbook.telemetry.insights_queries) and their runner
(workbook.telemetry.insights): the query text against AWS's documented syntax and REPORT fields, the
runner against botocore's Stubber (which validates each request against the Logs API model) with
responses in the documented GetQueryResults shape."""
from __future__ import annotations

import re

import boto3
import pytest
from botocore.stub import ANY, Stubber

from workbook.telemetry import insights
from workbook.telemetry import insights_queries as iq

# AWS's query syntax reference: the commands and functions a query may use (a subset is used here).
DOCUMENTED_COMMANDS = {"fields", "filter", "stats", "sort", "limit", "parse", "display", "dedup", "unnest"}
DOCUMENTED_FUNCTIONS = {"count", "sum", "avg", "min", "max", "pct", "percentile", "count_distinct", "bin",
                        "strcontains", "ceil", "floor", "greatest", "least", "abs", "ispresent", "coalesce",
                        "datefloor", "dateceil", "strlen", "substr", "concat", "earliest", "latest"}
# The fields Logs Insights discovers in a text REPORT line (Lambda's docs), and the JSON record's flattened fields.
TEXT_FIELDS = {"@type", "@message", "@logStream", "@log", "@duration", "@billedDuration", "@memorySize",
               "@maxMemoryUsed", "@initDuration"}
JSON_FIELDS = {"type", "record.status", "record.errorType", "record.metrics.durationMs",
               "record.metrics.billedDurationMs", "record.metrics.memorySizeMB", "record.metrics.maxMemoryUsedMB",
               "record.metrics.initDurationMs", "record.metrics.restoreDurationMs",
               "record.metrics.billedRestoreDurationMs", "@logStream", "@log"}
# A SnapStart REPORT line as Lambda's SnapStart monitoring page shows its fields (Restore Duration, then Billed
# Restore Duration; no Init Duration): Insights discovers neither, so the query parses them from @message.
SNAPSTART_REPORT = ("REPORT RequestId: 3604209a-e9a3-11e6-939a-754dd98c7be3\tDuration: 2.67 ms\tBilled Duration: 136 ms\t"
                    "Memory Size: 512 MB\tMax Memory Used: 73 MB\tRestore Duration: 470.07 ms\t"
                    "Billed Restore Duration: 133 ms\t")


def _commands(query: str) -> list[str]:
    return [part.strip().split()[0] for part in query.split("\n| ")]


def _functions(query: str) -> set[str]:
    return set(re.findall(r"\b([a-z_]+)\(", query))


def _source_fields(query: str) -> set[str]:
    without_regex = re.sub(r"/[^/]*/", "", query)          # regular expressions are not fields
    without_strings = re.sub(r'"[^"]*"', "", without_regex)
    return set(re.findall(r"(@[A-Za-z]+|\brecord\.[A-Za-z.]+|\btype\b)", without_strings))


@pytest.mark.parametrize("log_format", list(iq.LogFormat))
@pytest.mark.parametrize("binned", [True, False])
def test_the_stats_query_uses_documented_commands_functions_and_fields(log_format, binned):
    query = iq.stats_query(log_format, binned=binned)
    assert set(_commands(query)) <= DOCUMENTED_COMMANDS
    assert _functions(query) <= DOCUMENTED_FUNCTIONS
    allowed = TEXT_FIELDS if log_format is iq.LogFormat.TEXT else JSON_FIELDS
    assert _source_fields(query) <= allowed
    # every aggregate named once, with its alias
    for name in iq.STATS_FIELDS:
        assert len(re.findall(rf" as {name}\b", query)) == 1, name
    assert ("bin(5m)" in query) is binned
    assert query.rstrip().endswith("by @log, version" + (", memory_mb, bin(5m)" if binned else ""))
    assert "pct(duration_ms, 99.9) as duration_p99_9" in query


def test_the_formats_map_onto_the_same_names_with_their_own_fields():
    text, json_ = iq.stats_query("Text"), iq.stats_query("JSON")
    assert 'filter @type = "REPORT"' in text and "@memorySize / 1000000 as memory_mb" in text
    assert 'filter type = "platform.report"' in json_ and "record.metrics.memorySizeMB as memory_mb" in json_
    assert "record.metrics.initDurationMs as init_ms" in json_ and "@initDuration as init_ms" in text
    # the version from the stream name, as workbook.telemetry.reports reads it
    assert r"parse @logStream /\[(?<version>[^\]]*)\]/" in text


@pytest.mark.parametrize("log_format, success", [("Text", "@message not like /Status: /"),
                                                 ("JSON", 'record.status = "success"')])
def test_the_top_durations_query_keeps_successes_longest_first(log_format, success):
    query = iq.top_durations_query(log_format, 123)
    assert success in query
    assert _commands(query) == ["filter", "parse", "fields", "sort", "limit"]
    assert query.endswith("| sort duration_ms desc\n| limit 123")


@pytest.mark.parametrize("limit", [0, 10_001])
def test_the_top_durations_query_stays_within_the_row_limit(limit):
    with pytest.raises(ValueError, match="10,000"):
        iq.top_durations_query("JSON", limit)


def test_log_groups_go_in_chunks_of_fifty():
    groups = [f"/aws/lambda/f{i}" for i in range(120)]
    parts = iq.chunks(groups)
    assert [len(p) for p in parts] == [50, 50, 20] and sum(parts, []) == groups
    with pytest.raises(ValueError, match="1 to 50"):
        iq.chunks(groups, 51)


# ---------------------------------------------------------------------------------------------
# The runner, against the Stubber.
# ---------------------------------------------------------------------------------------------
ROWS = [[{"field": "@log", "value": "123456789012:/aws/lambda/fn"}, {"field": "invocations", "value": "42"}]]


def _query(label="q"):
    return insights.InsightsQuery(("/aws/lambda/fn",), 100, 400, iq.stats_query("JSON"), label)


@pytest.fixture()
def logs_client():
    return boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _start(stub, query_id="q-1", query=None):
    q = query or _query()
    stub.add_response("start_query", {"queryId": query_id},
                      {"logGroupNames": list(q.log_groups), "startTime": q.start_s, "endTime": q.end_s,
                       "queryString": q.query})


def test_a_query_is_polled_until_complete_and_its_rows_become_dicts(logs_client):
    sleeps = []
    stats = insights.InsightsStats()
    with Stubber(logs_client) as stub:
        _start(stub)
        stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
        stub.add_response("get_query_results", {"status": "Complete", "results": ROWS,
                                                "statistics": {"recordsMatched": 42.0, "recordsScanned": 99.0,
                                                               "bytesScanned": 1000.0}}, {"queryId": "q-1"})
        rows = insights.run_queries(logs_client, [_query()], poll_s=0.25, sleep=sleeps.append, stats=stats)
        stub.assert_no_pending_responses()
    assert rows == [[{"@log": "123456789012:/aws/lambda/fn", "invocations": "42"}]]
    assert sleeps == [0.25]
    assert stats.as_dict()["calls"] == 3 and stats.rows == 1 and stats.bytes > 0


@pytest.mark.parametrize("code", ["LimitExceededException", "ThrottlingException"])
def test_throttling_is_retried_with_growing_backoff(logs_client, code):
    sleeps = []
    with Stubber(logs_client) as stub:
        stub.add_client_error("start_query", service_error_code=code, http_status_code=400)
        stub.add_client_error("start_query", service_error_code=code, http_status_code=400)
        _start(stub)
        stub.add_client_error("get_query_results", service_error_code=code, http_status_code=400)
        stub.add_response("get_query_results", {"status": "Complete", "results": ROWS}, {"queryId": ANY})
        stats = insights.InsightsStats()
        rows = insights.run_queries(logs_client, [_query()], sleep=sleeps.append, stats=stats, seed=1,
                                    backoff_s=2.0)
        stub.assert_no_pending_responses()
    assert len(rows[0]) == 1 and stats.retries == 3
    # full jitter within [half, all] of 2 s, 4 s, then 2 s again for the next call
    assert 1.0 <= sleeps[0] <= 2.0 and 2.0 <= sleeps[1] <= 4.0 and 1.0 <= sleeps[2] <= 2.0


def test_throttled_past_the_attempts_is_a_clear_error(logs_client):
    with Stubber(logs_client) as stub:
        for _ in range(3):
            stub.add_client_error("start_query", service_error_code="LimitExceededException", http_status_code=400)
        with pytest.raises(insights.InsightsError, match="still throttled .* after 3 attempts: run fewer"):
            insights.run_queries(logs_client, [_query()], sleep=lambda s: None, max_attempts=3)


def test_denied_and_failed_queries_say_what_to_do(logs_client):
    with Stubber(logs_client) as stub:
        stub.add_client_error("start_query", service_error_code="AccessDeniedException", http_status_code=400)
        with pytest.raises(insights.InsightsError, match="grant logs:StartQuery"):
            insights.run_queries(logs_client, [_query()], sleep=lambda s: None)
    with Stubber(logs_client) as stub:
        _start(stub)
        stub.add_response("get_query_results", {"status": "Failed", "results": []}, {"queryId": "q-1"})
        with pytest.raises(insights.InsightsError, match="status Failed"):
            insights.run_queries(logs_client, [_query("stats")], sleep=lambda s: None)


def test_a_query_over_its_time_budget_stops(logs_client):
    now = iter(range(0, 10_000, 100))
    with Stubber(logs_client) as stub:
        _start(stub)
        for _ in range(3):
            stub.add_response("get_query_results", {"status": "Running", "results": []}, {"queryId": "q-1"})
        with pytest.raises(insights.InsightsError, match="did not finish in 150 s"):
            insights.run_queries(logs_client, [_query()], sleep=lambda s: None, timeout_s=150,
                                 clock=lambda: float(next(now)))


def test_more_than_fifty_log_groups_in_one_query_is_refused(logs_client):
    too_many = insights.InsightsQuery(tuple(f"/aws/lambda/f{i}" for i in range(51)), 0, 1, "stats count(*)")
    with pytest.raises(ValueError, match="1 to 50 log groups"):
        insights.run_queries(logs_client, [too_many])


@pytest.mark.parametrize("log_format", list(iq.LogFormat))
def test_the_histogram_and_bucket_queries_use_documented_syntax(log_format):
    histogram = iq.histogram_query(log_format, 0.25, 100.0, 164.0)
    bucket = iq.bucket_query(log_format, 100.0, 100.25, 40)
    for query in (histogram, bucket):
        assert set(_commands(query)) <= DOCUMENTED_COMMANDS and _functions(query) <= DOCUMENTED_FUNCTIONS
        allowed = TEXT_FIELDS if log_format is iq.LogFormat.TEXT else JSON_FIELDS
        assert _source_fields(query) <= allowed
    assert "floor(" in histogram and " / 0.25) as bucket" in histogram
    assert histogram.endswith("stats count(*) as n by version, bucket")
    assert ">= 100.0 and " in bucket and "< 100.25" in bucket and bucket.endswith("| limit 40")


def _python_regex(insights_regex: str) -> re.Pattern:
    """An Insights ``parse`` regex as Python's re reads it (``(?<name>`` is ``(?P<name>`` there)."""
    return re.compile(insights_regex.replace("(?<", "(?P<"))


def test_the_text_stats_query_parses_restores_from_the_message():
    query = iq.stats_query("Text")
    parses = re.findall(r"parse @message /(.*?)/\n", query)
    assert len(parses) == 2
    found = {}
    for pattern in parses:
        found |= {k: float(v) for k, v in _python_regex(pattern).search(SNAPSTART_REPORT).groupdict().items()}
    assert found == {"restore_text": 470.07, "billed_restore_text": 133.0}
    assert "restore_text as restore_ms" in query and "billed_restore_text as billed_restore_ms" in query
    # a line without SnapStart matches neither (parse leaves the fields empty; the row stays)
    plain = SNAPSTART_REPORT.split("Restore Duration")[0]
    assert all(_python_regex(p).search(plain) is None for p in parses)
    for name in ("restores", "restore_min", "restore_p50", "restore_p95", "restore_p99", "restore_sum",
                 "restore_unbilled_ms"):
        assert name in iq.STATS_FIELDS and f" as {name}" in query
    json_ = iq.stats_query("JSON")
    assert "record.metrics.restoreDurationMs as restore_ms" in json_
    assert "record.metrics.billedRestoreDurationMs as billed_restore_ms" in json_


@pytest.mark.parametrize("log_format", list(iq.LogFormat))
def test_the_longer_query_counts_every_status_above_the_threshold(log_format):
    query = iq.longer_query(log_format, 3000)
    assert set(_commands(query)) <= DOCUMENTED_COMMANDS and _functions(query) <= DOCUMENTED_FUNCTIONS
    allowed = TEXT_FIELDS if log_format is iq.LogFormat.TEXT else JSON_FIELDS
    assert _source_fields(query) <= allowed
    assert "Status" not in query and "success" not in query           # every status: a timeout is cut too
    assert " > 3000.0\n" in query and query.endswith("stats count(*) as longer by version")
