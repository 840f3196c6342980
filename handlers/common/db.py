"""The PostgreSQL connection (pg8000, pure Python) and the schema migrations.

* :func:`connection` opens one connection lazily, on the first query, and keeps it for warm
  invocations. A connection that broke (database restart, idle timeout, network) is dropped and
  reopened once per call by :func:`run`; a second failure becomes :class:`DatabaseUnavailable`.
* Credentials come from the RDS-style JSON secret named by ``DB_SECRET_ARN``
  (``host, port, username, password, dbname``). A ``host`` starting with ``/`` is a Unix socket
  directory, as in libpq (the embedded pgserver listens on one).
* :func:`migrate` applies the schema idempotently: under an advisory lock, each numbered step
  once, recorded in ``schema_migrations``. It runs once per execution environment before the
  first query, and on demand with ``python -m common.db migrate``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import Any

import pg8000.native

from common import budgets
from common.errors import ConfigError, DatabaseUnavailable

#: Advisory lock key that serialises concurrent migrations ("lwb-mig").
MIGRATION_LOCK_KEY = 0x6C77622D6D6967

# Numbered, append-only: never edit a step that has shipped, add a new one.
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "items served by api-processor", (
        """CREATE TABLE IF NOT EXISTS items (
               id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
               description TEXT NOT NULL DEFAULT '',
               attributes  JSONB NOT NULL DEFAULT '{}'::jsonb,
               created_by  TEXT NOT NULL,
               updated_by  TEXT NOT NULL,
               version     INTEGER NOT NULL DEFAULT 1,
               created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
               updated_at  TIMESTAMPTZ NOT NULL DEFAULT now())""",
    )),
    (2, "due work read by the scheduler", (
        """CREATE TABLE IF NOT EXISTS due_work (
               id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
               task_type   TEXT NOT NULL,
               payload     JSONB NOT NULL DEFAULT '{}'::jsonb,
               due_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
               status      TEXT NOT NULL DEFAULT 'pending'
                           CHECK (status IN ('pending', 'claimed', 'enqueued', 'failed')),
               attempts    INTEGER NOT NULL DEFAULT 0,
               claimed_at  TIMESTAMPTZ,
               enqueued_at TIMESTAMPTZ,
               message_id  TEXT,
               last_error  TEXT,
               created_at  TIMESTAMPTZ NOT NULL DEFAULT now())""",
        "CREATE INDEX IF NOT EXISTS due_work_pending_idx ON due_work (due_at) WHERE status IN ('pending', 'claimed')",
    )),
    (3, "records upserted by data-processor, keyed on the business key or message id", (
        """CREATE TABLE IF NOT EXISTS processed_records (
               record_key    TEXT PRIMARY KEY,
               message_id    TEXT NOT NULL,
               kind          TEXT NOT NULL,
               payload       JSONB NOT NULL,
               result        JSONB NOT NULL,
               deliveries    INTEGER NOT NULL DEFAULT 1,
               first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
               updated_at    TIMESTAMPTZ NOT NULL DEFAULT now())""",
    )),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def _execute(connection: Any, sql: str, params: tuple = ()) -> list:
    """Run SQL on a pg8000 native connection or a DB-API connection; return rows (or [])."""
    if hasattr(connection, "run"):
        names = {f"p{i}": value for i, value in enumerate(params)}
        for i in range(len(params)):
            sql = sql.replace("%s", f":p{i}", 1)
        return connection.run(sql, **names) or []
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall() if cursor.description else []
    finally:
        cursor.close()


def migrate(connection: Any) -> list[int]:
    """Bring the schema up to date; return the versions applied now ([] when already current).

    Safe to call concurrently and repeatedly: an advisory lock serialises callers and each step
    is recorded. Takes a ``pg8000.native.Connection`` or any DB-API connection (pg8000.dbapi,
    psycopg) and commits its own work.
    """
    native = hasattr(connection, "run")
    applied: list[int] = []
    _execute(connection, "SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    try:
        _execute(connection, """CREATE TABLE IF NOT EXISTS schema_migrations (
                                   version    INTEGER PRIMARY KEY,
                                   name       TEXT NOT NULL,
                                   applied_at TIMESTAMPTZ NOT NULL DEFAULT now())""")
        done = {row[0] for row in _execute(connection, "SELECT version FROM schema_migrations")}
        for version, name, statements in MIGRATIONS:
            if version in done:
                continue
            if native:
                connection.run("BEGIN")
            try:
                for statement in statements:
                    _execute(connection, statement)
                _execute(connection, "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            except Exception:
                if native:
                    connection.run("ROLLBACK")
                else:
                    connection.rollback()
                raise
            if native:
                connection.run("COMMIT")
            else:
                connection.commit()
            applied.append(version)
    finally:
        _execute(connection, "SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        if not native:
            connection.commit()
    return applied


# --- connection management ----------------------------------------------------------------------

def connect_params(secret: dict[str, Any]) -> dict[str, Any]:
    """pg8000 connect() keyword arguments from an RDS-style secret."""
    try:
        host = str(secret["host"])
        port = int(secret.get("port") or 5432)
        params: dict[str, Any] = {
            "user": str(secret["username"]),
            "password": secret.get("password") or None,
            "database": str(secret.get("dbname") or secret.get("database") or "postgres"),
            "timeout": float(secret.get("timeout_s") or budgets.DB_TIMEOUT_S),
            "application_name": os.environ.get("POWERTOOLS_SERVICE_NAME", "workbook"),
        }
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(f"database secret is missing or has a malformed field ({error}); "
                          "expected JSON with host, port, username, password, dbname") from None
    if host.startswith("/"):
        params["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        params.update(host=host, port=port)
        if secret.get("ssl", host not in ("localhost", "127.0.0.1", "::1")):
            params["ssl_context"] = _tls_context()
    return params


#: The RDS certificate authorities, which public trust stores do not hold. Put AWS's
#: ``global-bundle.pem`` here (it ships in the layer) to verify RDS endpoints.
RDS_CA_BUNDLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs", "rds-global-bundle.pem")


def _tls_context() -> Any:
    """TLS with certificate and host verification: the system CAs plus the RDS bundle when present."""
    import ssl

    context = ssl.create_default_context()
    if os.path.isfile(RDS_CA_BUNDLE):
        context.load_verify_locations(cafile=RDS_CA_BUNDLE)
    return context


def _secret_from_environment() -> dict[str, Any]:
    secret_arn = os.environ.get("DB_SECRET_ARN")
    if not secret_arn:
        raise ConfigError("DB_SECRET_ARN is not set; it names the database secret (infra/environment.py)")
    from common.secrets import default_cache

    return default_cache().get_json(secret_arn)


class Database:
    """One lazily opened, self-healing connection, migrated once, shared by warm invocations."""

    def __init__(self, secret_loader: Callable[[], dict[str, Any]] = _secret_from_environment,
                 migrate_on_connect: bool = True):
        self._secret_loader = secret_loader
        self._migrate_on_connect = migrate_on_connect
        self._connection: pg8000.native.Connection | None = None
        self._migrated = False
        self._lock = threading.RLock()
        self.connects = 0

    def connection(self) -> pg8000.native.Connection:
        """The open connection, opening (and migrating) it when needed."""
        with self._lock:
            if self._connection is None:
                try:
                    self._connection = pg8000.native.Connection(**connect_params(self._secret_loader()))
                except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError) as error:
                    raise DatabaseUnavailable(f"cannot connect to PostgreSQL: {type(error).__name__}") from None
                self.connects += 1
                if self._migrate_on_connect and not self._migrated:
                    try:
                        migrate(self._connection)
                    except (pg8000.native.InterfaceError, pg8000.native.DatabaseError, OSError) as error:
                        self.discard()
                        raise DatabaseUnavailable(f"schema migration failed: {type(error).__name__}") from None
                    self._migrated = True
            return self._connection

    def discard(self) -> None:
        """Close and forget the connection (it is reopened on the next query)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; it is gone either way
                pass

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        """Run one statement; reconnect once if the connection broke. Server-side errors propagate.

        pg8000 raises ``InterfaceError`` (or an OSError) when the connection itself failed, and
        ``DatabaseError`` for an SQL error; only the former is retried on a fresh connection.
        The usual case is a connection that died while the environment was frozen, where the
        statement never reached the server. If it broke after the server ran the statement, the
        retry runs it again: the handlers' writes are upserts or state transitions that tolerate
        this, except a create in the API, which could then insert twice.
        """
        for attempt in range(1, budgets.DB_STATEMENT_ATTEMPTS + 1):
            connection = self.connection()
            try:
                return connection.run(sql, **params) or []
            except (pg8000.native.InterfaceError, OSError) as error:
                self.discard()
                if attempt == budgets.DB_STATEMENT_ATTEMPTS:
                    raise DatabaseUnavailable(f"PostgreSQL connection lost: {type(error).__name__}") from None
            except pg8000.native.DatabaseError as error:
                if _is_connection_failure(error):
                    self.discard()
                    if attempt == budgets.DB_STATEMENT_ATTEMPTS:
                        raise DatabaseUnavailable("PostgreSQL is shutting down or unavailable") from None
                    continue
                raise  # an SQL error: the caller's transaction (if any) rolls back in _Transaction
        raise DatabaseUnavailable("PostgreSQL unavailable")  # pragma: no cover - loop always returns/raises

    def transaction(self) -> _Transaction:
        """A context manager running BEGIN/COMMIT (ROLLBACK on error) on the shared connection."""
        return _Transaction(self)


