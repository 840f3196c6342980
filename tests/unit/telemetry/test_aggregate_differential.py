"""Differential test: the aggregate route (Logs Insights' result rows -> workbook.analysis.aggregate) against
the raw route (every REPORT line -> parse_reports -> the analyses) on the same invocations.

GIVEN invocations of three functions in both log formats (statuses, cold starts, a memory change, a
power-tuning version), WHEN the raw route reads their REPORT lines and the aggregate route reads what
Logs Insights would answer (computed independently by tests/unit/telemetry/insights_emulator.py, in the
documented ``[[{"field", "value"}]]`` shape), THEN counts, sums, costs, the memory floor and the timeout
rule agree exactly, and a percentile is exact within one group and, merged across groups, lies
within the groups' own percentiles (the bound the aggregate route states in ``attrs``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infra import config
from workbook.analysis import aggregate as agg_analysis
from workbook.analysis import coldstart
from workbook.analysis.cost import cost_from_reports
from workbook.telemetry import aggregate, logs
from workbook.telemetry.insights import InsightsStats
from workbook.telemetry.metrics import percentiles_from_reports
from workbook.telemetry.reports import parse_reports
from workbook.tuning.bounds import TopDurations
from workbook.tuning.floors import memory_floor
from workbook.tuning.recommend import _window_floor
from workbook.tuning.rules import ranks_for_timeout, recommend_timeout, timeout_durations, top_for_timeout

from .insights_emulator import InsightsFromInvocations, generate, report_events

FUNCTIONS = ("api", "files", "sched")


@pytest.fixture(scope="module")
def routes():
    invocations, start, end = generate()
    raw = parse_reports(report_events(invocations))
    raw_traffic, raw_tuning = logs.split_traffic(raw)
    double = InsightsFromInvocations(invocations)
    stats = InsightsStats()
    agg = aggregate.load_aggregates(list(FUNCTIONS), start, end, client=double, top_k=top_for_timeout,
                                    stats=stats, sleep=lambda s: None, concurrency=1)
    return dict(invocations=invocations, start=start, end=end, raw=raw_traffic, raw_tuning=raw_tuning,
                agg=agg, traffic=agg.traffic(), stats=stats, double=double)


def test_the_raw_route_parsed_every_line(routes):
    assert len(routes["raw"]) + len(routes["raw_tuning"]) == len(routes["invocations"])
    assert routes["raw"].attrs["malformed"] == 0 and len(routes["raw_tuning"]) == 300


def test_the_aggregate_route_made_few_queries_and_kept_few_rows(routes):
    agg, stats = routes["agg"], routes["stats"]
    # binned + window per format, then one top query per function (in its own format)
    assert stats.start_query == 2 + 2 + 3
    assert len(agg.bins) < len(routes["invocations"]) / 10
    assert agg.attrs["route"] == "aggregate" and agg.attrs["insights"]["rows"] == stats.rows


def test_counts_and_sums_per_bin_match_the_raw_lines(routes):
    raw, traffic = routes["raw"], routes["traffic"]
    mine = traffic.bins.groupby(["function", "bin_start"])[["invocations", "cold_starts"]].sum()
    theirs = (raw.assign(bin_start=raw["timestamp"].dt.floor("5min"), cold=raw["cold_start"].astype(int))
              .groupby(["function", "bin_start"], observed=True).agg(invocations=("request_id", "size"),
                                                                      cold_starts=("cold", "sum")))
    pd.testing.assert_frame_equal(mine.astype(int), theirs.astype(int), check_names=False, check_index_type=False)


@pytest.mark.parametrize("by", ["function", "memory_size_mb", "hour"])
def test_cold_start_summary_matches(routes, by):
    raw = routes["raw"].assign(memory_size_mb=routes["raw"]["memory_size_mb"].astype(float))
    theirs = coldstart.summary(raw, by=by).set_index(by)
    mine = agg_analysis.coldstart_summary(routes["traffic"], by=by).set_index(by)
    mine.index = mine.index.astype(theirs.index.dtype)
    exact = ["invocations", "cold_starts", "cold_start_rate", "init_latency_share", "init_cost_share", "init_billed"]
    pd.testing.assert_frame_equal(mine[exact], theirs[exact], check_dtype=False, rtol=1e-9)
    for key, how in mine.attrs["percentiles"].items():
        for column in ("init_p50_ms", "init_p95_ms", "init_p99_ms"):
            mine_value, true_value = mine.loc[key, column], theirs.loc[key, column]
            if how == agg_analysis.EXACT:
                assert mine_value == pytest.approx(true_value, rel=1e-9, nan_ok=True), (by, key, column)
            else:
                _within_groups(routes, by, key, column, mine_value, true_value)


def _within_groups(routes, by, key, column, merged, true_value):
    """A merged percentile lies within the groups' own percentiles; the true one does too (a mixture's quantile)."""
    q = float(column.split("_p")[1].split("_")[0]) / 100.0
    raw = routes["raw"]
    raw = raw.assign(hour=raw["timestamp"].dt.hour, memory_size_mb=raw["memory_size_mb"].astype(float))
    part = raw[raw[by] == key]
    cold = part[part["cold_start"].astype(bool)]
    keys = ["function", "version"] + (["memory_size_mb", "bin"] if by != "function" else [])
    cold = cold.assign(bin=cold["timestamp"].dt.floor("5min"))
    own = cold.groupby(keys, observed=True)["init_duration_ms"].quantile(q)
    assert own.min() - 1e-9 <= merged <= own.max() + 1e-9
    assert own.min() - 1e-9 <= true_value <= own.max() + 1e-9


def test_cost_matches_exactly(routes):
    period = (routes["start"], routes["end"])
    theirs = cost_from_reports(routes["raw"], period=period).set_index("function")
    mine = agg_analysis.cost_from_aggregates(routes["traffic"], period=period).set_index("function")
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, rtol=1e-12)
    assert mine["init_gb_seconds"].gt(0).all()       # unbilled INIT was found and priced on both routes


def test_duration_percentiles_are_exact_per_function_whatever_its_memory_changes(routes):
    window_s = int((routes["end"] - routes["start"]).total_seconds()) * 2
    theirs = percentiles_from_reports(routes["raw"], window_s).set_index(["function", "stat"])["value"]
    out = agg_analysis.duration_percentiles(routes["traffic"])
    assert out.attrs["percentiles"] == dict.fromkeys(FUNCTIONS, agg_analysis.EXACT)   # files changed memory
    for (function, stat), value in out.set_index(["function", "stat"])["value"].items():
        assert value == pytest.approx(theirs[(function, stat)], rel=1e-9), (function, stat)


def test_duration_percentiles_across_versions_are_bounded_and_say_so(routes):
    """api with power tuning's version: two groups, so the percentile is merged. The guaranteed bound
    is the groups' own percentiles. In rank the estimate is close: the share of invocations at or
    below it is within half a percentage point of q (0.05 to 0.09 points on this data) (in ms it can be far off at a cliff, such as
    the 1% of timeouts at 3,000 ms here, where the true p99 itself jumps)."""
    raw = pd.concat([routes["raw"], routes["raw_tuning"]])
    raw = raw[raw["function"] == "api"]
    out = agg_analysis.duration_percentiles(routes["agg"])
    assert out.attrs["percentiles"]["api"] == agg_analysis.MERGED
    errors = {}
    for row in out[out["function"] == "api"].itertuples():
        q = float(row.stat[1:]) / 100.0
        truth = float(raw["duration_ms"].quantile(q))
        own = raw.groupby("version")["duration_ms"].quantile(q)
        assert own.min() <= row.value <= own.max()
        errors[row.stat] = abs(float((raw["duration_ms"] <= row.value).mean()) - q)
        assert truth == truth
    print("merged percentile rank errors:", errors)
    assert max(errors.values()) < 0.005, errors


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_memory_floor_matches(routes, function):
    raw = routes["raw"]
    theirs = _window_floor(raw[raw["function"] == function])
    inputs = agg_analysis.memory_floor_inputs(routes["traffic"], function)
    mine = memory_floor(inputs["peak_mb"], invocations=inputs["invocations"], oom_at_mb=inputs["oom_at_mb"])
    assert (mine.value, mine.reason) == (theirs.value, theirs.reason)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_timeout_rule_matches(routes, function):
    settings = config.load("dev")
    key = "api-processor"          # any function's settings: both routes read the same ones
    raw = routes["raw"][routes["raw"]["function"] == function]
    ok = raw.loc[raw["status"].astype(str) == "ok", "duration_ms"].astype(float).to_numpy()
    traffic = routes["traffic"]
    n = traffic.successes(function)
    top = timeout_durations(traffic, function)
    assert n == len(ok) and len(top.top_ms) >= top_for_timeout(n)   # k traffic + any tuning among the longest
    theirs = recommend_timeout(ok, key, settings=settings)
    mine = recommend_timeout(top, key, settings=settings)
    assert (mine.timeout_s, mine.status, mine.reason, mine.samples) == (
        theirs.timeout_s, theirs.status, theirs.reason, theirs.samples)
    assert mine.bound == theirs.bound
    if function == "api":
        assert theirs.bound.exists            # enough successes for the p99.9 bound


def test_top_durations_refuse_ranks_they_do_not_hold():
    top = TopDurations(np.array([5.0, 9.0, 7.0]), 100)
    assert top.max() == 9.0 and top.ascending(100) == 9.0 and top.ascending(98) == 5.0
    with pytest.raises(Exception, match="not among the 3 longest"):
        top.ascending(50)


def test_merge_percentiles_is_exact_for_one_group_and_between_groups_otherwise():
    assert aggregate.merge_percentiles([10], [{0.5: 3.0, 0.99: 9.0}], 0.99) == 9.0
    two = aggregate.merge_percentiles([100, 100], [{0.5: 10.0, 0.99: 20.0, 1.0: 21.0},
                                                   {0.5: 30.0, 0.99: 40.0, 1.0: 41.0}], 0.5)
    assert 10.0 <= two <= 30.0
    assert np.isnan(aggregate.merge_percentiles([], [], 0.5))


def test_a_small_row_limit_splits_queries_and_loses_nothing(routes, monkeypatch):
    """GIVEN Insights' row limit at 20 (as if each function had millions of invocations), WHEN the same
    window is aggregated, THEN binned queries are split and halved, the top durations are fetched in
    parts, and the bins and the timeout rule's order statistics are the same as with the full limit."""
    from workbook.telemetry import insights_queries

    monkeypatch.setattr(insights_queries, "INSIGHTS_ROW_LIMIT", 20)
    double = InsightsFromInvocations(routes["invocations"])
    small = aggregate.load_aggregates(list(FUNCTIONS), routes["start"], routes["end"], client=double,
                                      top_k=top_for_timeout, sleep=lambda s: None, concurrency=1).traffic()
    keys = ["function", "version", "memory_size_mb", "bin_start"]
    pd.testing.assert_frame_equal(small.bins.sort_values(keys).reset_index(drop=True),
                                  routes["traffic"].bins.sort_values(keys).reset_index(drop=True))
    assert small.attrs["top_queries"] > 3 and "top_short" not in small.attrs
    raw = routes["raw"]
    for function in FUNCTIONS:
        k = small.top_needed[function]
        ok = raw.loc[(raw["function"] == function) & (raw["status"].astype(str) == "ok"), "duration_ms"]
        expected = np.sort(ok.astype(float).to_numpy())[::-1][:k]
        np.testing.assert_array_equal(small.top_durations(function)[:k], expected)


