"""Storage tests on every backend: SQLite always, PostgreSQL when a server is given.

``CELLBENCH_TEST_POSTGRES_URL`` names a database on a server where the user may create databases
(``.ci/run`` starts one and sets it, e.g. ``postgresql+psycopg://postgres@127.0.0.1:54329/postgres``).
Without it, every PostgreSQL case is skipped with the reason below (``make test`` prints it).

Each PostgreSQL case gets a database of its own, dropped afterwards, so no test sees another's
runs: ``db_url`` copies a session-wide template already at the newest schema (CREATE DATABASE ...
TEMPLATE copies files; far faster than migrating each one), ``empty_pg_url`` is empty.
"""
from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage import engine as storage_engine

POSTGRES_URL_VAR = "CELLBENCH_TEST_POSTGRES_URL"
SERVER_URL = os.environ.get(POSTGRES_URL_VAR)
NO_SERVER = (f"PostgreSQL storage tests need {POSTGRES_URL_VAR} (a server where the user may "
             "create databases; .ci/run starts one)")
BACKENDS = ("sqlite", "postgresql")


def _admin():
    return create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")


def _database_url(name: str) -> str:
    return make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)


def _create_database(template: str | None = None) -> str:
    name = f"cellbench_test_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'
                              + (f' TEMPLATE "{template}"' if template else "")))
    finally:
        admin.dispose()
    return name


def _drop_database(name: str) -> None:
    url = _database_url(name)
    cached = storage_engine._engines.pop(url, None)  # readers cache one engine per URL
    if cached is not None:
        cached.dispose()
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def pg_server_url():
    """The server's admin URL (``CELLBENCH_TEST_POSTGRES_URL``), for tests that make their own
    databases."""
    if not SERVER_URL:
        pytest.skip(NO_SERVER)
    return SERVER_URL


@pytest.fixture(scope="session")
def pg_template():
    """Name of a database at the newest schema revision, to copy."""
    if not SERVER_URL:
        pytest.skip(NO_SERVER)
    name = _create_database()
    storage_engine.upgrade_database(_database_url(name))
    yield name
    _drop_database(name)


@pytest.fixture
def empty_pg_url():
    """URL of a new, empty PostgreSQL database (no schema)."""
    if not SERVER_URL:
        pytest.skip(NO_SERVER)
    name = _create_database()
    yield _database_url(name)
    _drop_database(name)


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """URL of a new database at the newest schema, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'cellbench.sqlite'}"
        return
    name = _create_database(template=request.getfixturevalue("pg_template"))
    yield _database_url(name)
    _drop_database(name)


def pytest_terminal_summary(terminalreporter):
    """One line at the end of every run saying whether PostgreSQL was tested, and why not."""
    skipped = [r for r in terminalreporter.stats.get("skipped", [])
               if isinstance(r.longrepr, tuple) and NO_SERVER in r.longrepr[2]]
    if SERVER_URL:
        terminalreporter.write_line(f"PostgreSQL storage tests ran against {SERVER_URL}")
    elif skipped:
        terminalreporter.write_line(f"PostgreSQL: {len(skipped)} storage tests SKIPPED: {NO_SERVER}",
                                    yellow=True, bold=True)
