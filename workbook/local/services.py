"""The processes of the local environment: moto's server and the embedded PostgreSQL.

Each runs in its own session (process group). A process is handed to ``on_spawn`` (to be
recorded in the state file) the moment it exists, before anything waits for it, and it is
ready only when it is alive, holds the listening socket of its port itself (not another
program that took the port) and answers. A process that exits during start-up fails the start
at once, with the tail of what it logged since it was spawned.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pg8000.dbapi

from workbook.local import processes
from workbook.local.errors import ServiceStartError
from workbook.local.processes import Identity, Liveness

LOOPBACK = "127.0.0.1"
DATABASE_NAME = "workbook"
DATABASE_USER = "postgres"
READY_TIMEOUT_S = 30.0
OnSpawn = Callable[[Identity], None]


def listening_socket(port: int = 0) -> socket.socket:
    """A TCP socket bound to a loopback port (``0``: a free one) and listening: the port is ours from this moment."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        # Connections of a killed engine linger in TIME_WAIT; with SO_REUSEADDR on both the old
        # and the new socket, a restarted engine gets its ports back.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
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


def launch(command: list[str], log_path: Path, on_spawn: OnSpawn, **kwargs) -> subprocess.Popen:
    """``spawn`` and hand the new process to ``on_spawn``, with no interrupt in between."""
    with processes.signals_deferred():
        process = spawn(command, log_path, **kwargs)
        identity = Identity.of(process.pid, command)
        # Exited already (and reaped by nobody yet): record the pid alone; the readiness check reports it.
        on_spawn(identity or Identity(process.pid, -1, processes.boot_id(), tuple(command)))
    return process


def alive(pid: int | None) -> bool:
    """Whether a process with this pid runs (any process: use ``processes.Identity.check`` to know it is ours)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not processes.is_zombie(pid)


def _log_size(log_path: Path) -> int:
    try:
        return log_path.stat().st_size
    except OSError:
        return 0


def log_tail(log_path: Path | None, since: int = 0, lines: int = 20) -> str:
    """The last lines ``log_path`` gained after byte ``since`` (what this start of the process wrote)."""
    if not log_path or not log_path.exists():
        return ""
    with open(log_path, "rb") as handle:
        handle.seek(since)
        text = handle.read().decode("utf-8", "replace")
    tail = text.splitlines()[-lines:]
    return ("\n" + "\n".join(tail)) if tail else ""


def wait_until(check, timeout_s: float, what: str, log_path: Path | None = None, since: int = 0) -> None:
    """Poll ``check`` until it is true; a ``ServiceStartError`` from it (the process exited) fails at once."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        processes.checkpoint()   # a Ctrl-C that a callback swallowed still ends the start here
        try:
            if check():
                return
        except ServiceStartError as exc:
            raise ServiceStartError(f"{exc}; see {log_path}{log_tail(log_path, since)}") from None
        except Exception as exc:  # noqa: BLE001 - any other failure means "not yet"
            last_error = exc
        time.sleep(0.1)
    raise ServiceStartError(f"{what} did not come up within {timeout_s:.0f} s ({last_error}); "
                            f"see {log_path}{log_tail(log_path, since)}")