def test_a_full_binned_query_is_halved_on_bin_boundaries(routes, monkeypatch):
    """GIVEN a row limit of 2 and api's two versions in nearly every bin, THEN each 5-minute query that
    comes back full is not split inside its bin (that would count a bin twice) but listed as short."""
    from workbook.telemetry import insights_queries

    monkeypatch.setattr(insights_queries, "INSIGHTS_ROW_LIMIT", 2)
    double = InsightsFromInvocations(routes["invocations"])
    agg = aggregate.load_aggregates(["api"], routes["start"], routes["start"] + pd.Timedelta(minutes=20),
                                    client=double, sleep=lambda s: None, concurrency=1)
    assert not agg.bins.duplicated(["function", "version", "memory_size_mb", "bin_start"]).any()
    assert len(agg.attrs["bins_short"]) >= 1
    ranges = [(q["start"], q["end"]) for q in double.queries.values() if "bin(5m)" in q["query"]]
    end_s = int((routes["start"] + pd.Timedelta(minutes=20)).timestamp())
    assert len(ranges) > 2 and all(lo % 300 == 0 and ((hi + 1) % 300 == 0 or hi == end_s) for lo, hi in ranges)


def test_at_volume_the_top_holds_the_bound_and_the_floor_p99_comes_from_insights():
    """Past TOP_P99_CAP the top covers the p99.9 bound only (about n / 1,000); the floor's p99 is the known one."""
    from workbook.tuning import rules

    n = 5_000_000
    k = top_for_timeout(n)
    assert 5_000 < k < 5_300 and top_for_timeout(50_000) == 500 + 1     # below the cap: the p99 is covered
    top = TopDurations(np.linspace(900.0, 100.0, k), n, {0.99: 95.0})
    assert top.quantile(0.99) == 95.0 and top.quantile(0.999) > 100.0
    assert rules.TOP_P99_CAP == 10_000


