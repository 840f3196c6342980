"""Where the offline plan runs: on the caller's thread unless an event loop runs there (a kernel)."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from workbook.deploy import plan


def test_without_a_running_loop_the_plan_runs_on_the_calling_thread():
    # GIVEN no event loop running on this thread WHEN work runs off the caller's loop THEN it runs right here
    assert plan._off_the_callers_loop(threading.current_thread) is threading.current_thread()


def test_inside_a_running_loop_the_plan_runs_on_a_thread_with_a_loop_of_its_own():
    # GIVEN a running loop (as in a Jupyter kernel)
    async def main():
        caller_loop = asyncio.get_running_loop()
        # WHEN work runs off the caller's loop
        seen = plan._off_the_callers_loop(lambda: (threading.current_thread(), asyncio.get_event_loop()))
        return caller_loop, seen
    caller_loop, (thread, loop) = asyncio.run(main())
    # THEN it ran on another thread, with another loop
    assert thread is not threading.main_thread() and loop is not caller_loop


def test_a_worker_that_never_finishes_is_a_clear_error_not_a_hang(monkeypatch):
    # GIVEN a plan that would never end, and a short limit
    monkeypatch.setattr(plan, "PLAN_THREAD_TIMEOUT_S", 0.3)
    # WHEN it runs in the worker thread THEN the caller gets PlanHung, with what to do
    with pytest.raises(plan.PlanHung, match="restart the kernel"):
        plan._in_worker_thread(lambda: time.sleep(5))


def test_an_error_in_the_worker_reaches_the_caller():
    def broken():
        raise ValueError("bad params")
    with pytest.raises(ValueError, match="bad params"):
        plan._in_worker_thread(broken)
