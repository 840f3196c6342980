"""``workbook run``: every notebook of an environment with Papermill, into one run folder.

A run writes ``outputs/<env>/<UTC timestamp>/`` holding each executed notebook, ``runbook.html``
and ``summary.json``; ``outputs/<env>/latest`` points at the newest run. For ``--env local`` the
run uses the running local environment or starts one (and stops it at the end), and drives a
minute of traffic first. A failing notebook stops the run with ``RunError`` naming the notebook
and cell; the partial runbook shows the error.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra import config
from workbook.errors import BadInput, WorkbookError
from workbook.local import manager, traffic
from workbook.report.folders import new_run_folder, prune_runs
from workbook.report.notebooks import (
    NOTEBOOKS_DIR,
    NotebookResult,
    RunResult,
    execute,
    notebook_parameters,
    read_scraps,
    selected,
)
from workbook.report.redact import known_secrets, redact_folder
from workbook.report.runbook import export_runbook


class RunError(WorkbookError):
    """A notebook failed; the run folder still holds the partial runbook."""

    def __init__(self, message: str, folder: Path) -> None:
        super().__init__(message)
        self.folder = folder


def run(env: str, since: str | None = None, only: Sequence[str] | None = None, outputs_dir: Path | None = None,
        notebooks_dir: Path | None = None, functions: Sequence[str] | None = None,
        progress: Callable[[str], None] | None = None, traffic_s: float | None = None) -> RunResult:
    """Run the notebooks of ``env`` in order; write the run folder; raise RunError on a failure."""
    settings = config.load(env)                       # bad params fail here, before any kernel starts
    since = since or settings.params.report.since
    names = selected(only)
    notebooks_dir = notebooks_dir or NOTEBOOKS_DIR
    missing = [n for n in names if not (notebooks_dir / f"{n}.ipynb").is_file()]
    if missing:
        raise BadInput(f"notebook {missing[0]}.ipynb not found in {notebooks_dir}")
    folder = new_run_folder(env, outputs_dir)
    parameters = notebook_parameters(settings, since, folder, functions)
    say = progress or (lambda message: print(message, file=sys.stderr, flush=True))
    result = RunResult(env=env, folder=folder, parameters=parameters)
    started_at = datetime.now(UTC)
    with ExitStack() as stack:
        if env == "local":
            _start_local(stack, settings, result, say, traffic_s)
        for index, name in enumerate(names, start=1):
            say(f"[{index}/{len(names)}] {name} ...")
            outcome = execute(name, folder, parameters, notebooks_dir)
            result.notebooks.append(outcome)
            result.phases[f"notebook {name}"] = outcome.seconds
            if outcome.status != "ok":
                say(f"[{index}/{len(names)}] {name} FAILED at cell {outcome.cell}: {outcome.error}")
                result.notebooks += [NotebookResult(n, "skipped") for n in names[index:]]
                break
            say(f"[{index}/{len(names)}] {name} ok ({outcome.seconds:.1f} s)")
    export_started = time.perf_counter()
    export_runbook(folder, result)
    result.phases["export"] = time.perf_counter() - export_started
    _write_summary(result, started_at)
    redact_folder(folder, known_secrets())   # last: it covers every file the run wrote
    prune_runs(env, settings.params.report.retention_runs, outputs_dir)
    failed = [n for n in result.notebooks if n.status == "failed"]
    if failed:
        f = failed[0]
        raise RunError(f"notebook {f.name}.ipynb failed at cell {f.cell}: {f.error}; "
                       f"partial runbook: {folder / 'runbook.html'}", folder)
    return result


def _start_local(stack: ExitStack, settings: config.Settings, result: RunResult,
                 say: Callable[[str], None], traffic_s: float | None) -> None:
    """Use the running local environment or start one (stopped at the end), then drive traffic."""
    started = time.perf_counter()
    state = manager.current()
    if state is None:
        say("local environment: starting (moto's server, PostgreSQL, the sandbox) ...")
        state = manager.start(settings.env, settings=settings, progress=lambda m: say(f"  {m}"))
        stack.callback(_stop_local, say)
    else:
        say(f"local environment: using the one already running ({state.get('endpoint_url')})")
    manager.activate()
    result.phases["local start"] = time.perf_counter() - started
    duration_s = settings.params.local.traffic_duration_s if traffic_s is None else traffic_s
    if duration_s > 0:
        started = time.perf_counter()
        say(f"local traffic: {duration_s:.0f} s of mixed load, with a share of bad input ...")
        outcome = traffic.run(state, settings, profile="mixed", duration_s=duration_s, progress=sys.stderr.isatty())
        say(traffic.format_summary(outcome))
        result.phases["traffic"] = time.perf_counter() - started


def _stop_local(say: Callable[[str], None]) -> None:
    manager.stop()
    say("local environment: stopped")


def _write_summary(result: RunResult, started_at: datetime) -> None:
    scraps: dict[str, Any] = {}
    for nb in result.notebooks:
        path = result.folder / f"{nb.name}.ipynb"
        if nb.status == "ok" and path.is_file():
            scraps[nb.name] = read_scraps(path)
    summary = {
        "env": result.env,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "ok": result.ok,
        "parameters": result.parameters,
        "notebooks": [nb.__dict__ for nb in result.notebooks],
        "phases_s": {k: round(v, 2) for k, v in result.phases.items()},
        "results": scraps,
    }
    (result.folder / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
