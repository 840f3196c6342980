"""Start, stop, repair and find the one local environment, and prove which processes are its own.

``start`` brings up moto's server, the embedded PostgreSQL (schema migrated), provisions the
plan's resources and starts the engine (the sandbox with its event sources and endpoints).

Ownership. Every process is written to the state file the moment it is spawned, before anything
waits for it, with its pid, its start time (``/proc/<pid>/stat`` field 22), its boot and its
command (``workbook.local.processes.Identity``). "Running" means every recorded process is alive
and is still that same process. ``stop`` signals only processes that pass that check (through a
pidfd, so a reused pid never receives a signal), reports every stale entry and removes it.
Each start draws a random ``owner`` token, written to the state file before anything is spawned
and put on every process's command line (``--owner=<token>``, PostgreSQL's ``cluster_name``):
a process carrying it is provably this environment's, even if its pid was never recorded.

Who owns this environment, and is it still the one I started? ``start`` returns the state, whose
``owner`` names the environment for as long as it lives: a repair or ``restart`` keeps it (the
data folder is kept; ``generation`` counts the restarts), and ``stop`` then ``start`` draws a new
one. A caller that started an environment keeps ``state["owner"]`` and later asks::

    check = manager.verify(owner)        # Verification: ok, reason, owner, generation
    if check.ok: ...                     # still that environment, every process healthy
    manager.stop(owner=owner)            # stops it only if it is still that environment

Repair. When some recorded processes died, ``start`` (and ``restart``, which restarts all of
them) brings the dead ones back, keeping PostgreSQL's data folder and, where still free, the
ports: moto on its port with the plan provisioned again (moto keeps its resources in memory),
PostgreSQL on its data folder (leftovers of a killed server cleared first), and the engine.
When nothing recorded is alive, the state is stale: it is cleaned and a new environment starts.

Signals. While ``start`` runs, and afterwards in the process that started the environment, SIGTERM
raises ``KeyboardInterrupt`` (where SIGTERM still had its default action), so a scheduler
stopping the job cleans up exactly as Ctrl-C does. ``stop`` finishes its work before it lets an
interrupt through.
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import signal
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra import config, project, specs
from workbook import aws
from workbook.deploy.plan import offline_plan
from workbook.local import processes, saved, services
from workbook.local import state as state_file
from workbook.local.endpoints import TOKEN_PREFIX
from workbook.local.engine import CONTROL_TOKEN_ENV, LISTENERS_ENV
from workbook.local.errors import AlreadyRunningError, NotRunningError, ServiceStartError
from workbook.local.processes import Identity, Liveness
from workbook.local.provision import HANDLERS_DIR, provision
from workbook.local.sandbox import detect, handler_python

ENGINE_PORTS = ("control", "api", "function_url", "extension", "webhook")
SERVICES = ("moto", "postgres", "engine")
# How each process is asked to stop before SIGKILL: PostgreSQL's fast shutdown is SIGINT.
STOP_SIGNALS = {"engine": signal.SIGTERM, "postgres": signal.SIGINT, "moto": signal.SIGTERM}
ENGINE_READY_TIMEOUT_S = 60.0


def _exclusive():
    """One start, repair or stop at a time (two shells starting at once must not both start one)."""
    return services.file_lock(state_file.state_dir() / ".lock")


# -- health ---------------------------------------------------------------------------------------
def _identity(name: str, recorded: dict) -> Identity | None:
    """The recorded process's identity; for an entry written before start times were recorded, the
    process is taken as ours only if it runs exactly the command that version ran, on its recorded port."""
    entry = recorded.get(name) or {}
    identity = Identity.from_dict(entry)
    if identity is not None or not entry.get("pid"):
        return identity
    pid, port = int(entry["pid"]), entry.get("port")
    command = processes.command_line(pid) or ()
    expected = {
        "moto": command[1:] == ("-m", "moto.server", "-H", services.LOOPBACK, "-p", str(port)),
        "postgres": Path(command[0] if command else "").name == "postgres" and command[1:3] == ("-D", entry.get(
            "data_dir")) and ("-p", str(port)) in zip(command, command[1:], strict=False),
        "engine": command[1:5] == ("-m", "workbook.local.engine", "--state-dir", recorded.get("state_dir")),
    }[name]
    listening = name == "engine" or (port and processes.listens_on(pid, int(port)))
    return Identity.of(pid) if expected and listening and not processes.is_zombie(pid) else None


def _liveness(name: str, recorded: dict) -> Liveness:
    entry = recorded.get(name) or {}
    identity = _identity(name, recorded)
    if identity is not None:
        return identity.check()
    return processes.liveness(entry)   # dead, or a pid that cannot be proved ours


def health(recorded: dict | None) -> dict[str, Liveness]:
    """Each recorded process's liveness: alive (the same process), dead, replaced (pid reused) or unproven."""
    recorded = recorded or {}
    return {name: _liveness(name, recorded) for name in SERVICES if recorded.get(name)}


