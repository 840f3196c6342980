"""Record a notebook's key results in scrapbook's format, readable with ``scrapbook.read_notebook``.

This writes exactly the display output ``scrapbook.glue(name, data, encoder="json")`` writes, but
without importing scrapbook inside the kernel: that import pulls in papermill, nbformat and
jsonschema's format checkers, about 2 s per notebook on these machines. Values are made
JSON-clean first (NaN and infinities become null, numpy scalars plain numbers).
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from IPython.display import display

PAYLOAD_MIME = "application/scrapbook.scrap.json+json"
SCRAP_VERSION = 1


def clean(value: Any) -> Any:
    """A JSON-serialisable copy: NaN/inf -> None, numpy and pandas scalars -> Python, tuples -> lists."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def glue(name: str, data: Any) -> None:
    """Record ``data`` under ``name`` in this cell's outputs (invisible when rendered)."""
    payload = {"name": name, "data": clean(data), "encoder": "json", "version": SCRAP_VERSION}
    json.dumps(payload, allow_nan=False)   # fail here, naming nothing half-written
    display({PAYLOAD_MIME: payload}, metadata={"scrapbook": {"name": name, "data": True, "display": False}},
            raw=True)


def read(path: str) -> dict[str, Any]:
    """The JSON scraps of an executed notebook (what ``scrapbook.read_notebook(path).scraps`` holds)."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    scraps: dict[str, Any] = {}
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []) or []:
            for mime, payload in (output.get("data") or {}).items():
                # json and text encoders; other encoders (arrow, display) are not JSON data
                if mime in (PAYLOAD_MIME, "application/scrapbook.scrap.text+json") and isinstance(payload, dict) \
                        and "name" in payload:
                    scraps[payload["name"]] = payload.get("data")
    return scraps