def test_past_the_row_limit_the_rules_ranks_are_counted_not_fetched(routes, monkeypatch):
    """GIVEN a row limit of 50 (the top api needs is 324 rows), WHEN the ranks the timeout rule reads are
    asked for, THEN a histogram and one bucket each (a finer histogram where a bucket is over the limit)
    give them exactly: the rule's answer is the raw route's, from a handful of rows."""
    from workbook.telemetry import insights_queries

    monkeypatch.setattr(insights_queries, "INSIGHTS_ROW_LIMIT", 50)
    double = InsightsFromInvocations(routes["invocations"])
    stats = InsightsStats()
    agg = aggregate.load_aggregates(list(FUNCTIONS), routes["start"], routes["end"], client=double,
                                    top_k=top_for_timeout, top_ranks=ranks_for_timeout, stats=stats,
                                    sleep=lambda s: None, concurrency=1)
    traffic = agg.traffic()
    assert set(traffic.top_ranks) == set(FUNCTIONS) and "top_short" not in agg.attrs   # every top is over 50
    histograms = [q for q in double.queries.values() if "as bucket" in q["query"]]
    assert len(histograms) >= 2 and len(traffic.top_ranks["api"]) == len(ranks_for_timeout(traffic.successes("api")))
    settings = config.load("dev")
    raw = routes["raw"]
    for function in FUNCTIONS:
        ok = raw.loc[(raw["function"] == function) & (raw["status"].astype(str) == "ok"), "duration_ms"]
        theirs = recommend_timeout(ok.astype(float).to_numpy(), "api-processor", settings=settings)
        top = timeout_durations(traffic, function)
        assert len(top.top_ms) == 0 and top.max() == float(ok.max())
        # the floor's p99 is Insights' at volume (over all invocations): the same floor for both here
        mine = recommend_timeout(top, "api-processor", settings=settings, floor=theirs.floor)
        assert (mine.timeout_s, mine.status, mine.reason, mine.bound) == (
            theirs.timeout_s, theirs.status, theirs.reason, theirs.bound), function
    assert stats.rows < len(routes["invocations"]) / 2


