"""workbook.metrics: packing GetMetricData calls, the tidy frame, the percentile fallback."""
from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from workbook.telemetry import metrics

DAY = 86_400


# ---------------------------------------------------------------------------------------------
# The call plan.
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "queries, span_s, period_s, expected",
    [
        (72, 14 * DAY, 60, 15),        # 1,451,520 points / 100,800 = 14.4 -> 15
        (3, 60_000 * 60, 60, 2),       # 180,000 points: split the time range, not one call per query
        (501, 600, 60, 2),             # 500 queries per call at most
        (1, 100_800 * 60, 60, 1),      # exactly the limit
        (1, 100_801 * 60, 60, 2),
        (0, DAY, 60, 0),
    ],
)
def test_plan_reaches_the_lower_bound(queries, span_s, period_s, expected):
    plan = metrics.plan_calls(queries, 0, span_s, period_s)
    assert metrics.minimum_calls(queries, span_s, period_s) == expected
    assert plan.count == expected
    for start, end, indices in plan.calls:
        assert len(indices) <= metrics.MAX_QUERIES_PER_CALL
        assert len(indices) * math.ceil((end - start) / period_s) <= metrics.MAX_DATAPOINTS_PER_CALL
    # every query covers the whole range exactly once
    covered = {}
    for start, end, indices in plan.calls:
        for i in indices:
            covered[i] = covered.get(i, 0) + (end - start)
    assert all(v == span_s for v in covered.values()) and len(covered) == queries


def test_standard_queries_cover_the_issue_list():
    from infra import config

    queries = metrics.env_queries(config.load("prod"))
    pairs = {(q.namespace, q.metric, q.stat) for q in queries}
    for stat in ("Average", "p50", "p90", "p99"):
        assert ("AWS/Lambda", "Duration", stat) in pairs
    for metric in ("Invocations", "Errors", "Throttles", "ConcurrentExecutions"):
        assert any(p[1] == metric for p in pairs)
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum") in pairs
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum") in pairs
    cold = [q for q in queries if q.metric == "ColdStart"]
    assert cold and cold[0].namespace == "LambdaWorkbook"
    assert dict(cold[0].dimensions) == {"function_name": "lwb-prod-p01-api-processor", "service": "api-processor"}


# ---------------------------------------------------------------------------------------------
# Against moto's server (the acceptance test).
# ---------------------------------------------------------------------------------------------
def _seed_metric(cw, name, metric, start, values, namespace="AWS/Lambda", dims=None):
    dims = dims or [{"Name": "FunctionName", "Value": name}]
    data = [{"MetricName": metric, "Dimensions": dims, "Timestamp": datetime.fromtimestamp(start + i * 60, tz=UTC),
             "Value": float(v)} for i, v in enumerate(values)]
    for chunk in range(0, len(data), 20):
        cw.put_metric_data(Namespace=namespace, MetricData=data[chunk:chunk + 20])


def test_load_metrics_against_moto_server_with_log_percentiles(local_endpoint):
    from tests.unit.telemetry.test_logs import _seed, text_report
    from workbook import aws

    cw = aws.client("cloudwatch")
    logs_client = aws.client("logs")
    start = (int(time.time()) // 3600) * 3600 - 2 * 3600
    _seed_metric(cw, "fn-a", "Invocations", start, [1, 2, 3, 4, 5])
    _seed_metric(cw, "fn-a", "ColdStart", start, [1, 0, 0], namespace="LambdaWorkbook",
                 dims=[{"Name": "function_name", "Value": "fn-a"}, {"Name": "service", "Value": "a"}])
    durations = [10, 20, 30, 40, 1000]
    _seed(logs_client, "fn-a", [text_report(request_id=f"r{i}", duration=d, billed=d) for i, d in enumerate(durations)],
          start * 1000)
    queries = metrics.function_queries("fn-a", "a") + metrics.function_queries("fn-b", "b")
    calls = []
    cw.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(kw))
    with pytest.warns(UserWarning, match="percentile|Insights"):
        df = metrics.load_metrics(queries, start, start + 3600, 60, client=cw)
    assert list(df.columns) == metrics.COLUMNS
    assert len(calls) == df.attrs["calls"] == 1
    inv = df[(df.metric == "Invocations")]
    assert inv["value"].tolist() == [1, 2, 3, 4, 5] and set(inv["source"]) == {"cloudwatch"}
    assert df[df.metric == "ColdStart"]["value"].sum() == 1
    p99 = df[(df.stat == "p99") & (df.function == "a")]
    # the five REPORTs fall in one minute: one p99 from pandas over them
    assert set(p99["source"]) == {"logs"} and len(p99) == 1
    assert p99["value"].item() == pytest.approx(pd.Series(durations, dtype=float).quantile(0.99))
    assert df[df.function == "b"].empty  # a function without data: no rows, no error


