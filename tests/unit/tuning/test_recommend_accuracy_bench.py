"""The accuracy benchmark's machinery (bench/recommend_accuracy.py), on measurements of a function of known shape."""
from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from infra.specs import vcpus_for
from workbook.tuning.analysis import base_cost_per_ms

BENCH = Path(__file__).resolve().parents[3] / "bench" / "recommend_accuracy.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("recommend_accuracy_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def measured(profile, values, n, wait_ms=30.0, cpu_ms=10.0, seed=0, peak=lambda payload: 20.0):
    """Records as the sandbox would give them, from a known model: wait + cpu / vCPUs, 5% noise, a cold start per 20."""
    rng = np.random.default_rng(seed)
    mix, rows = profile.mix, []
    for memory in values:
        for i in range(n):
            index = mix.next_index(memory)
            payload = mix.payloads[index]
            scale = payload.get("rounds", 1) if isinstance(payload, dict) else 1
            duration = (wait_ms + scale * cpu_ms / min(vcpus_for(memory), 1.0)) * (1 + rng.normal(0, 0.05))
            oom = peak(payload) >= memory
            rows.append({"memory_mb": memory, "payload": index, "duration_ms": duration,
                         "billed_duration_ms": math.ceil(duration), "init_duration_ms": 120.0 if i % 20 == 0 else None,
                         "max_memory_used_mb": min(peak(payload), memory),
                         "error": "Runtime.OutOfMemory" if oom else None})
    return pd.DataFrame(rows)


def test_truth_is_the_cheapest_eligible_size_of_the_known_model(bench):
    # GIVEN a function with a 30 ms wait and 10 ms of CPU: the cheapest size is the smallest
    profile = bench.Profile("model", "cpu_io", {"rounds": 1}, "")
    values = [128, 256, 1024]
    truth = bench.true_behaviour(measured(profile, values, 200), profile, base_cost_per_ms())
    # THEN the truth agrees with the model's own costs, and the speed optimum is the largest
    assert truth.optimum["cost"] == 128 and truth.optimum["speed"] == 1024
    model = {m: (30 + 10 / vcpus_for(m)) * m for m in values}
    assert truth.off_by("cost", 256) == pytest.approx(model[256] / model[128] - 1, abs=0.03)
    assert truth.off_by("cost", 4096) == math.inf


def test_a_size_that_runs_out_of_memory_on_the_largest_payload_is_not_eligible(bench):
    profile = bench.Profile("heavy", "memory_heavy", [{"payload": {"mb": 10}, "weight": 0.8},
                                                      {"payload": {"mb": 120}, "weight": 0.2, "largest": True}], "")
    records = measured(profile, [128, 256, 512], 60, peak=lambda payload: payload["mb"] + 12.0)
    truth = bench.true_behaviour(records, profile, base_cost_per_ms())
    assert truth.floor_mb > 128 and 128 not in truth.criteria["cost"] and truth.optimum["cost"] == 256


def test_replay_draws_measured_invocations_and_a_cold_start_after_set_memory(bench):
    profile = bench.Profile("model", "cpu_io", {"rounds": 1}, "")
    pool = measured(profile, [128, 256], 40)
    invoker = bench.ReplayInvoker(pool, profile, seed=1)
    invoker.set_memory(256)
    first, second = invoker.invoke({"rounds": 1}), invoker.invoke({"rounds": 1})
    assert first.init_duration_ms == 120.0 and second.init_duration_ms is None
    warm = set(pool[(pool["memory_mb"] == 256) & pool["init_duration_ms"].isna()]["duration_ms"])
    assert first.duration_ms in warm and second.duration_ms in warm and first.duration_ms != second.duration_ms


def test_one_repeat_scores_both_methods(bench):
    # GIVEN a pool of the known model, and its truth
    profile = bench.Profile("model", "cpu_io", {"rounds": 1}, "")
    values = [128, 256, 512, 1024]
    base = base_cost_per_ms()
    truth = bench.true_behaviour(measured(profile, values, 200, seed=1), profile, base)
    pool = measured(profile, values, 80, seed=2)
    rows = bench.one_repeat(lambda r: bench.ReplayInvoker(pool, profile, seed=r), profile, truth, "cost", 60, 0,
                            1024, values, base)
    by = {row["method"]: row for row in rows}
    # THEN the tool always recommends, ours carries a status; both are scored against the truth
    assert by["power-tuning"]["status"] == "recommend" and by["power-tuning"]["invocations"] == 60
    assert by["adaptive"]["status"] in {"recommend", "keep", "insufficient-data"}
    assert by["adaptive"]["invocations"] <= 60
    assert by["adaptive"]["within"] and not by["adaptive"]["bad_recommend"]
    summary = bench.summarize(pd.DataFrame(rows))
    assert set(summary["method"]) == {"adaptive", "power-tuning"} and (summary["repeats"] == 1).all()