# -- the backtest, the projections and the recommendations, keyed as the notebooks key them --------------------

KEYS = {"api": "api-processor", "files": "file-processor", "sched": "scheduler"}


@pytest.fixture(scope="module")
def keyed(routes):
    """Both routes with function keys (the settings' timeouts and floors apply), as ``load_window`` gives them."""
    from workbook.report.window import InsightsReader

    raw = routes["raw"].assign(function=routes["raw"]["function"].map(KEYS).astype("string"))
    double = InsightsFromInvocations(routes["invocations"])
    reader = InsightsReader(dict(KEYS), None, double, {}, dict(sleep=lambda s: None, concurrency=1))
    return dict(raw=raw, agg=reader.aggregates(routes["start"], routes["end"]), reader=reader, double=double,
                settings=config.load("dev"), hours=(routes["end"] - routes["start"]).total_seconds() / 3600)


@pytest.mark.parametrize("split", [0.5, 0.8])
def test_the_backtest_matches_at_the_same_split(keyed, split):
    """GIVEN the aggregate route's backtest (split on a 5-minute bin boundary, the halves read from Insights),
    THEN the raw route split at the same times gives the same rows exactly, and each split is within half a
    bin's invocations of the raw route's own split (``int(n * split)`` rows)."""
    from workbook.tuning.backtest import timeout_backtest

    keys = list(KEYS.values())
    mine = timeout_backtest(keyed["settings"], keyed["agg"], keys, split, reader=keyed["reader"])
    split_at = {k: pd.Timestamp(v) for k, v in mine.attrs["split_at"].items()}
    theirs = timeout_backtest(keyed["settings"], keyed["raw"], keys, split, split_at=split_at)
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
    assert (mine["second_window_samples"] > 0).all()
    if split == 0.8:     # api's first part holds enough successes for the bound; the bound alone cuts timeouts
        api = mine.set_index("function").loc["api-processor"]
        assert api["bound_only_s"] and api["bound_only_cut"] > 0
    raw = keyed["raw"]
    for key, at in split_at.items():
        times = raw.loc[raw["function"] == key, "timestamp"]
        per_bin = times.dt.floor("5min").value_counts()
        assert abs(int((times < at).sum()) - int(len(times) * split)) <= per_bin.max() / 2 + 1, key


