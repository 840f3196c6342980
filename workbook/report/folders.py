"""Run folders: ``outputs/<env>/<UTC timestamp>/``, the ``latest`` link, and pruning old runs."""
from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

from infra import config

OUTPUTS_DIR = Path(os.environ.get("WORKBOOK_OUTPUTS_DIR", config.REPO_ROOT / "outputs"))


def new_run_folder(env: str, outputs_dir: Path | None = None, now: datetime | None = None) -> Path:
    """Create ``outputs/<env>/<UTC timestamp>/`` and point ``outputs/<env>/latest`` at it."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    base = (outputs_dir or OUTPUTS_DIR) / env
    folder = base / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    latest = base / "latest"
    tmp = base / ".latest.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    tmp.replace(latest)   # atomic switch
    return folder


def prune_runs(env: str, keep: int, outputs_dir: Path | None = None) -> list[Path]:
    """Delete all but the newest ``keep`` runs of ``env``; returns what was removed."""
    base = (outputs_dir or OUTPUTS_DIR) / env
    if not base.is_dir():
        return []
    runs = sorted((p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and re.match(r"^\d{8}T\d{6}Z", p.name)),
                  key=lambda p: p.name)
    removed = runs[:-keep] if keep > 0 else runs
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed
