"""Fixtures of the analysis tests: a moto server on loopback, the local endpoint pointed at it."""
from __future__ import annotations

import socket

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """One moto server for the session (state is reset per test by ``local_endpoint``)."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def local_endpoint(moto_server, monkeypatch):
    """AWS_ENDPOINT_URL set to the moto server, fresh clients and a fresh moto state."""
    import requests

    from workbook import aws
    from workbook.telemetry import notes

    requests.post(f"{moto_server}/moto-api/reset", timeout=10)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setattr(notes, "_NOTES_SAID", set())
    aws.reset_clients()
    yield moto_server
    aws.reset_clients()
