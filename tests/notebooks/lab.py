"""A JupyterLab-like session for the tests: temporary params, state and outputs, and the notebooks' cells.

Lab runs the notebooks from ``notebooks/`` with the user's environment; here every folder the
workbook writes to is a temporary one (``WORKBOOK_PARAMS_DIR``, ``WORKBOOK_STATE_DIR``,
``WORKBOOK_OUTPUTS_DIR``), so several sessions can run at once and nothing touches the checkout.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(p for p in (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))


@dataclass
class LabFolders:
    root: Path
    notebooks: Path
    params: Path
    state: Path
    outputs: Path

    @property
    def env(self) -> dict[str, str]:
        """The process environment of a Lab server (and so of its kernels) pointed at these folders."""
        env = dict(os.environ)
        env.update(WORKBOOK_PARAMS_DIR=str(self.params), WORKBOOK_STATE_DIR=str(self.state),
                   WORKBOOK_OUTPUTS_DIR=str(self.outputs), PYTHONPATH=str(REPO))
        env.pop("WORKBOOK_RUN_LOCAL_OWNER", None)
        env.pop("WORKBOOK_RUN_ID", None)
        return env


def make_folders(tmp: Path) -> LabFolders:
    """Copies of ``notebooks/`` and ``params/``, and empty state and outputs folders, under ``tmp``."""
    folders = LabFolders(tmp, tmp / "notebooks", tmp / "params", tmp / "state", tmp / "outputs")
    shutil.copytree(REPO / "notebooks", folders.notebooks, ignore=shutil.ignore_patterns("*.py", ".ipynb_checkpoints"))
    shutil.copytree(REPO / "params", folders.params)
    folders.state.mkdir()
    folders.outputs.mkdir()
    return folders


def code_cells(path: Path) -> list[str]:
    """The code cells of a notebook, as Run All sends them (the parameters cell included, as it stands)."""
    book = nbformat.read(path, as_version=4)
    return [cell.source for cell in book.cells if cell.cell_type == "code" and cell.source.strip()]


def stop_local(folders: LabFolders) -> subprocess.CompletedProcess:
    """``workbook local stop`` for the session's state folder (whatever a kernel started)."""
    return subprocess.run([sys.executable, "-m", "workbook.cli", "local", "stop"], env=folders.env, cwd=folders.root,
                          capture_output=True, text=True, timeout=180)


def start_local(folders: LabFolders) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbook.cli", "local", "start"], env=folders.env, cwd=folders.root,
                          capture_output=True, text=True, timeout=600)


def narrow_the_tuning(path: Path) -> None:
    """Edit the parameters cell of 05-tuning as a user would before Run All: two sizes, four invocations each.

    The JupyterLab test is about the interactive session (progress, controls, projection, Apply), and
    Run All about cells queued behind a busy kernel: neither depends on the sweep's size. The default
    sweep (every function, every size, the file processor's worst-case probes) runs whole through
    Papermill in tests/notebooks/test_notebooks.py.
    """
    book = nbformat.read(path, as_version=4)
    cell = next(c for c in book.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))
    edited = cell.source.replace("power_values = None", "power_values = [1024, 1769]", 1) \
                        .replace("num_invocations = None", "num_invocations = 4", 1)
    assert edited.count("[1024, 1769]") == 1 and edited.count("num_invocations = 4") == 1, cell.source
    cell.source = edited
    nbformat.write(book, path)