def _running(recorded: dict | None) -> bool:
    """A complete environment whose every process is alive and is the one recorded."""
    states = health(recorded)
    return bool(recorded) and bool(recorded.get("complete")) and set(states) == set(SERVICES) and \
        all(state is Liveness.ALIVE for state in states.values())


def _partly_alive(recorded: dict | None) -> bool:
    return bool(recorded) and bool(recorded.get("complete")) and \
        any(state is Liveness.ALIVE for state in health(recorded).values())


def current() -> dict[str, Any] | None:
    """The state of the running environment, or None (also when any of its processes died)."""
    recorded = state_file.read()
    return recorded if _running(recorded) else None


@dataclass(frozen=True)
class Verification:
    """The answer to "is the running environment still the one started with this owner token?"."""

    ok: bool
    reason: str
    owner: str | None = None
    generation: int | None = None

    def __bool__(self) -> bool:
        return self.ok


def verify(expected_owner: str) -> Verification:
    """Whether the environment in the state file is the one ``expected_owner`` names, with every process healthy."""
    recorded = state_file.read()
    if not recorded:
        return Verification(False, "no local environment is running (it was stopped)")
    owner, generation = recorded.get("owner"), recorded.get("generation")
    if owner != expected_owner:
        return Verification(False, f"another local environment runs now (owner {owner}, not {expected_owner})",
                            owner, generation)
    unhealthy = {name: state.value for name, state in health(recorded).items() if state is not Liveness.ALIVE}
    if unhealthy or not _running(recorded):
        detail = ", ".join(f"{name} {state}" for name, state in unhealthy.items()) or "its start did not finish"
        return Verification(False, f"the environment is not healthy: {detail}", owner, generation)
    return Verification(True, "the same environment, every process alive", owner, generation)


def owner() -> str | None:
    """The owner token of the running environment, or None."""
    recorded = current()
    return recorded.get("owner") if recorded else None


# -- pointing this process at it ---------------------------------------------------------------------
def _export(recorded: dict) -> None:
    os.environ["AWS_ENDPOINT_URL"] = recorded["endpoint_url"]
    if recorded.get("engine", {}).get("ports", {}).get("control"):
        # Lambda's Invoke API is the engine's; plain boto3 clients and the AWS CLI honour this
        # service-specific variable over AWS_ENDPOINT_URL.
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = control_url(recorded)
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
    """The running environment's state, starting (or repairing) one when none is healthy."""
    return activate(start_if_needed=True, env=env)


def control_url(recorded: dict) -> str:
    """The engine's Invoke and control API with this start's token as a path prefix (boto3 keeps it).

    Not for display: ``endpoints()`` shows the same port without the token.
    """
    engine = recorded.get("engine", {})
    return f"http://127.0.0.1:{engine.get('ports', {}).get('control')}{TOKEN_PREFIX}{engine.get('control_token', '')}"


def endpoints(recorded: dict) -> dict[str, str]:
    """Where each endpoint listens, for display (the control endpoint needs :func:`control_url`'s token)."""
    ports = recorded.get("engine", {}).get("ports", {})
    return {
        "aws": recorded.get("endpoint_url", ""),
        "lambda": f"http://127.0.0.1:{ports.get('control')}",
        "http_api": f"http://127.0.0.1:{ports.get('api')}",
        "function_url": f"http://127.0.0.1:{ports.get('function_url')}",
        "secrets_extension": f"http://127.0.0.1:{ports.get('extension')}",
        "webhook": f"http://127.0.0.1:{ports.get('webhook')}/webhook",
    }