def wait_ready(process: subprocess.Popen, port: int, answers: Callable[[], bool], what: str, log_path: Path,
               since: int, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until ``process`` runs, holds the listening socket of ``port`` itself, and ``answers()``."""
    def ready() -> bool:
        if process.poll() is not None:
            raise ServiceStartError(f"{what} exited with status {process.returncode} during start-up")
        # Another program on this port would answer too: only our own socket counts.
        return processes.listens_on(process.pid, port) and answers()

    wait_until(ready, timeout_s, what, log_path, since)


PORT_TAKEN = ("Address already in use", "could not bind", "is in use by another program")


def with_port_retry(start: Callable[[int], object], preferred: int | None = None, attempts: int = 3):
    """``start(port)`` on ``preferred`` (or a free port), then on a new free port when another process took it.

    A port is chosen, then bound by the child: another program may bind it in between. The child
    then fails with "Address already in use", and the next attempt takes a new port.
    """
    for attempt in range(attempts):
        port = preferred if (attempt == 0 and preferred) else free_port()
        try:
            return start(port)
        except ServiceStartError as exc:
            if attempt == attempts - 1 or not any(marker in str(exc) for marker in PORT_TAKEN):
                raise
    raise AssertionError("unreachable")


# -- moto ---------------------------------------------------------------------------------------
# moto's server, with the environment's owner token and state folder on the command line
# (so `ps` says whose it is, and a stop can find it even if its pid was never recorded).


@dataclass(frozen=True)
class MotoServer:
    pid: int
    port: int
    identity: Identity

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


# [pipeline] moto runs behind moto_router.py, which sends Lambda's Invoke API (the Step Functions
# executor's lambda:invoke tasks) to the sandbox engine; -P keeps workbook/local off sys.path.
MOTO_ROUTER = str(Path(__file__).with_name("moto_router.py"))


def moto_command(port: int, owner: str, folder: Path) -> list[str]:
    return [sys.executable, "-P", MOTO_ROUTER, f"--owner={owner}", f"--state-dir={folder}", "--",
            "-H", LOOPBACK, "-p", str(port)]


def start_moto(folder: Path, owner: str, on_spawn: OnSpawn, port: int | None = None) -> MotoServer:
    """moto's server on ``port`` (default: a free loopback port), in its own process."""
    port = port or free_port()
    log_path = folder / "moto.log"
    since = _log_size(log_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = moto_command(port, owner, folder)
    identities: list[Identity] = []
    process = launch(command, log_path, lambda identity: (identities.append(identity), on_spawn(identity)), env=env)
    server = MotoServer(process.pid, port, identities[0])

    def answers() -> bool:
        with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/data.json", timeout=1) as response:
            return response.status == 200

    wait_ready(process, port, answers, "moto's server", log_path, since)
    return server


# -- PostgreSQL -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Database:
    pid: int
    port: int
    password: str
    data_dir: str
    identity: Identity | None = None

    def secret(self) -> dict:
        """The DB secret's JSON, in the format the handlers read."""
        return {"host": LOOPBACK, "port": self.port, "username": DATABASE_USER, "password": self.password,
                "dbname": DATABASE_NAME, "engine": "postgres"}

    def migrate(self, handlers_dir: Path) -> None:
        """Create the schema with the handlers' own migrations (``handlers/common/db.py``)."""
        if str(handlers_dir) not in sys.path:
            sys.path.insert(0, str(handlers_dir))
        from common import db  # noqa: PLC0415 - the handlers' layer is importable only once handlers/ is on sys.path
        connection = self.connect()
        try:
            db.migrate(connection)
            connection.commit()
        finally:
            connection.close()

    def connect(self) -> pg8000.dbapi.Connection:
        return pg8000.dbapi.connect(host=LOOPBACK, port=self.port, user=DATABASE_USER, password=self.password,
                                    database=DATABASE_NAME, timeout=10)


def _pgserver():
    """pgserver's binaries folder and helpers (its import warns about XDG_RUNTIME_DIR: silenced)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pgserver import utils  # noqa: PLC0415 - imported inside the warnings filter
        from pgserver._commands import POSTGRES_BIN_PATH  # noqa: PLC0415 - as above
    return POSTGRES_BIN_PATH, utils


SERVER_USER = "pgserver"
# One set-up of the server user at a time, machine-wide: two starts in different state folders
# (or a start beside the test suite's own PostgreSQL) would otherwise race on useradd and chmod.
SERVER_USER_LOCK = Path("/run/lock/lambda-workbook-pgserver-user.lock")


@contextlib.contextmanager
def file_lock(path: Path):
    """Hold an exclusive flock on ``path`` (created with its folder when missing) for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def server_user(folder: Path) -> tuple[str | None, object]:
    """As root, PostgreSQL runs as pgserver's own system user (it refuses to run as root): set it up for ``folder``.

    Under a machine-wide lock: the user is created once (``useradd``, as pgserver itself would), the
    folders it must enter are made traversable (``folder``'s parents, pgserver's binaries and
    libraries), then checked from the user's side. Returns (user name, its passwd entry); (None,
    None) when not root, where PostgreSQL runs as the caller.
    """
    if os.geteuid() != 0:
        return None, None
    bin_path, utils = _pgserver()
    with file_lock(SERVER_USER_LOCK):
        entry = _retry(lambda: utils.ensure_user_exists(SERVER_USER), f"creating the {SERVER_USER!r} system user")
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(folder.stat().st_mode | 0o011)   # entered, not listed: the data folder inside is the user's
        utils.ensure_prefix_permissions(folder)
        utils.ensure_prefix_permissions(bin_path)
        utils.ensure_folder_permissions(bin_path, 0o055)
        utils.ensure_folder_permissions(bin_path.parent / "lib", 0o044)
        for needed in (folder, bin_path):
            blocked = untraversable(needed, entry)
            if blocked:
                raise ServiceStartError(
                    f"PostgreSQL runs as the {SERVER_USER!r} user, which cannot enter {blocked} (mode "
                    f"{blocked.stat().st_mode & 0o7777:o}, owner uid {blocked.stat().st_uid}) on the way to {needed}; "
                    f"let it through (`chmod o+x {blocked}`) or set WORKBOOK_STATE_DIR to a folder outside it")
    return SERVER_USER, entry


def untraversable(path: Path, entry) -> Path | None:
    """The first folder on the way to ``path`` (itself included) that the user of ``entry`` may not enter; None if none.

    Judged from the permission bits as the kernel does for a process of that uid and its groups
    (ACLs aside). Each pytest session resets ``/tmp/pytest-of-<user>`` to 0700, for one, which
    shuts PostgreSQL out of every data folder below it.
    """
    import grp  # noqa: PLC0415 - Unix only, and only as root

    groups = {entry.pw_gid} | {g.gr_gid for g in grp.getgrall() if entry.pw_name in g.gr_mem}
    for folder in [*reversed(path.parents), path]:
        try:
            info = folder.stat()
        except OSError:
            return folder
        if info.st_uid == entry.pw_uid:
            allowed = info.st_mode & 0o100
        elif info.st_gid in groups:
            allowed = info.st_mode & 0o010
        else:
            allowed = info.st_mode & 0o001
        if not allowed:
            return folder
    return None


def password_path(data_dir: Path) -> Path:
    """The 0600 file beside the cluster holding its superuser's password (what initdb and every start read)."""
    return data_dir.with_name(f"{data_dir.name}.password")


def _write_password(path: Path, password: str, entry=None) -> None:
    """Write the password file, 0600 from its creation (never readable by others, even for an instant)."""
    temporary = path.with_name(path.name + ".new")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    if entry is not None:   # as root, initdb runs as pgserver's user and reads the file
        os.chown(temporary, entry.pw_uid, entry.pw_gid)
    temporary.replace(path)


def read_password(data_dir: Path) -> str | None:
    """The cluster's superuser password from its file, or None (a cluster from before the file existed)."""
    try:
        return password_path(data_dir).read_text(encoding="utf-8").splitlines()[0] or None
    except (OSError, IndexError):
        return None


def _initdb(data_dir: Path, bin_path: Path, user: str | None, entry, password: str) -> None:
    """Create the cluster in a scratch folder, then move it into place: an interrupted initdb leaves no half cluster.

    Every connection authenticates with SCRAM-SHA-256 (``--auth=scram-sha-256``), the superuser's
    password coming from the 0600 file (``--pwfile``): no local user gets in without it.
    """
    if (data_dir / "PG_VERSION").exists():
        return
    if data_dir.exists():   # a folder without PG_VERSION is no cluster: keep it aside, lose nothing
        data_dir.rename(data_dir.with_name(f"{data_dir.name}.incomplete-{int(time.time())}"))
    scratch = data_dir.with_name(f"{data_dir.name}.initdb")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    if user:
        os.chown(scratch, entry.pw_uid, entry.pw_gid)
    _write_password(password_path(data_dir), password, entry if user else None)
    try:
        result = subprocess.run([str(bin_path / "initdb"), "-D", str(scratch), "--auth=scram-sha-256",
                                 f"--pwfile={password_path(data_dir)}", "--encoding=utf8", "-U", DATABASE_USER],
                                capture_output=True, text=True, user=user)
    except BaseException:   # interrupted: initdb is killed by subprocess.run; drop its half cluster
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise ServiceStartError(f"initdb failed in {data_dir}: {result.stderr.strip()[-500:]}")
    scratch.rename(data_dir)


def postgres_command(bin_path: Path, data_dir: Path, port: int, owner: str) -> list[str]:
    return [str(bin_path / "postgres"), "-D", str(data_dir), "-h", LOOPBACK, "-p", str(port),
            "-c", "unix_socket_directories=", "-c", "fsync=off", "-c", "max_connections=200",
            "-c", f"cluster_name={owner}"]


def start_postgres(folder: Path, owner: str, on_spawn: OnSpawn, port: int | None = None,
                   password: str | None = None) -> Database:
    """A real PostgreSQL from the ``pgserver`` wheel on ``port`` (default: a free one), its data in ``folder/postgres``."""
    bin_path, utils = _pgserver()
    data_dir = folder / "postgres"
    log_path = folder / "postgres.log"
    user, entry = server_user(folder)
    current = read_password(data_dir)
    password = password or current or secrets.token_urlsafe(18)
    _initdb(data_dir, bin_path, user, entry, current or password)
    current = read_password(data_dir)
    clean_data_folder(data_dir)
    port = port or free_port()
    since = _log_size(log_path)
    identities: list[Identity] = []
    process = launch(postgres_command(bin_path, data_dir, port, owner), log_path,
                     lambda identity: (identities.append(identity), on_spawn(identity)), user=user)
    if user:
        os.chown(log_path, entry.pw_uid, entry.pw_gid)
    database = Database(process.pid, port, password, str(data_dir), identities[0])
    wait_ready(process, port, lambda: configure_database(port, password, data_dir), "PostgreSQL", log_path, since)
    return database


def configure_database(port: int, password: str, data_dir: Path) -> bool:
    """Create the workbook database when missing, make ``password`` the superuser's, and require SCRAM.

    It signs in with the password in the cluster's file (a cluster made before that file, with
    ``trust``, lets it in without one), sets the new one, records it in the file, and turns any
    ``trust`` line of ``pg_hba.conf`` into ``scram-sha-256``. Names and the password reach SQL
    quoted by PostgreSQL's ``format()`` (``%I``, ``%L``), never pasted into the statement.
    """
    connection = pg8000.dbapi.connect(host=LOOPBACK, port=port, user=DATABASE_USER, database="postgres", timeout=2,
                                      password=read_password(data_dir))
    try:
        connection.autocommit = True
        cursor = connection.cursor()
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,))
        if not cursor.fetchall():
            cursor.execute(_formatted(cursor, "CREATE DATABASE %I", DATABASE_NAME))
        cursor.execute(_formatted(cursor, "ALTER ROLE %I WITH PASSWORD %L", DATABASE_USER, password))
        entry = _pgserver_entry(data_dir)
        _write_password(password_path(data_dir), password, entry)
        if _require_scram(data_dir / "pg_hba.conf"):
            cursor.execute("SELECT pg_reload_conf()")
    finally:
        connection.close()
    return True


