"""Run folders: where outputs go, the checks before a run, the partial folder, ``latest`` and pruning.

- Outputs go to ``$WORKBOOK_OUTPUTS_DIR``, else ``outputs/`` in the project folder: the nearest
  folder, from the working directory up, that holds ``params/`` (else the one whose ``params/``
  the workbook reads).
- A run writes into ``outputs/<env>/<UTC stamp>.partial/`` and renames it to ``<UTC stamp>/`` at
  the end, so a folder without ``.partial`` always holds a finished ``summary.json``.
- ``latest`` points at the newest run that ran to its end (``status`` ``ok``, or ``failed`` with
  the runbook saying where); never at an interrupted or partial one.
- Pruning keeps the newest ``report.retention_runs`` finished runs of the env and deletes older
  finished ones that the current user owns; interrupted and partial folders are never counted
  or deleted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from infra import project
from workbook.report.errors import OutputsError

OUTPUTS_ENV = "WORKBOOK_OUTPUTS_DIR"
PARTIAL_SUFFIX = ".partial"
RUN_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
FINISHED = ("ok", "failed")
MB = 1024 * 1024
RUN_BYTES = 5 * MB            # what a run writes, about (six notebooks with charts, the runbook)
WARN_FREE_BYTES = 100 * MB
MIN_FREE_BYTES = 10 * MB


def project_folder(start: Path | None = None) -> Path:
    """The project folder (``infra.project``), from ``start`` (the working directory) up."""
    return project.project_dir(start)


def outputs_root(outputs_dir: Path | None = None) -> Path:
    """``outputs_dir``, else ``$WORKBOOK_OUTPUTS_DIR``, else ``outputs/`` in the project folder."""
    if outputs_dir is not None:
        return Path(outputs_dir)
    override = os.environ.get(OUTPUTS_ENV)
    return Path(override) if override else project_folder() / "outputs"


def free_bytes(path: Path) -> int:
    """Free space for this user on the filesystem holding ``path`` (a seam the tests replace)."""
    return shutil.disk_usage(path).free


def check_outputs(base: Path) -> str | None:
    """Refuse an outputs folder that cannot hold a run; returns a warning when space is low.

    ``base`` need not exist: its nearest existing ancestor must be a writable folder with at
    least 10 MB free (under 100 MB gives the warning). Nothing is created.
    """
    existing = base
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputsError(f"{existing} is a file, not a folder, so the outputs folder {base} cannot be made "
                           f"there; move it, or set {OUTPUTS_ENV} to another folder")
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        raise OutputsError(f"{existing} is on a read-only file system; set {OUTPUTS_ENV} to a writable folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputsError(f"{existing} is not writable by this user; set {OUTPUTS_ENV} to a writable folder")
    free = free_bytes(existing)
    if free < MIN_FREE_BYTES:
        raise OutputsError(f"{existing} has {free / MB:.1f} MB free; a run writes about {RUN_BYTES // MB} MB and "
                           f"needs at least {MIN_FREE_BYTES // MB} MB free: free some space or set {OUTPUTS_ENV}")
    if free < WARN_FREE_BYTES:
        return f"warning: {existing} has only {free / MB:.0f} MB free (a run writes about {RUN_BYTES // MB} MB)"
    return None


def new_partial_folder(base: Path, now: datetime | None = None) -> Path:
    """Create ``base/<UTC stamp>.partial/`` under a name no finished or partial run uses."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base.mkdir(parents=True, exist_ok=True)
    for suffix in range(1, 1000):
        name = stamp if suffix == 1 else f"{stamp}-{suffix}"
        if (base / name).exists():
            continue
        try:
            (base / f"{name}{PARTIAL_SUFFIX}").mkdir()
        except FileExistsError:
            continue
        return base / f"{name}{PARTIAL_SUFFIX}"
    raise OutputsError(f"{base}: a thousand runs share the stamp {stamp}; remove some")


def final_path(partial: Path) -> Path:
    """Where ``publish`` will move ``<stamp>.partial``: ``<stamp>``, or ``<stamp>-N`` when that is taken."""
    stamp = partial.name.removesuffix(PARTIAL_SUFFIX)
    target = partial.with_name(stamp)
    suffix = 1
    while target.exists():
        suffix += 1
        target = partial.with_name(f"{stamp.split('-')[0]}-{suffix}")
    return target


def publish(partial: Path, target: Path | None = None) -> Path:
    """Rename ``<stamp>.partial`` to ``target`` (``final_path``, or the next free name if taken meanwhile)."""
    if target is None or target.exists():
        target = final_path(partial)
    partial.rename(target)
    return target


def point_latest(folder: Path) -> bool:
    """Point ``latest`` beside ``folder`` at it, unless it already points at a newer run."""
    latest = folder.parent / "latest"
    if latest.is_symlink() and (latest.parent / os.readlink(latest)).is_dir() and \
            _sort_key(os.readlink(latest)) > _sort_key(folder.name):
        return False
    temporary = folder.parent / f".latest.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(folder.name)
    temporary.replace(latest)   # atomic switch
    return True


def _sort_key(name: str) -> tuple[str, int]:
    stamp, _, number = Path(name).name.partition("-")
    return stamp, int(number) if number.isdigit() else 1


def run_status(folder: Path) -> str | None:
    """A run folder's status from its ``summary.json`` (ok, failed, interrupted), or None without one."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    status = summary.get("status")
    if status is None and "ok" in summary:   # written before statuses existed
        status = "ok" if summary["ok"] else "failed"
    return status


def finished_runs(base: Path) -> list[Path]:
    """This user's runs in ``base`` that ran to their end, oldest first."""
    if not base.is_dir():
        return []
    runs = [p for p in base.iterdir() if RUN_NAME.match(p.name) and p.is_dir() and not p.is_symlink()
            and p.stat().st_uid == os.getuid() and run_status(p) in FINISHED]
    return sorted(runs, key=lambda p: _sort_key(p.name))


def prune_runs(env: str, keep: int, outputs_dir: Path | None = None) -> list[Path]:
    """Delete this user's finished runs of ``env`` beyond the newest ``keep``; returns what was removed."""
    base = outputs_root(outputs_dir) / env
    runs = finished_runs(base)
    latest = (base / "latest").resolve() if (base / "latest").is_symlink() else None
    removed = [p for p in runs[:-max(keep, 1)] if p.resolve() != latest]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed
