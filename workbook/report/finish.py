"""The end of every run, however it ended: the runbook, redaction, ``summary.json``, then the folder.

The run calls ``finalize`` from its ``finally`` path, and the watchdog calls it when the run's
process died first, so a run killed in any way ends the same: with something to show (a notebook
ran), the folder gets a runbook (with a banner unless the run was ``ok``), every file redacted and
a ``summary.json`` with the status, then loses its ``.partial`` suffix; ``latest`` moves only to a
run that ran to its end. With nothing to show, the folder is removed.
"""
from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbook.report import folders
from workbook.report.notebooks import NotebookResult, RunResult, read_scraps
from workbook.report.redact import FolderRedaction, Redactor, redact_file, redact_folder
from workbook.report.runbook import export_runbook

Say = Callable[[str], None]
WATCHDOG_LOG = "watchdog.log"     # the watchdog's own messages; kept only when it wrote any


def finalize(result: RunResult, redactor: Redactor, say: Say, retention: int, outputs_dir: Path | None = None,
             received: Callable[[], str | None] = lambda: None) -> Path | None:
    """Finish the run folder (see the module docstring); returns where it is, or None when removed.

    ``received`` says whether a stop signal came meanwhile: one that comes before the folder is
    published still makes the run ``interrupted`` (and the runbook says so).
    """
    folder = result.folder
    if not folder.is_dir():
        return None
    if not any((folder / f"{n.name}.ipynb").is_file() for n in result.notebooks):
        shutil.rmtree(folder, ignore_errors=True)
        say(f"nothing to show (no notebook ran): removed {folder.name}; `latest` is unchanged")
        return None
    _settle(result)
    _drop_empty(folder / WATCHDOG_LOG)
    final = folders.final_path(folder)      # the runbook and summary.json name the run as it will be found
    runbook = _export(result, say, final.name)
    if received() and result.status != "interrupted":
        result.status, result.reason = "interrupted", f"interrupted by {received()} during the export"
        runbook = _export(result, say, final.name)
    redaction = redact_folder(folder, redactor)
    for path in redaction.removed:
        say(f"removed {path.name}: it could not be redacted ({path.parent})")
    if not _write_summary(result, runbook, redaction, redactor, say, final):
        return folder
    final = folders.publish(folder, final)
    result.folder = final
    if result.status in folders.FINISHED and runbook:
        folders.point_latest(final)
        folders.prune_runs(result.env, retention, outputs_dir)
    return final


def _drop_empty(path: Path) -> None:
    if path.is_file() and path.stat().st_size == 0:
        path.unlink()


def _settle(result: RunResult) -> None:
    """The run's status, and each notebook's: the one cut off is ``interrupted``, the rest ``skipped``."""
    if result.status == "running":
        result.status = "ok" if all(n.status == "ok" for n in result.notebooks) else "failed"
    ran = {n.name for n in result.notebooks}
    result.notebooks += [NotebookResult(name, "skipped") for name in result.planned if name not in ran]
    for notebook in result.notebooks:
        if notebook.status == "running":
            notebook.status = "interrupted" if result.status == "interrupted" else "failed"
    if result.status == "failed" and not result.reason:
        failed = next((n for n in result.notebooks if n.status == "failed"), None)
        if failed:
            result.reason = f"notebook {failed.name}.ipynb failed at cell {failed.cell}: {failed.error}"


def _export(result: RunResult, say: Say, name: str) -> str | None:
    """The runbook, or None when it could not be written (the run is then ``failed``, not ``ok``)."""
    target = result.folder / "runbook.html"
    started = time.perf_counter()
    try:
        export_runbook(result.folder, result, name=name)
        result.phases["export"] = time.perf_counter() - started
        return target.name
    except Exception as exc:  # noqa: BLE001 - an export failure must not stop redaction and the summary
        target.unlink(missing_ok=True)   # never a truncated page
        message = f"{exc.filename or target}: {exc.strerror}" if isinstance(exc, OSError) else \
            f"{type(exc).__name__}: {exc}"
        say(f"the runbook could not be exported: {message}")
        if result.status == "ok":
            result.status, result.reason = "failed", f"the runbook could not be exported: {message}"
        return None


def _final_parameters(parameters: dict[str, Any], partial: Path, final: Path) -> dict[str, Any]:
    """The run's parameters, with ``run_folder`` naming the folder as published (not ``<stamp>.partial``)."""
    if parameters.get("run_folder") and Path(parameters["run_folder"]) == partial:
        return {**parameters, "run_folder": str(final)}
    return parameters


def _write_summary(result: RunResult, runbook: str | None, redaction: FolderRedaction, redactor: Redactor,
                   say: Say, final: Path) -> bool:
    scraps: dict[str, Any] = {}
    for nb in result.notebooks:
        path = result.folder / f"{nb.name}.ipynb"
        if nb.status == "ok" and path.is_file():
            try:
                scraps[nb.name] = read_scraps(path)
            except Exception as exc:  # noqa: BLE001 - one unreadable record must not lose the summary
                scraps[nb.name] = {"error": f"could not read its records: {type(exc).__name__}"}
    summary = {
        "env": result.env,
        "run": final.name,
        "status": result.status,
        "reason": result.reason,
        "ok": result.status == "ok",
        "started_at": result.started_at,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": _final_parameters(result.parameters, result.folder, final),
        "notebooks": [nb.__dict__ for nb in result.notebooks],
        "phases_s": {k: round(v, 2) for k, v in result.phases.items()},
        "runbook": runbook,
        "redaction": {"secrets_known": len(redactor.secrets), "files_changed": [p.name for p in redaction.changed],
                      "files_removed": [p.name for p in redaction.removed]},
        "results": scraps,
    }
    target = result.folder / "summary.json"
    try:
        target.write_text(json.dumps(summary, indent=2, default=str))
    except OSError as exc:
        target.unlink(missing_ok=True)
        say(f"summary.json could not be written ({exc.strerror}): the run stays in {result.folder}")
        return False
    return redact_file(target, redactor) != "removed"
