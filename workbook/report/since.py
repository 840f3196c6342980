"""The report's time range (``since``), as the command line and the notebooks' ``since`` parameter give it.

Kept apart from ``workbook.report.notebooks`` so that a notebook's kernel, which only needs the
window, does not import Papermill (and through nbformat, jsonschema's format checkers: 1.2 s).
"""
from __future__ import annotations

import re

from workbook.errors import BadInput

_SINCE = re.compile(r"^(\d+)([mhd])$")


def parse_since(value: str) -> int:
    """``'24h'`` -> seconds. Accepts m, h and d."""
    match = _SINCE.match(value or "")
    if not match or int(match.group(1)) == 0:
        raise BadInput(f"--since {value!r}: expected a positive number of minutes, hours or days, like 90m, 24h or 7d")
    return int(match.group(1)) * {"m": 60, "h": 3600, "d": 86400}[match.group(2)]