def _formatted(cursor, template: str, *values: str) -> str:
    """A utility statement (no bind parameters there) built by PostgreSQL's ``format()`` from ``values``."""
    placeholders = ", ".join(["%s::text"] * (1 + len(values)))   # typed: format() is variadic
    cursor.execute("SELECT format(" + placeholders + ")", (template, *values))
    return cursor.fetchone()[0]


def _pgserver_entry(data_dir: Path):
    """The cluster owner's passwd entry when it is not us (as root: pgserver's user), else None."""
    import pwd  # noqa: PLC0415 - POSIX only, and only here

    try:
        owner = data_dir.stat().st_uid
    except OSError:
        return None
    return pwd.getpwuid(owner) if owner != os.geteuid() else None


def _require_scram(hba: Path) -> bool:
    """Replace ``trust`` by ``scram-sha-256`` in ``pg_hba.conf``; True when the file changed."""
    try:
        lines = hba.read_text(encoding="utf-8").splitlines(keepends=True)
    except OSError:
        return False
    changed = False
    for index, line in enumerate(lines):
        fields = line.split("#", 1)[0].split()
        if fields and fields[-1] == "trust":
            lines[index] = line.replace("trust", "scram-sha-256")
            changed = True
    if changed:
        hba.write_text("".join(lines), encoding="utf-8")
    return changed


