"""Shared test configuration."""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
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
# Modules whose tests share an expensive module or session fixture (a local environment, a whole
# `workbook run`) stay on one xdist worker (``--dist loadgroup``): split, each worker would build
# it again. Every other slow test is spread over the workers on its own.
GROUPED_MODULES = (
    "tests/integration/local/test_event_sources.py",
    "tests/integration/local/test_fault_recovery.py",
    "tests/integration/local/test_file_processor_probes.py",
    "tests/integration/local/test_local_postgres_auth.py",
    "tests/integration/local/test_local_stack.py",
    "tests/integration/local/test_pipeline.py",
    "tests/integration/local/test_regular_install.py",
    "tests/integration/local/test_sandbox_artifacts.py",
    "tests/integration/workbook/test_tuning_on_local.py",
    "tests/notebooks/test_notebooks.py",
)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Each session's temporary folders in a folder of its own, not under ``/tmp/pytest-of-<user>``.

    Every pytest session started on the machine resets ``/tmp/pytest-of-<user>`` to 0700. The local
    environments that tests start keep PostgreSQL's data below their tmp_path, and as root
    PostgreSQL runs as the ``pgserver`` user: another suite starting beside this one shut it out
    ("could not access directory ... Permission denied"). Runs before pytest's own tmp_path set-up.
    """
    _default_stop_signals()
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        config.option.basetemp = tempfile.mkdtemp(prefix="lwb-pytest-")
        config._lwb_basetemp = config.option.basetemp
    if not hasattr(config, "workerinput") and "WORKBOOK_CACHE_DIR" not in os.environ:
        # Offline plans kept for this session only (every worker and every `workbook` it starts
        # inherits it): each environment is planned once per session, never from a stale user cache.
        config._lwb_cache = os.environ["WORKBOOK_CACHE_DIR"] = tempfile.mkdtemp(prefix="lwb-pytest-cache-")


# The dispositions a process normally starts with, which the signal tests and their children expect.
DEFAULT_STOP_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _default_stop_signals() -> None:
    """Start every pytest process (the controller and each xdist worker) with SIGINT and SIGTERM at their defaults.

    A shell without job control starts a background command (``make test &``, ``nohup … &``) with
    SIGINT ignored, and every process inherits that: the first test of each worker then failed the
    teardown check below, and the children that the interrupt tests signal would ignore SIGINT.
    """
    for sig, handler in DEFAULT_STOP_HANDLERS.items():
        if signal.getsignal(sig) is signal.SIG_IGN:
            signal.signal(sig, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, list(DEFAULT_STOP_HANDLERS))


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two workers per core, at most eight.

    The slow tiers wait more than they compute: a notebook run, a Run All, the accounting test and
    the pipeline's retries use well under one core each (``workbook run --env local`` took 163 s of
    CPU in 215 s), so one worker per core left the cores idle for much of the run. Each worker may
    hold a local environment (moto, PostgreSQL, the engine: about 1 GiB), hence the cap.
    """
    cores = os.cpu_count() or 1
    if "not slow" in (config.option.markexpr or ""):
        return max(2, cores)        # the fast tier computes: one worker per core
    return max(2, min(2 * cores, 8))


def pytest_sessionfinish(session, exitstatus):
    """A passing session's temporary folder goes; a failing one's stays for a look."""
    basetemp = getattr(session.config, "_lwb_basetemp", None)
    if basetemp and exitstatus == 0:
        shutil.rmtree(basetemp, ignore_errors=True)
    if getattr(session.config, "_lwb_cache", None):
        shutil.rmtree(session.config._lwb_cache, ignore_errors=True)


# Modules under the slow paths that start no local environment (the sandbox alone, in process):
# they run in `make test-fast` too.
SANDBOX_ONLY_MODULES = (
    "tests/integration/local/test_sandbox_faithfulness.py",
    "tests/integration/local/test_sandbox_tuning.py",
)


@pytest.hookimpl(tryfirst=True)   # before xdist's own, which reads the xdist_group marks into node ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        nodeid = item.nodeid
        slow_path = nodeid.startswith(SLOW_PATHS) and nodeid.split("::", 1)[0] not in SANDBOX_ONLY_MODULES
        if slow_path or item.get_closest_marker("pulumi_cli"):
            item.add_marker(pytest.mark.slow)
        module = nodeid.split("::", 1)[0]
        if module in GROUPED_MODULES:
            item.add_marker(pytest.mark.xdist_group(module))


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
        _default_stop_signals()   # repair, so the tests after it are not affected
        raise AssertionError(f"{item.nodeid} left {', '.join(ignored + blocked)} "
                             f"{'ignored' if ignored else ''}{' and ' if ignored and blocked else ''}"
                             f"{'blocked' if blocked else ''} in the test process")
