"""One owner per local environment: the run lock, the lease, and the check that it is still there.

``workbook.local.manager`` is replaced by a small fake that keeps a state file the way the real
one does (owner and engine pid), so each rule is checked without starting moto or PostgreSQL;
the real environment is exercised by tests/notebooks/test_run_faults.py.
"""
from __future__ import annotations

import json
import os

import pytest

from workbook.local import state as state_file
from workbook.local.errors import AlreadyRunningError
from workbook.report import ownership
from workbook.report.errors import EnvironmentBusy, EnvironmentGone


class FakeManager:
    """The parts of ``workbook.local.manager`` a run uses, over a real state file."""

    def __init__(self) -> None:
        self.starts = self.stops = 0
        self.on_start = None

    def current(self):
        recorded = state_file.read()
        return recorded if recorded and recorded.get("alive", True) else None

    def start(self, env, settings=None, progress=None):
        if self.on_start:
            self.on_start()
        if self.current():
            raise AlreadyRunningError("already running")
        self.starts += 1
        recorded = {"owner": f"lwb-{self.starts:04d}", "engine": {"pid": 1000 + self.starts},
                    "endpoint_url": "http://127.0.0.1:1"}
        state_file.write(recorded)
        return recorded

    def stop(self):
        self.stops += 1
        state_file.remove()
        return True

    def activate(self, start_if_needed=False, env="local"):
        return self.current()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state"))
    manager = FakeManager()
    for name in ("current", "start", "stop", "activate"):
        monkeypatch.setattr(ownership.manager, name, getattr(manager, name))
    return manager


@pytest.fixture
def settings():
    from infra import config

    return config.load("local")


def test_a_second_run_is_refused_while_the_first_holds_the_lock(fake):
    # GIVEN a run holding the environment
    first = ownership.RunLock().acquire("outputs/local/20260101T000000Z.partial")
    try:
        # WHEN a second run asks THEN it is told who holds it, and nothing else happens
        with pytest.raises(EnvironmentBusy, match=rf"pid {os.getpid()}, since .* UTC, writing outputs/local/2026"):
            ownership.RunLock().acquire("another")
    finally:
        first.release()
    ownership.RunLock().acquire("third").release()   # released: free again


def test_a_run_that_starts_the_environment_owns_and_stops_it(fake, settings):
    lease = ownership.acquire(settings, ownership.Lease(), lambda m: None)
    assert lease.started_here and lease.owner == "lwb-0001:1001"
    assert ownership.still_there(lease)
    ownership.release(lease, lambda m: None)
    assert fake.stops == 1 and fake.current() is None
    assert not (state_file.state_dir() / ownership.STARTED_NAME).exists()


def test_a_run_uses_a_running_environment_and_leaves_it_running(fake, settings):
    fake.start("local")                                     # `workbook local start`, or JupyterLab
    said = []
    lease = ownership.acquire(settings, ownership.Lease(), said.append)
    assert not lease.started_here and "it stays running" in said[0]
    ownership.release(lease, said.append)
    assert fake.stops == 0 and fake.current() is not None


def test_an_environment_left_by_a_killed_run_is_replaced(fake, settings):
    # GIVEN an environment a run started, and that run is gone (its lock is free)
    ownership.acquire(settings, ownership.Lease(), lambda m: None)
    # WHEN the next run comes THEN it stops the leftover and starts a fresh one it owns
    lease = ownership.acquire(settings, ownership.Lease(), lambda m: None)
    assert fake.stops == 1 and fake.starts == 2 and lease.started_here and lease.owner == "lwb-0002:1002"


def test_an_environment_started_elsewhere_meanwhile_is_used_not_stopped(fake, settings):
    fake.on_start = lambda: (setattr(fake, "on_start", None), fake.start("local"))
    lease = ownership.acquire(settings, ownership.Lease(), lambda m: None)
    assert not lease.started_here and not lease.starting
    ownership.release(lease, lambda m: None)
    assert fake.stops == 0


def test_an_environment_that_goes_away_fails_the_run(fake, settings):
    lease = ownership.acquire(settings, ownership.Lease(), lambda m: None)
    ownership.check(lease, "02-metrics")                    # still there: nothing happens
    fake.stop()
    fake.start("local")                                     # replaced by another start: not the same
    with pytest.raises(EnvironmentGone, match="stopped during 02-metrics"):
        ownership.check(lease, "02-metrics")
    ownership.release(lease, lambda m: None)
    assert fake.current()["owner"] == "lwb-0002"          # the replacement is not ours to stop


def test_interrupted_between_start_and_record_still_stops_it(fake):
    # GIVEN a lease interrupted right after asking for a start (the start itself completed)
    lease = ownership.Lease(before=None, starting=True)
    fake.start("local")
    # WHEN released THEN the environment it started is stopped
    ownership.release(lease, lambda m: None)
    assert fake.current() is None


def test_an_untouched_lease_stops_nothing(fake):
    fake.start("local")
    ownership.release(ownership.Lease(), lambda m: None)
    assert fake.stops == 0


def test_the_owner_token_tells_starts_apart():
    assert ownership.environment_owner({"owner": "lwb-1", "engine": {"pid": 7}}) == "lwb-1:7"
    assert ownership.environment_owner({"owner": "lwb-1", "engine": {"pid": 8}}) != "lwb-1:7"
    assert ownership.environment_owner(None) is None and ownership.environment_owner({}) is None


def test_started_file_names_the_environment(fake, settings):
    lease = ownership.acquire(settings, ownership.Lease(), lambda m: None)
    started = json.loads((state_file.state_dir() / ownership.STARTED_NAME).read_text())
    assert started == {"owner": lease.owner, "pid": os.getpid()}


def test_an_environment_carrying_the_runs_mark_is_stopped(fake, monkeypatch):
    # GIVEN the run's own environment gone, and another started from inside the run (its engine has the mark)
    lease = ownership.Lease(before=None, owner="lwb-0001:1001", started_here=False)
    fake.start("local")
    fake.start = None
    recorded = state_file.read()
    recorded["engine"]["pid"] = 4242
    state_file.write(recorded)
    monkeypatch.setattr(ownership.guard, "marked", lambda mark: {4242: "1"} if mark == "WORKBOOK_RUN_ID=r1" else {})
    # WHEN released with the run's mark THEN that environment is stopped; without the mark it is not
    ownership.release(lease, lambda m: None, "WORKBOOK_RUN_ID=other")
    assert fake.stops == 0
    ownership.release(lease, lambda m: None, "WORKBOOK_RUN_ID=r1")
    assert fake.stops == 1
