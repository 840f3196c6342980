"""``workbook run`` in a child process, with a fault at a chosen moment: the fault tests' seam.

    python -m tests.notebooks.driver [--notebooks DIR] [--offline] [--fault PHASE:SIGNAL[:DELAY]] -- run --env ...

PHASE is when SIGNAL (INT, TERM, HUP, KILL) reaches this process: ``start`` (once PostgreSQL is
up, the engine not yet), ``traffic`` (DELAY s into it), ``notebook=NAME`` (DELAY s into it) or
``export`` (as the runbook is rendered). The code under test is unchanged: the driver wraps the
function that begins the phase and sends a real signal to its own process. ``--notebooks``
replaces the notebooks folder; ``--offline`` skips reading the stack's secrets (no AWS here).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbook import cli
from workbook.local import services, traffic
from workbook.report import run as report


def _signal_later(number: int, delay_s: float) -> None:
    timer = threading.Timer(delay_s, os.kill, (os.getpid(), number))
    timer.daemon = True
    timer.start()


def _wrap(owner: Any, name: str, before: Callable[..., None] | None = None,
          after: Callable[..., None] | None = None) -> None:
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if before:
            before(*args, **kwargs)
        result = original(*args, **kwargs)
        if after:
            after(*args, **kwargs)
        return result

    setattr(owner, name, wrapped)


def install(fault: str) -> None:
    phase, _, rest = fault.partition(":")
    signame, _, delay = rest.partition(":")
    number = getattr(signal, f"SIG{signame}")
    delay_s = float(delay or 0)
    now = lambda *a, **k: os.kill(os.getpid(), number)
    later = lambda *a, **k: _signal_later(number, delay_s)
    if phase == "start":
        _wrap(services, "start_postgres", after=now)
    elif phase == "traffic":
        _wrap(traffic, "run", before=later)
    elif phase.startswith("notebook="):
        target = phase.split("=", 1)[1]
        _wrap(report, "execute", before=lambda name, *a, **k: later() if name == target else None)
    elif phase == "export":
        from nbconvert import HTMLExporter

        _wrap(HTMLExporter, "from_notebook_node", before=now)
    else:
        raise SystemExit(f"unknown phase {phase!r}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="driver")
    parser.add_argument("--notebooks", type=Path)
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--fault")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.notebooks:
        report.NOTEBOOKS_DIR = args.notebooks
    if args.offline:
        report._Run._learn_stack_secrets = lambda self: None
    if args.fault:
        install(args.fault)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return cli.main(command)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
