"""Fallbacks said once: when the endpoint lacks a feature, the loaders take a documented fallback and say so.

A note is a ``UserWarning`` whose text starts with ``workbook.``: notebooks show it as prose
(``workbook.report.session``), and it is also logged.
"""
from __future__ import annotations

import logging
import warnings

log = logging.getLogger("workbook")

_NOTES_SAID: set[str] = set()


def note_once(key: str, message: str) -> None:
    """Say a fallback once per process: a warning (shown in notebooks) and a log record."""
    if key in _NOTES_SAID:
        return
    _NOTES_SAID.add(key)
    log.info(message)
    warnings.warn(message, stacklevel=3)
