"""Start, stop and find the one local environment.

``start`` brings up moto's server, the embedded PostgreSQL (schema migrated), provisions the
plan's resources and starts the engine (the sandbox with its event sources and endpoints). Each
step records its process in the state file first, so a failed start is cleaned up by ``stop``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from infra import config
from workbook import aws
from workbook.deploy.plan import offline_plan
from workbook.local import services
from workbook.local import state as state_file
from workbook.local.engine import LISTENERS_ENV
from workbook.local.errors import AlreadyRunningError, NotRunningError, ServiceStartError
from workbook.local.provision import HANDLERS_DIR, provision
from workbook.local.sandbox import detect

ENGINE_PORTS = ("control", "api", "function_url", "extension", "webhook")


@contextlib.contextmanager
def _exclusive():
    """One start or stop at a time (two shells starting at once must not both start one)."""
    folder = state_file.state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _running(state: dict | None) -> bool:
    return bool(state) and services.alive(state.get("moto", {}).get("pid")) and \
        services.alive(state.get("engine", {}).get("pid"))


def current() -> dict[str, Any] | None:
    """The state of the running environment, or None."""
    recorded = state_file.read()
    return recorded if _running(recorded) else None


def _export(recorded: dict) -> None:
    os.environ["AWS_ENDPOINT_URL"] = recorded["endpoint_url"]
    if recorded.get("engine", {}).get("ports", {}).get("control"):
        # Lambda's Invoke API is the engine's; plain boto3 clients and the AWS CLI honour this
        # service-specific variable over AWS_ENDPOINT_URL.
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = endpoints(recorded)["lambda"]
    os.environ["AWS_REGION"] = recorded.get("region", "us-east-1")
    os.environ.setdefault("AWS_DEFAULT_REGION", recorded.get("region", "us-east-1"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset_clients()


def activate(start_if_needed: bool = False, env: str = "local") -> dict[str, Any]:
    """Point this process's boto3 clients at the running local environment (or start one).

    Sets AWS_ENDPOINT_URL (and region, test credentials) in ``os.environ``, so child processes
    inherit it, then resets ``workbook.aws``'s cached clients.
    """
    recorded = current()
    if recorded is None:
        if not start_if_needed:
            raise NotRunningError("no local environment is running; start one with `workbook local start`")
        try:
            recorded = start(env)
        except AlreadyRunningError:   # another process started one meanwhile: use it
            recorded = current()
            if recorded is None:
                raise
    _export(recorded)
    return recorded


def ensure_running(env: str = "local") -> dict[str, Any]:
    """The running environment's state, starting one when none is up."""
    return activate(start_if_needed=True, env=env)


def start(env: str = "local", plan: dict | None = None, settings=None, *, progress=None,
          code_paths: list[str] | None = None) -> dict[str, Any]:
    """Start the local environment; returns its state. Raises AlreadyRunningError when one is up.

    ``plan`` defaults to the offline plan of ``env`` and ``settings`` to ``params/<env>.yaml``;
    ``code_paths`` (default: ``handlers/``) is where the functions' modules are found.
    """
    with _exclusive():
        return _start(env, plan, settings, progress=progress, code_paths=code_paths)


def _start(env: str, plan: dict | None, settings, *, progress, code_paths: list[str] | None) -> dict[str, Any]:
    say = progress or (lambda message: None)
    settings = settings or config.load(env)   # a bad env or params file fails before anything starts
    existing = state_file.read()
    if _running(existing):
        raise AlreadyRunningError(f"a local environment is already running (state: {state_file.state_path()}); "
                                  "use it, or stop it with `workbook local stop`")
    if existing:
        _stop()   # a dead or half-started one: clean up what is left
    folder = state_file.state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "engine.ready").unlink(missing_ok=True)
    owner = f"lwb-{uuid.uuid4().hex[:12]}"
    recorded: dict[str, Any] = {"env": env, "owner": owner, "state_dir": str(folder), "data_dir": str(folder / "data"),
                                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1"}
    state_file.write(recorded)
    try:
        say("starting moto's server")
        moto = services.with_port_retry(lambda: services.start_moto(folder))
        recorded.update(moto={"pid": moto.pid, "port": moto.port}, endpoint_url=moto.endpoint_url)
        state_file.write(recorded)
        say("starting PostgreSQL")
        database = services.with_port_retry(lambda: services.start_postgres(folder / "data"))
        recorded["postgres"] = {"pid": database.pid, "port": database.port, "data_dir": database.data_dir}
        state_file.write(recorded)
        _migrate(database)
        _export(recorded)
        recorded["region"] = settings.params.aws_region
        if plan is None:
            say("planning the stack (offline)")
            plan = offline_plan(env, settings).to_dict()
        # The engine's ports are bound here and the sockets handed over: no other start can take them meanwhile.
        listeners = {name: services.listening_socket() for name in ENGINE_PORTS}
        ports = {name: sock.getsockname()[1] for name, sock in listeners.items()}
        say("provisioning queues, topics, buckets, secrets and log groups")
        topology = provision(plan, settings, aws.client, database_secret=database.secret(),
                             webhook_url=f"http://127.0.0.1:{ports['webhook']}/webhook", code_paths=code_paths)
        (folder / "topology.json").write_text(json.dumps(topology, indent=2))
        (folder / "topology.json").chmod(0o600)
        recorded["engine"] = {"ports": ports}
        state_file.write(recorded)
        say("starting the sandbox engine")
        handed = {name: sock.fileno() for name, sock in listeners.items()}
        try:
            engine = services.spawn(
                [sys.executable, "-P", "-m", "workbook.local.engine", "--state-dir", str(folder)], folder / "engine.log",
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                     LISTENERS_ENV: json.dumps(handed)},
                pass_fds=tuple(handed.values()))
        finally:
            for sock in listeners.values():
                sock.close()   # the engine holds its own copies
        recorded["engine"]["pid"] = engine.pid
        state_file.write(recorded)

        def ready() -> bool:
            if engine.poll() is not None:
                raise ServiceStartError(f"the engine exited with status {engine.returncode}")
            return (folder / "engine.ready").exists()

        services.wait_until(ready, 60, "the sandbox engine", folder / "engine.log")
        cpu_mode, memory_mode = detect()
        recorded.update(cpu_limit=cpu_mode.value, memory_limit=memory_mode.value, endpoints=endpoints(recorded))
        state_file.write(recorded)
        return recorded
    except BaseException:
        _stop()
        raise