# -- start, repair, restart ------------------------------------------------------------------------
def start(env: str = "local", plan: dict | None = None, settings=None, *, progress=None,
          code_paths: list[str] | None = None) -> dict[str, Any]:
    """Start the local environment, or repair it when some of its processes died; returns its state.

    Raises AlreadyRunningError when it is up and healthy. ``plan`` defaults to the offline plan of
    ``env`` and ``settings`` to ``params/<env>.yaml``; ``code_paths`` (default: ``handlers/``) is
    where the functions' modules are found.
    """
    settings = settings or config.load(env)   # a bad env or params file fails before anything starts
    installed = processes.terminate_as_interrupt()
    say = processes.checkpointed(progress)
    try:
        with _exclusive():
            existing = state_file.read()
            if _running(existing):
                raise AlreadyRunningError(f"a local environment is already running (state: {state_file.state_path()}); "
                                          "use it, or stop it with `workbook local stop`")
            if _partly_alive(existing):
                dead = [name for name, state in health(existing).items() if state is not Liveness.ALIVE]
                return _repair(existing, set(dead) | _missing(existing), say)
            if existing:
                say("cleaning up what a stopped or interrupted environment left")
                _stop(say)
            return _fresh(env, plan, settings, say, code_paths)
    except BaseException:
        if installed:
            processes.restore_terminate()
        raise


def restart(env: str = "local", *, progress=None) -> dict[str, Any]:
    """Restart every process of the environment, keeping its owner, ports where free and PostgreSQL's data.

    With no environment (or only a stale state file) this is ``start``.
    """
    say = processes.checkpointed(progress)
    with _exclusive():
        existing = state_file.read()
        if _partly_alive(existing):
            processes.terminate_as_interrupt()
            return _repair(existing, set(SERVICES), say)
    try:
        return start(env, progress=progress)
    except AlreadyRunningError:   # another process started one meanwhile: restart that one
        return restart(env, progress=progress)


def _missing(recorded: dict) -> set[str]:
    return {name for name in SERVICES if not recorded.get(name)}


def _fresh(env: str, plan: dict | None, settings, say, code_paths: list[str] | None) -> dict[str, Any]:
    folder = state_file.state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    recorded: dict[str, Any] = {
        "env": env, "owner": f"lwb-{uuid.uuid4().hex[:12]}", "generation": 1, "state_dir": str(folder),
        "data_dir": str(folder / "data"), "started_at": _now(), "region": settings.params.aws_region,
        "code_paths": code_paths}
    state_file.write(recorded)   # the owner token is on disk before anything carries it
    try:
        saved.save_inputs(folder, settings, plan)
        _bring_up(recorded, set(SERVICES), say)
        processes.checkpoint()   # never report a start as done after a stop signal, wherever it landed
        recorded["complete"] = True
        state_file.write(recorded)
        return recorded
    except BaseException:
        processes.acted_on()
        with processes.signals_deferred(reraise=False):   # a second Ctrl-C must not cut the cleanup short
            _stop(say)
        raise


def _repair(recorded: dict, restart: set[str], say) -> dict[str, Any]:
    """Bring back the processes named in ``restart`` (stopping any that still run), keeping owner and data."""
    if "moto" in restart:
        restart = restart | {"engine"}   # moto is provisioned afresh: the engine needs the new topology
    say(f"restarting {', '.join(name for name in SERVICES if name in restart)} "
        f"(owner {recorded['owner']}; PostgreSQL's data folder is kept)")
    for name in ("engine", "postgres", "moto"):
        if name in restart and recorded.get(name):
            _report(name, recorded[name], _end(name, recorded), say)
    try:
        _bring_up(recorded, restart, say)
        processes.checkpoint()
        recorded["generation"] = int(recorded.get("generation", 1)) + 1
        recorded.setdefault("restarts", []).append({"at": _now(), "services": sorted(restart)})
        state_file.write(recorded)
        return recorded
    except BaseException:
        processes.acted_on()
        with processes.signals_deferred(reraise=False):
            say("the repair failed: stopping the environment (its data folder is kept)")
            _stop(say)
        raise


