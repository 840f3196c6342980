"""Handler tests: put handlers/ and the shared test kit on sys.path, and load the shared fixtures."""
from __future__ import annotations

import sys
from pathlib import Path

_KIT = Path(__file__).resolve().parents[2] / "functional"
if str(_KIT) not in sys.path:
    sys.path.insert(0, str(_KIT))

import os

import pytest
from handler_fixtures import *  # noqa: F403 - fixtures


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's server on a free loopback port for the session; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def local_aws(moto_endpoint, monkeypatch):
    """Point boto3 (handlers and test clients alike) at the moto server; reset its state afterwards."""
    import urllib.request

    import boto3

    for name, value in {"AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    yield lambda service: boto3.client(service, region_name="us-east-1", endpoint_url=moto_endpoint)
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST"), timeout=10).read()
    os.environ.get("AWS_ENDPOINT_URL")  # restored by monkeypatch


@pytest.fixture
def pg_secret(pg, local_aws):
    """Empty tables, and the database secret stored on the moto server."""
    import json

    from handler_kit import truncate_all

    truncate_all(pg)
    local_aws("secretsmanager").create_secret(Name="lwb-test/db", SecretString=json.dumps(pg))
    return pg