def _is_connection_failure(error: Exception) -> bool:
    """SQLSTATE class 08 (connection), 57P01-57P03 (admin shutdown, cannot connect now)."""
    fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    code = str(fields.get("C", ""))
    return code.startswith("08") or code in ("57P01", "57P02", "57P03")


class _Transaction:
    def __init__(self, database: Database):
        self.database = database
        self.connection: pg8000.native.Connection | None = None

    def __enter__(self) -> pg8000.native.Connection:
        # The BEGIN goes through run() so a stale connection is replaced before the work starts.
        self.database.run("BEGIN")
        self.connection = self.database.connection()
        return self.connection

    def __exit__(self, exc_type, exc, tb) -> None:
        assert self.connection is not None
        try:
            self.connection.run("ROLLBACK" if exc_type else "COMMIT")
        except (pg8000.native.InterfaceError, OSError):
            self.database.discard()
            if exc_type is None:
                raise DatabaseUnavailable("PostgreSQL connection lost at commit") from None
        except pg8000.native.DatabaseError:
            self.database.discard()
            if exc_type is None:
                raise


_DEFAULT: Database | None = None


def database() -> Database:
    """The process-wide :class:`Database` configured from DB_SECRET_ARN."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Database()
    return _DEFAULT


def reset() -> None:
    """Close and forget the process-wide database (tests)."""
    global _DEFAULT
    if _DEFAULT is not None:
        _DEFAULT.discard()
    _DEFAULT = None


def secret_from_dsn(dsn: str) -> dict[str, Any]:
    """An RDS-style secret from a ``postgresql://user:pass@host:port/db?host=/socket/dir`` URL."""
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qs(parts.query)
    return {
        "host": (query.get("host") or [parts.hostname or "localhost"])[0],
        "port": parts.port or int((query.get("port") or [5432])[0]),
        "username": urllib.parse.unquote(parts.username or "postgres"),
        "password": urllib.parse.unquote(parts.password or ""),
        "dbname": parts.path.lstrip("/") or "postgres",
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m common.db migrate [--dsn URL]``: apply the migrations and print the version."""
    parser = argparse.ArgumentParser(prog="python -m common.db", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["migrate"])
    parser.add_argument("--dsn", help="postgresql:// URL (default: the secret named by DB_SECRET_ARN)")
    args = parser.parse_args(argv)
    try:
        secret = secret_from_dsn(args.dsn) if args.dsn else _secret_from_environment()
        connection = pg8000.native.Connection(**connect_params(secret))
    except Exception as error:  # noqa: BLE001 - a CLI reports, it does not trace
        print(f"migrate: cannot connect: {error}", file=sys.stderr)
        return 2
    try:
        applied = migrate(connection)
    finally:
        connection.close()
    print(json.dumps({"applied": applied, "schema_version": SCHEMA_VERSION}))
    return 0


__all__ = ["Database", "MIGRATIONS", "SCHEMA_VERSION", "connect_params", "database", "migrate", "reset",
           "secret_from_dsn"]

if __name__ == "__main__":
    sys.exit(main())