def _migrate(database: services.Database) -> None:
    """Create the schema with the handlers' own migrations (handlers/common/db.py)."""
    if str(HANDLERS_DIR) not in sys.path:
        sys.path.insert(0, str(HANDLERS_DIR))
    from common import db  # noqa: PLC0415 - the handlers' layer is importable only once handlers/ is on sys.path
    connection = database.connect()
    try:
        db.migrate(connection)
        connection.commit()
    finally:
        connection.close()


def endpoints(recorded: dict) -> dict[str, str]:
    ports = recorded.get("engine", {}).get("ports", {})
    return {
        "aws": recorded.get("endpoint_url", ""),
        "lambda": f"http://127.0.0.1:{ports.get('control')}",
        "http_api": f"http://127.0.0.1:{ports.get('api')}",
        "function_url": f"http://127.0.0.1:{ports.get('function_url')}",
        "secrets_extension": f"http://127.0.0.1:{ports.get('extension')}",
        "webhook": f"http://127.0.0.1:{ports.get('webhook')}/webhook",
    }


def stop() -> bool:
    """Stop everything the local environment started; True if something was running."""
    with _exclusive():
        return _stop()


def _stop() -> bool:
    recorded = state_file.read()
    if not recorded:
        return False
    was_running = _running(recorded)
    services.stop_group(recorded.get("engine", {}).get("pid"), grace_s=10.0)
    _kill_strays(recorded.get("owner"))
    services.stop_postgres(recorded.get("postgres", {}).get("pid"))
    services.stop_group(recorded.get("moto", {}).get("pid"))
    state_file.remove()
    # This process no longer points at an endpoint that is gone.
    if recorded.get("endpoint_url") and os.environ.get("AWS_ENDPOINT_URL") == recorded["endpoint_url"]:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.pop("AWS_ENDPOINT_URL_LAMBDA", None)
        aws.reset_clients()
    folder = Path(recorded.get("state_dir", state_file.state_dir()))
    (folder / "engine.ready").unlink(missing_ok=True)
    return was_running


def _kill_strays(owner: str | None) -> None:
    """Execution environments live in sessions of their own; end any the engine left behind."""
    if not owner:
        return
    marker = f"--owner={owner}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker in (entry / "cmdline").read_bytes().split(b"\0"):
                services.stop_group(int(entry.name), signal.SIGKILL, grace_s=2.0)   # idle ones are frozen
        except (OSError, ValueError):
            continue


def status() -> dict[str, Any]:
    """What is running, where, and how the sandbox enforces CPU and memory."""
    recorded = state_file.read()
    cpu_mode, memory_mode = detect()
    if not recorded:
        return {"running": False, "cpu_limit": cpu_mode.value, "memory_limit": memory_mode.value,
                "state_file": str(state_file.state_path())}
    report = {
        "running": _running(recorded),
        "state_file": str(state_file.state_path()),
        "cpu_limit": cpu_mode.value,
        "memory_limit": memory_mode.value,
        "processes": {name: {"pid": recorded.get(name, {}).get("pid"),
                             "alive": services.alive(recorded.get(name, {}).get("pid"))}
                      for name in ("moto", "postgres", "engine")},
        "endpoints": endpoints(recorded),
        "data_dir": recorded.get("data_dir"),
        "started_at": recorded.get("started_at"),
    }
    if report["running"]:
        try:
            with urllib.request.urlopen(f"{endpoints(recorded)['lambda']}/status", timeout=5) as response:
                report["engine"] = json.loads(response.read())
        except OSError as exc:
            report["engine"] = {"error": str(exc)}
    return report