def _retry(action, what: str, attempts: int = 5):
    """Run ``action``, retrying briefly: another process may hold /etc/passwd's lock (useradd)."""
    for attempt in range(attempts):
        try:
            return action()
        except (subprocess.CalledProcessError, OSError) as exc:
            if attempt == attempts - 1:
                raise ServiceStartError(f"{what} failed: {exc}") from exc
            time.sleep(0.5 * (attempt + 1))


# -- what an interrupted or crashed PostgreSQL leaves in its data folder ------------------------------
@dataclass(frozen=True)
class PidFile:
    """``postmaster.pid``: the postmaster's pid, its data folder, its start time and its shared memory key."""

    pid: int
    data_dir: str
    started_at: int
    shm_key: int | None


def read_pid_file(data_dir: Path) -> PidFile | None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        key = lines[6].split()[0] if len(lines) > 6 and lines[6].split() else None
        return PidFile(int(lines[0]), lines[1], int(lines[2]), int(key) if key is not None else None)
    except (OSError, ValueError, IndexError):
        return None


def _postmaster_of(data_dir: Path, recorded: PidFile) -> Identity | None:
    """The live postmaster the pid file names, if it really is that one: our data folder, started when it says."""
    command = processes.command_line(recorded.pid)
    started = processes.started_at_epoch(recorded.pid)
    if not command or started is None or processes.is_zombie(recorded.pid):
        return None
    on_our_folder = any(Path(part).resolve() == data_dir.resolve() for part in command[1:] if part.startswith("/"))
    if Path(command[0]).name != "postgres" or not on_our_folder or abs(started - recorded.started_at) > 2:
        return None
    return Identity.of(recorded.pid)


