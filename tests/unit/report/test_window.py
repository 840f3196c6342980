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
from workbook.report.window import (
    drilldown_range,
    load_window,
    window_backtest,
    window_coldstart,
    window_cost,
    window_timeline,
)
from workbook.telemetry.route import Route
from workbook.tuning.backtest import timeout_backtest

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


class _FilterLogsInRange(_FilterLogs):
    """FilterLogEvents that honours startTime and endTime (ms, both ends included, as the API does)."""

    def filter_log_events(self, *, logGroupName, startTime=None, endTime=None, **_):  # noqa: N803
        page = super().filter_log_events(logGroupName=logGroupName)
        return {"events": [e for e in page["events"] if (startTime is None or e["timestamp"] >= startTime)
                           and (endTime is None or e["timestamp"] <= endTime)]}


@pytest.fixture(scope="module")
def both(settings, data):
    """The same invocations as an aggregate window and as a raw window."""
    invocations, start, end = data
    cloudwatch, _ = _cloudwatch(len(invocations))
    agg = load_window(settings, start, end, list(KEYS.values()), threshold=1_000, cloudwatch=cloudwatch,
                      logs_client=InsightsFromInvocations(invocations), live_versions={},
                      sleep=lambda s: None, concurrency=1)
    cloudwatch, _ = _cloudwatch(1_000)
    raw = load_window(settings, start, end, list(KEYS.values()), threshold=1_000, cloudwatch=cloudwatch,
                      logs_client=_FilterLogs(invocations), use_insights=False)
    return agg, raw


def test_the_drilldown_range_holds_about_the_invocations_asked_for(both, data):
    agg = both[0].aggregates
    traffic = data[0][data[0]["version"] == "$LATEST"]
    per_bin = traffic["time"].dt.floor("5min").value_counts()
    for cap in (1_000, 3_000):       # whole bins from the end while they fit
        start, end = drilldown_range(agg, cap)
        held = int(((traffic["time"] >= start) & (traffic["time"] <= end)).sum())
        assert cap - per_bin.max() < held <= cap and start.minute % 5 == 0 and end == agg.end
    start, end = drilldown_range(agg, 50)   # fewer than the last bin holds: a part of it, at its rate
    assert end - start < pd.Timedelta(minutes=5) and start > agg.end - pd.Timedelta(minutes=5)
    held = int(((traffic["time"] >= start) & (traffic["time"] <= end)).sum())
    assert 10 <= held <= 120
    assert drilldown_range(agg, 10**9) == (agg.start, agg.end)


def test_on_the_aggregate_route_charts_of_single_invocations_read_a_raw_sample(settings, both, data):
    window = both[0]
    sample = window.sample(settings, list(KEYS.values()), max_invocations=1_000,
                           logs_client=_FilterLogsInRange(data[0]), use_insights=False)
    start, end = sample.attrs["sample_range"]
    assert 500 < len(sample) <= 1_000 and sample["timestamp"].min() >= start
    assert sample.attrs["route"] == "raw" and "drill-down" in sample.attrs["route_reason"]
    assert f"({len(sample):,} REPORT lines of {window.invocations():,})" in window.sample_sentence(sample)
    raw = both[1]
    assert raw.sample(settings) is raw.reports and raw.sample_sentence(raw.reports) == ""


def test_both_routes_describe_the_same_traffic_and_give_the_same_cold_starts_and_timeline(both):
    agg, raw = both
    assert agg.invocations() == raw.invocations() == len(raw.reports)
    assert "no REPORT line was pulled" in agg.describe() and "REPORT lines of traffic" in raw.describe()
    for by in ("function", ["function", "memory_size_mb"], "hour"):
        keys = [by] if isinstance(by, str) else by
        mine, theirs = (window_coldstart(w, by).set_index(keys)[["invocations", "cold_starts"]] for w in (agg, raw))
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, check_index_type=False)
    assert window_timeline(agg)[1] == 300 and window_timeline(raw)[1] == 60
    assert int(window_timeline(agg)[0]["cold_starts"].sum()) == int(window_timeline(raw)[0]["cold_starts"].sum())


def test_the_backtest_reads_its_halves_through_the_windows_reader(settings, both):
    agg, raw = both
    keys = list(KEYS.values())
    mine = window_backtest(agg, settings, keys)
    split_at = {k: pd.Timestamp(v) for k, v in mine.attrs["split_at"].items()}
    theirs = timeout_backtest(settings, raw.reports, keys, split_at=split_at)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    assert window_backtest(raw, settings, keys).equals(timeout_backtest(settings, raw.reports, keys))


def test_the_notebooks_cells_run_on_the_aggregate_route(settings, both, data):
    """03-cold-starts' and 05-tuning's calls, in order, on an aggregate window: every table has its rows, every
    chart draws, and the sentences say what is merged and what the sample stands for."""
    import matplotlib

    matplotlib.use("Agg")
    from workbook.analysis.aggregate import percentile_sentence
    from workbook.report import charts, interactive
    from workbook.tuning import recommend

    window, keys = both[0], list(KEYS.values())
    architectures = {key: settings.function(key).architecture for key in keys}
    per_function = window_coldstart(window, "function", architecture=architectures)
    by_memory = window_coldstart(window, ["function", "memory_size_mb"], architecture=architectures)
    assert len(per_function) == 3 and len(by_memory) == 4          # file-processor ran at two sizes
    assert percentile_sentence(per_function).startswith("Aggregate route:")
    assert "merged" in percentile_sentence(window_coldstart(window, "hour", architecture=architectures))
    timeline, period_s = window_timeline(window)
    charts.cold_start_timeline(timeline, window=(window.aggregates.start, window.aggregates.end), period_s=period_s)
    sample = window.sample(settings, keys, logs_client=_FilterLogsInRange(data[0]), use_insights=False)
    assert len(sample) == window.invocations()          # 20,000 hold the whole of this small window
    charts.init_distribution(sample)
    charts.memory_headroom(sample, configured={k: settings.function(k).memory_mb for k in keys})
    recs = recommend.recommend(settings, window.data, keys, window_hours=2.0)
    measured = recs.table[recs.table["kind"] != "architecture"]          # architecture needs both measured
    assert len(recs.table) == 9 and measured["samples"].gt(0).all()
    assert len(window_backtest(window, settings, keys)) == 3
    interactive.static_view(settings, {}, window.data, recs, window_hours=2.0)
