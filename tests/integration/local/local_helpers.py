"""Helpers shared by the local environment's integration tests."""
from __future__ import annotations

from pathlib import Path

from workbook.local.sandbox import FunctionConfig, LogFormat

FUNCTIONS_DIR = Path(__file__).resolve().parent / "functions"


def make_config(module: str, memory_mb: int = 512, timeout_s: float = 10.0, *, name: str | None = None,
                reserved: int | None = None, log_format: LogFormat = LogFormat.TEXT,
                environment: dict | None = None) -> FunctionConfig:
    """A FunctionConfig for one of the test functions in ``functions/``."""
    return FunctionConfig(key=name or module, function_name=name or f"lwb-test-{module}", memory_mb=memory_mb,
                          timeout_s=timeout_s, handler=f"{module}.handler", environment=environment or {},
                          code_paths=(str(FUNCTIONS_DIR),), reserved_concurrency=reserved, log_format=log_format)
