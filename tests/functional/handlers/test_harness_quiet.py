"""The harness's own plumbing: quieting a handler's logger must survive a stream an earlier test closed."""
from __future__ import annotations

import io
import logging
import types

from handler_harness import _quiet


def test_quiet_replaces_a_stream_that_an_earlier_capture_closed():
    # GIVEN a handler module imported during an earlier test, its log handler still on that test's capture
    closed = io.TextIOWrapper(io.BytesIO())   # as pytest's capture: its flush raises once closed
    closed.close()
    handler = logging.StreamHandler(closed)
    module = types.SimpleNamespace(logger=types.SimpleNamespace(registered_handler=handler))
    # WHEN a later test quiets it, THEN no "I/O operation on closed file", and its records go nowhere
    _quiet(module)
    handler.emit(logging.makeLogRecord({"msg": "after"}))
    assert handler.stream is not closed
