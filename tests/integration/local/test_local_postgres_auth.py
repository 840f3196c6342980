"""The local PostgreSQL checks passwords: SCRAM-SHA-256 for every connection, the superuser's
password in a 0600 file, names and literals quoted by PostgreSQL's format() (issue 22).

A real PostgreSQL from pgserver in a folder of the test's own.
"""
from __future__ import annotations

import stat

import pg8000.dbapi
import pytest

from workbook.local import processes, services

HOSTILE_PASSWORD = "it's \"quoted\"; DROP DATABASE workbook; --\\"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("pg") / "data"   # as the manager lays it out (pgserver makes its parents reachable)
    spawned: list[processes.Identity] = []
    started = services.with_port_retry(lambda port: services.start_postgres(data, "lwb-test00000000", spawned.append,
                                                                            port, HOSTILE_PASSWORD))
    yield started, data
    processes.end(started.identity, first_signal=2)


@pytest.fixture
def database(server):
    """The module's server, given back with the hostile password and SCRAM after each test."""
    yield server
    started, data = server
    services.configure_database(started.port, HOSTILE_PASSWORD, data / "postgres")


def _connect(port: int, password: str | None, user: str = services.DATABASE_USER):
    return pg8000.dbapi.connect(host=services.LOOPBACK, port=port, user=user, password=password,
                                database=services.DATABASE_NAME, timeout=5)


def test_no_local_user_gets_in_without_the_password(database):
    started, data = database
    # GIVEN the running local PostgreSQL
    # WHEN a local program connects as the superuser without the password, or with a wrong one
    # (pg8000 without a password fails in its SCRAM client before any exchange: any error will do there)
    with pytest.raises(Exception):  # noqa: B017
        _connect(started.port, None).close()
    for password in ("", "guess", HOSTILE_PASSWORD + "x"):
        with pytest.raises(pg8000.dbapi.DatabaseError, match="password authentication failed"):
            _connect(started.port, password).close()
    # THEN it is refused; with the password (which f-string SQL could not even have set) it gets in
    connection = _connect(started.port, HOSTILE_PASSWORD)
    cursor = connection.cursor()
    cursor.execute("SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = %s",
                   (services.DATABASE_USER,))
    assert cursor.fetchone()[0] is True
    cursor.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE auth_method IS NOT NULL")
    assert {row[0] for row in cursor.fetchall()} == {"scram-sha-256"}
    connection.close()
    assert started.connect() is not None


def test_the_password_file_is_0600_and_holds_the_password(database):
    _, data = database
    path = services.password_path(data / "postgres")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == HOSTILE_PASSWORD + "\n"


def test_a_new_password_is_set_with_the_old_one_and_recorded(database):
    started, data = database
    # WHEN the password is changed (what a restart with a fresh DB secret does)
    assert services.configure_database(started.port, "second-password", data / "postgres")
    # THEN the new one works, the old one does not, and the file says the new one
    _connect(started.port, "second-password").close()
    with pytest.raises(pg8000.dbapi.DatabaseError):
        _connect(started.port, HOSTILE_PASSWORD).close()
    assert services.read_password(data / "postgres") == "second-password"


def test_a_cluster_made_with_trust_is_moved_to_scram(database):
    started, data = database
    cluster = data / "postgres"
    # GIVEN a cluster as the workbook used to make it: trust for every local connection, no password file
    hba = cluster / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    connection = _connect(started.port, HOSTILE_PASSWORD)
    connection.autocommit = True
    connection.cursor().execute("SELECT pg_reload_conf()")
    connection.close()
    services.password_path(cluster).unlink()
    _connect(started.port, None).close()   # anyone gets in
    # WHEN the workbook configures it
    services.configure_database(started.port, "after-trust", cluster)
    # THEN a password is needed again
    with pytest.raises(pg8000.dbapi.DatabaseError, match="password authentication failed"):
        _connect(started.port, "").close()
    _connect(started.port, "after-trust").close()
    assert "trust" not in [line.split()[-1] for line in hba.read_text().splitlines()
                           if line.split() and not line.startswith("#")]