def test_calls_counted_by_event_hooks_equal_the_plan(local_endpoint):
    from workbook import aws

    cw = aws.client("cloudwatch")
    queries = [metrics.MetricQuery(f"f{i}", "AWS/Lambda", "Invocations", "Sum", (("FunctionName", f"f{i}"),)) for i in range(12)]
    calls = []
    cw.meta.events.register("before-call.cloudwatch.GetMetricData", lambda **kw: calls.append(1))
    end = int(time.time()) // 60 * 60
    df = metrics.load_metrics(queries, end - 14 * DAY, end, 60, client=cw)
    assert len(calls) == metrics.minimum_calls(12, 14 * DAY, 60) == 3
    assert df.empty


def test_empty_range_and_bad_period():
    with pytest.raises(metrics.MetricsError, match="empty"):
        metrics.load_metrics([], 100, 100, 60, client=object())
    with pytest.raises(metrics.MetricsError, match="period"):
        metrics.load_metrics([], 0, 100, 7, client=object())


# ---------------------------------------------------------------------------------------------
# Stubbed: NextToken, throttling, denial.
# ---------------------------------------------------------------------------------------------
def test_next_token_is_followed(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("cloudwatch", region_name="us-east-1")
    q = metrics.function_queries("fn", "k", stats=[("Duration", "p99")], cold_start=False)
    t = datetime(2025, 11, 1, tzinfo=UTC)
    with Stubber(client) as stub:
        stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "q0", "Timestamps": [t], "Values": [5.0]}],
                                              "NextToken": "more"}, {"MetricDataQueries": ANY, "StartTime": ANY,
                                                                     "EndTime": ANY, "ScanBy": ANY})
        stub.add_response("get_metric_data", {"MetricDataResults": [
            {"Id": "q0", "Timestamps": [t + pd.Timedelta(minutes=1)], "Values": [7.0]}]})
        df = metrics.load_metrics(q, t, t + pd.Timedelta(hours=1), 60, client=client)
    assert df.attrs["calls"] == 2 and df["value"].tolist() == [5.0, 7.0] and set(df["source"]) == {"cloudwatch"}


@pytest.mark.parametrize("code, message", [("Throttling", "throttled"), ("AccessDenied", "denied")])
def test_throttled_or_denied_is_a_clear_error(monkeypatch, code, message):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("cloudwatch", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", service_error_code=code, http_status_code=400)
        with pytest.raises(metrics.MetricsError, match=message):
            metrics.load_metrics(metrics.function_queries("fn"), 0, 3600, 60, client=client)


def test_percentiles_from_reports():
    t0 = pd.Timestamp("2025-11-01T00:00:00Z")
    reports = pd.DataFrame({"function": ["f"] * 4, "timestamp": [t0, t0, t0, t0 + pd.Timedelta(minutes=1)],
                            "duration_ms": [10.0, 20.0, 30.0, 5.0]})
    out = metrics.percentiles_from_reports(reports, 60, (50,))
    assert out["value"].tolist() == [20.0, 5.0] and set(out["source"]) == {"logs"}
    assert metrics.percentiles_from_reports(pd.DataFrame(), 60).empty


def test_percentiles_failing_with_500_fall_back_to_logs(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from workbook.telemetry import notes

    monkeypatch.setattr(notes, "_NOTES_SAID", set())
    client = boto3.client("cloudwatch", region_name="us-east-1")
    t = datetime(2025, 11, 1, tzinfo=UTC)
    reports = pd.DataFrame({"function": ["fn", "fn"], "timestamp": [pd.Timestamp(t), pd.Timestamp(t)],
                            "duration_ms": [10.0, 30.0]})
    with Stubber(client) as stub:
        stub.add_client_error("get_metric_data", service_error_code="InternalFailure", http_status_code=500)
        stub.add_response("get_metric_data", {"MetricDataResults": [{"Id": "q0", "Timestamps": [t], "Values": [2.0]}]})
        with pytest.warns(UserWarning, match="HTTP 500"):
            df = metrics.load_metrics(metrics.function_queries("fn", "k", stats=[("Invocations", "Sum"), ("Duration", "p50")],
                                                               cold_start=False), t, t + pd.Timedelta(minutes=5), 60,
                                      client=client, reports=reports)
    assert df.set_index("stat").loc["Sum", "value"] == 2.0
    p50 = df.set_index("stat").loc["p50"]
    assert p50["value"] == 20.0 and p50["source"] == "logs"


def test_a_read_timeout_is_a_metrics_error_naming_it(monkeypatch):
    # GIVEN a CloudWatch endpoint that never answers in time (moto's GetMetricData under a long local
    # run did this; the 500 check then raised AttributeError on the timeout's missing response)
    from botocore.exceptions import ReadTimeoutError

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("cloudwatch", region_name="us-east-1")

    def timeout(**kwargs):
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:1/")
    monkeypatch.setattr(client, "get_metric_data", timeout)
    # WHEN metrics with percentiles are loaded THEN the error is the workbook's, and names the timeout
    with pytest.raises(metrics.MetricsError, match="Read timeout"):
        metrics.load_metrics(metrics.function_queries("fn", "k", stats=[("Duration", "p99")], cold_start=False),
                             0, 3600, 60, client=client)