def _bring_up(recorded: dict, restart: set[str], say) -> None:
    """Start the services in ``restart`` (moto, PostgreSQL, then provisioning and the engine as needed)."""
    folder = Path(recorded["state_dir"])
    settings, plan = saved.load_inputs(folder, recorded["env"])
    restart = set(restart)
    if "moto" in restart:
        # moto's resources are provisioned afresh: the engine needs the new topology, and its ports
        # are bound for it before provisioning, so the running one must let them go first.
        restart.add("engine")
        _end_engine(recorded, say)
        say("starting moto's server")
        moto = services.with_port_retry(
            lambda port: services.start_moto(folder, recorded["owner"], _recorder(recorded, "moto", port=port), port),
            preferred=recorded.get("moto", {}).get("port"))
        recorded["endpoint_url"] = moto.endpoint_url
        state_file.write(recorded)
    _export(recorded)
    previous_database_port = (recorded.get("postgres") or {}).get("port")
    database = _database(recorded, folder, restart, say)
    listeners = None
    if "moto" in restart:
        if plan is None:
            say("planning the stack (offline)")
            plan = offline_plan(recorded["env"], settings).to_dict()
            saved.save_inputs(folder, settings, plan)
        listeners = _provision(recorded, folder, settings, plan, database, say)
    elif database is not None and database.port != previous_database_port:   # the old port was taken meanwhile
        saved.update_database_secret(recorded, database)
        restart.add("engine")   # warm environments hold the old port
    if "engine" in restart:
        _end_engine(recorded, say)
        _start_engine(recorded, folder, listeners or _engine_listeners(recorded), say)
    cpu_mode, memory_mode = detect()
    recorded.update(cpu_limit=cpu_mode.value, memory_limit=memory_mode.value, endpoints=endpoints(recorded))
    state_file.write(recorded)


def _end_engine(recorded: dict, say) -> None:
    """Stop the running engine (if it is provably ours) before another takes its ports."""
    if recorded.get("engine", {}).get("pid") and _liveness("engine", recorded) is Liveness.ALIVE:
        _report("engine", recorded["engine"], _end("engine", recorded), say)


def _recorder(recorded: dict, name: str, **extra):
    """``on_spawn`` for a service: its identity (and port) into the state file, before anyone waits for it."""
    def on_spawn(identity: Identity) -> None:
        keep = {key: value for key, value in recorded.get(name, {}).items() if key in ("ports", "control_token")}
        recorded[name] = {**keep, **identity.to_dict(), **extra}
        state_file.write(recorded)
    return on_spawn


def _database(recorded: dict, folder: Path, restart: set[str], say) -> services.Database | None:
    """PostgreSQL: started (and migrated) when in ``restart``; else the running one with a password known to us."""
    data = folder / "data"
    if "postgres" in restart:
        for done in services.clean_data_folder(data / "postgres"):
            say(done)
        say("starting PostgreSQL")
        password = None if "moto" in restart else saved.database_password(recorded)
        database = services.with_port_retry(
            lambda port: services.start_postgres(data, recorded["owner"], _recorder(
                recorded, "postgres", port=port, data_dir=str(data / "postgres")), port, password),
            preferred=recorded.get("postgres", {}).get("port"))
        database.migrate(HANDLERS_DIR)
        return database
    if "moto" in restart:   # the DB secret is made afresh: give the running server a new password to match
        entry = recorded["postgres"]
        password = secrets.token_urlsafe(18)
        services.configure_database(entry["port"], password, Path(entry["data_dir"]))
        return services.Database(entry["pid"], entry["port"], password, entry["data_dir"])
    return None


def _provision(recorded: dict, folder: Path, settings, plan: dict, database, say) -> dict:
    """Create the plan's resources in moto; returns the engine's listening sockets (bound first: the webhook's port)."""
    # The engine's ports are bound here and the sockets handed over: no other start can take them meanwhile.
    listeners = _engine_listeners(recorded)
    recorded.setdefault("engine", {})["ports"] = {name: sock.getsockname()[1] for name, sock in listeners.items()}
    say("provisioning queues, topics, buckets, secrets and log groups")
    topology = provision(plan, settings, aws.client, database_secret=database.secret(),
                         webhook_url=f"http://127.0.0.1:{recorded['engine']['ports']['webhook']}/webhook",
                         code_paths=recorded.get("code_paths"))
    recorded["handlers_on"] = topology["runtime"]["summary"]
    recorded["handlers_on_stack_runtime"] = topology["runtime"]["python_version"] == specs.RUNTIME.removeprefix("python")
    say(f"handlers run on {recorded['handlers_on']}")
    (folder / "topology.json").write_text(json.dumps(topology, indent=2))
    (folder / "topology.json").chmod(0o600)
    return listeners