def test_the_backtest_on_the_aggregate_route_needs_its_reader(keyed):
    from workbook.tuning.analysis import TuningInputError
    from workbook.tuning.backtest import timeout_backtest

    with pytest.raises(TuningInputError, match="reader="):
        timeout_backtest(keyed["settings"], keyed["agg"], ["api-processor"])


@pytest.mark.parametrize("memory_mb", [128, 512, 3008])
def test_the_projections_match(keyed, memory_mb):
    """Exact: each function ran one traffic version, so its p99.9 is Insights' own (the mean, the count, the peak
    are sums and maxima). Both at the analysed window's length, as the notebook passes it."""
    from workbook.report.interactive import project

    for key in KEYS.values():
        theirs = project(keyed["settings"], key, memory_mb, 30, "x86_64", keyed["raw"], window_hours=keyed["hours"])
        mine = project(keyed["settings"], key, memory_mb, 30, "x86_64", keyed["agg"], window_hours=keyed["hours"])
        assert mine.keys() == theirs.keys()
        for name, value in theirs.items():
            if isinstance(value, float):
                assert mine[name] == pytest.approx(value, rel=1e-9, nan_ok=True), (key, name)
            else:
                assert mine[name] == value, (key, name)


def test_the_recommendations_match(keyed):
    """The memory rows (the floor from the peak and the out-of-memory sizes) and the timeout rows (the bound from
    the top durations, the floor's p99, the timed-out count) are the raw route's, row for row."""
    from workbook.tuning.recommend import recommend

    keys = list(KEYS.values())
    theirs = recommend(keyed["settings"], keyed["raw"], keys, window_hours=keyed["hours"]).table
    mine = recommend(keyed["settings"], keyed["agg"], keys, window_hours=keyed["hours"]).table
    pd.testing.assert_frame_equal(mine, theirs)
    assert set(theirs["kind"]) == {"memory", "timeout", "architecture"} and len(theirs) == 9


