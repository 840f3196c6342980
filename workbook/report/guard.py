"""What ends a run cleanly: stop signals as an interrupt, a watchdog for a killed run, and reaping.

- ``StopSignals``: SIGINT, SIGTERM and SIGHUP interrupt the run's work once (``KeyboardInterrupt``);
  while it finishes (stopping what it started, the summary, the runbook, redaction) further
  signals are noted and do not cut the finish short.
- ``Watchdog``: a small process in a session of its own that holds the run's lock with it and
  learns, over a pipe, what the run has (its folder, its results so far, the secrets it knows,
  the environment it started). When the pipe closes without "done" (the run was killed with
  SIGKILL, or crashed), it finishes the run the same way the run itself would have.
- ``reap``: end the processes that carry the run's mark (its kernels and their children).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from workbook.local import processes

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])   # the watchdog imports this workbook


class StopSignals:
    """Turn the first stop signal into ``KeyboardInterrupt``; note later ones while the run finishes."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self.received: str | None = None
        self._note = note
        self._raising = True
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def finishing(self) -> None:
        """From now on signals are noted, not raised: the finish must not be cut short."""
        self._raising = False
        processes.acted_on()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        first = self.received is None
        self.received = self.received or signal.Signals(number).name
        if self._raising and first:
            self._raising = False
            raise processes.stop_interrupt(number)   # raised again at the run's next safe point if it is lost
        self._note(f"workbook: {signal.Signals(number).name} received; finishing cleanly first (stopping what "
                   "the run started, writing the summary and the runbook, redacting): a few seconds")


class Watchdog:
    """The run's second process: finishes the run if the run's own process dies first."""

    def __init__(self, keep_fds: tuple[int, ...] = (), log: Path | None = None) -> None:
        read_end, self._write_end = os.pipe()
        with open(log or os.devnull, "ab") as errors:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "workbook.report.watchdog", str(read_end)],
                pass_fds=(read_end, *keep_fds), stdin=subprocess.DEVNULL, stdout=errors, stderr=errors,
                start_new_session=True, env={**os.environ, "PYTHONPATH": _PACKAGE_ROOT})
        os.close(read_end)

    def send(self, **message: Any) -> None:
        """Tell the watchdog what it would need to finish the run (never written to disk)."""
        if self._write_end is None:
            return
        try:
            os.write(self._write_end, (json.dumps(message, default=str) + "\n").encode())
        except OSError:
            pass   # the watchdog is gone; the run finishes by itself as usual

    def done(self, timeout_s: float = 10.0) -> None:
        """The run finished by itself: the watchdog exits without doing anything."""
        self.send(done=True)
        if self._write_end is not None:
            os.close(self._write_end)
            self._write_end = None
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return None


def marked(mark: str, exclude: tuple[int, ...] = ()) -> dict[int, str]:
    """Processes whose environment holds ``mark`` (``NAME=<random id>``): pid -> start time.

    Only a process started by the run (or by one of its children) inherits its random id, under
    whatever user it runs (pgserver runs PostgreSQL as its own user when started by root); the
    environments of other users' processes are unreadable without root, and skipped.
    """
    wanted = mark.encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            if wanted not in (entry / "environ").read_bytes().split(b"\0"):
                continue
        except OSError:
            continue
        started = _start_time(int(entry.name))
        if started:
            found[int(entry.name)] = started
    return found


def reap(mark: str, exclude: tuple[int, ...] = (), grace_s: float = 3.0) -> list[int]:
    """End every process carrying ``mark``: SIGTERM, then SIGKILL after ``grace_s``; returns their pids."""
    exclude = (os.getpid(), *exclude)
    targets = marked(mark, exclude)
    for number in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in targets.items():
            if _start_time(pid) == started:     # the same process, not a reused pid
                try:
                    os.kill(pid, number)
                except (ProcessLookupError, PermissionError):
                    pass
        deadline = time.monotonic() + (grace_s if number == signal.SIGTERM else 1.0)
        while time.monotonic() < deadline and any(_start_time(p) == s and _alive(p) for p, s in targets.items()):
            time.sleep(0.05)
    return sorted(targets)


def _alive(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False
