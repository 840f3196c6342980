"""One owner per local environment, and the check that it is still the one a run started or used.

The rule (docs/run-guarantees.md, "One run per local environment"):
- one ``workbook run`` per local environment at a time: a second one fails at once (exit 1,
  nothing created), naming the run that holds it;
- a run that starts the environment owns it and stops it at its end, whatever ends it; a run
  that finds one running (``workbook local start``, JupyterLab) uses it and leaves it running;
- an environment that a run started and that outlived the run (its process was killed with its
  watchdog) is stopped by the next run, which starts a fresh one;
- notebooks inside a run never start an environment: they check that the run's is still there.

The identity of an environment is ``owner:engine pid`` from its state file; ``environment_owner``
is the one place that reads it, to be replaced by ``workbook.local.manager``'s owner token.
"""
from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import config
from workbook.local import manager
from workbook.local import state as state_file
from workbook.local.errors import AlreadyRunningError
from workbook.report import guard
from workbook.report.errors import EnvironmentBusy, EnvironmentGone

RUN_ID_ENV = "WORKBOOK_RUN_ID"              # marks a run's kernels (and whatever they start)
OWNER_ENV = "WORKBOOK_RUN_LOCAL_OWNER"      # the environment a run's notebooks must find
LOCK_NAME = "run.lock"
STARTED_NAME = "run-started.json"


def environment_owner(recorded: dict[str, Any] | None) -> str | None:
    """The token that tells one start of the local environment from any other."""
    if not recorded or not recorded.get("owner"):
        return None
    return f"{recorded['owner']}:{recorded.get('engine', {}).get('pid')}"


def current_owner() -> str | None:
    """The running environment's token, or None when none is running."""
    return environment_owner(manager.current())


class RunLock:
    """Held for a whole run (and by its watchdog): one ``workbook run`` per local environment."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = (folder or state_file.state_dir()) / LOCK_NAME
        self._handle: Any = None

    def acquire(self, describe: str) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")   # held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            raise EnvironmentBusy(f"another `workbook run` is using the local environment ({_holder(holder)}); "
                                  "wait for it to finish, or interrupt it; nothing was created") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "since": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                                 "run": describe}))
        handle.flush()
        self._handle = handle
        return self

    def fileno(self) -> int:
        return self._handle.fileno()

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _holder(text: str) -> str:
    try:
        holder = json.loads(text)
    except ValueError:
        return f"lock {text!r}"
    return f"pid {holder.get('pid')}, since {holder.get('since')}, writing {holder.get('run')}"


@dataclass
class Lease:
    """The environment a run uses: its token, and whether the run started it (and so stops it)."""

    before: str | None = None          # the token running when the run began (None: none)
    owner: str | None = None
    started_here: bool = False
    starting: bool = False             # between asking for a start and recording it
    state: dict[str, Any] | None = None


def acquire(settings: config.Settings, lease: Lease, say: Callable[[str], None],
            notify: Callable[[Lease], None] = lambda lease: None) -> Lease:
    """Use the running environment, or start one (which this run then owns); fills ``lease``.

    ``notify`` hears the lease before a start and after (the watchdog must know of an
    environment even if the run dies while starting it).
    """
    recorded = manager.current()
    lease.before = environment_owner(recorded)
    if recorded is not None and _left_by_a_run(recorded):
        say("local environment: stopping the one an interrupted run left running")
        manager.stop()
        recorded, lease.before = None, None
    if recorded is None:
        say("local environment: starting (moto's server, PostgreSQL, the sandbox) ...")
        lease.starting = True
        notify(lease)
        try:
            recorded = manager.start(settings.env, settings=settings, progress=lambda m: say(f"  {m}"))
            lease.started_here = True
            _started_file().write_text(json.dumps({"owner": environment_owner(recorded), "pid": os.getpid()}))
        except AlreadyRunningError:   # started elsewhere meanwhile: use it
            lease.starting = False
            recorded = manager.current()
            if recorded is None:
                raise
    else:
        say(f"local environment: using the one already running ({recorded.get('endpoint_url')}); it stays running")
    lease.owner, lease.state = environment_owner(recorded), recorded
    notify(lease)
    manager.activate()
    return lease


def _started_file() -> Path:
    return state_file.state_dir() / STARTED_NAME


def _left_by_a_run(recorded: dict[str, Any]) -> bool:
    """Started by a ``workbook run`` that is gone (the caller holds the run lock, so none is running)."""
    try:
        started = json.loads(_started_file().read_text())
    except (OSError, ValueError):
        return False
    return started.get("owner") == environment_owner(recorded)


def still_there(lease: Lease) -> bool:
    """True while the environment the run uses is running and is the same one."""
    return lease.owner is not None and current_owner() == lease.owner


def check(lease: Lease, during: str) -> None:
    """Fail the run when its environment stopped or was replaced (its data would be empty)."""
    if lease.owner is not None and not still_there(lease):
        raise EnvironmentGone(f"the local environment stopped during {during} (stopped or replaced by another "
                              "process); results after that point would be empty, so the run fails")


def release(lease: Lease, say: Callable[[str], None], mark: str | None = None) -> None:
    """Stop the environment if this run started it (and it is still that one, dead or alive).

    Also one whose processes carry the run's ``mark``: started from inside the run after its own
    went away (a library call that starts one when none runs), or cut off before it was recorded.
    """
    recorded = state_file.read()
    ours = lease.started_here and environment_owner(recorded) == lease.owner
    if lease.starting and not lease.started_here and recorded is not None and \
            environment_owner(recorded) != lease.before:
        ours = True   # interrupted right after starting it, before it was recorded
    if not ours and mark and recorded is not None and environment_owner(recorded) != lease.before:
        pids = guard.marked(mark)
        ours = any(recorded.get(part, {}).get("pid") in pids for part in ("moto", "engine"))
    if ours:
        manager.stop()
        say("local environment: stopped")
    try:
        if json.loads(_started_file().read_text()).get("owner") in (lease.owner, None) or ours:
            _started_file().unlink(missing_ok=True)
    except (OSError, ValueError):
        pass
