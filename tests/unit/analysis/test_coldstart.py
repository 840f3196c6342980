"""workbook.coldstart: rates, INIT percentiles and shares, groupings, provisioned concurrency."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from workbook.analysis import coldstart


def _reports():
    t0 = pd.Timestamp("2025-11-01T10:00:00Z")
    rows = []
    for i in range(20):
        cold = i % 5 == 0
        rows.append({
            "request_id": f"r{i}", "function": "api" if i < 10 else "worker",
            "timestamp": t0 + pd.Timedelta(minutes=30 * i),
            "duration_ms": 100.0, "billed_duration_ms": 100, "memory_size_mb": 1024 if i < 10 else 512,
            "max_memory_used_mb": 80, "init_duration_ms": 400.0 if cold else np.nan, "cold_start": cold, "status": "ok",
        })
    return pd.DataFrame(rows)


def test_rate_percentiles_and_shares_per_function():
    out = coldstart.summary(_reports()).set_index("function")
    api = out.loc["api"]
    assert api["invocations"] == 10 and api["cold_starts"] == 2 and api["cold_start_rate"] == 0.2
    assert api["init_p50_ms"] == 400 and api["init_p99_ms"] == 400
    # latency: 2 x 400 ms of INIT over 10 x 100 ms + 800 ms
    assert api["init_latency_share"] == pytest.approx(800 / 1800)
    # cost (INIT billed after 1 Aug 2025): 800 ms of 1,800 ms billed at the same memory
    assert api["init_cost_share"] == pytest.approx(800 / 1800) and api["init_billed"]


def test_init_not_billed_before_august_2025():
    out = coldstart.summary(_reports(), on=date(2025, 7, 1))
    assert (out["init_cost_share"] == 0).all() and not out["init_billed"].any()


def test_init_already_in_billed_duration_is_not_counted_twice():
    reports = _reports()
    reports.loc[reports.cold_start, "billed_duration_ms"] = 500  # billed duration includes INIT
    api = coldstart.summary(reports).set_index("function").loc["api"]
    assert api["init_cost_share"] == 0


@pytest.mark.parametrize("by", ["memory_size_mb", "architecture", "hour", ["function", "hour"]])
def test_groupings(by):
    out = coldstart.summary(_reports(), by=by, architecture={"api": "arm64", "worker": "x86_64"})
    assert out["invocations"].sum() == 20


def test_bad_grouping_and_empty_input():
    with pytest.raises(ValueError, match="cannot group"):
        coldstart.summary(_reports(), by="colour")
    assert coldstart.summary(pd.DataFrame()).empty
    assert coldstart.timeline(pd.DataFrame()).empty
    assert coldstart.provisioned_concurrency_effect(pd.DataFrame(), {"api": 2}).empty


def test_timeline():
    out = coldstart.timeline(_reports(), "1h")
    assert out["invocations"].sum() == 20 and out["cold_starts"].sum() == 4


def test_provisioned_concurrency_effect():
    out = coldstart.provisioned_concurrency_effect(_reports(), {"api": 2}).set_index("function")
    api = out.loc["api"]
    assert api["provisioned_concurrency"] == 2 and api["cold_start_rate"] == 0.2
    assert api["p99_warm_latency_ms"] == 100 and api["cold_start_penalty_ms"] > 300
    assert api["on_demand_cold_start_rate"] == pytest.approx(0.2)
