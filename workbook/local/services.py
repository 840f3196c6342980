"""The processes of the local environment: moto's server and the embedded PostgreSQL.

Each runs in its own session (process group), so ``stop`` ends it with everything it started.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import pg8000.dbapi

from workbook.local.errors import ServiceStartError

LOOPBACK = "127.0.0.1"
DATABASE_NAME = "workbook"
DATABASE_USER = "postgres"


def listening_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port and listening: the port is ours from this moment."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def spawn(command: list[str], log_path: Path, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    """Start a process in a session of its own, its output appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True, close_fds=True, **kwargs)


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_group(pid: int | None, first_signal: int = signal.SIGTERM, grace_s: float = 5.0) -> None:
    """Signal a process group, wait, then kill whatever is left of it."""
    if not pid:
        return
    for sig in (first_signal, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not alive(pid) and not _group_alive(pid):
                return
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().split(")")[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _log_tail(log_path: Path | None, lines: int = 20) -> str:
    if log_path and log_path.exists():
        return "\n" + "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def wait_until(check, timeout_s: float, what: str, log_path: Path | None = None) -> None:
    """Poll ``check`` until it is true; a ``ServiceStartError`` from it (the process exited) fails at once."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ServiceStartError as exc:
            raise ServiceStartError(f"{exc}; see {log_path}{_log_tail(log_path)}") from None
        except Exception as exc:  # noqa: BLE001 - any other failure means "not yet"
            last_error = exc
        time.sleep(0.1)
    raise ServiceStartError(f"{what} did not come up within {timeout_s:.0f} s ({last_error}); "
                            f"see {log_path}{_log_tail(log_path)}")


PORT_TAKEN = ("Address already in use", "could not bind")


def with_port_retry(start, attempts: int = 3):
    """``start()`` again (it picks a new port) when another process took the port between choice and bind."""
    for attempt in range(attempts):
        try:
            return start()
        except ServiceStartError as exc:
            if attempt == attempts - 1 or not any(marker in str(exc) for marker in PORT_TAKEN):
                raise
    raise AssertionError("unreachable")


# -- moto ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MotoServer:
    pid: int
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def start_moto(folder: Path) -> MotoServer:
    """moto's server on a free loopback port, in its own process."""
    port = free_port()
    log_path = folder / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    process = spawn([sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], log_path, env=env)
    server = MotoServer(process.pid, port)

    def ready() -> bool:
        if process.poll() is not None:
            raise ServiceStartError(f"moto's server exited with status {process.returncode}")
        with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/data.json", timeout=1) as response:
            return response.status == 200

    wait_until(ready, 30, "moto's server", log_path)
    return server


# -- PostgreSQL -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Database:
    pid: int
    port: int
    password: str
    data_dir: str

    def secret(self) -> dict:
        """The DB secret's JSON, in the format the handlers read."""
        return {"host": LOOPBACK, "port": self.port, "username": DATABASE_USER, "password": self.password,
                "dbname": DATABASE_NAME, "engine": "postgres"}

    def connect(self) -> pg8000.dbapi.Connection:
        return pg8000.dbapi.connect(host=LOOPBACK, port=self.port, user=DATABASE_USER, password=self.password,
                                    database=DATABASE_NAME, timeout=10)


def start_postgres(folder: Path) -> Database:
    """A real PostgreSQL from the ``pgserver`` wheel, listening on a free loopback port."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # platformdirs warns about XDG_RUNTIME_DIR on import
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - imported inside the warnings filter

    data_dir = folder / "postgres"
    log_path = folder / "postgres.log"
    user = None
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root; pgserver's convention is a system user of its own.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # platformdirs warns about XDG_RUNTIME_DIR on import
            from pgserver.utils import (  # noqa: PLC0415 - imported inside the warnings filter
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        user = "pgserver"
        entry = _retry(lambda: ensure_user_exists(user), "creating the 'pgserver' system user")
        folder.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(folder)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        if user:
            os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        result = subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data_dir), "--auth=trust",
                                 "--encoding=utf8", "-U", DATABASE_USER], capture_output=True, text=True, user=user)
        if result.returncode != 0:
            raise ServiceStartError(f"initdb failed in {data_dir}: {result.stderr.strip()[-500:]}")
    (data_dir / "postmaster.pid").unlink(missing_ok=True)
    port = free_port()
    process = spawn([str(POSTGRES_BIN_PATH / "postgres"), "-D", str(data_dir), "-h", LOOPBACK, "-p", str(port),
                     "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200"],
                    log_path, user=user)
    if user:
        os.chown(log_path, entry.pw_uid, entry.pw_gid)
    password = secrets.token_urlsafe(18)
    database = Database(process.pid, port, password, str(data_dir))

    def ready() -> bool:
        if process.poll() is not None:
            raise ServiceStartError(f"postgres exited with status {process.returncode}")
        connection = pg8000.dbapi.connect(host=LOOPBACK, port=port, user=DATABASE_USER, database="postgres", timeout=2)
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
        if not cursor.fetchall():
            cursor.execute(f"CREATE DATABASE {DATABASE_NAME}")
        cursor.execute(f"ALTER USER {DATABASE_USER} PASSWORD '{password}'")
        connection.close()
        return True

    wait_until(ready, 30, "PostgreSQL", log_path)
    return database


def _retry(action, what: str, attempts: int = 5):
    """Run ``action``, retrying briefly: another process may hold /etc/passwd's lock (useradd)."""
    for attempt in range(attempts):
        try:
            return action()
        except (subprocess.CalledProcessError, OSError) as exc:
            if attempt == attempts - 1:
                raise ServiceStartError(f"{what} failed: {exc}") from exc
            time.sleep(0.5 * (attempt + 1))


def stop_postgres(pid: int | None) -> None:
    """Fast shutdown (SIGINT), then kill what is left."""
    stop_group(pid, signal.SIGINT, grace_s=10.0)
