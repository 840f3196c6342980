"""Floors and ceilings come from the stack: params' batches and windows, the trigger's limit, the handlers' budgets."""
from __future__ import annotations

import pytest

from infra import config, environment, specs
from workbook.tuning import floors


@pytest.mark.parametrize("env", ["local", "dev", "staging", "prod"])
def test_the_batch_floor_reads_each_environments_params(env):
    # GIVEN each environment's own batch size and window for the data processor's queue
    settings = config.load(env)
    queue = settings.params.task_queue
    floor = floors.timeout_floor(settings, "data-processor", per_record_p99_ms=30_000)
    batch = next(c for c in floor.components if c.kind == "batch")
    # THEN the batch component is batch size x per-record p99 + window, from params, not a copy
    assert batch.value == pytest.approx(queue.batch_size * 30.0 + queue.batching_window_s)
    assert f"batch of {queue.batch_size}" in batch.reason
    assert floor.binding is batch and floor.seconds >= batch.value


def test_the_downstream_floor_is_the_longest_budget_plus_the_handlers_margin():
    settings = config.load("prod")
    floor = floors.timeout_floor(settings, "notification-handler")
    longest = max(total for _, total, _ in floors.dependency_budgets("notification-handler"))
    margin_s = environment.safety_margin_ms(longest + 0.5) / 1000
    assert floor.seconds == int(-(-(longest + margin_s) // 1)) and floor.binding.kind == "downstream"


@pytest.mark.parametrize("key, ceiling", [("api-processor", 30), ("auth-handler", 30), ("data-processor", 900),
                                          ("file-processor", 900)])
def test_ceilings_are_the_triggers_limits(key, ceiling):
    assert floors.timeout_ceiling(key)[0] == ceiling


def test_the_slowest_worst_case_input_sets_a_timeout_floor():
    settings = config.load("local")
    floor = floors.timeout_floor(settings, "file-processor", worst_case_ms=100_000, worst_case_memory_mb=512,
                                 worst_case="png-rgba-max-pixels")
    assert floor.binding.kind == "worst-case input" and floor.seconds == 150 and "512 MB" in floor.binding.reason
    assert "png-rgba-max-pixels" in floor.binding.reason


def test_memory_floor_takes_the_larger_peak_rounds_up_and_names_the_input():
    floor = floors.memory_floor(90.0, probe_peak_mb=300.0, probe="png-rgba-max-pixels (7,071 x 7,071 RGBA PNG)",
                                invocations=500)
    assert floor.value == 448                                              # 300 x 1.3 = 390, in 64 MB steps
    assert floor.reason == ("peak 300 MB on the worst-case input png-rgba-max-pixels (7,071 x 7,071 RGBA PNG) "
                            "+ 30% headroom")
    assert "over 500 invocations" in floors.memory_floor(400.0, probe_peak_mb=300.0, probe="x", invocations=500).reason
    assert floors.memory_floor(None).value == specs.MEMORY_MIN_MB
    assert floors.memory_floor(60.0, oom_at_mb=[512]).value == 576
    assert "above Lambda's" in floors.memory_floor(9000.0).reason


def test_the_workbooks_budgets_cover_every_function():
    for key in specs.FUNCTION_KEYS:
        budgets = floors.dependency_budgets(key)
        assert budgets and all(total > 0 and how for _, total, how in budgets)
