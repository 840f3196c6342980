"""workbook.report.tables: headers a person reads, and wide tables split so each fits the page."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbook.analysis import coldstart, cost, health
from workbook.report import tables
from workbook.tuning.backtest import BACKTEST_COLUMNS
from workbook.tuning.recommend import RECOMMENDATION_COLUMNS


@pytest.mark.parametrize("name, expected", [
    ("init_p50_ms", "INIT p50 (ms)"),
    ("p99_pct_of_timeout", "p99 (% of timeout)"),
    ("p50_ms", "p50 (ms)"),
    ("restore_p95_ms", "Restore p95 (ms)"),
    ("monthly_projection_usd", "Projected per month (USD)"),
    ("mean_cost_usd", "Mean cost (USD)"),
    ("p99_duration_s", "p99 duration (s)"),
    ("memory_mb", "Memory (MB)"),
    ("failed_step", "Failed step"),
    ("cold_start_rate", "Cold-start rate (%)"),
    ("Already a header", "Already a header"),
])
def test_headers_say_what_and_in_which_unit(name, expected):
    assert tables.header(name) == expected


def test_every_column_the_notebooks_show_has_a_header_with_its_unit():
    # GIVEN the library's column contracts
    columns = (coldstart.summary(pd.DataFrame(), "function").columns.tolist() + cost.COST_COLUMNS
               + health.HEALTH_COLUMNS + RECOMMENDATION_COLUMNS + BACKTEST_COLUMNS)
    for column in columns:
        shown = tables.header(column)
        # THEN no header is a machine name, and every unit suffix is said in brackets
        assert "_" not in shown, (column, shown)
        for suffix, unit in (("_ms", "(ms)"), ("_s", "(s)"), ("_usd", "(USD)"), ("_mb", "(MB)"), ("_pct", "%")):
            if column.endswith(suffix):
                assert unit in shown, (column, shown)


def test_humanize_renames_for_the_reader_and_leaves_the_frame_alone():
    # GIVEN a cold-start table as the library returns it (and as summary.json stores it)
    frame = pd.DataFrame({"function": ["api-processor"], "cold_start_rate": [0.05], "init_p50_ms": [210.0]})
    # WHEN humanized for a notebook or the runbook
    shown = tables.humanize(frame)
    # THEN the headers are human, the rate is a percentage, and the original keeps machine names and fractions
    assert list(shown.columns) == ["Function", "Cold-start rate (%)", "INIT p50 (ms)"]
    assert shown["Cold-start rate (%)"].iloc[0] == pytest.approx(5.0)
    assert list(frame.columns) == ["function", "cold_start_rate", "init_p50_ms"] and frame["cold_start_rate"].iloc[0] == 0.05


def test_two_names_with_one_header_stay_apart():
    frame = pd.DataFrame({"memory_size_mb": [512], "memory_mb": [512]})
    shown = tables.humanize(frame)
    assert shown.columns.is_unique and len(shown.columns) == 2


def _reports(restores=False):
    n = 12
    frame = pd.DataFrame({
        "request_id": [f"r{i}" for i in range(n)], "function": ["api-processor", "file-processor"] * (n // 2),
        "timestamp": pd.date_range("2026-12-07T20:00:00Z", periods=n, freq="min"),
        "duration_ms": np.linspace(10, 60, n), "billed_duration_ms": np.arange(11, 11 + n),
        "memory_size_mb": [512] * n, "max_memory_used_mb": [90] * n,
        "init_duration_ms": [200.0 if i < 4 else np.nan for i in range(n)], "cold_start": [i < 4 for i in range(n)],
        "status": ["ok"] * n})
    if restores:
        frame["start_type"] = ["restore" if i < 2 else ("cold" if i < 4 else "warm") for i in range(n)]
        frame["restore_duration_ms"] = [150.0 if i < 2 else np.nan for i in range(n)]
    return frame


def test_the_cold_start_table_splits_by_concern_and_leaves_out_what_is_empty():
    # GIVEN a window without SnapStart restores
    summary = coldstart.summary(_reports(), "function")
    # WHEN split for the page, the flag that is the same on every row said in a sentence instead
    said = tables.constant_columns(summary, ["init_billed"])
    assert set(said) == {"init_billed"}
    parts = tables.split(summary.drop(columns=list(said)), tables.CONCERNS["cold_starts"], ["function"])
    # THEN one table about cold starts and INIT, keyed by function; no empty restore table
    assert [p.title for p in parts] == ["Cold starts and INIT duration"]
    assert list(parts[0].frame.columns[:2]) == ["function", "invocations"]
    assert len(parts[0].frame.columns) <= 9
    # AND with restores, their own table
    with_restores = coldstart.summary(_reports(restores=True), "function")
    titles = [p.title for p in tables.split(with_restores, tables.CONCERNS["cold_starts"], ["function"])]
    assert titles == ["Cold starts and INIT duration", "SnapStart restores"]


def test_the_cost_table_splits_into_usage_and_charges_without_charges_nobody_pays():
    costs = cost.cost_from_reports(_reports(), period=("2026-12-07T20:00:00Z", "2026-12-07T21:00:00Z"))
    parts = tables.split(costs, tables.CONCERNS["cost"], ["function"])
    assert [p.title for p in parts] == ["Usage", "Charges"]
    charges = parts[1].frame.columns.tolist()
    # no provisioned concurrency, SnapStart or extra ephemeral storage here: those columns are left out
    assert charges == ["function", "requests_usd", "compute_usd", "init_usd", "total_usd", "monthly_projection_usd"]
    # AND every column of the library's frame is in one part, or a sentence (the window), or zero everywhere
    shown = {c for p in parts for c in p.frame.columns}
    said = set(tables.constant_columns(costs, ["period_hours"]))
    assert set(costs.columns) - shown - said <= tables.OPTIONAL


def test_constant_columns_become_a_sentence():
    frame = pd.DataFrame({"function": ["a", "b"], "init_billed": [True, True], "period_hours": [1.0, 2.0]})
    assert tables.constant_columns(frame, ["init_billed", "period_hours"]) == {"init_billed": True}
