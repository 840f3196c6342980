"""Rules the suite keeps: no test that reaches moto or the sandbox depends on today's date; shared fixtures stay on one worker.

CloudWatch Logs (and moto with it) refuses log events older than 14 days or more than 2 hours
ahead, and metrics older than two weeks: a test that stamps its events with a fixed epoch passes
on the day it is written and fails a fortnight later (main went red that way in December 2026).
Timestamps in such tests are relative to now, or the clock is frozen.

This check reads every test module that talks to moto, boto3 or a local environment and fails on
any integer literal that reads as an absolute epoch (seconds or milliseconds from 2001 to 2100).
A literal that never reaches a service (a parser's input, a documented event) is allowed with a
``# fixed epoch: <why>`` comment on its line.
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REACHES_A_SERVICE = ("moto", "mock_aws", "boto3", "aws.client", "local_environment", "manager.start", "endpoint_url")
EPOCH_S = (1_000_000_000, 4_102_444_800)            # 2001-09-09 .. 2100-01-01
EPOCH_MS = (EPOCH_S[0] * 1000, EPOCH_S[1] * 1000)
ALLOW = "# fixed epoch:"


def fixed_epochs(source: str) -> list[tuple[int, int]]:
    """(line, value) of each integer literal in the epoch ranges, unless its line carries the allow comment."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            value = node.value
            if (EPOCH_S[0] <= value < EPOCH_S[1] or EPOCH_MS[0] <= value < EPOCH_MS[1]) \
                    and ALLOW not in lines[node.lineno - 1]:
                found.append((node.lineno, value))
    return sorted(found)


def test_the_check_finds_a_fixed_epoch_and_honours_the_comment():
    # GIVEN the line that turned main red, a relative stamp, and a documented parser input
    assert fixed_epochs("telemetry.log(g, s, [(1_795_000_000_000, 'START')])\n") == [(1, 1_795_000_000_000)]
    assert fixed_epochs("stamp = int(time.time() * 1000)\nsize = 1_048_576\n") == []
    assert fixed_epochs("ts = 1_700_000_000_000  # fixed epoch: parsed only\n") == []
    assert fixed_epochs("seconds = 1700000000\n") == [(1, 1_700_000_000)]


def test_no_test_that_reaches_a_service_stamps_a_fixed_epoch():
    offenders = {}
    modules = [path for path in TESTS.rglob("*.py") if path != Path(__file__)]
    reaching = [path for path in modules if any(marker in path.read_text() for marker in REACHES_A_SERVICE)]
    assert len(reaching) >= 20, [str(path) for path in reaching]   # the scan sees the suite, not nothing
    for path in reaching:
        found = fixed_epochs(path.read_text())
        if found:
            offenders[str(path.relative_to(TESTS))] = found
    assert offenders == {}, ("absolute epochs in tests that reach moto or the sandbox go stale in 14 days: "
                             f"stamp relative to now, or mark a literal that never reaches a service "
                             f"with '{ALLOW} <why>': {offenders}")


def test_every_slow_module_with_a_shared_fixture_stays_on_one_worker():
    """A module whose tests share a module- or session-scoped fixture is grouped (else each worker builds it)."""
    from tests.conftest import GROUPED_MODULES, SLOW_PATHS

    root = TESTS.parent
    sharing = set()
    for prefix in SLOW_PATHS:
        for path in (root / prefix).glob("test_*.py"):
            text = path.read_text()
            if 'scope="module"' in text or 'scope="session"' in text or "(local_run" in text:
                sharing.add(str(path.relative_to(root)))
    assert sharing and sharing <= set(GROUPED_MODULES), sorted(sharing - set(GROUPED_MODULES))


def test_xdist_keeps_a_group_on_one_worker(tmp_path):
    """The grouping above works only if xdist's loadgroup does (with pytest 9 it silently splits groups)."""
    import subprocess
    import sys

    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.xdist_group('one')\n"
        "@pytest.mark.parametrize('i', range(8))\n"
        "def test_where(i):\n"
        "    open(os.path.join(os.path.dirname(__file__), 'workers.txt'), 'a').write(os.environ['PYTEST_XDIST_WORKER'] + '\\n')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup",
                             "-o", "addopts=", str(tmp_path / "test_grouped.py")], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:]
    workers = (tmp_path / "workers.txt").read_text().split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers


def test_a_suite_started_with_sigint_ignored_runs_its_tests_with_the_default_handlers(tmp_path):
    """``make test &`` from a script starts pytest with SIGINT ignored (POSIX, without job control);
    the suite's own conftest restores the defaults in the controller and every worker."""
    import signal
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    (tmp_path / "test_handlers.py").write_text(
        "import signal\n"
        "def test_defaults():\n"
        "    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
                             "-n", "2", "-o", "addopts=", str(tmp_path / "test_handlers.py")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(repo)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "1 passed" in result.stdout
