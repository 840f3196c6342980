"""The state file and what status says when nothing runs."""
from __future__ import annotations

import pytest

from workbook.local import errors, manager, state


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path))
    return tmp_path


def test_state_file_round_trip_is_private_and_atomic(state_dir):
    assert state.read() is None
    state.write({"env": "local", "moto": {"pid": 1, "port": 2}})
    assert state.read() == {"env": "local", "moto": {"pid": 1, "port": 2}}
    assert (state_dir / "state.json").stat().st_mode & 0o077 == 0
    assert not list(state_dir.glob("*.tmp"))
    state.remove()
    assert state.read() is None


def test_nothing_running(state_dir):
    assert manager.current() is None
    report = manager.status()
    assert report["running"] is False and report["cpu_limit"] and report["memory_limit"]
    assert manager.stop() is False
    with pytest.raises(errors.NotRunningError, match="workbook local start"):
        manager.activate()


def test_a_dead_environment_is_not_running(state_dir):
    state.write({"env": "local", "moto": {"pid": 2 ** 22 + 11}, "engine": {"pid": 2 ** 22 + 12},
                 "endpoint_url": "http://127.0.0.1:1"})
    assert manager.current() is None
    assert manager.stop() is False and state.read() is None


def test_status_names_the_fallback_when_cgroups_are_not_writable(state_dir):
    import os
    import subprocess
    import sys

    env = {**os.environ, "WORKBOOK_LOCAL_LIMITS": "fallback", "WORKBOOK_STATE_DIR": str(state_dir)}
    result = subprocess.run([sys.executable, "-m", "workbook.cli", "local", "status"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 3
    assert "SIGSTOP/SIGCONT duty-cycling" in result.stdout and "RLIMIT_AS" in result.stdout


def test_start_and_stop_are_exclusive(state_dir):
    import threading

    order = []
    with manager._exclusive():
        waiter = threading.Thread(target=lambda: (manager.stop(), order.append("stop")))
        waiter.start()
        waiter.join(0.3)
        order.append("held")
    waiter.join(5)
    assert order == ["held", "stop"]
