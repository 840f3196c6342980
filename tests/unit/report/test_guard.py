"""Stop signals, the watchdog's protocol, and reaping a run's marked processes (real signals, real processes)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from workbook.report import guard

needs_main_thread = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                       reason="signal handlers are installed from the main thread only")


@needs_main_thread
def test_the_first_stop_signal_interrupts_and_later_ones_are_noted():
    notes = []
    before = signal.getsignal(signal.SIGTERM)
    with guard.StopSignals(notes.append) as signals:
        # WHEN SIGTERM arrives during the work THEN it interrupts, named
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        assert signals.received == "SIGTERM"
        # WHEN SIGINT arrives while the run finishes THEN it is noted, not raised
        signals.finishing()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
    assert len(notes) == 1 and "SIGINT received; finishing cleanly first" in notes[0]
    assert signal.getsignal(signal.SIGTERM) is before


def _sleeper(environment: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                            env={**os.environ, **(environment or {})}, start_new_session=True)


def test_reap_ends_only_the_marked_processes():
    # GIVEN two processes with the run's mark, one with another run's mark, one with none
    marked = [_sleeper({"WORKBOOK_RUN_ID": "run-a"}) for _ in range(2)]
    innocent = [_sleeper({"WORKBOOK_RUN_ID": "run-b"}), _sleeper()]
    try:
        deadline = time.monotonic() + 10
        while len(guard.marked("WORKBOOK_RUN_ID=run-a")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # WHEN the run's processes are reaped
        reaped = guard.reap("WORKBOOK_RUN_ID=run-a")
        # THEN exactly the marked ones are gone
        assert reaped == sorted(p.pid for p in marked)
        assert all(p.wait(5) is not None for p in marked)
        assert all(p.poll() is None for p in innocent)
    finally:
        for process in marked + innocent:
            process.kill()
            process.wait()


def test_watchdog_that_hears_done_exits_and_does_nothing(tmp_path):
    watchdog = guard.Watchdog(log=tmp_path / "watchdog.log")
    watchdog.send(mark="WORKBOOK_RUN_ID=nothing", secrets=["never-on-disk-0001"])
    watchdog.done()
    assert watchdog.process.returncode == 0
    assert (tmp_path / "watchdog.log").read_text() == ""
    assert "never-on-disk-0001" not in "".join(p.read_text() for p in tmp_path.iterdir())


def _ignores(pid: int, number: int) -> bool:
    with open(f"/proc/{pid}/status") as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigIgn:"))
    return bool(mask & (1 << (number - 1)))


def test_watchdog_ignores_stop_signals_sent_to_its_group(tmp_path):
    # GIVEN a watchdog (in a session of its own) WHEN its group gets SIGTERM and SIGINT
    watchdog = guard.Watchdog(log=tmp_path / "watchdog.log")
    deadline = time.monotonic() + 30
    while not _ignores(watchdog.process.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.05)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        os.killpg(watchdog.process.pid, number)
    time.sleep(0.3)
    # THEN it is still there to finish the run, and exits when told
    assert watchdog.process.poll() is None
    watchdog.done()
    assert watchdog.process.returncode == 0


def test_a_kernel_task_abandoned_by_an_interrupt_prints_no_traceback():
    """asyncio reports a never-retrieved DeadKernelError at garbage collection (a raw traceback on the
    run's stderr after an interrupt); other never-retrieved errors still get through."""
    import asyncio
    import gc
    import logging

    from nbclient.exceptions import DeadKernelError

    from workbook.report import notebooks

    reported = []

    class Collect(logging.Handler):
        def emit(self, record):
            reported.append(type(record.exc_info[1]).__name__ if record.exc_info else record.getMessage())

    async def watch_kernel():
        raise DeadKernelError("Kernel died")

    async def other():
        raise ValueError("a real error")

    async def interrupted():
        raise KeyboardInterrupt("SIGINT")   # the run's own interrupt, raised while this task ran

    handler = Collect()
    logging.getLogger("asyncio").addHandler(handler)
    try:
        notebooks._quiet_abandoned_kernel_tasks()
        notebooks._quiet_abandoned_kernel_tasks()   # once, however often a run executes notebooks
        loop = asyncio.new_event_loop()
        tasks = [loop.create_task(watch_kernel()), loop.create_task(other()), loop.create_task(interrupted())]
        try:
            loop.run_until_complete(asyncio.sleep(0.01))
        except KeyboardInterrupt:
            pass   # propagated to the run (which acts on it); the task keeps it as its exception
        loop.run_until_complete(asyncio.sleep(0.01))
        loop.close()
        del tasks
        gc.collect()
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
    assert reported == ["ValueError"]
    assert sum(isinstance(f, notebooks._AbandonedKernelTask) for f in logging.getLogger("asyncio").filters) == 1
