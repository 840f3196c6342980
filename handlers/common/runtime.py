"""The remaining-time guard every handler uses to stop before its timeout."""
from __future__ import annotations

from typing import Any

from common.errors import OutOfTime


def remaining_ms(context: Any) -> int:
    """Milliseconds left in this invocation; a very large number when there is no context (scripts, tests)."""
    getter = getattr(context, "get_remaining_time_in_millis", None)
    if getter is None:
        return 10**9
    return int(getter())


def has_time(context: Any, margin_ms: int) -> bool:
    """Whether more than ``margin_ms`` milliseconds remain."""
    return remaining_ms(context) > margin_ms


def ensure_time(context: Any, margin_ms: int, what: str = "next unit of work") -> None:
    """Raise :class:`OutOfTime` when ``margin_ms`` or less remains, so the work is left for a retry."""
    left_ms = remaining_ms(context)
    if left_ms <= margin_ms:
        raise OutOfTime(f"stopping before {what}: {left_ms} ms left, safety margin {margin_ms} ms",
                        remaining_ms=left_ms, safety_margin_ms=margin_ms)


__all__ = ["ensure_time", "has_time", "remaining_ms"]
