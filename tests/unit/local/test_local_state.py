"""The state file and what status says when nothing runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from workbook.local import errors, manager, processes, services, state
from workbook.local.processes import Identity


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
    env = {**os.environ, "WORKBOOK_LOCAL_LIMITS": "fallback", "WORKBOOK_STATE_DIR": str(state_dir)}
    result = subprocess.run([sys.executable, "-m", "workbook.cli", "local", "status"], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 3
    assert "SIGSTOP/SIGCONT duty-cycling" in result.stdout and "RLIMIT_AS" in result.stdout


def _blocked_on(path) -> bool:
    """The kernel's own word (/proc/locks, a ``->`` line) that someone waits for the flock on ``path``."""
    inode = os.stat(path).st_ino
    return any("->" in line and line.split()[-3].endswith(f":{inode}") for line in open("/proc/locks"))


def test_start_and_stop_are_exclusive(state_dir):
    import threading

    order = []
    with manager._exclusive():
        waiter = threading.Thread(target=lambda: (manager.stop(), order.append("stop")))
        waiter.start()
        # GIVEN a stop that the kernel shows waiting for the lock (not a guess at how long it needs to get there)
        deadline = time.monotonic() + 60
        while not _blocked_on(state_dir / ".lock") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _blocked_on(state_dir / ".lock") and order == []
        order.append("held")
    # THEN it ran only once the lock was let go
    waiter.join(60)
    assert order == ["held", "stop"]


