"""Processes the local environment can prove are its own, and signals sent only to those.

A pid alone proves nothing: after a crash or a reboot it may belong to another program. A
process is identified by its pid, its start time (``/proc/<pid>/stat`` field 22, clock ticks
after boot), the boot it started in (``/proc/sys/kernel/random/boot_id``) and the command it
runs (``/proc/<pid>/cmdline``). ``Identity.check()`` says whether that very process still runs.

Signals go through a pidfd (``os.pidfd_open``) opened *before* the identity is checked: if the
check passes, the pidfd names that process and no other, so a pid reused between the check and
the signal can never receive it. A process group is ended member by member, each one proved to
have been in the group while its verified leader was alive; ``killpg`` is never used.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Liveness(str, Enum):
    """What became of a recorded process."""

    ALIVE = "alive"            # the same process still runs
    DEAD = "dead"              # it exited (a zombie counts as exited)
    REPLACED = "replaced"      # its pid now belongs to another process
    UNPROVEN = "unproven"      # the record lacks a start time or command: nothing can be proved


def boot_id() -> str:
    try:
        return (PROC / "sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on; the command name may hold spaces and parentheses."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    return text[text.rfind(")") + 2:].split()


def start_ticks(pid: int) -> int | None:
    """Field 22 of ``/proc/<pid>/stat``: when the process started, in clock ticks after boot."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def process_group(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")


def command_line(pid: int) -> tuple[str, ...] | None:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    return tuple(part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1])