@pytest.mark.parametrize("by", [["function", "memory_size_mb"], "architecture", ["architecture", "hour"]])
def test_cold_start_summary_by_several_keys_and_by_architecture_matches(routes, by):
    """Counts, rates and shares exact; INIT percentiles exact for one bin, else between the bins' own."""
    architecture = {"api": "arm64", "files": "x86_64", "sched": "x86_64"}
    keys = [by] if isinstance(by, str) else by
    raw = routes["raw"].assign(memory_size_mb=routes["raw"]["memory_size_mb"].astype(float))
    theirs = coldstart.summary(raw, by, architecture=architecture).set_index(keys)
    mine = agg_analysis.coldstart_summary(routes["traffic"], by, architecture=architecture).set_index(keys)
    assert list(mine.index) == list(theirs.index) and len(mine) >= 2
    exact = ["invocations", "cold_starts", "cold_start_rate", "init_latency_share", "init_cost_share", "init_billed"]
    pd.testing.assert_frame_equal(mine[exact], theirs[exact], check_dtype=False, check_index_type=False, rtol=1e-9)
    cold = raw[raw["cold_start"].astype(bool)].assign(
        architecture=lambda f: f["function"].map(architecture), hour=lambda f: f["timestamp"].dt.hour,
        bin=lambda f: f["timestamp"].dt.floor("5min"))
    for key, how in mine.attrs["percentiles"].items():
        key = key if isinstance(key, tuple) else (key,)
        part = cold[np.logical_and.reduce([cold[k] == v for k, v in zip(keys, key, strict=True)])]
        for q, column in ((0.5, "init_p50_ms"), (0.95, "init_p95_ms"), (0.99, "init_p99_ms")):
            value = mine.loc[key if len(keys) > 1 else key[0], column]
            if how == agg_analysis.EXACT:
                assert value == pytest.approx(part["init_duration_ms"].quantile(q), rel=1e-9), (key, column)
            else:
                own = part.groupby(["function", "version", "memory_size_mb", "bin"])["init_duration_ms"].quantile(q)
                assert own.min() - 1e-9 <= value <= own.max() + 1e-9, (key, column)


def test_cold_start_timeline_matches_at_five_minutes(routes):
    theirs = coldstart.timeline(routes["raw"], freq="5min").set_index(["function", "timestamp"])
    mine = agg_analysis.coldstart_timeline(routes["traffic"]).set_index(["function", "timestamp"])
    pd.testing.assert_frame_equal(mine[["invocations", "cold_starts"]], theirs[["invocations", "cold_starts"]],
                                  check_dtype=False, check_index_type=False)
    # one group per bin here (one traffic version, one memory size): the bin's INIT p95 is its own
    np.testing.assert_allclose(mine["init_p95_ms"].astype(float), theirs["init_p95_ms"].astype(float), rtol=1e-9)


# -- SnapStart restores: Restore Duration (text) and restoreDurationMs (JSON) on both routes ----------------------

@pytest.fixture(scope="module")
def snap():
    from .insights_emulator import generate_snapstart

    invocations, start, end = generate_snapstart()
    raw = parse_reports(report_events(invocations))
    agg = aggregate.load_aggregates(["snapt", "snapj"], start, end, client=InsightsFromInvocations(invocations),
                                    top_k=top_for_timeout, sleep=lambda s: None, concurrency=1)
    return dict(invocations=invocations, start=start, end=end, raw=raw, agg=agg)