# -- ownership: a state file is trusted only as far as its processes can be proved to be ours ----------
def _sleeper(*extra: str) -> subprocess.Popen:
    """A decoy in a session of its own (the old ``stop`` would have killed its whole group)."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", *extra], start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "time.sleep" not in " ".join(processes.command_line(process.pid) or ()):
        time.sleep(0.01)
    return process


@pytest.fixture
def decoys():
    started: list[subprocess.Popen] = []

    def make(count: int, *extra: str) -> list[subprocess.Popen]:
        started.extend(_sleeper(*extra) for _ in range(count))
        return started[-count:]

    yield make
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _stale_state(decoys: list[subprocess.Popen]) -> dict:
    """A complete state whose pids now belong to the decoys: one legacy entry, one reused pid, one other boot."""
    moto, postgres, engine = (Identity.of(process.pid) for process in decoys)
    return {"env": "local", "owner": "lwb-000000000000", "complete": True, "endpoint_url": "http://127.0.0.1:9",
            "moto": {"pid": moto.pid, "port": 9},                                     # written by the old code
            "postgres": {**moto.to_dict(), **{"pid": postgres.pid, "start_ticks": postgres.start_ticks - 7,
                                              "command": list(postgres.command)}},   # pid reused since
            "engine": {**engine.to_dict(), "boot_id": "a-boot-before-the-last-reboot", "ports": {"control": 9}}}


def test_a_stale_state_file_never_signals_the_programs_its_pids_now_name(state_dir, decoys):
    # GIVEN a state file whose three pids belong to innocent programs (after a crash or a reboot)
    victims = decoys(3)
    state.write(_stale_state(victims))
    # THEN nothing runs, and status says each entry is stale
    assert manager.current() is None
    report = manager.status()
    assert report["running"] is False and report["health"] == "stale"
    assert [p["state"] for p in report["processes"].values()] == ["unproven", "replaced", "replaced"]
    cli = _workbook(state_dir, "local", "status")
    assert cli.returncode == 3 and cli.stdout.count("STALE") == 3, cli.stdout
    # WHEN the environment is stopped
    stopped = _workbook(state_dir, "local", "stop")
    # THEN each stale entry is reported and removed, and every decoy still runs
    assert stopped.returncode == 0 and "no local environment was running" in stopped.stdout
    for name, victim in zip(("moto", "postgres", "engine"), victims, strict=True):
        assert f"{name}: stale entry, pid {victim.pid}" in stopped.stderr and "not signalled" in stopped.stderr
    assert state.read() is None
    time.sleep(0.3)
    assert [victim.poll() for victim in victims] == [None, None, None]


def test_start_does_not_refuse_because_of_a_stale_state_file(state_dir, decoys, monkeypatch):
    # GIVEN the same stale state file
    victims = decoys(3)
    state.write(_stale_state(victims))
    fresh = []
    monkeypatch.setattr(manager, "_fresh", lambda *args, **kwargs: fresh.append(args) or {"started": True})
    # WHEN start runs
    result = manager.start("local")
    # THEN it cleaned the stale entries and started a new environment (nothing "already running")
    assert result == {"started": True} and len(fresh) == 1 and state.read() is None
    assert [victim.poll() for victim in victims] == [None, None, None]


def test_verify_and_stop_by_owner_answer_is_it_still_the_one_i_started(state_dir, decoys):
    # GIVEN an environment whose three processes are alive and recorded with their identities
    processes_ = decoys(3)
    recorded = {"env": "local", "owner": "lwb-aaaaaaaaaaaa", "generation": 1, "complete": True,
                "endpoint_url": "http://127.0.0.1:9", "state_dir": str(state_dir)}
    for name, process in zip(("moto", "postgres", "engine"), processes_, strict=True):
        recorded[name] = Identity.of(process.pid).to_dict()
    state.write(recorded)
    # THEN its owner verifies, anyone else's token does not
    assert manager.verify("lwb-aaaaaaaaaaaa") and manager.owner() == "lwb-aaaaaaaaaaaa"
    other = manager.verify("lwb-bbbbbbbbbbbb")
    assert not other and "another local environment" in other.reason and other.owner == "lwb-aaaaaaaaaaaa"
    # AND stop with another owner's token leaves it running
    assert manager.stop(owner="lwb-bbbbbbbbbbbb") is False
    assert [process.poll() for process in processes_] == [None, None, None]
    # WHEN one of its processes dies
    processes_[1].kill()
    processes_[1].wait()
    # THEN it no longer verifies, and the reason names the dead process
    check = manager.verify("lwb-aaaaaaaaaaaa")
    assert not check and "postgres dead" in check.reason
    # AND stop with its own token ends the rest
    assert manager.stop(owner="lwb-aaaaaaaaaaaa") is False   # it was not healthy
    for process in processes_:
        process.wait(10)
    assert state.read() is None and not manager.verify("lwb-aaaaaaaaaaaa")


def test_a_postmaster_pid_file_naming_another_program_is_removed_and_the_program_spared(tmp_path, decoys):
    # GIVEN a data folder whose postmaster.pid names a live program that is not its postmaster,
    # even one whose command line mentions the folder
    data_dir = tmp_path / "postgres"
    data_dir.mkdir()
    (victim,) = decoys(1, "-D", str(data_dir))
    started = int(processes.started_at_epoch(victim.pid))
    (data_dir / "postmaster.pid").write_text(f"{victim.pid}\n{data_dir}\n{started}\n5432\n\n127.0.0.1\n"
                                             "  2146934    262200\nready   \n")
    # WHEN the folder is cleaned before a start
    done = services.clean_data_folder(data_dir)
    # THEN the pid file is gone, the program runs on
    assert not (data_dir / "postmaster.pid").exists()
    assert len(done) == 1 and "now runs another program" in done[0]
    time.sleep(0.2)
    assert victim.poll() is None


def test_port_retry_moves_to_a_new_port_only_when_the_port_was_taken():
    tried = []

    def start(port: int):
        tried.append(port)
        if len(tried) == 1:
            raise errors.ServiceStartError("moto's server exited with status 1 during start-up; see moto.log\n"
                                           "Address already in use")
        return port

    assert services.with_port_retry(start, preferred=4321) != 4321 and tried[0] == 4321 and len(tried) == 2
    with pytest.raises(errors.ServiceStartError, match="initdb failed"):
        services.with_port_retry(lambda port: (_ for _ in ()).throw(errors.ServiceStartError("initdb failed")))


def test_an_environment_recorded_before_start_times_were_kept_is_still_stopped(state_dir, decoys):
    # GIVEN a moto started as the previous version started it, recorded by pid and port only,
    # and a legacy entry whose pid runs something else
    port = services.free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    (victim,) = decoys(1)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not processes.listens_on(moto.pid, port):
            time.sleep(0.1)
        state.write({"env": "local", "owner": "lwb-legacy000000", "state_dir": str(state_dir), "complete": True,
                     "moto": {"pid": moto.pid, "port": port},
                     "postgres": {"pid": victim.pid, "port": port, "data_dir": str(state_dir / "data" / "postgres")}})
        # THEN the moto that runs exactly that command on that port is taken as ours, the other is not
        assert manager.health(state.read()) == {"moto": processes.Liveness.ALIVE,
                                                "postgres": processes.Liveness.UNPROVEN}
        # WHEN it is stopped
        manager.stop()
        # THEN moto ended and the other program runs on
        assert moto.wait(20) is not None
        assert victim.poll() is None and state.read() is None
    finally:
        if moto.poll() is None:
            moto.kill()
            moto.wait()


def _workbook(state_dir, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBOOK_STATE_DIR": str(state_dir)}
    return subprocess.run([sys.executable, "-m", "workbook.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)