def started_at_epoch(pid: int) -> float | None:
    """The process's start as a Unix time (boot time plus its start ticks)."""
    ticks = start_ticks(pid)
    if ticks is None:
        return None
    try:
        for line in (PROC / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / CLOCK_TICKS
    except OSError:
        pass
    return None


@dataclass(frozen=True)
class Identity:
    """One process, as recorded when it was started: enough to know it again, and only it."""

    pid: int
    start_ticks: int
    boot_id: str
    command: tuple[str, ...]

    @classmethod
    def of(cls, pid: int, command: Iterable[str] | None = None) -> Identity | None:
        """The identity of the running process ``pid``; ``command`` is what was exec'd (default: read it)."""
        ticks = start_ticks(pid)
        actual = command_line(pid)
        if ticks is None or actual is None:
            return None
        return cls(pid, ticks, boot_id(), tuple(command) if command is not None else actual)

    def to_dict(self) -> dict:
        return {"pid": self.pid, "start_ticks": self.start_ticks, "boot_id": self.boot_id, "command": list(self.command)}

    @classmethod
    def from_dict(cls, entry: dict | None) -> Identity | None:
        """The identity in a state-file entry; None when the entry cannot prove anything (no start time)."""
        if not entry or not entry.get("pid") or entry.get("start_ticks") is None or not entry.get("command"):
            return None
        return cls(int(entry["pid"]), int(entry["start_ticks"]), str(entry.get("boot_id", "")),
                   tuple(entry["command"]))

    def check(self) -> Liveness:
        """Whether this very process still runs."""
        ticks = start_ticks(self.pid)
        if ticks is None or is_zombie(self.pid):
            return Liveness.DEAD
        if ticks != self.start_ticks or (self.boot_id and self.boot_id != boot_id()):
            return Liveness.REPLACED
        command = command_line(self.pid)
        if command and command != self.command:
            return Liveness.REPLACED
        # An empty command line with the recorded start time is this process in exit: the kernel
        # drops the memory (and with it the command line) before the process becomes a zombie. It
        # still runs until then, so a stop must go on waiting for it.
        return Liveness.ALIVE

    def describe(self) -> str:
        return " ".join(self.command)[:120]


def liveness(entry: dict | None) -> Liveness:
    """The liveness of a state-file entry (``{"pid", "start_ticks", "boot_id", "command", ...}``)."""
    identity = Identity.from_dict(entry)
    if identity is None:
        return Liveness.DEAD if not (entry or {}).get("pid") else Liveness.UNPROVEN
    return identity.check()


def occupant(pid: int) -> str:
    """What runs under ``pid`` now, for messages about a stale entry."""
    command = command_line(pid)
    return " ".join(command)[:80] if command else "nothing"


def send(identity: Identity, sig: int) -> bool:
    """Signal the process only if it is still the one identified; True when the signal was sent."""
    try:
        handle = os.pidfd_open(identity.pid)
    except ProcessLookupError:
        return False
    except OSError:   # no pidfd on this kernel: check then kill (a pid cannot wrap round in between)
        if identity.check() is not Liveness.ALIVE:
            return False
        try:
            os.kill(identity.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False
    try:
        if identity.check() is not Liveness.ALIVE:
            return False
        signal.pidfd_send_signal(handle, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        os.close(handle)


def _reap(pid: int) -> None:
    """Collect the exit status of a child of this process, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def group_members(leader: Identity) -> list[Identity]:
    """The processes in ``leader``'s process group, the leader first, while the leader is proved alive.

    A group id cannot be reused while its leader lives, so every member found between two checks
    of the leader belongs to the leader's group; members started before the leader cannot exist.
    """
    if leader.check() is not Liveness.ALIVE:
        return []
    members = [leader]
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == leader.pid:
            continue
        pid = int(entry.name)
        if process_group(pid) == leader.pid:
            member = Identity.of(pid)
            if member is not None and member.start_ticks >= leader.start_ticks:
                members.append(member)
    return members if leader.check() is Liveness.ALIVE else []


@dataclass
class Ending:
    """What ``end`` did to one recorded process."""

    liveness: Liveness          # before anything was sent
    signalled: bool = False
    killed: bool = False        # it needed SIGKILL
    survivors: int = 0          # members still alive at the end (0 when all is well)


def end(identity: Identity | None, first_signal: int = signal.SIGTERM, grace_s: float = 10.0,
        kill_grace_s: float = 5.0) -> Ending:
    """End a process we can prove is ours, and its process group: ``first_signal`` to the leader, then SIGKILL.

    Nothing is sent unless ``identity`` is alive and the same process; a dead, replaced or
    unproven entry is returned as it is, for the caller to report.
    """
    if identity is None:
        return Ending(Liveness.UNPROVEN)
    state = identity.check()
    if state is not Liveness.ALIVE:
        _reap(identity.pid)
        return Ending(state)
    known = {member.pid: member for member in group_members(identity)}
    outcome = Ending(Liveness.ALIVE, signalled=send(identity, first_signal))
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(identity.pid)
        known.update((member.pid, member) for member in group_members(identity))
        if not _alive(known.values()):
            return outcome
        time.sleep(0.05)
    for member in _alive(known.values()):
        outcome.killed = send(member, signal.SIGKILL) or outcome.killed
    deadline = time.monotonic() + kill_grace_s
    while time.monotonic() < deadline:
        _reap(identity.pid)
        if not _alive(known.values()):
            return outcome
        time.sleep(0.05)
    outcome.survivors = len(_alive(known.values()))
    return outcome


def _alive(identities: Iterable[Identity]) -> list[Identity]:
    return [identity for identity in identities if identity.check() is Liveness.ALIVE]


def carrying(token: str) -> list[Identity]:
    """Running processes whose command line carries ``token`` as an argument's value (``--owner=<token>``).

    The token is random and written to the state file before anything is started, so a process
    carrying it was started by that environment and by nothing else.
    """
    suffix = f"={token}"
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        command = command_line(int(entry.name))
        if command and any(part.endswith(suffix) for part in command):
            identity = Identity.of(int(entry.name))
            if identity is not None and not is_zombie(identity.pid):
                found.append(identity)
    return found


def listening_inodes(port: int, host: str = "127.0.0.1") -> set[str]:
    """The socket inodes listening on ``host:port`` (IPv4, from ``/proc/net/tcp``)."""
    wanted = f"{_hex_address(host)}:{port:04X}"
    inodes = set()
    try:
        lines = (PROC / "net" / "tcp").read_text().splitlines()[1:]
    except OSError:
        return inodes
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and fields[1] == wanted and fields[3] == "0A":   # 0A: LISTEN
            inodes.add(fields[9])
    return inodes


def _hex_address(host: str) -> str:
    return "".join(f"{int(octet):02X}" for octet in reversed(host.split(".")))


def listens_on(pid: int, port: int, host: str = "127.0.0.1") -> bool:
    """Whether process ``pid`` holds the socket listening on ``host:port``: the port is its own, not another's."""
    inodes = listening_inodes(port, host)
    if not inodes:
        return False
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return True
    except OSError:
        return False
    return False


# -- stop signals: raised at once, and never lost ------------------------------------------------
# A handler that raises ``KeyboardInterrupt`` runs wherever the main thread happens to be. When that
# is a destructor, a weakref callback or a ``__del__`` (a garbage collection can run one at any
# allocation), Python prints "Exception ignored in: ..." and carries on: the user's Ctrl-C is lost.
# So the interrupts raised for stop signals are marked, ``sys.unraisablehook`` records each marked
# one that Python dropped, and the main flow calls ``checkpoint()`` at its safe points (each phase
# of a start, each poll of a wait, each notebook of a run): a dropped interrupt is raised there
# again. An interrupt that propagated as usual is never raised twice.
_pending: list[str] = []


def stop_interrupt(number: int) -> KeyboardInterrupt:
    """The ``KeyboardInterrupt`` to raise for stop signal ``number``, marked so that its loss is noticed."""
    _watch_dropped()
    interrupt = KeyboardInterrupt(signal.Signals(number).name)
    interrupt.stop_signal = signal.Signals(number).name   # the mark the unraisable hook looks for
    return interrupt


def _watch_dropped() -> None:
    """Wrap ``sys.unraisablehook`` (once, where it is not wrapped already) to record dropped stop interrupts."""
    previous = sys.unraisablehook
    if getattr(previous, "records_stop_signals", False):
        return

    def hook(unraisable) -> None:
        name = getattr(unraisable.exc_value, "stop_signal", None)
        if isinstance(unraisable.exc_value, KeyboardInterrupt) and name:
            _pending.append(name)
        previous(unraisable)

    hook.records_stop_signals = True
    sys.unraisablehook = hook


def stop_pending() -> str | None:
    """The first stop signal whose interrupt Python dropped and no safe point has raised yet; None when none."""
    return _pending[0] if _pending else None


def checkpoint() -> None:
    """A safe point of the main flow: raise ``KeyboardInterrupt`` again for a stop signal whose interrupt was dropped.

    Only in the main thread (where Python delivers signals); elsewhere it does nothing.
    """
    if _pending and threading.current_thread() is threading.main_thread():
        name = _pending[0]
        _pending.clear()
        raise KeyboardInterrupt(name)


def checkpointed(progress=None):
    """``progress`` (a callable taking a message, or None) that is also a safe point: each phase acts on a stop signal."""
    def say(message: str) -> None:
        checkpoint()
        if progress:
            progress(message)
    return say


def acted_on() -> None:
    """The interrupt reached the main flow, which now cleans up: forget any dropped before it."""
    _pending.clear()


@contextlib.contextmanager
def signals_deferred(reraise: bool = True) -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for a few statements (a spawn and its record), then act on them.

    Between starting a process and recording it, an interrupt would leave it untracked. Inside
    this block the signals are noted; on leaving it, a noted one raises ``KeyboardInterrupt``
    (with ``reraise=False`` it is dropped: for a cleanup that already runs because of one).
    Outside the main thread (where Python delivers no signals) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda number, frame: noted.append(number))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if noted and reraise:
        raise KeyboardInterrupt(signal.Signals(noted[0]).name)


def _raise_interrupt(number, frame) -> None:
    raise stop_interrupt(number)


# The handlers ``terminate_as_interrupt`` replaces: SIGTERM's default action, and Python's own
# SIGINT handler (which raises ``KeyboardInterrupt`` but records nothing).
_REPLACEABLE = {signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}


def terminate_as_interrupt() -> bool:
    """Make SIGTERM raise ``KeyboardInterrupt`` in this process, so it cleans up as on Ctrl-C; record both.

    SIGTERM and SIGINT then raise at once and are recorded for ``checkpoint()``. Each is replaced
    only while it still has its default (an application's own handler wins), and only from the
    main thread; True when SIGTERM's handler was installed by this call.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    installed = False
    for sig, default in _REPLACEABLE.items():
        if signal.getsignal(sig) is default:
            signal.signal(sig, _raise_interrupt)
            installed = installed or sig == signal.SIGTERM
    return installed


def restore_terminate() -> None:
    """Undo ``terminate_as_interrupt`` (for each signal whose handler is still the one it installed)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig, default in _REPLACEABLE.items():
        if signal.getsignal(sig) is _raise_interrupt:
            signal.signal(sig, default)
