"""session.open on --env local: never starts an environment inside `workbook run`; in JupyterLab it may, and says so."""
from __future__ import annotations

import pandas as pd
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


def test_the_session_line_says_which_python_runs_the_handlers_when_not_the_stacks(use, monkeypatch):
    monkeypatch.delenv(ownership.OWNER_ENV, raising=False)
    # GIVEN an environment whose handlers run on another Python than the stack's runtime
    line = "Python 3.11.7 (/usr/bin/python3.11), not the stack's runtime python3.12 (no python3.12 on PATH or in pyenv)"
    use({"owner": "lwb-user", "engine": {"pid": 5}, "handlers_on": line, "handlers_on_stack_runtime": False})
    # THEN the session line every notebook shows says so
    assert session.open("local", since="1h").describe().endswith(f"The handlers run on {line}.")
    # and says nothing more when they run on the stack's runtime
    use({"owner": "lwb-user", "engine": {"pid": 5}, "handlers_on": "Python 3.12.1 (...), the stack's runtime",
         "handlers_on_stack_runtime": True})
    assert session.open("local", since="1h").describe().endswith("UTC.")


def test_a_wide_table_is_shown_by_concern_with_human_headers(capsys):
    # GIVEN the cost table of a window (outside a notebook: plain text)
    costs = pd.DataFrame({"function": ["api-processor"], "invocations": [10], "cold_starts": [1], "restores": [0],
                          "gb_seconds": [0.5], "init_gb_seconds": [0.1], "requests_usd": [2e-6], "compute_usd": [8e-6],
                          "init_usd": [1e-6], "ephemeral_usd": [0.0], "provisioned_usd": [0.0], "snapstart_usd": [0.0],
                          "total_usd": [1.1e-5], "period_hours": [1.0], "monthly_projection_usd": [0.008]})
    # WHEN shown by concern
    session.show_by_concern(costs, "cost", digits=6, same_on_every_row=["period_hours"])
    out = capsys.readouterr().out
    # THEN the window is one sentence, then a titled table per concern, headed for a person
    assert out.startswith("Window (h): 1.00.\n**Usage**\n")
    assert "**Charges**" in out and "Projected per month (USD)" in out and "Compute (GB-s)" in out
    assert "monthly_projection_usd" not in out and "Provisioned concurrency" not in out