def _engine_listeners(recorded: dict) -> dict:
    """Listening sockets for the engine: its previous ports when still free, else new ones."""
    previous = recorded.get("engine", {}).get("ports", {})
    listeners = {}
    for name in ENGINE_PORTS:
        try:
            listeners[name] = services.listening_socket(previous.get(name) or 0)
        except OSError:
            listeners[name] = services.listening_socket()
    return listeners


def _start_engine(recorded: dict, folder: Path, listeners: dict, say) -> None:
    """The engine, on the ports bound for it (handed over as listening sockets), after sweeping a dead one's strays."""
    recorded.setdefault("engine", {})["ports"] = {name: sock.getsockname()[1] for name, sock in listeners.items()}
    _sweep(recorded, say)   # execution environments a killed engine left behind
    ready_file = folder / "engine.ready"
    ready_file.unlink(missing_ok=True)
    # A new token for each engine start; the state file that keeps it is 0600 (state.write).
    recorded["engine"]["control_token"] = secrets.token_urlsafe(32)
    state_file.write(recorded)
    say("starting the sandbox engine")
    handed = {name: sock.fileno() for name, sock in listeners.items()}
    command = [sys.executable, "-P", "-m", "workbook.local.engine", "--state-dir", str(folder),
               f"--owner={recorded['owner']}"]
    log_path = folder / "engine.log"
    since = log_path.stat().st_size if log_path.exists() else 0
    try:
        engine = services.launch(command, log_path, _recorder(recorded, "engine"),
                                 env={**os.environ, **project.child_environment(),
                                      "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                      LISTENERS_ENV: json.dumps(handed),
                                      CONTROL_TOKEN_ENV: recorded["engine"]["control_token"]},
                                 pass_fds=tuple(handed.values()))
    finally:
        for sock in listeners.values():
            sock.close()   # the engine holds its own copies

    def ready() -> bool:
        if engine.poll() is not None:
            raise ServiceStartError(f"the engine exited with status {engine.returncode} during start-up")
        try:
            return json.loads(ready_file.read_text()).get("pid") == engine.pid
        except (OSError, ValueError):
            return False

    services.wait_until(ready, ENGINE_READY_TIMEOUT_S, "the sandbox engine", log_path, since)


# -- stop ----------------------------------------------------------------------------------------------
def stop(*, owner: str | None = None, progress=None) -> bool:
    """Stop everything the local environment started; True if it was running (healthy).

    Only processes proved to be the environment's own are signalled; each stale entry is reported
    through ``progress`` and removed. With ``owner``, the environment is stopped only if it is
    still the one that token names (else nothing is done and False is returned).
    """
    say = progress or (lambda message: None)
    with _exclusive(), processes.signals_deferred():
        recorded = state_file.read()
        if owner is not None and recorded and recorded.get("owner") != owner:
            say(f"not stopped: the running environment is another one (owner {recorded.get('owner')}, not {owner})")
            return False
        stopped = _stop(say)
    processes.restore_terminate()
    return stopped


def _end(name: str, recorded: dict) -> processes.Ending:
    """Stop one recorded service if it is provably ours; else only say what its entry is."""
    identity = _identity(name, recorded)
    if identity is None:
        return processes.Ending(processes.liveness(recorded.get(name)))
    return processes.end(identity, STOP_SIGNALS[name], grace_s=10.0)


def _report(name: str, entry: dict, ending: processes.Ending, say) -> None:
    pid = entry.get("pid")
    if ending.liveness is Liveness.REPLACED:
        say(f"{name}: stale entry, pid {pid} now belongs to another program ({processes.occupant(pid)}); "
            "not signalled, entry removed")
    elif ending.liveness is Liveness.UNPROVEN:
        say(f"{name}: stale entry, pid {pid} has no recorded start time, so it cannot be proved ours "
            f"({processes.occupant(pid)}); not signalled, entry removed")
    elif ending.liveness is Liveness.DEAD:
        say(f"{name}: pid {pid} had already exited; entry removed")
    elif ending.survivors:
        say(f"{name}: {ending.survivors} process(es) of pid {pid}'s group did not end even after SIGKILL")


