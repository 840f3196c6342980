"""The fields of a REPORT record: their patterns in both formats, their types, and extraction by regular expression.

``extract_all`` runs one Arrow RE2 pass per field over a whole batch (one short pattern per field:
RE2 finds a literal-prefixed match quickly and only runs its slower capturing engine on the few
matched characters). Arrow's string kernels release the GIL, so large batches extract one field
per thread.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow.compute as pc

# One short pattern per field: RE2 finds a literal-prefixed match quickly and only runs its
# (slower) capturing engine on the few matched characters, which beats one long pattern.
TEXT_FIELDS = {
    "request_id": r"^REPORT RequestId: (?P<v>[0-9A-Za-z-]+)",
    "duration_ms": r"\tDuration: (?P<v>[0-9]+(?:\.[0-9]+)?) ms",
    "billed_duration_ms": r"\tBilled Duration: (?P<v>[0-9]+) ms",
    "memory_size_mb": r"\tMemory Size: (?P<v>[0-9]+) MB",
    "max_memory_used_mb": r"\tMax Memory Used: (?P<v>[0-9]+) MB",
    "init_duration_ms": r"\tInit Duration: (?P<v>[0-9]+(?:\.[0-9]+)?) ms",
    "status_raw": r"\tStatus: (?P<v>[A-Za-z_]+)",
    "error_type": r"\tError Type: (?P<v>[A-Za-z0-9_.]+)",
    "xray_trace_id": r"XRAY TraceId: (?P<v>[0-9A-Za-z-]+)",
}
JSON_FIELDS = {
    "request_id": r'"requestId"\s*:\s*"(?P<v>[^"]+)"',
    "duration_ms": r'"durationMs"\s*:\s*(?P<v>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)',
    "billed_duration_ms": r'"billedDurationMs"\s*:\s*(?P<v>[0-9]+)',
    "memory_size_mb": r'"memorySizeMB"\s*:\s*(?P<v>[0-9]+)',
    "max_memory_used_mb": r'"maxMemoryUsedMB"\s*:\s*(?P<v>[0-9]+)',
    "init_duration_ms": r'"initDurationMs"\s*:\s*(?P<v>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)',
    "status_raw": r'"status"\s*:\s*"(?P<v>[^"]+)"',
    "error_type": r'"errorType"\s*:\s*"(?P<v>[^"]+)"',
    "xray_trace_id": r'Root=(?P<v>[0-9A-Za-z-]+)',
    "time": r'"time"\s*:\s*"(?P<v>[^"]+)"',
}
REQUIRED = ("request_id", "duration_ms", "billed_duration_ms", "memory_size_mb", "max_memory_used_mb")
FLOATS = ("duration_ms", "init_duration_ms")
INTS = ("billed_duration_ms", "memory_size_mb", "max_memory_used_mb")


CHUNK_THREADS = "parse-chunks"
WORKERS = max(2, min(8, os.cpu_count() or 2))
_FIELD_POOL: ThreadPoolExecutor | None = None


def map_fields(function: Callable[[Any], Any], items: Iterable[Any], rows: int) -> list[Any]:
    """``function`` over per-field ``items`` (Arrow's string kernels release the GIL: one field per thread).

    Small inputs, and work already inside a chunk thread, run serially.
    """
    global _FIELD_POOL
    if rows < 20_000 or threading.current_thread().name.startswith(CHUNK_THREADS):
        return list(map(function, items))
    if _FIELD_POOL is None:
        _FIELD_POOL = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="parse-reports")
    return list(_FIELD_POOL.map(function, items))


def extract_all(arr, patterns: dict[str, str]) -> dict[str, Any]:
    """Each pattern's ``v`` group over every line of ``arr`` (null where it does not match)."""
    def one(item):
        name, pattern = item
        return name, pc.struct_field(pc.extract_regex(arr, pattern), "v")

    return dict(map_fields(one, patterns.items(), len(arr)))
