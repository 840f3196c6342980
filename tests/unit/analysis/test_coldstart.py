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


def _parsed(lines):
    from workbook.logs import parse_reports

    return parse_reports(lines, function="api")


def test_snapstart_restores_are_cold_starts_of_their_own_type():
    # GIVEN REPORT lines as Lambda writes them: 2 restores, 1 INIT cold start, 3 warm, 1 Managed Instances record
    t = "2025-11-05T10:0{}:00.000Z REPORT RequestId: r{}\tDuration: {} ms\tBilled Duration: {} ms\tMemory Size: 1024 MB\tMax Memory Used: 90 MB\t"
    lines = [
        t.format(0, 0, "100.00", 300) + "Restore Duration: 400.00 ms\tBilled Restore Duration: 200 ms\t",
        t.format(1, 1, "100.00", 200) + "Restore Duration: 600.00 ms\tBilled Restore Duration: 100 ms\t",
        t.format(2, 2, "100.00", 100) + "Init Duration: 500.00 ms\t",
        t.format(3, 3, "100.00", 100), t.format(4, 4, "100.00", 100), t.format(5, 5, "100.00", 100),
        '{"time":"2025-11-05T10:06:00.000Z","type":"platform.report","record":{"requestId":"m1","metrics":{"durationMs":100.0}}}',
    ]
    reports = _parsed(lines)
    assert reports["start_type"].tolist() == ["restore", "restore", "cold", "warm", "warm", "warm", "warm"]
    # WHEN summarised
    api = coldstart.summary(reports).set_index("function").loc["api"]
    # THEN restores count as cold starts, apart from INIT in their own figures; latency holds Restore Duration
    assert api["invocations"] == 7 and api["cold_starts"] == 3 and api["cold_start_rate"] == pytest.approx(3 / 7)
    assert api["restores"] == 2 and api["restore_p50_ms"] == 500 and api["init_p50_ms"] == 500
    latency = 7 * 100 + 500 + 400 + 600
    assert api["restore_latency_share"] == pytest.approx(1000 / latency)
    assert api["init_latency_share"] == pytest.approx(500 / latency)
    # INIT (500 ms) is not in the 100 ms billed, so its 0.5 GB-s are billed beside 0.9 GB-s of duration
    assert api["init_cost_share"] == pytest.approx(0.5 / (0.9 + 0.5))
    assert coldstart.timeline(reports, "1h")["cold_starts"].sum() == 3
