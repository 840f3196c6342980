"""A regular (non-editable) install works: `pip install .`, then the CLI from the project folder.

The project is built into a wheel and installed with ``--no-deps`` into a venv of its own; its
dependencies come from this venv's site-packages through a ``.pth`` line, which adds the folder
but runs none of its ``.pth`` files (so setuptools' editable finder, which would put the checkout
back on the path, stays out). Only the build backend (setuptools, in pip's isolated build) is fetched.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from infra.project import ENV_VAR

pytestmark = pytest.mark.timeout(300)
REPO = Path(__file__).resolve().parents[3]


def _run(command: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A venv with the project installed from its wheel; returns the venv's folder."""
    work = tmp_path_factory.mktemp("regular-install")
    source = work / "source"      # a copy, so the build leaves no build/ or egg-info in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("workbook", "infra"):   # without the checkout's built extension: the wheel builds its own
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(work / "dist"), str(source)], check=True, capture_output=True, timeout=240)
    wheel = next((work / "dist").glob("lambda_workbook-*.whl"))
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=60)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--quiet",
                    "--no-deps", "--disable-pip-version-check", str(wheel)], check=True, capture_output=True,
                   timeout=240)
    site_packages = Path(_run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                              work, {"PATH": "/usr/bin:/bin"}).stdout.strip())
    (site_packages / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def _environment(state_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("AWS_ENDPOINT_URL", "PYTHON", "WORKBOOK_")) and name not in ("AWS_REGION", ENV_VAR)}
    env["WORKBOOK_STATE_DIR"] = str(state_dir)
    if "WORKBOOK_CACHE_DIR" in os.environ:
        env["WORKBOOK_CACHE_DIR"] = os.environ["WORKBOOK_CACHE_DIR"]
    return env


def test_the_install_is_a_regular_one(installed):
    # GIVEN the installed package (-P: as the console script, without the working directory on the path)
    # THEN it is imported from the venv's site-packages, not from the checkout
    done = _run([str(installed / "bin" / "python"), "-P", "-c", "import workbook, infra; print(workbook.__file__); "
                 "print(infra.__file__)"], REPO, {"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert Path(line).is_relative_to(installed) and "site-packages" in line


def test_the_wheel_carries_the_compiled_json_reader(installed):
    # GIVEN the installed package WHEN its compiled JSON reader is imported THEN it is there, built
    # by the wheel from setup.py (the copy of the sources had no built extension)
    done = _run([str(installed / "bin" / "python"), "-P", "-c", "from workbook.telemetry import _reportjson, "
                 "jsoncompiled; print(jsoncompiled.AVAILABLE, _reportjson.__file__)"], REPO, {"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    available, where = done.stdout.split()
    assert available == "True" and Path(where).is_relative_to(installed)


def test_outside_a_project_the_cli_says_where_it_looked(installed, tmp_path):
    done = _run([str(installed / "bin" / "workbook"), "local", "status"], tmp_path, _environment(tmp_path / "state"))
    assert done.returncode == 2, done.stderr
    assert f"no workbook project folder in {tmp_path}" in done.stderr and ENV_VAR in done.stderr


def test_start_invoke_and_stop_from_the_project_folder(installed, tmp_path):
    workbook = str(installed / "bin" / "workbook")
    env = _environment(tmp_path / "state")
    # WHEN the user starts the local environment from the project folder
    started = _run([workbook, "local", "start"], REPO, env)
    try:
        assert started.returncode == 0, started.stderr
        # THEN a function runs in the sandbox, started from the installed package (its runtime isolated)
        event = {"version": "2.0", "routeKey": "GET /health", "rawPath": "/health", "rawQueryString": "",
                 "headers": {"host": "localhost"}, "isBase64Encoded": False,
                 "requestContext": {"http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                                             "sourceIp": "127.0.0.1", "userAgent": "test"},
                                    "requestId": "r1", "routeKey": "GET /health", "stage": "$default"}}
        invoked = _run([workbook, "local", "invoke", "api-processor", "--event", "-"], REPO, env,
                       stdin=json.dumps(event))
        assert invoked.returncode == 0, invoked.stderr
        assert json.loads(invoked.stdout)["statusCode"] == 200
        assert any(line.startswith("REPORT RequestId:") for line in invoked.stderr.splitlines())
        # and the engine runs the installed code, not the checkout's
        state = json.loads((tmp_path / "state" / "state.json").read_text())
        with open(f"/proc/{state['engine']['pid']}/environ", "rb") as handle:
            engine_env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        assert engine_env[b"PYTHONPATH"].decode().startswith(str(installed))
        assert engine_env[ENV_VAR.encode()].decode() == str(REPO)
    finally:
        stopped = _run([workbook, "local", "stop"], REPO, env)
    assert stopped.returncode == 0, stopped.stderr
