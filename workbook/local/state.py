"""The state file of the one local environment: its ports, process ids and data folder.

It lives at ``.state/local/state.json`` in the project folder, or under ``$WORKBOOK_STATE_DIR``.
Notebooks and the CLI find a running environment through it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from infra.project import project_dir


def state_dir() -> Path:
    """Where the local environment keeps its state and data (``$WORKBOOK_STATE_DIR`` wins)."""
    override = os.environ.get("WORKBOOK_STATE_DIR")
    return Path(override) if override else project_dir() / ".state" / "local"


def state_path() -> Path:
    return state_dir() / "state.json"


def read() -> dict[str, Any] | None:
    """The recorded state, or None when no environment was started (or it was stopped)."""
    try:
        return json.loads(state_path().read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return None


def write(state: dict[str, Any]) -> None:
    """Replace the state file atomically (readers never see half a file)."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(state, handle, indent=2, sort_keys=True)
        temporary = Path(handle.name)
    temporary.chmod(0o600)
    temporary.replace(path)


def remove() -> None:
    state_path().unlink(missing_ok=True)
