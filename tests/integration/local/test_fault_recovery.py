"""kill -9 of moto, PostgreSQL and the engine: `status` tells the truth, `start` brings each back with its data.

One environment of the small test plan serves the module, started as `workbook local start`
would (in a process of its own); the tests then act on it through the console script, in order.
An innocent decoy runs throughout and must survive, and after the final stop nothing of any
owner the environment had is left.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import boto3
import pg8000.dbapi
import pytest
from fault_helpers import cli_env, end_decoy, kill_9, ours, sandboxes, start_decoy, start_small, state_of, workbook

from workbook.local import processes, services

pytestmark = pytest.mark.timeout(600)
MARK = "written before the faults"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("faults") / "state"
    decoy = start_decoy()
    recorded = start_small(state_dir)
    owners = {recorded["owner"]}
    try:   # a failure from here on still stops the environment (and the decoy)
        _sql(recorded, "CREATE TABLE fault_marker (note text)", f"INSERT INTO fault_marker VALUES ('{MARK}')")
        yield {"state_dir": state_dir, "owners": owners}
    finally:
        stopped = workbook(state_dir, "local", "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert ours(state_dir, owners) == []
        assert end_decoy(decoy) is None


def _sql(recorded: dict, *statements: str) -> list:
    # The superuser's password from its 0600 file (the local PostgreSQL checks it: scram-sha-256)
    password = services.read_password(Path(recorded["postgres"]["data_dir"]))
    connection = pg8000.dbapi.connect(host="127.0.0.1", port=recorded["postgres"]["port"], user="postgres",
                                      password=password, database="workbook", timeout=10)
    try:
        cursor = connection.cursor()
        rows = []
        for statement in statements:
            cursor.execute(statement)
            rows = [list(row) for row in cursor.fetchall()] if cursor.description else rows
        connection.commit()
        return rows
    finally:
        connection.close()


def _invoke_echo(state_dir) -> dict:
    result = workbook(state_dir, "local", "invoke", "lwbt-clock", "--event", "-", input_text='{"ping": 1}')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _status(state_dir) -> tuple[int, str]:
    result = workbook(state_dir, "local", "status")
    return result.returncode, result.stdout


def test_kill_9_postgres_then_status_then_start_brings_it_back_with_its_data(env):
    state_dir = env["state_dir"]
    before = state_of(state_dir)
    # WHEN PostgreSQL is killed
    kill_9(before["postgres"])
    # THEN status says so, process by process, and that the environment is not running
    code, text = _status(state_dir)
    assert code == 3 and "running:       no: some processes died" in text, text
    assert f"postgres   pid {before['postgres']['pid']} port {before['postgres']['port']} DEAD" in text
    assert f"moto       pid {before['moto']['pid']} port {before['moto']['port']} alive" in text
    assert _verify(state_dir, before["owner"]) == "the environment is not healthy: postgres dead"
    # WHEN start runs
    started = workbook(state_dir, "local", "start")
    # THEN PostgreSQL alone came back: same owner, same port, same data; the rest untouched
    assert started.returncode == 0 and "restarting postgres (owner" in started.stderr, started.stderr
    after = state_of(state_dir)
    assert after["owner"] == before["owner"] and after["generation"] == before["generation"] + 1
    assert after["postgres"]["port"] == before["postgres"]["port"] and after["postgres"]["pid"] != before["postgres"]["pid"]
    assert (after["moto"]["pid"], after["engine"]["pid"]) == (before["moto"]["pid"], before["engine"]["pid"])
    assert _sql(after, "SELECT note FROM fault_marker") == [[MARK]]
    assert _status(state_dir)[0] == 0 and _invoke_echo(state_dir)["event"] == {"ping": 1}
    assert _verify(state_dir, before["owner"]) == "ok"


def test_kill_9_moto_then_start_provisions_it_again_on_its_port(env):
    state_dir = env["state_dir"]
    before = state_of(state_dir)
    _invoke_echo(state_dir)
    old_sandboxes = sandboxes(before["owner"])
    # WHEN moto is killed (its resources live in its memory)
    kill_9(before["moto"])
    code, text = _status(state_dir)
    assert code == 3 and f"moto       pid {before['moto']['pid']} port {before['moto']['port']} DEAD" in text, text
    # THEN start brings it back on the same endpoint, provisions the plan again and restarts the engine
    started = workbook(state_dir, "local", "start")
    assert started.returncode == 0 and "restarting moto, engine (owner" in started.stderr, started.stderr
    after = state_of(state_dir)
    assert after["endpoint_url"] == before["endpoint_url"] and after["moto"]["pid"] != before["moto"]["pid"]
    assert after["engine"]["pid"] != before["engine"]["pid"]
    assert after["engine"]["ports"]["control"] == before["engine"]["ports"]["control"]
    sqs = boto3.client("sqs", endpoint_url=after["endpoint_url"], region_name="us-east-1")
    assert any(url.endswith("/lwbt-work") for url in sqs.list_queues().get("QueueUrls", []))
    # AND the old engine's execution environments are gone, and the new ones work
    assert not set(old_sandboxes) & set(sandboxes(after["owner"]))
    assert _sql(after, "SELECT note FROM fault_marker") == [[MARK]]
    assert _invoke_echo(state_dir)["event"] == {"ping": 1}


def test_kill_9_engine_leaves_frozen_sandboxes_that_start_sweeps(env):
    state_dir = env["state_dir"]
    first = _invoke_echo(state_dir)
    before = state_of(state_dir)
    warm = sandboxes(before["owner"])
    assert first["pid"] in warm
    # WHEN the engine is killed, its execution environments (frozen, in sessions of their own) stay behind
    kill_9(before["engine"])
    assert set(warm) <= set(sandboxes(before["owner"]))
    code, text = _status(state_dir)
    assert code == 3 and f"engine     pid {before['engine']['pid']}" in text and "DEAD" in text, text
    # THEN start ends them and starts an engine on the same ports
    started = workbook(state_dir, "local", "start")
    assert started.returncode == 0 and "restarting engine (owner" in started.stderr, started.stderr
    assert "leftover process(es) of this environment" in started.stderr
    after = state_of(state_dir)
    assert after["engine"]["ports"] == before["engine"]["ports"]
    assert not set(warm) & set(sandboxes(after["owner"]))
    assert _invoke_echo(state_dir)["pid"] not in warm


def test_restart_replaces_every_process_keeping_owner_ports_and_data(env):
    state_dir = env["state_dir"]
    before = state_of(state_dir)
    restarted = workbook(state_dir, "local", "restart")
    assert restarted.returncode == 0, restarted.stderr
    after = state_of(state_dir)
    assert after["owner"] == before["owner"] and after["generation"] == before["generation"] + 1
    for name in ("moto", "postgres", "engine"):
        assert after[name]["pid"] != before[name]["pid"]
        assert processes.Identity.from_dict(before[name]).check() is not processes.Liveness.ALIVE
    assert (after["moto"]["port"], after["postgres"]["port"], after["engine"]["ports"]) == \
        (before["moto"]["port"], before["postgres"]["port"], before["engine"]["ports"])
    assert _sql(after, "SELECT note FROM fault_marker") == [[MARK]]
    assert _status(state_dir)[0] == 0


def test_kill_9_of_everything_is_a_stale_state_and_start_begins_anew_on_the_same_data(env):
    state_dir = env["state_dir"]
    _invoke_echo(state_dir)
    before = state_of(state_dir)
    warm = sandboxes(before["owner"])
    for name in ("engine", "moto", "postgres"):
        kill_9(before[name])
    code, text = _status(state_dir)
    assert code == 3 and "the state file is stale" in text and text.count("DEAD") == 3, text
    # WHEN a new environment starts in the same folder
    recorded = start_small(state_dir)
    env["owners"].add(recorded["owner"])
    # THEN it is a new environment (new owner), the old one's leftovers are gone, and the data is kept
    assert recorded["owner"] != before["owner"] and recorded["generation"] == 1
    assert processes.carrying(before["owner"]) == [] and not set(warm) & set(sandboxes(recorded["owner"]))
    assert _sql(recorded, "SELECT note FROM fault_marker") == [[MARK]]


def _verify(state_dir, owner: str) -> str:
    """``manager.verify(owner)`` asked from another process (as a `workbook run` would): its reason, or "ok"."""
    script = (f"from workbook.local import manager; check = manager.verify({owner!r}); "
              "print('ok' if check else check.reason)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=cli_env(state_dir),
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
