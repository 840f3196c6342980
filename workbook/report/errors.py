"""The errors of ``workbook run``: one family, each with the exit code the command returns for it."""
from __future__ import annotations

from pathlib import Path

from workbook.errors import Interrupted, WorkbookError


class RunError(WorkbookError):
    """The run failed (a notebook, the environment, the disk); the message says where and what is left."""

    def __init__(self, message: str, folder: Path | None = None) -> None:
        super().__init__(message)
        self.folder = folder


class RunInterrupted(Interrupted):
    """Ctrl-C or a stop signal ended the run; it stopped what it started and kept a marked partial folder."""

    def __init__(self, message: str, folder: Path | None = None) -> None:
        super().__init__(message)
        self.folder = folder


class EnvironmentBusy(WorkbookError):
    """Another ``workbook run`` is using the environment; nothing was created."""


class EnvironmentGone(WorkbookError):
    """The local environment a run was using stopped under it; its results would be empty."""


class OutputsError(WorkbookError):
    """The outputs folder cannot hold the run: not a folder, not writable, or full."""


__all__ = ["EnvironmentBusy", "EnvironmentGone", "OutputsError", "RunError", "RunInterrupted"]
