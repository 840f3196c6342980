"""session.open on --env local: never starts an environment inside `workbook run`; in JupyterLab it may, and says so."""
from __future__ import annotations

import pytest

from workbook.report import ownership, session
from workbook.report.errors import EnvironmentGone


class Manager:
    def __init__(self, running: dict | None) -> None:
        self.running, self.started = running, 0

    def current(self):
        return self.running

    def activate(self, start_if_needed=False, env="local"):
        if self.running is None and start_if_needed:
            self.started += 1
            self.running = {"owner": "lwb-new", "engine": {"pid": 9}, "endpoint_url": "http://127.0.0.1:4566"}
        return self.running


@pytest.fixture
def use(monkeypatch):
    def install(running: dict | None) -> Manager:
        manager = Manager(running)
        monkeypatch.setattr(session, "manager", manager)
        monkeypatch.setattr(ownership, "manager", manager)
        return manager
    return install


def test_inside_a_run_the_runs_environment_is_used(use, monkeypatch):
    manager = use({"owner": "lwb-run", "engine": {"pid": 7}})
    monkeypatch.setenv(ownership.OWNER_ENV, "lwb-run:7")
    assert session.open("local", since="1h").local
    assert manager.started == 0


@pytest.mark.parametrize("running", [None, {"owner": "lwb-other", "engine": {"pid": 8}}], ids=["gone", "replaced"])
def test_inside_a_run_a_missing_environment_fails_and_none_is_started(use, monkeypatch, running):
    # GIVEN a run whose environment stopped (or was replaced by another start)
    manager = use(running)
    monkeypatch.setenv(ownership.OWNER_ENV, "lwb-run:7")
    # WHEN a notebook opens its session THEN it fails, and starts nothing
    with pytest.raises(EnvironmentGone, match="never starts its own"):
        session.open("local", since="1h")
    assert manager.started == 0


def test_in_jupyterlab_an_environment_is_started_and_the_notebook_says_so(use, monkeypatch, capsys):
    monkeypatch.delenv(ownership.OWNER_ENV, raising=False)
    manager = use(None)
    session.open("local", since="1h")
    assert manager.started == 1
    assert "Started a local environment for this session" in capsys.readouterr().out


def test_in_jupyterlab_a_running_environment_is_used_quietly(use, monkeypatch, capsys):
    monkeypatch.delenv(ownership.OWNER_ENV, raising=False)
    manager = use({"owner": "lwb-user", "engine": {"pid": 5}})
    session.open("local", since="1h")
    assert manager.started == 0 and capsys.readouterr().out == ""
