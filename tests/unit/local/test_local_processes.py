"""Process identity and signals: a recorded pid is trusted only while it is provably the same process.

The oracle for start times and listening sockets is psutil, which reads /proc its own way.
Every test uses real processes; the decoys stand for the innocent programs a stale pid can name.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import weakref

import psutil
import pytest

from workbook.local import processes
from workbook.local.processes import Identity, Liveness


def _decoy(*extra: str, session: bool = True) -> subprocess.Popen:
    """A harmless process in a session of its own: what a reused pid may belong to."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", *extra],
                            start_new_session=session)


@pytest.fixture
def decoys():
    started: list[subprocess.Popen] = []

    def make(*extra: str, session: bool = True) -> subprocess.Popen:
        process = _decoy(*extra, session=session)
        started.append(process)
        _wait_for_exec(process.pid)
        return process

    yield make
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_for_exec(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "time.sleep" not in " ".join(processes.command_line(pid) or ()):
        time.sleep(0.01)


def test_identity_matches_psutil_and_knows_the_process_again(decoys):
    # GIVEN a running process
    decoy = decoys()
    # WHEN its identity is read
    identity = Identity.of(decoy.pid)
    # THEN its start time agrees with psutil's (an independent reading of /proc), its command too
    assert identity is not None
    assert processes.started_at_epoch(decoy.pid) == pytest.approx(psutil.Process(decoy.pid).create_time(), abs=0.02)
    assert list(identity.command) == psutil.Process(decoy.pid).cmdline()
    # AND it is alive and the same, also after a round trip through the state file's JSON form
    assert identity.check() is Liveness.ALIVE
    assert Identity.from_dict(identity.to_dict()) == identity


def test_a_dead_a_zombie_and_a_reused_pid_are_not_ours(decoys):
    # GIVEN a recorded process that exits (a zombie until reaped, then gone)
    decoy = decoys()
    identity = Identity.of(decoy.pid)
    decoy.kill()
    time.sleep(0.2)
    # THEN a zombie counts as dead, and so does a reaped process
    assert identity.check() is Liveness.DEAD
    decoy.wait()
    assert identity.check() is Liveness.DEAD
    # GIVEN records whose pid runs another process now: another start time, another boot, another command
    other = decoys()
    live = Identity.of(other.pid)
    for stale in (Identity(live.pid, live.start_ticks - 1, live.boot_id, live.command),
                  Identity(live.pid, live.start_ticks, str(uuid.uuid4()), live.command),
                  Identity(live.pid, live.start_ticks, live.boot_id, ("postgres", "-D", "/elsewhere"))):
        # THEN none of them is that process
        assert stale.check() is Liveness.REPLACED
    # AND an entry without a start time proves nothing
    assert processes.liveness({"pid": other.pid}) is Liveness.UNPROVEN
    assert processes.liveness({}) is Liveness.DEAD


def test_signals_reach_only_the_process_recorded(decoys):
    # GIVEN a decoy holding a pid that a stale record names (same pid, another start time)
    decoy = decoys()
    live = Identity.of(decoy.pid)
    stale = Identity(live.pid, live.start_ticks + 5, live.boot_id, live.command)
    # WHEN a stop signals the stale record, even with SIGKILL, and ends it
    assert processes.send(stale, signal.SIGKILL) is False
    ending = processes.end(stale, signal.SIGTERM, grace_s=0.5)
    # THEN nothing was sent and the decoy runs on
    assert ending.liveness is Liveness.REPLACED and not ending.signalled
    time.sleep(0.2)
    assert decoy.poll() is None
    # AND the true record ends it
    ending = processes.end(live, signal.SIGTERM, grace_s=5)
    # (``end`` reaps its own children, so the decoy's exit status is gone: that SIGTERM sufficed shows
    # as "signalled, never killed")
    assert ending.signalled and not ending.killed and ending.survivors == 0
    decoy.wait(5)
    assert _gone(decoy.pid)


def test_end_takes_the_whole_group_and_kills_what_ignores_the_first_signal():
    # GIVEN a group leader that ignores SIGTERM and has a child in its group, also ignoring it
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)']); "
              "print(child.pid, flush=True); time.sleep(600)")
    leader = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    child_pid = int(leader.stdout.readline())
    identity = Identity.of(leader.pid)
    assert [member.pid for member in processes.group_members(identity)] == [leader.pid, child_pid]
    # WHEN it is ended with a short grace
    ending = processes.end(identity, signal.SIGTERM, grace_s=0.5)
    # THEN both are gone, the leader and the child, by SIGKILL
    assert ending.signalled and ending.killed and ending.survivors == 0
    assert identity.check() is Liveness.DEAD   # (and reaped by ``end``: it is this process's child)
    leader.wait(5)
    # AND the child is no longer running when ``end`` returns (a zombie of init's at most)
    assert _gone(child_pid)


