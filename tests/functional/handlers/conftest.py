"""Handler tests: put handlers/ and the shared test kit on sys.path, and load the shared fixtures."""
from __future__ import annotations

import sys
from pathlib import Path

_KIT = Path(__file__).resolve().parents[2] / "functional"
if str(_KIT) not in sys.path:
    sys.path.insert(0, str(_KIT))

from handler_fixtures import *  # noqa: F403 - fixtures
