"""Ctrl-C and SIGTERM in each phase of a real `workbook local start` leave nothing running and touch nothing else.

Each case runs the console script with a state folder of its own, waits for the phase (its
progress line on stderr, or the state file recording the process that phase starts), sends the
signal, then looks through /proc for anything of its own: a process naming the state folder or
carrying the owner token, or a recorded process still alive. An innocent decoy must survive.
"""
from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_helpers import Watched, cli_env, end_decoy, ours, start_decoy, still_ours, workbook

from workbook.local import processes

pytestmark = pytest.mark.timeout(600)


def _recorded(name: str):
    return lambda recorded, stderr: (recorded.get(name) or {}).get("start_ticks") is not None


def _said(text: str):
    return lambda recorded, stderr: text in stderr


PHASES = [
    pytest.param(signal.SIGINT, _recorded("moto"), id="SIGINT-moto-starting"),
    pytest.param(signal.SIGINT, _said("starting PostgreSQL"), id="SIGINT-postgres-initdb"),
    pytest.param(signal.SIGINT, _recorded("postgres"), id="SIGINT-postgres-starting"),
    pytest.param(signal.SIGINT, _said("provisioning queues"), id="SIGINT-provisioning"),
    pytest.param(signal.SIGINT, _recorded("engine"), id="SIGINT-engine-starting"),
    pytest.param(signal.SIGTERM, _recorded("postgres"), id="SIGTERM-postgres-starting"),
    pytest.param(signal.SIGTERM, _recorded("engine"), id="SIGTERM-engine-starting"),
]


@pytest.mark.parametrize(("sig", "phase"), PHASES)
def test_an_interrupted_start_leaves_nothing_running(tmp_path, request, sig, phase):
    # GIVEN an innocent program, and `workbook local start` in a fresh state folder
    state_dir = tmp_path / "state"
    decoy = start_decoy()
    start = Watched(state_dir)
    try:
        # WHEN the signal arrives in the phase
        start.wait_for(phase)
        if "initdb" in request.node.callspec.id:
            start.wait_for(lambda recorded, stderr: (state_dir / "data" / "postgres.initdb").exists(), 60)
        result = start.signal(sig)
        # THEN the command says it was interrupted (SIGTERM cleans up as Ctrl-C does)...
        assert result.returncode == 130, result.stderr
        assert "workbook: interrupted" in result.stderr
        # ... and nothing of it is left: no recorded process, nothing naming its folder or owner
        assert start.owners, result.stderr
        assert still_ours(start.entries) == []
        assert ours(state_dir, start.owners) == []
        assert not (state_dir / "state.json").exists()
        # AND PostgreSQL left neither a pid file nor half a cluster
        data = state_dir / "data" / "postgres"
        assert not (data / "postmaster.pid").exists()
        assert not data.exists() or (data / "PG_VERSION").exists()
    finally:
        if start.process.poll() is None:
            start.process.kill()
        # AND the innocent program was not touched
        assert end_decoy(decoy) is None


@pytest.mark.parametrize("case", ["postgres-starting", "initdb"])
def test_after_an_interrupted_postgres_start_the_next_start_works(tmp_path, case):
    # GIVEN a start interrupted while PostgreSQL was being set up (the issue: every later start failed)
    state_dir = tmp_path / "state"
    first = Watched(state_dir)
    if case == "initdb":
        first.wait_for(lambda recorded, stderr: (state_dir / "data" / "postgres.initdb").exists())
    else:
        first.wait_for(_recorded("postgres"))
    assert first.signal(signal.SIGINT).returncode == 130
    # WHEN the environment is started again
    again = workbook(state_dir, "local", "start")
    try:
        # THEN it comes up at once, on the same data folder
        assert again.returncode == 0, again.stderr
        status = workbook(state_dir, "local", "status")
        assert status.returncode == 0 and "running:       yes" in status.stdout, status.stdout
        assert "did not come up" not in again.stderr and "shared memory" not in again.stderr
    finally:
        stopped = workbook(state_dir, "local", "stop")
        assert stopped.returncode == 0, stopped.stderr
    owners = first.owners | {line.split()[1] for line in status.stdout.splitlines() if line.startswith("owner:")}
    assert ours(state_dir, owners) == []


