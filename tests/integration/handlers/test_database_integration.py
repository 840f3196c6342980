"""Migrations on a real PostgreSQL: idempotent, safe under concurrency, and the migrate command."""
from __future__ import annotations

import json
import subprocess
import sys
import threading

import pg8000.dbapi
import pg8000.native
from handler_kit import HANDLERS_DIR, db_rows


def test_concurrent_migrations_apply_each_step_once(pg):
    from common import db

    db_rows(pg, "DROP TABLE IF EXISTS items, due_work, processed_records, schema_migrations")
    applied, errors = [], []

    def migrate():
        connection = pg8000.native.Connection(**db.connect_params(pg))
        try:
            applied.append(db.migrate(connection))
        except Exception as error:  # noqa: BLE001 - collected for the assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=migrate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(v for versions in applied for v in versions) == [1, 2, 3]
    assert db_rows(pg, "SELECT version FROM schema_migrations ORDER BY 1") == [[1], [2], [3]]


def test_migrate_accepts_a_dbapi_connection(pg):
    from common import db

    params = db.connect_params(pg)
    connection = pg8000.dbapi.connect(**params)
    try:
        db.migrate(connection)                # whatever ran before on this worker's database
        connection.commit()
        assert db.migrate(connection) == []   # a second run finds the schema current
    finally:
        connection.close()


def test_migrate_command(pg):
    dsn = f"postgresql://{pg['username']}:@/{pg['dbname']}?host={pg['host']}&port={pg['port']}"
    result = subprocess.run([sys.executable, "-m", "common.db", "migrate", "--dsn", dsn], cwd=HANDLERS_DIR,
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["schema_version"] == 3


def test_migrate_command_reports_an_unreachable_database():
    result = subprocess.run([sys.executable, "-m", "common.db", "migrate", "--dsn", "postgresql://u:@/d?host=/nonexistent"],
                            cwd=HANDLERS_DIR, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 2 and "cannot connect" in result.stderr and "Traceback" not in result.stderr
