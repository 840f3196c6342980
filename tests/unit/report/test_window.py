"""load_window (workbook.report.window): the route chosen from the Invocations metric (Stubber), then the window
read on it: the raw route's REPORT rows, or the aggregate route's Aggregates from a Logs Insights double."""
from __future__ import annotations

import boto3
import pandas as pd
import pytest
from botocore.stub import ANY, Stubber

from infra import config
from tests.unit.telemetry.insights_emulator import InsightsFromInvocations, generate, report_events
from workbook.analysis.aggregate import cost_from_aggregates
from workbook.report.window import load_window, window_cost
from workbook.telemetry.route import Route

KEYS = {"api": "api-processor", "files": "file-processor", "sched": "scheduler"}


@pytest.fixture(scope="module")
def settings():
    return config.load("dev")


@pytest.fixture(scope="module")
def data(settings):
    invocations, start, end = generate()
    invocations["function"] = invocations["function"].map(lambda f: settings.function_name(KEYS[f]))
    return invocations, start, end


def _cloudwatch(total):
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    stub.add_response("get_metric_data", {"MetricDataResults": [
        {"Id": "i0", "Label": "Invocations", "Values": [float(total)], "StatusCode": "Complete"}]},
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY})
    stub.activate()
    return client, stub


class _FilterLogs:
    """FilterLogEvents from the generated invocations' REPORT lines (one page per log group)."""

    def __init__(self, invocations):
        self.events = report_events(invocations)

    def filter_log_events(self, *, logGroupName, **_):  # noqa: N803 (the API's name)
        name = logGroupName.rsplit("/", 1)[-1]
        return {"events": [{k: v for k, v in e.items() if k != "function"} for e in self.events if e["function"] == name]}


def test_above_the_threshold_the_window_is_aggregated_with_function_keys(settings, data):
    invocations, start, end = data
    cloudwatch, stub = _cloudwatch(len(invocations))
    window = load_window(settings, start, end, list(KEYS.values()), threshold=1_000, cloudwatch=cloudwatch,
                         logs_client=InsightsFromInvocations(invocations), live_versions={},
                         sleep=lambda s: None, concurrency=1)
    stub.assert_no_pending_responses()
    assert window.route is Route.AGGREGATE and window.reports is None
    agg = window.aggregates
    assert set(agg.window["function"]) == set(KEYS.values()) and agg.attrs["route"] == "aggregate"
    assert "over the raw route's 1,000" in window.sentence()
    assert agg.successes("api-processor") == int(((invocations["function"].str.endswith("api-processor"))
                                                  & (invocations["version"] == "$LATEST")
                                                  & (invocations["status"] == "ok")).sum())
    assert agg.top_needed["api-processor"] > 0
    cost = window_cost(window, period=(start, end))
    assert list(cost["function"]) == sorted(KEYS.values())
    pd.testing.assert_frame_equal(cost, cost_from_aggregates(agg, period=(start, end)))


def test_at_or_below_the_threshold_the_window_is_raw_and_says_why(settings, data):
    invocations, start, end = data
    cloudwatch, _ = _cloudwatch(1_000)
    window = load_window(settings, start, end, list(KEYS.values()), threshold=1_000, cloudwatch=cloudwatch,
                         logs_client=_FilterLogs(invocations), use_insights=False)
    assert window.route is Route.RAW and window.aggregates is None
    reports = window.reports
    assert reports.attrs["route"] == "raw" and "at most the raw route's 1,000" in reports.attrs["route_reason"]
    assert set(reports["function"]) == set(KEYS.values()) and len(reports) == len(invocations) - 300   # tuning left out
    assert list(window_cost(window, period=(start, end))["function"]) == sorted(KEYS.values())
