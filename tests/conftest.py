"""Shared test configuration."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Never let a test reach a real AWS account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


# The slow tiers: real notebooks through Papermill, the local environment's integration tests, and the
# real Pulumi CLI. `make test-fast` leaves them out (`-m "not slow"`); `make test` runs everything.
SLOW_PATHS = ("tests/notebooks/", "tests/integration/local/", "tests/integration/workbook/")
# Tests sharing an expensive session or module fixture stay on one xdist worker (``--dist loadgroup``).
GROUPED_PATHS = ("tests/notebooks/", "tests/integration/local/", "tests/integration/workbook/")


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        nodeid = item.nodeid
        if nodeid.startswith(SLOW_PATHS) or item.get_closest_marker("pulumi_cli"):
            item.add_marker(pytest.mark.slow)
        for prefix in GROUPED_PATHS:
            if nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(nodeid.split("::", 1)[0]))
