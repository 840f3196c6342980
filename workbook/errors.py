"""The workbook's root exception. Each concern adds its family under it (see workbook.automation)."""
from __future__ import annotations


class WorkbookError(Exception):
    """Something the workbook did failed; the message says what happened and what to do."""


__all__ = ["WorkbookError"]
