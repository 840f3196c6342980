"""Talking to the running local environment: its topology, function names and the engine's Invoke API."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from workbook.local.manager import control_url

__all__ = ["invoke_remote", "resolve_function", "topology"]


def topology(recorded: dict) -> dict:
    """What was provisioned (``topology.json`` in the state folder): functions, queues, sources."""
    try:
        return json.loads((Path(recorded["state_dir"]) / "topology.json").read_text())
    except (OSError, ValueError):
        return {}


def resolve_function(recorded: dict, name: str) -> str | None:
    """The deployed name of a function given by key (``api-processor`` or ``api_processor``), name or ARN."""
    for entry in topology(recorded).get("functions", []):
        if name in (entry["key"], entry["function_name"], entry["key"].replace("-", "_")) or \
                name.endswith(f":function:{entry['function_name']}"):
            return entry["function_name"]
    return None


def invoke_remote(recorded: dict, function: str, event: Any, *, memory_mb: int | None = None,
                  invocation_type: str = "RequestResponse", timeout_s: float = 960.0,
                  qualifier: str | None = None) -> dict:
    """Invoke through the running engine's Invoke API; returns status, headers and payload.

    ``qualifier`` is Invoke's ``Qualifier``: a version power tuning runs on (``[N]`` in its log streams).
    """
    url = f"{control_url(recorded)}/2015-03-31/functions/{function}/invocations"
    if qualifier:
        url += f"?Qualifier={qualifier}"
    headers = {"Content-Type": "application/json", "X-Amz-Invocation-Type": invocation_type, "X-Amz-Log-Type": "Tail"}
    if memory_mb:
        headers["X-Lwb-Memory-Size"] = str(memory_mb)
    request = urllib.request.Request(url, data=json.dumps(event).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return {"status": response.status, "headers": dict(response.headers), "payload": response.read()}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "headers": dict(exc.headers), "payload": exc.read()}
