"""Starts at the same time, and ports taken by someone else between choice and bind.

Two environments started at once in different state folders must each get their own ports
and processes, several times over. A port another program holds (even one that answers like
moto) must never be adopted: the service moves to a new port, and the other program is left alone.
"""
from __future__ import annotations

import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from fault_helpers import end_decoy, ours, start_decoy, start_small, workbook

from workbook.local import processes, services

pytestmark = pytest.mark.timeout(900)


def _ports(recorded: dict) -> set[int]:
    return {recorded["moto"]["port"], recorded["postgres"]["port"], *recorded["engine"]["ports"].values()}


@pytest.mark.parametrize("round_", range(3))
def test_two_environments_started_at_once_are_separate(tmp_path, round_):
    # GIVEN two state folders and an innocent program
    folders = [tmp_path / "a", tmp_path / "b"]
    decoy = start_decoy()
    try:
        # WHEN both environments start at the same moment
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(start_small, folders)
        # THEN each has ports of its own...
        assert first["owner"] != second["owner"]
        assert not _ports(first) & _ports(second), (_ports(first), _ports(second))
        # ... held by its own processes (not the other's)
        for recorded in (first, second):
            assert processes.listens_on(recorded["moto"]["pid"], recorded["moto"]["port"])
            assert processes.listens_on(recorded["postgres"]["pid"], recorded["postgres"]["port"])
            assert processes.listens_on(recorded["engine"]["pid"], recorded["engine"]["ports"]["control"])
        # ... and its own AWS endpoint
        name = f"only-in-a-{uuid.uuid4().hex[:6]}"
        client = {key: boto3.client("sqs", endpoint_url=recorded["endpoint_url"], region_name="us-east-1")
                  for key, recorded in (("a", first), ("b", second))}
        client["a"].create_queue(QueueName=name)
        assert not any(url.endswith(f"/{name}") for url in client["b"].list_queues().get("QueueUrls", []))
        assert all(workbook(folder, "local", "status").returncode == 0 for folder in folders)
    finally:
        with ThreadPoolExecutor(2) as pool:
            stops = list(pool.map(lambda folder: workbook(folder, "local", "stop"), folders))
    # AND both stop completely, and nothing else was touched
    assert all(stop.returncode == 0 for stop in stops), [stop.stderr for stop in stops]
    for folder in folders:
        assert ours(folder, set()) == []
    assert processes.carrying(first["owner"]) == [] and processes.carrying(second["owner"]) == []
    assert end_decoy(decoy) is None


class _LooksLikeMoto(BaseHTTPRequestHandler):
    """Another program on the port, answering moto's readiness probe: it must never be taken for ours."""

    requests: list[str] = []

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        return


def test_moto_moves_off_a_port_another_server_answers_on(tmp_path):
    # GIVEN a port held by another HTTP server that answers like moto
    imposter = ThreadingHTTPServer(("127.0.0.1", 0), _LooksLikeMoto)
    threading.Thread(target=imposter.serve_forever, daemon=True).start()
    taken = imposter.server_address[1]
    spawned: list[processes.Identity] = []
    try:
        # WHEN moto is started with that port as its first choice
        server = services.with_port_retry(
            lambda port: services.start_moto(tmp_path, "lwb-test00000000", spawned.append, port), preferred=taken)
        # THEN it runs on another port, which it holds itself; the first attempt ended with "address in use"
        assert server.port != taken and processes.listens_on(server.pid, server.port)
        assert len(spawned) == 2 and spawned[0].check() is processes.Liveness.DEAD
        assert "Address already in use" in (tmp_path / "moto.log").read_text()
        # AND the other server was never asked (nothing took it for moto), and still serves
        assert _LooksLikeMoto.requests == []
        assert processes.end(server.identity).signalled
    finally:
        imposter.shutdown()
        imposter.server_close()


def test_postgres_moves_off_a_taken_port_without_talking_to_its_holder(tmp_path):
    # GIVEN a port held by another program's listening socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    holder.setblocking(False)
    taken = holder.getsockname()[1]
    spawned: list[processes.Identity] = []
    try:
        # WHEN PostgreSQL is started with that port as its first choice
        data = tmp_path / "data"   # as the manager lays it out (pgserver makes its parents reachable)
        database = services.with_port_retry(
            lambda port: services.start_postgres(data, "lwb-test00000000", spawned.append, port), preferred=taken)
        # THEN it runs on another port it holds itself, and answers there
        assert database.port != taken and processes.listens_on(database.pid, database.port)
        assert len(spawned) == 2 and "could not bind" in (data / "postgres.log").read_text()
        connection = database.connect()
        connection.close()
        # AND nobody connected to the other program's socket
        with pytest.raises(BlockingIOError):
            holder.accept()
        assert processes.end(database.identity, first_signal=2).signalled
    finally:
        holder.close()
