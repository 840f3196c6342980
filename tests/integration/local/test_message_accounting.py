"""Every message is accounted for: 2,000 on the task queue, 5% poison, the engine killed mid-load.

The real stack (offline plan of params/local.yaml) runs with a fast-redrive overlay in a params
folder of its own: the data-processor's timeout is 3 s (a batch of 20 takes about 0.1 s warm), so
the task queue's visibility timeout can be 18 s (the schema keeps it at 6x), and maxReceiveCount is 3; batches of 20 on one vCPU
(1,769 MB) keep the run to minutes on two shared cores. Valid messages are stored by the
real data-processor in PostgreSQL, keyed on their business key; poison ones fail validation, are
redelivered, and reach the DLQ. Midway the engine is killed with SIGKILL, `start` repairs it, and
the messages its invocations held come back after the visibility timeout.

The counts at the end are exact: stored once (one row per valid key, none else), in the DLQ
(exactly the poison), in flight (none) and missing (none).
"""
from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pg8000.dbapi
import pytest
import yaml
from fault_helpers import kill_9

from infra import config
from workbook import aws
from workbook.local import manager, processes, services

pytestmark = pytest.mark.timeout(1800)
TOTAL, POISON_SHARE = 2000, 0.05
OVERLAY = {"functions": {"data-processor": {"timeout_s": 3, "memory_mb": 1769}},
           "task_queue": {"visibility_timeout_s": 18, "max_receive_count": 3, "batch_size": 20, "batching_window_s": 1}}


@pytest.fixture
def fast_redrive(tmp_path, monkeypatch):
    """params/local.yaml with the overlay, in a params folder of its own; an environment of it."""
    params_dir = tmp_path / "params"
    params_dir.mkdir()
    raw = yaml.safe_load((config.PARAMS_DIR / "local.yaml").read_text())
    for section, values in OVERLAY.items():
        for key, value in values.items():
            if isinstance(value, dict):
                raw[section].setdefault(key, {}).update(value)
            else:
                raw[section][key] = value
    (params_dir / "local.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    settings = config.load("local", params_dir=params_dir)
    monkeypatch.setenv("WORKBOOK_STATE_DIR", str(tmp_path / "state"))
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_LAMBDA", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    recorded = manager.start("local", settings=settings)
    try:
        yield settings, recorded
    finally:
        manager.stop()
        aws.reset_clients()
        assert processes.carrying(recorded["owner"]) == []


def _messages(seed: int = 14) -> tuple[list[dict], set[str], set[str]]:
    rng = random.Random(seed)
    poison_at = set(rng.sample(range(TOTAL), int(TOTAL * POISON_SHARE)))
    bodies, valid, poison = [], set(), set()
    for index in range(TOTAL):
        if index in poison_at:
            key = f"poison-{index}"
            bodies.append({"kind": "order.created", "business_key": key, "payload": "not an object"})
            poison.add(key)
        else:
            key = f"order-{index}"
            bodies.append({"kind": "order.created", "business_key": key, "payload": {"index": index}})
            valid.add(key)
    return bodies, valid, poison


def _stored(recorded: dict) -> list[tuple[str, int]]:
    # The superuser's password from its 0600 file (the local PostgreSQL checks it: scram-sha-256)
    password = services.read_password(Path(recorded["postgres"]["data_dir"]))
    connection = pg8000.dbapi.connect(host="127.0.0.1", port=recorded["postgres"]["port"], user="postgres",
                                      password=password, database="workbook", timeout=10)
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT record_key, deliveries FROM processed_records")
        return [(row[0], int(row[1])) for row in cursor.fetchall()]
    finally:
        connection.close()


def _depth(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                        "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def _drain(sqs, url: str) -> list[str]:
    keys = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return keys
        for message in batch:
            keys.append(json.loads(message["Body"])["business_key"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _kill_and_repair(settings, recorded: dict) -> int:
    """SIGKILL the engine, let `start` repair the environment; how many were stored at the kill."""
    print(f"{time.strftime('%H:%M:%S')} killing the engine", flush=True)
    kill_9(recorded["engine"])
    stored = len(_stored(recorded))
    repaired = manager.start("local", settings=settings)
    assert repaired["owner"] == recorded["owner"] and repaired["engine"]["pid"] != recorded["engine"]["pid"]
    return stored


def test_two_thousand_messages_with_poison_and_a_killed_engine_are_all_accounted_for(fast_redrive):
    settings, recorded = fast_redrive
    sqs = aws.client("sqs")
    queue = sqs.get_queue_url(QueueName=settings.name("task"))["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=settings.name("task-dlq"))["QueueUrl"]
    bodies, valid, poison = _messages()
    # GIVEN 2,000 messages on the task queue, 100 of them poison
    print(f"\n{time.strftime('%H:%M:%S')} sending", flush=True)
    stored_at_kill, sent_at_kill = None, None
    for start in range(0, TOTAL, 10):
        entries = [{"Id": str(n), "MessageBody": json.dumps(body)} for n, body in enumerate(bodies[start:start + 10])]
        assert not sqs.send_message_batch(QueueUrl=queue, Entries=entries).get("Failed")
        # WHEN the engine is killed with SIGKILL once about a third is stored (the rest still to come,
        # some of it sent while no engine runs), and start repairs the environment
        if stored_at_kill is None and (start // 10) % 5 == 4 and len(_stored(recorded)) >= TOTAL // 3:
            stored_at_kill, sent_at_kill = _kill_and_repair(settings, recorded), start + 10
    if stored_at_kill is None:   # the processing fell behind the sending: kill once a third is stored
        deadline = time.monotonic() + 600
        while len(_stored(recorded)) < TOTAL // 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        stored_at_kill, sent_at_kill = _kill_and_repair(settings, recorded), TOTAL
    assert TOTAL // 3 <= stored_at_kill < TOTAL * 2 // 3, (stored_at_kill, sent_at_kill)
    # AND the queue drains (the killed invocations' messages return after the visibility timeout)
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        depth, dead_depth, stored = _depth(sqs, queue), _depth(sqs, dlq), len(_stored(recorded))
        print(f"{time.strftime('%H:%M:%S')} queue {depth} DLQ {dead_depth} stored {stored}", flush=True)
        if depth == 0 and dead_depth >= len(poison) and stored >= len(valid):
            break
        time.sleep(2)
    # THEN every valid message is stored exactly once, and nothing else is
    rows = _stored(recorded)
    keys = [key for key, _ in rows]
    redelivered = sum(1 for _, deliveries in rows if deliveries > 1)
    dead = _drain(sqs, dlq)
    in_flight = _depth(sqs, queue)
    missing = valid - set(keys)
    print(f"\naccounting: sent {TOTAL} ({len(poison)} poison); stored {len(set(keys))} (rows {len(rows)}, "
          f"{redelivered} upserted again after a redelivery; {stored_at_kill} stored when the engine was killed, "
          f"{sent_at_kill} sent); "
          f"DLQ {len(dead)}; in flight {in_flight}; missing {len(missing)}")
    assert len(keys) == len(set(keys)) and set(keys) == valid, (len(keys), len(missing))
    # AND exactly the poison is in the DLQ, each once; nothing is in flight; nothing is missing
    assert sorted(dead) == sorted(poison)
    assert in_flight == 0 and not missing
    assert len(set(keys)) + len(dead) + in_flight == TOTAL
