"""The workbook's one exception root and its exit codes.

Every exception class under ``workbook/`` derives from ``WorkbookError`` and carries the exit
code the ``workbook`` command returns for it; ``workbook.cli`` maps them in one place. Each
concern adds its own family next to its code (``workbook.deploy.errors``,
``workbook.local.errors``, ...), with a one-line docstring per class, and translates lower-layer
errors (botocore, Pulumi, OS) at its boundary into one of these, with a message that says what
to do.

Exit codes: 0 done, 1 failed, 2 bad input, 130 interrupted. ``infra.config.ParamsError`` stays
``infra``'s own (``infra/`` imports nothing from ``workbook/``); the CLI maps it to 2.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What the ``workbook`` command returns."""

    DONE = 0
    FAILED = 1
    BAD_INPUT = 2
    INTERRUPTED = 130


class WorkbookError(Exception):
    """Something the workbook did failed; the message says what happened and what to do."""

    exit_code: ExitCode = ExitCode.FAILED


class BadInput(WorkbookError, ValueError):
    """An argument, option or file given to the workbook is invalid; nothing was started or written."""

    exit_code = ExitCode.BAD_INPUT


class Interrupted(WorkbookError):
    """The work was interrupted (Ctrl-C or a signal); the message says what was left and how to recover."""

    exit_code = ExitCode.INTERRUPTED


__all__ = ["BadInput", "ExitCode", "Interrupted", "WorkbookError"]
