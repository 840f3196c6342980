"""Power tuning's invoker for the sandbox (the ``workbook.tuning.Invoker`` protocol)."""
from __future__ import annotations

import pytest
from local_helpers import make_config

from workbook.tuning import run_power_tuning
from workbook.tuning.sandbox_invoker import InvocationResult, SandboxInvoker

pytestmark = pytest.mark.timeout(120)


def test_set_memory_starts_fresh_environments_and_results_carry_the_report():
    invoker = SandboxInvoker(make_config("cpu_bound", 512, 30))
    try:
        invoker.set_memory(256)
        cold = invoker.invoke({"iterations": 200_000})
        warm = invoker.invoke({"iterations": 200_000})
        assert isinstance(cold, InvocationResult)
        assert cold.init_duration_ms is not None and warm.init_duration_ms is None
        assert cold.error is None and warm.billed_duration_ms >= warm.duration_ms
        invoker.set_memory(256)      # again, same value: a fresh environment all the same
        assert invoker.invoke({"iterations": 1000}).init_duration_ms is not None
    finally:
        invoker.cleanup()


def test_function_errors_are_reported_not_raised():
    invoker = SandboxInvoker(make_config("failing", 256, 10))
    try:
        invoker.set_memory(128)
        result = invoker.invoke({"message": "nope"})
        assert result.error == "PoisonError" and result.duration_ms > 0
    finally:
        invoker.cleanup()


def test_power_tuning_runs_against_the_sandbox():
    invoker = SandboxInvoker(make_config("cpu_bound", 512, 30))
    run = run_power_tuning(invoker, [512, 1024, 1769], num=3, payload={"iterations": 300_000},
                                  strategy="speed")
    # the speed strategy picks a size at or near a full vCPU for CPU-bound code
    assert run.memory_mb in (1024, 1769)
    assert len(run.invocations) == 9
