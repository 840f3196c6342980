"""Runs on the real local environment that end cleanly whatever ends them.

Each test runs ``workbook run --env local`` (starting its own environment, as ``make run`` does)
in a child process, with one notebook and a second of traffic, and ends it on purpose: SIGINT while
the environment starts and during the traffic, SIGINT and SIGTERM in a notebook, SIGKILL of the
run (its watchdog finishes), a second run at the same time, and the environment stopped under a
run. After each: no process of the run left (moto, PostgreSQL, the engine, sandboxes, kernels,
the watchdog), the decoys alive, the state file gone, and ``latest`` valid.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from tests.notebooks.faults import Sandbox, folders_of, latest_is_valid, seed_latest

SHORT = ["run", "--env", "local", "--only", "02-metrics", "--traffic-seconds", "1"]


@pytest.fixture
def box(tmp_path, decoys):
    sandbox = Sandbox(tmp_path)
    sandbox.earlier = seed_latest(sandbox.outputs / "local")
    sandbox.owners = set()
    yield sandbox
    left = sandbox.wait_until_none_left(sandbox.owners, timeout_s=90)
    assert left == [], f"processes of the run are left: {left}"
    assert decoys.all_alive()
    assert not (sandbox.state_dir / "state.json").exists(), "the local environment was left recorded as running"
    assert latest_is_valid(sandbox.outputs / "local")


def _run(box: Sandbox, fault: str | None = None, command: list[str] = SHORT, on_line=None):
    outcome = box.run(["--fault", fault] if fault else [], command, on_line=on_line)
    box.owners |= outcome.owners
    return outcome


def _summary(folder):
    return json.loads((folder / "summary.json").read_text())


def test_sigint_while_the_environment_starts_leaves_nothing(box):
    outcome = _run(box, "start:INT")
    assert outcome.returncode == 130, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr
    assert "interrupted by SIGINT during the local environment's start; no run folder was kept" in outcome.stderr
    assert outcome.stdout == "" and folders_of(box.outputs / "local") == [box.earlier.name, "latest"]


def test_sigint_during_the_traffic_stops_the_environment_and_keeps_no_empty_folder(box):
    outcome = _run(box, "traffic:INT:0.5", ["run", "--env", "local", "--only", "02-metrics",
                                             "--traffic-seconds", "30"])
    assert outcome.returncode == 130, outcome.stderr[-3000:]
    assert "interrupted by SIGINT during the traffic" in outcome.stderr and "local environment: stopped" in outcome.stderr
    assert "no run folder was kept (nothing to show)" in outcome.stderr
    assert folders_of(box.outputs / "local") == [box.earlier.name, "latest"]


@pytest.mark.parametrize("signame", ["INT", "TERM"])
def test_a_stop_signal_in_a_notebook_keeps_a_marked_partial_run(box, signame):
    outcome = _run(box, f"notebook=02-metrics:{signame}:2")
    assert outcome.returncode == 130, outcome.stderr[-3000:]
    assert f"interrupted by SIG{signame} during notebook 02-metrics" in outcome.stderr
    assert "local environment: stopped" in outcome.stderr and "Traceback" not in outcome.stderr
    summary = _summary(outcome.folder)
    assert summary["status"] == "interrupted" and summary["notebooks"][0]["status"] == "interrupted"
    assert "This run was interrupted" in (outcome.folder / "runbook.html").read_text()
    assert (box.outputs / "local" / "latest").resolve() == box.earlier


def test_sigkill_of_the_run_is_finished_by_its_watchdog(box):
    # GIVEN a run killed outright in a notebook: no finally of its own runs
    outcome = _run(box, "notebook=02-metrics:KILL:2")
    assert outcome.returncode == -9
    # WHEN its watchdog has finished (the box waits for every process of the run to end)
    left = box.wait_until_none_left(box.owners, timeout_s=120)
    assert left == []
    # THEN the folder is published as interrupted, with its runbook and the reason; latest unmoved
    run_folder = next(p for p in (box.outputs / "local").iterdir() if p.name not in (box.earlier.name, "latest"))
    assert not run_folder.name.endswith(".partial")
    summary = _summary(run_folder)
    assert summary["status"] == "interrupted" and "its watchdog stopped what it started" in summary["reason"]
    assert "This run was interrupted" in (run_folder / "runbook.html").read_text()
    assert (box.outputs / "local" / "latest").resolve() == box.earlier


def test_a_second_run_at_the_same_time_is_refused_and_the_first_is_unharmed(box):
    # GIVEN run A starting its environment
    second: dict[str, object] = {}

    def run_second() -> None:
        try:
            second["b"] = subprocess.run([sys.executable, "-m", "workbook.cli", *SHORT], env=box.environ(),
                                         cwd=box.root, capture_output=True, text=True, timeout=300)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below, with A's output
            second["error"] = repr(exc)

    # B runs in a thread of its own: run in the reader's callback, it held up the reading of A's progress,
    # and the reader's bounded join could return before B had answered (a KeyError under load, once).
    b_thread = threading.Thread(target=run_second, daemon=True)

    def start_second(line: str) -> None:
        if "local environment: starting" in line and not b_thread.is_alive() and not second:
            b_thread.start()

    # WHEN run B starts meanwhile
    first = _run(box, None, SHORT, on_line=start_second)
    if b_thread.ident is not None:   # started: B has its own 300 s timeout
        b_thread.join()
    # THEN B fails at once with one line naming A, creates nothing; A ends well and moves latest
    assert "b" in second, (second, first.returncode, first.stderr[-3000:])
    b = second["b"]
    assert b.returncode == 1 and b.stdout == "" and "Traceback" not in b.stderr
    assert "another `workbook run` is using the local environment (pid" in b.stderr
    assert len(b.stderr.strip().splitlines()) == 1
    assert first.returncode == 0, first.stderr[-3000:]
    assert folders_of(box.outputs / "local") == sorted([box.earlier.name, first.folder.name, "latest"])
    assert (box.outputs / "local" / "latest").resolve() == first.folder


def test_an_environment_stopped_under_a_run_fails_it_and_is_not_restarted(box):
    # GIVEN a run of two notebooks; WHEN `workbook local stop` runs as the first one starts
    stopped = threading.Event()

    def stop_it(line: str) -> None:
        if "[1/2] 02-metrics ..." in line and not stopped.is_set():
            subprocess.run([sys.executable, "-m", "workbook.cli", "local", "stop"], env=box.environ(),
                           cwd=box.root, capture_output=True, timeout=300)
            stopped.set()

    outcome = _run(box, None, ["run", "--env", "local", "--only", "02-metrics", "03-cold-starts",
                               "--traffic-seconds", "1"], on_line=stop_it)
    # THEN the run fails (exit 1) saying so; no notebook reports health from an empty, fresh environment
    assert stopped.is_set()
    assert outcome.returncode == 1, outcome.stderr[-3000:]
    assert "the local environment" in outcome.stderr and "Traceback" not in outcome.stderr
    summary = _summary(outcome.folder)
    assert summary["status"] == "failed" and "local environment" in summary["reason"]
    assert not any(n["status"] == "ok" and n["name"] == "03-cold-starts" for n in summary["notebooks"])
    assert "Started a local environment" not in (outcome.folder / "02-metrics.ipynb").read_text()
