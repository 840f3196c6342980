"""bench/volume.py at its smallest size (1 invocation/s for a day, six functions): both routes run for real
against its Logs double, the raw route's replay on counts matches the real run, and the table renders."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "volume.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("volume_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def smallest(bench):
    return {route: bench.measure(route, 1.0, 24.0) for route in ("raw", "aggregate")}


def test_both_routes_see_the_same_invocations(smallest):
    assert smallest["raw"]["invocations"] == smallest["aggregate"]["invocations"] == 86_406


def test_the_raw_routes_replay_on_counts_matches_the_real_run(bench, smallest):
    plan = bench.raw_plan(1.0, 24 * 3600)
    assert (plan["queries"], plan["rows"]) == (smallest["raw"]["start_query"], smallest["raw"]["rows"])
    assert plan["kept"] >= smallest["raw"]["kept_rows"]     # the replay keeps the boundary second's duplicates


def test_the_aggregate_route_asks_less_and_carries_less(smallest):
    raw, agg = smallest["raw"], smallest["aggregate"]
    assert agg["start_query"] < raw["start_query"] and agg["rows"] * 50 < raw["rows"]
    assert agg["batches"][0] == 2      # the binned stats: one query per log format for the day


def test_the_replay_halves_like_the_loader_at_volume(bench):
    plan = bench.raw_plan(1000.0, 24 * 3600)
    # every leaf under 10,000 rows: at 1,000/s a leaf is at most 10 s, so at least 8,640 leaves
    assert plan["queries"] >= 2 * 8_640 - 1 and plan["kept"] >= 86_400_000


def test_the_table_renders(bench, smallest):
    row = bench._row("aggregate", 1.0, 24.0, 10, 2_604, 2_000_000, 26.0, 31.0, 10.0, "measured")
    text = bench.markdown([row])
    assert "| aggregate | 1 | 1 d | 10 | 110 | 2,604 | 1.9 | 26 | 31 s | measured |" in text
    assert bench.wall_s([2, 2, 18], 10, 10.0, 3.0) == 43.0