_HOLDER = """
import faulthandler, signal, sys, time
faulthandler.register(signal.SIGUSR1, all_threads=True)   # the test asks for the stacks if it hangs
sys.path.insert(0, {helpers!r})
from infra import config
from local_helpers import FUNCTIONS_DIR, small_plan
from workbook.local import manager
manager.start("local", plan=small_plan(), settings=config.load("local"), code_paths=[str(FUNCTIONS_DIR)])
print(f"SIGTERM: handler {{signal.getsignal(signal.SIGTERM)!r}}, blocked: "
      f"{{signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, [])}}", file=sys.stderr, flush=True)
try:
    print("holding", flush=True)
    time.sleep(600)          # a `workbook run` at work
finally:
    begun = time.monotonic()
    manager.stop(progress=lambda message: print(f"[{{time.monotonic() - begun:.1f}} s] {{message}}", file=sys.stderr,
                                                flush=True))   # what its cleanup does on Ctrl-C
"""


def test_sigterm_to_a_process_holding_an_environment_stops_it(tmp_path):
    # GIVEN a process that started an environment and holds it (stopping it in its cleanup)
    state_dir = tmp_path / "state"
    decoy = start_decoy()
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER.format(helpers=str(Path(__file__).parent))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(state_dir))
    try:
        assert holder.stdout.readline().strip() == "holding", holder.stderr.read()
        recorded = json.loads((state_dir / "state.json").read_text())
        # WHEN a scheduler stops it with SIGTERM
        holder.send_signal(signal.SIGTERM)
        try:
            holder.wait(120)
        except subprocess.TimeoutExpired:
            holder.send_signal(signal.SIGUSR1)   # its threads' stacks, and what the stop said, for the report
            time.sleep(2)
            holder.kill()
            raise AssertionError(f"the holder did not end within 120 s of SIGTERM:\n{holder.communicate()[1]}") from None
        # THEN its cleanup ran as on Ctrl-C: the environment is stopped, nothing of it is left
        assert "KeyboardInterrupt" in holder.stderr.read()
        assert not (state_dir / "state.json").exists()
        assert processes.carrying(recorded["owner"]) == [] and ours(state_dir, {recorded["owner"]}) == []
    finally:
        if holder.poll() is None:
            holder.kill()
        assert end_decoy(decoy) is None


def test_sigint_at_any_moment_of_a_start_ends_it_with_nothing_left(tmp_path):
    # GIVEN how long a start takes here (a first one, stopped again)
    first = tmp_path / "first"
    begun = time.monotonic()
    started = workbook(first, "local", "start")
    start_s = time.monotonic() - begun
    assert started.returncode == 0, started.stderr
    assert workbook(first, "local", "stop").returncode == 0
    # WHEN SIGINT lands at points spread over a start, not only at its phase boundaries
    # (seeded offsets from 2% to 95% of the start's length, after the console script began)
    offsets = sorted(random.Random(18).uniform(0.02, 0.95) * start_s for _ in range(5))
    interrupted = 0
    for index, offset_s in enumerate(offsets):
        state_dir = tmp_path / f"at-{index}"
        start = Watched(state_dir)
        time.sleep(offset_s)
        result = start.signal(signal.SIGINT)
        # THEN the start says it was interrupted, with 130, and leaves nothing of its own...
        if result.returncode in (130, -signal.SIGINT):
            # -SIGINT: it landed while Python still imported the console script, before the CLI's
            # own handling began (a shell reports both as 130); nothing had been started then
            interrupted += 1
            assert result.returncode == -signal.SIGINT or "workbook: interrupted" in result.stderr, (offset_s, result.stderr)
            assert still_ours(start.entries) == [], (offset_s, result.stderr)
            assert ours(state_dir, start.owners) == [], (offset_s, result.stderr)
            assert not (state_dir / "state.json").exists(), (offset_s, result.stderr)
        else:
            # ... or it had already finished (exit 0, a healthy environment), which a stop then ends
            assert result.returncode == 0, (offset_s, result.returncode, result.stderr)
            assert workbook(state_dir, "local", "stop").returncode == 0
            assert ours(state_dir, start.owners) == []
    # AND most signals landed inside the start (else this tests nothing)
    assert interrupted >= 4, (interrupted, offsets, start_s)
