"""Fixtures for the local environment's integration tests."""
from __future__ import annotations

import pytest

from workbook.local.sandbox import Sandbox


@pytest.fixture
def sandbox():
    """A sandbox with in-memory telemetry; every environment it started is ended afterwards."""
    with Sandbox(idle_expiry_s=300) as box:
        yield box
