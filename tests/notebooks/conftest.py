"""One real `workbook run --env local` for the notebook tests: local environment, traffic, six notebooks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLANTED_PASSPHRASE = "planted-passphrase-7f3c9a1e"


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """Start the local environment, note its secrets, run the CLI against it, stop it."""
    state_dir = tmp_path_factory.mktemp("local-state")
    outputs = tmp_path_factory.mktemp("outputs")
    env = {**os.environ, "WORKBOOK_STATE_DIR": str(state_dir), "WORKBOOK_OUTPUTS_DIR": str(outputs),
           "PULUMI_CONFIG_PASSPHRASE": PLANTED_PASSPHRASE}
    previous = {k: os.environ.get(k) for k in ("WORKBOOK_STATE_DIR", "AWS_ENDPOINT_URL")}
    os.environ["WORKBOOK_STATE_DIR"] = str(state_dir)
    from workbook import aws
    from workbook.local import manager

    manager.start("local")
    try:
        manager.activate()
        secrets = _secret_values(aws)
        result = subprocess.run([sys.executable, "-m", "workbook.cli", "run", "--env", "local",
                                 "--traffic-seconds", "25"], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=1200)
    finally:
        manager.stop()
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()
    assert result.returncode == 0, result.stderr[-4000:]
    folder = Path(result.stdout.strip().splitlines()[-1])
    return {"folder": folder, "secrets": secrets | {PLANTED_PASSPHRASE}, "stderr": result.stderr}


def _secret_values(aws) -> set[str]:
    client = aws.client("secretsmanager")
    values: set[str] = set()
    for entry in client.list_secrets()["SecretList"]:
        text = client.get_secret_value(SecretId=entry["ARN"])["SecretString"]
        parsed = json.loads(text)
        for key, value in parsed.items():
            if key in ("password", "hs256_key", "webhook_token"):
                values.add(value)
            if key == "api_keys":
                values |= set(value.values())
    assert values, "the local environment should hold generated secrets"
    return values