def test_a_process_in_exit_is_still_ours_until_it_is_a_zombie(decoys, monkeypatch):
    # GIVEN a recorded process, read while in exit: the kernel has dropped its memory, so its
    # command line reads empty, but it is not yet a zombie (the window that let a stop return
    # while the engine still ran, seen once in a full suite on a loaded machine)
    decoy = decoys()
    identity = Identity.of(decoy.pid)
    real = processes.command_line
    monkeypatch.setattr(processes, "command_line",
                        lambda pid: () if pid == decoy.pid else real(pid))
    # THEN it is still alive and ours: a stop goes on waiting for it, and may signal it
    assert identity.check() is Liveness.ALIVE
    assert processes.liveness(identity.to_dict()) is Liveness.ALIVE
    # AND ending it waits until it is gone
    ending = processes.end(identity, signal.SIGTERM, grace_s=5)
    assert ending.signalled and ending.survivors == 0
    assert _gone(decoy.pid)
    # BUT a command line that reads as another program's still means the pid was reused by an exec
    monkeypatch.setattr(processes, "command_line", lambda pid: ("/bin/sh", "-c", "true"))
    other = decoys()
    assert Identity(other.pid, Identity.of(other.pid).start_ticks, identity.boot_id, identity.command).check() \
        is Liveness.REPLACED


def test_carrying_finds_the_owner_token_and_nothing_else(decoys):
    token = f"lwb-{uuid.uuid4().hex[:12]}"
    ours = decoys(f"--owner={token}")
    others = [decoys(f"--owner=lwb-{uuid.uuid4().hex[:12]}"), decoys(token), decoys(f"--owner={token}x")]
    found = {identity.pid for identity in processes.carrying(token)}
    assert found == {ours.pid}
    assert not found & {other.pid for other in others}


def test_listens_on_agrees_with_psutil():
    # GIVEN a child process listening on a loopback port, and this process listening on another
    child = subprocess.Popen([sys.executable, "-c", (
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        with socket.socket() as own:
            own.bind(("127.0.0.1", 0))
            own.listen()
            own_port = own.getsockname()[1]
            # THEN listens_on names the holder of each port, as psutil sees it
            holders = {conn.laddr.port: conn.pid for conn in psutil.net_connections("tcp4")
                       if conn.status == psutil.CONN_LISTEN and conn.laddr.port in (port, own_port)}
            assert holders == {port: child.pid, own_port: os.getpid()}
            assert processes.listens_on(child.pid, port) and not processes.listens_on(child.pid, own_port)
            assert processes.listens_on(os.getpid(), own_port) and not processes.listens_on(os.getpid(), port)
    finally:
        child.kill()
        child.wait()


def test_signals_are_deferred_across_a_spawn_and_its_record():
    # GIVEN a block that must not be cut in two (spawn, then record)
    steps = []
    # WHEN SIGINT arrives inside it
    with pytest.raises(KeyboardInterrupt):
        with processes.signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            steps.append("recorded")
    # THEN the block finished before the interrupt was raised
    assert steps == ["recorded"]
    # AND a cleanup that runs because of an interrupt can drop a second one
    with processes.signals_deferred(reraise=False):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_becomes_keyboard_interrupt_until_restored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)   # as in a plain `workbook` process
    try:
        assert processes.terminate_as_interrupt() is True
        assert processes.terminate_as_interrupt() is False   # installed once; another handler is never replaced
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        processes.restore_terminate()
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        processes.restore_terminate()
        signal.signal(signal.SIGTERM, previous)


def test_an_interrupt_lost_inside_a_callback_is_raised_at_the_next_checkpoint(monkeypatch):
    # GIVEN SIGINT and SIGTERM handled as `workbook local start` handles them
    dropped = []   # what Python reports as "Exception ignored in ..."
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    processes.acted_on()
    try:
        processes.terminate_as_interrupt()

        class Held:
            pass

        def callback(reference):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(10_000):   # the handler runs here, inside the weakref callback
                pass

        held = Held()
        reference = weakref.ref(held, callback)
        # WHEN the signal lands inside a weakref callback (as it did in a start: WeakSet._remove)
        del held
        # THEN Python drops the KeyboardInterrupt (this is the lost Ctrl-C) ...
        assert reference() is None
        assert dropped == [KeyboardInterrupt]
        # ... but the signal is recorded, and the next safe point of the main flow raises it
        assert processes.stop_pending() == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            processes.checkpoint()
        assert processes.stop_pending() is None
        processes.checkpoint()   # acted on once: the next safe point passes
    finally:
        processes.restore_terminate()
        processes.acted_on()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_an_interrupt_that_propagated_is_not_raised_again():
    # GIVEN SIGTERM handled as a start handles it, and its interrupt caught by the caller as usual
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        processes.terminate_as_interrupt()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
        # THEN nothing is pending: the next safe point (a later start's first phase) passes
        assert processes.stop_pending() is None
        processes.checkpoint()
    finally:
        processes.restore_terminate()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