def _shared_memory_users(recorded: PidFile) -> list[Identity]:
    """Processes still attached to the shared memory block our postmaster created (orphaned server processes).

    The block is ours when its creator (``cpid`` in ``/proc/sysvipc/shm``) is the postmaster of
    our pid file and it was created no earlier than that postmaster started.
    """
    if recorded.shm_key is None:
        return []
    try:
        rows = [line.split() for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]]
    except OSError:
        return []
    # key shmid perms size cpid lpid nattch uid gid cuid cgid atime dtime ctime ...
    ours = [row for row in rows if len(row) > 13 and int(row[0]) == recorded.shm_key
            and int(row[4]) == recorded.pid and int(row[13]) >= recorded.started_at - 2]
    if not ours or int(ours[0][6]) == 0:
        return []
    mark = f"/SYSV{recorded.shm_key & 0xFFFFFFFF:08x}"
    users = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if mark in (entry / "maps").read_text():
                identity = Identity.of(int(entry.name))
                if identity is not None:
                    users.append(identity)
    return users


def clean_data_folder(data_dir: Path) -> list[str]:
    """Clear what an interrupted or killed PostgreSQL left in ``data_dir``; returns what was done.

    A live postmaster of this data folder (proved by its pid file: pid, folder and start time)
    is shut down; server processes still attached to its shared memory are killed; a pid file
    whose process is gone, or belongs to another program, is removed. Nothing else is touched.
    """
    recorded = read_pid_file(data_dir)
    if recorded is None:
        return []
    done = []
    postmaster = _postmaster_of(data_dir, recorded)
    if postmaster is not None:
        processes.end(postmaster, signal.SIGINT, grace_s=10.0)
        done.append(f"stopped the PostgreSQL (pid {recorded.pid}) still running on {data_dir}")
    for user in _shared_memory_users(recorded):
        if processes.send(user, signal.SIGKILL):
            done.append(f"ended PostgreSQL server process {user.pid}, still attached to {data_dir}'s shared memory")
    deadline = time.monotonic() + 5
    while _shared_memory_users(recorded) and time.monotonic() < deadline:
        time.sleep(0.05)
    if postmaster is None or postmaster.check() is not Liveness.ALIVE:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / "postmaster.pid").unlink()
            occupant = processes.occupant(recorded.pid)
            done.append(f"removed the stale {data_dir / 'postmaster.pid'} (its pid {recorded.pid} "
                        + (f"now runs another program: {occupant})" if occupant != "nothing" else "no longer runs)"))
    return done
