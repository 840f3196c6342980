"""Shared test configuration."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

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
    for item in items:
        nodeid = item.nodeid
        if nodeid.startswith(SLOW_PATHS) or item.get_closest_marker("pulumi_cli"):
            item.add_marker(pytest.mark.slow)
        for prefix in GROUPED_PATHS:
            if nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(nodeid.split("::", 1)[0]))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """No test may leave this process ignoring or blocking SIGTERM or SIGINT (checked after its teardown).

    Both survive ``exec``: every process a later test starts would inherit them, and one that
    should stop on SIGTERM (a holder of a local environment, a `workbook run`) would not.
    """
    result = yield
    _check_signals(item)
    return result


def _check_signals(item) -> None:
    ignored = [sig.name for sig in (signal.SIGTERM, signal.SIGINT) if signal.getsignal(sig) is signal.SIG_IGN]
    blocked = [sig.name for sig in signal.pthread_sigmask(signal.SIG_BLOCK, []) if sig in (signal.SIGTERM, signal.SIGINT)]
    if ignored or blocked:
        for sig in (signal.SIGTERM, signal.SIGINT):   # repair, so the tests after it are not affected
            if signal.getsignal(sig) is signal.SIG_IGN:
                signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM, signal.SIGINT])
        raise AssertionError(f"{item.nodeid} left {', '.join(ignored + blocked)} "
                             f"{'ignored' if ignored else ''}{' and ' if ignored and blocked else ''}"
                             f"{'blocked' if blocked else ''} in the test process")
