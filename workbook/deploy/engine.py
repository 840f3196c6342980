"""Running the Pulumi engine off the caller's event loop, with progress and interruption.

The Automation API is synchronous and drives its own event loop, so inside Jupyter it must not run
on the kernel's loop: ``off_loop`` runs the work in a worker thread and waits, keeping Ctrl-C
responsive. ``Recorder`` turns the engine's events into per-resource steps and ``Progress``.
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbook.deploy.errors import DeployError


@dataclass(frozen=True)
class Progress:
    """Where a run stands: resources done out of those the engine has announced so far."""

    stack: str
    operation: str
    done: int
    total: int
    resource: str = ""
    final: bool = False

    def __str__(self) -> str:
        more = "" if self.final else "+"
        return f"[{self.stack} {self.operation}] {self.done}/{self.total}{more} resources" + (
            f" ({self.resource})" if self.resource else "")


def print_progress_every(step: int) -> Callable[[Progress], None]:
    def show(progress: Progress) -> None:
        if progress.final or progress.done % step == 0:
            print(str(progress), flush=True)
    return show


class Recorder:
    """Collects per-resource steps from engine events and reports progress."""

    def __init__(self, stack: str, operation: str, progress: Callable[[Progress], None] | None) -> None:
        self.stack, self.operation, self.progress = stack, operation, progress
        self.steps: dict[str, dict[str, str]] = {}
        self.done: set[str] = set()
        self.failed: list[str] = []
        self.errors: list[str] = []
        self.changes_summary: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self._lock:
            self._record(event)

    def _record(self, event: Any) -> None:
        if getattr(event, "resource_pre_event", None):
            meta = event.resource_pre_event.metadata
            self.steps[meta.urn] = {"operation": op_name(meta.op), "type": meta.type, "name": _urn_name(meta.urn)}
        elif getattr(event, "res_outputs_event", None):
            meta = event.res_outputs_event.metadata
            self.steps.setdefault(meta.urn, {"operation": op_name(meta.op), "type": meta.type,
                                             "name": _urn_name(meta.urn)})
            if meta.urn not in self.done:
                self.done.add(meta.urn)
                if self.progress:
                    self.progress(Progress(self.stack, self.operation, len(self.done), len(self.steps),
                                           _urn_name(meta.urn)))
        elif getattr(event, "res_op_failed_event", None):
            self.failed.append(event.res_op_failed_event.metadata.urn)
        elif getattr(event, "diagnostic_event", None):
            diagnostic = event.diagnostic_event
            if diagnostic.severity == "error":
                self.errors.append(diagnostic.message.strip())
        elif getattr(event, "summary_event", None):
            self.changes_summary = {op_name(k): int(v) for k, v in (event.summary_event.resource_changes or {}).items()}

    def finish(self) -> None:
        if self.progress:
            self.progress(Progress(self.stack, self.operation, len(self.done), len(self.steps), final=True))


def op_name(op: Any) -> str:
    return str(getattr(op, "value", op))


def _urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _pulumi_children() -> list[int]:
    """PIDs of the pulumi CLI processes this process started (Linux /proc; empty elsewhere)."""
    me, found = os.getpid(), []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        command, _, rest = stat.partition(") ")
        fields = rest.split()
        if len(fields) > 1 and fields[1] == str(me) and command.split("(", 1)[-1].startswith("pulumi"):
            found.append(int(entry.name))
    return found


def _terminal_delivered_sigint() -> bool:
    """True when Ctrl-C came from a terminal whose foreground group includes the pulumi child."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False   # no controlling terminal: Jupyter, schedulers
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _wait(worker: threading.Thread) -> None:
    worker.join(0.2)   # short waits keep Ctrl-C responsive


def off_loop(work: Callable[[], Any], on_interrupt: Callable[[bool], DeployError]) -> Any:
    """Run ``work`` in a worker thread (never on the caller's event loop) and wait for it.

    A first Ctrl-C asks the pulumi CLI to stop gracefully (it finishes in-flight resource operations)
    and waits; a second stops waiting. Either way the caller gets a DeployInterrupted saying how to recover.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=run, name="workbook-automation", daemon=True)
    worker.start()
    interrupted = False
    while True:
        try:
            _wait(worker)
            if not worker.is_alive():
                break
        except KeyboardInterrupt:
            if interrupted:
                raise on_interrupt(False) from None
            interrupted = True
            if not _terminal_delivered_sigint():
                for pid in _pulumi_children():
                    try:
                        os.kill(pid, signal.SIGINT)
                    except OSError:
                        pass
    if interrupted:
        raise on_interrupt(True) from box.get("error")
    if "error" in box:
        raise box["error"]
    return box.get("value")