def test_the_raw_route_reads_the_restores_the_generator_wrote(snap):
    raw, invocations = snap["raw"], snap["invocations"]
    assert int(raw["restore_duration_ms"].notna().sum()) == int(invocations["restore_ms"].notna().sum()) > 100
    assert (raw.loc[raw["restore_duration_ms"].notna(), "cold_start"]).all()


@pytest.mark.parametrize("by", ["function", ["function", "memory_size_mb"], "hour"])
def test_restores_are_counted_and_timed_on_the_aggregate_route(snap, by):
    """Not 0: restores, their share of latency, and cold starts (INIT and restores) exact; restore percentiles
    Insights' own per function, merged across bins (between the bins' own) otherwise."""
    keys = [by] if isinstance(by, str) else by
    raw = snap["raw"].assign(memory_size_mb=snap["raw"]["memory_size_mb"].astype(float))
    theirs = coldstart.summary(raw, by).set_index(keys)
    mine = agg_analysis.coldstart_summary(snap["agg"], by).set_index(keys)
    exact = ["invocations", "cold_starts", "cold_start_rate", "restores", "restore_latency_share",
             "init_latency_share", "init_cost_share"]
    pd.testing.assert_frame_equal(mine[exact], theirs[exact], check_dtype=False, check_index_type=False, rtol=1e-9)
    assert mine["restores"].sum() > 100 and (mine["restore_latency_share"] > 0).all()
    restored = raw[raw["restore_duration_ms"].notna()].assign(hour=lambda f: f["timestamp"].dt.hour,
                                                            bin=lambda f: f["timestamp"].dt.floor("5min"))
    for key, how in mine.attrs["restore_percentiles"].items():
        key = key if isinstance(key, tuple) else (key,)
        part = restored[np.logical_and.reduce([restored[k] == v for k, v in zip(keys, key, strict=True)])]
        for q, column in ((0.5, "restore_p50_ms"), (0.95, "restore_p95_ms"), (0.99, "restore_p99_ms")):
            value = mine.loc[key if len(keys) > 1 else key[0], column]
            if how == agg_analysis.EXACT:
                assert value == pytest.approx(part["restore_duration_ms"].quantile(q), rel=1e-9), (key, column)
            else:
                own = part.groupby(["function", "memory_size_mb", "bin"])["restore_duration_ms"].quantile(q)
                assert own.min() - 1e-9 <= value <= own.max() + 1e-9, (key, column)
    if by == "function":
        assert set(mine.attrs["restore_percentiles"].values()) == {agg_analysis.EXACT}


def test_restores_are_priced_the_same_on_both_routes(snap):
    period = (snap["start"], snap["end"])
    theirs = cost_from_reports(snap["raw"], period=period).set_index("function")
    mine = agg_analysis.cost_from_aggregates(snap["agg"], period=period).set_index("function")
    pd.testing.assert_frame_equal(mine, theirs, check_dtype=False, rtol=1e-12)
    assert (mine["snapstart_usd"] > 0).all() and (mine["restores"] > 50).all()


def test_health_reads_the_same_percentiles_from_either_route(keyed):
    """Health's latency columns (p50, p90, p99 and the p99's share of the timeout) from Insights' percentiles equal
    those from the REPORT lines; the source column says which route gave them."""
    from workbook.analysis import health

    keys = list(KEYS.values())
    window_s = int(keyed["hours"] * 3600) * 2
    theirs = health.per_function(percentiles_from_reports(keyed["raw"], window_s), keyed["settings"], keys)
    mine = health.per_function(agg_analysis.duration_percentiles(keyed["agg"]), keyed["settings"], keys)
    columns = ["function", "p50_ms", "p90_ms", "p99_ms", "timeout_s", "p99_pct_of_timeout"]
    pd.testing.assert_frame_equal(mine[columns], theirs[columns], rtol=1e-9)
    assert set(mine["percentile_source"]) == {"logs_insights"} and set(theirs["percentile_source"]) == {"logs"}