def _stop(say) -> bool:
    recorded = state_file.read()
    if not recorded:
        return False
    was_running = _running(recorded)
    survivors = {}
    for name in ("engine", "postgres", "moto"):
        if recorded.get(name):
            ending = _end(name, recorded)
            _report(name, recorded[name], ending, say)
            if ending.survivors:
                survivors[name] = recorded[name]
    _sweep({**recorded, "moto": None, "postgres": None, "engine": None}, say)
    data = Path(recorded.get("data_dir") or Path(recorded.get("state_dir", state_file.state_dir())) / "data")
    for done in services.clean_data_folder(data / "postgres"):
        say(done)
    if survivors:
        state_file.write({**{k: v for k, v in recorded.items() if k not in SERVICES}, **survivors})
    else:
        state_file.remove()
    # This process no longer points at an endpoint that is gone.
    if recorded.get("endpoint_url") and os.environ.get("AWS_ENDPOINT_URL") == recorded["endpoint_url"]:
        os.environ.pop("AWS_ENDPOINT_URL", None)
        os.environ.pop("AWS_ENDPOINT_URL_LAMBDA", None)
        aws.reset_clients()
    folder = Path(recorded.get("state_dir", state_file.state_dir()))
    (folder / "engine.ready").unlink(missing_ok=True)
    return was_running


def _sweep(recorded: dict, say) -> None:
    """End every process carrying the owner token that is not one of the recorded live services.

    These are execution environments (in sessions of their own, frozen when idle) that a killed
    engine left behind, or a service whose start was cut short before it could be recorded.
    """
    token = recorded.get("owner")
    if not token:
        return
    keep = {identity.pid for name in SERVICES if (identity := _identity(name, recorded))
            and identity.check() is Liveness.ALIVE}
    strays = [identity for identity in processes.carrying(token) if identity.pid not in keep]
    for stray in strays:
        processes.end(stray, signal.SIGKILL, grace_s=2.0)   # idle ones are frozen: only SIGKILL ends them at once
    if strays:
        say(f"ended {len(strays)} leftover process(es) of this environment (owner {token})")


# -- status ---------------------------------------------------------------------------------------------
def status() -> dict[str, Any]:
    """What is running, where, whether each recorded process is alive, and how CPU and memory are enforced."""
    recorded = state_file.read()
    cpu_mode, memory_mode = detect()
    base = {"state_file": str(state_file.state_path()), "cpu_limit": cpu_mode.value, "memory_limit": memory_mode.value,
            "handler_python": dataclasses.asdict(handler_python())
            | {"summary": (recorded or {}).get("handlers_on") or handler_python().describe()}}
    if not recorded:
        return {"running": False, "health": "stopped", **base}
    running = _running(recorded)
    report = {
        "running": running,
        "health": "running" if running else ("degraded" if _partly_alive(recorded) else "stale"),
        **base,
        "owner": recorded.get("owner"),
        "generation": recorded.get("generation"),
        "processes": _process_report(recorded),
        "endpoints": endpoints(recorded),
        "data_dir": recorded.get("data_dir"),
        "started_at": recorded.get("started_at"),
    }
    if running:
        try:
            with urllib.request.urlopen(f"{control_url(recorded)}/status", timeout=5) as response:
                report["engine"] = json.loads(response.read())
        except OSError as exc:
            report["engine"] = {"error": str(exc)}
    return report


def _process_report(recorded: dict) -> dict[str, dict]:
    report = {}
    for name in SERVICES:
        entry = recorded.get(name) or {}
        state = _liveness(name, recorded) if entry.get("pid") else Liveness.DEAD
        row = {"pid": entry.get("pid"), "state": state.value if entry.get("pid") else "not started",
               "alive": state is Liveness.ALIVE, "port": entry.get("port") or entry.get("ports", {}).get("control")}
        if state in (Liveness.REPLACED, Liveness.UNPROVEN):
            row["now"] = processes.occupant(entry["pid"])
        report[name] = row
    return report


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
