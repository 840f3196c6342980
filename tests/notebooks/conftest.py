"""One real ``workbook run --env local`` for the notebook tests, the way ``make run`` runs it.

The run starts its own local environment (and stops it), drives traffic and runs the six
notebooks. Secrets are planted in every form the issue names, through the user's own setup, not
through the code under test:
- environment variables: ``LWB_PULUMI_PASS`` with ``& < > "`` in it, ``JWT_SIGNING_KEY``, a
  ``DATABASE_URL`` with a password, and ``PULUMI_CONFIG_PASSPHRASE_FILE`` naming a passphrase file;
- an IPython startup file (``IPYTHONDIR``) that makes every kernel of the run print those values
  and the local environment's own secrets raw, as JSON, base64, base64url, hex, URL-encoded, inside
  a Basic auth header, wrapped across two lines, in a pandas table that cuts them short, as HTML,
  and on the kernel's stderr (``kernels.log``).
While the run goes, the fixture reads the local environment's secrets back from the environment
itself (its endpoint, from its state file), to check every output against them.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.notebooks.faults import REPO, Decoys, Sandbox

PLANTED = {
    "LWB_PULUMI_PASS": 'pl&nted <pass> "phrase" 7f3c9a1e',
    "JWT_SIGNING_KEY": "planted-jwt-signing-key-5e2b8d41",
    "DATABASE_URL": "postgresql://app:Planted-Db-Pass-9c1d77@db.example:5432/app",
}
PLANTED_FILE_PASSPHRASE = "planted-file-passphrase-33aa0f"
PLANTED_VALUES = {PLANTED["LWB_PULUMI_PASS"], PLANTED["JWT_SIGNING_KEY"], "Planted-Db-Pass-9c1d77",
                  PLANTED_FILE_PASSPHRASE}

STARTUP = r'''
"""Test only: every kernel of the run shows the planted secrets, and the local environment's, in every form."""
import base64, json, os, sys, urllib.parse


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, str) and len(value) >= 16:
        yield value


def _values():
    values = [os.environ["LWB_PULUMI_PASS"], os.environ["JWT_SIGNING_KEY"],
              urllib.parse.urlsplit(os.environ["DATABASE_URL"]).password,
              open(os.environ["PULUMI_CONFIG_PASSPHRASE_FILE"]).read().strip()]
    if os.environ.get("AWS_ENDPOINT_URL"):      # the notebook opened its session on the local environment
        import boto3
        client = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        for entry in client.list_secrets()["SecretList"]:
            text = client.get_secret_value(SecretId=entry["ARN"])["SecretString"]
            print("the secret", entry["Name"], "is", text)
            values += list(_leaves(json.loads(text)))
    return values


def _show(result):
    shell = get_ipython()
    if "session" not in shell.user_ns and "view" not in shell.user_ns:
        return
    shell.events.unregister("post_run_cell", _show)
    import pandas as pd
    from IPython.display import HTML, display
    for value in _values():
        data = value.encode()
        print(value)
        print(json.dumps({"secret": value}))
        print(base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode().rstrip("="), data.hex())
        print(urllib.parse.quote(value, safe=""), "Authorization: Basic", base64.b64encode(b"user:" + data).decode())
        print(value[: len(value) // 2] + "\n" + value[len(value) // 2:])
        with pd.option_context("display.max_colwidth", 24):
            display(pd.DataFrame({"name": ["planted"], "value": [value + value]}))
        display(HTML("<p>HTML: " + value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                     .replace('"', "&quot;") + "</p>"))
        print("kernel stderr:", value, file=sys.__stderr__, flush=True)


get_ipython().events.register("post_run_cell", _show)
'''


def _plant(root: Path) -> dict[str, str]:
    startup = root / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-plant.py").write_text(STARTUP)
    passphrase = root / "passphrase"
    passphrase.write_text(PLANTED_FILE_PASSPHRASE + "\n")
    return {**PLANTED, "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase), "IPYTHONDIR": str(root / "ipython")}


class LocalSecrets(threading.Thread):
    """Reads the local environment's secrets from its own endpoint, once it is up."""

    def __init__(self, state_dir: Path, run: subprocess.Popen) -> None:
        super().__init__(daemon=True)
        self.state_dir, self.run_process, self.values = state_dir, run, set()

    def run(self) -> None:
        import boto3

        while self.run_process.poll() is None and not self.values:
            try:
                state = json.loads((self.state_dir / "state.json").read_text())
                if state.get("engine", {}).get("pid") and state.get("endpoints"):
                    client = boto3.client("secretsmanager", endpoint_url=state["endpoint_url"], region_name="us-east-1",
                                          aws_access_key_id="testing", aws_secret_access_key="testing")
                    for entry in client.list_secrets()["SecretList"]:
                        parsed = json.loads(client.get_secret_value(SecretId=entry["ARN"])["SecretString"])
                        # Every field but the ones that are not secret: where things are, and who.
                        self.values |= {v for k, v in _flat(parsed) if k not in ("host", "username", "dbname",
                                        "engine", "port") and not v.startswith(("http://", "https://"))}
            except Exception:  # noqa: BLE001 - the state file or the endpoint is still coming up
                pass
            time.sleep(0.2)


def _flat(value, key=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flat(v, k)
    elif isinstance(value, str):
        yield key, value


@pytest.fixture(scope="session")
def local_run(tmp_path_factory):
    """`workbook run --env local` starting its own environment, with planted secrets; the run's folder."""
    box = Sandbox(tmp_path_factory.mktemp("local-run"))
    process = subprocess.Popen([sys.executable, "-m", "workbook.cli", "run", "--env", "local", "--traffic-seconds", "25"],
                               cwd=REPO, env=box.environ(**_plant(box.root)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    reader = LocalSecrets(box.state_dir, process)
    reader.start()
    stdout, stderr = process.communicate(timeout=1800)
    reader.join(10)
    assert process.returncode == 0, stderr[-4000:]
    assert reader.values, "the local environment's secrets could not be read back from it"
    folder = Path(stdout.strip().splitlines()[-1])
    return {"folder": folder, "secrets": PLANTED_VALUES | reader.values, "stderr": stderr, "box": box}


@pytest.fixture(scope="module")
def decoys():
    """Innocent processes that a fault test's run must leave alone (checked once per module)."""
    processes = Decoys()
    yield processes
    assert processes.all_alive(), "a process that was not the run's was touched"
    processes.stop()
