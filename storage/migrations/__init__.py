"""Versioned schema migrations (Alembic): the one way the database schema is created or changed.

Revisions live in ``versions/`` (``0001`` is the schema of commit 0bac8df, before migrations).
:func:`upgrade_engine` brings a database to the newest revision; storage/engine.py calls it when it
opens a SQLite database or an empty one on any server, and ``main.py db upgrade [--db URL]`` for any
database.

A database written before migrations existed has the tables of ``0001`` and no ``alembic_version``
table: it is stamped ``0001`` and upgraded in place. A database with only some of those tables, or
at a revision this code does not know (written by a newer cellbench), is refused with
:class:`SchemaError`, never altered.

Concurrency: two processes may open a fresh database at once. The upgrade runs in ONE transaction
that first takes the database's write lock (SQLite: ``BEGIN IMMEDIATE`` on a dedicated connection,
waiting up to ``LOCK_TIMEOUT_S`` for it; PostgreSQL: ``pg_advisory_xact_lock``), then reads the
revision again and migrates only if it is still behind. The second process waits for the first to
commit and finds the schema current. SQLite and PostgreSQL both have transactional DDL, so a
failed upgrade leaves the previous revision intact.

New revision: ``alembic.command.revision(alembic_config(), "message", rev_id="0003")``, then write
its ``upgrade()`` with batch operations (``op.batch_alter_table``) so it runs on SQLite and
PostgreSQL alike.
"""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.pool import NullPool

from storage.engine import is_sqlite_file, set_sqlite_pragmas
from storage.schema import SchemaError

MIGRATIONS_DIR = Path(__file__).resolve().parent
LEGACY_REVISION = "0001"
LEGACY_TABLES = frozenset({"runs", "steps", "streams", "points", "analysis_results"})
"""The tables of a database written before migrations (commit 0bac8df)."""
LOCK_TIMEOUT_S = 60.0
"""How long a SQLite upgrade waits for another process's write lock (its upgrade or a flush)."""
_PG_LOCK_KEY = 0x63656C6C  # "cell": any fixed key shared by every cellbench process


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic configuration for these migrations, bound to ``connection`` (online) or to
    ``url`` (offline SQL rendering), without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision, the one this code reads and writes."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The database's revision; None for an empty or pre-migration database."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_engine(engine: Engine) -> tuple[str | None, str]:
    """Bring ``engine``'s database to :func:`head_revision`; returns (revision before, after).

    Safe against concurrent callers in other processes (see the module docstring). Raises
    SchemaError naming the database for a schema that is neither ours nor empty.
    """
    head = head_revision()
    with engine.connect() as conn:
        before = current_revision(conn)
    if before == head:
        return before, head
    if engine.dialect.name == "sqlite" and is_sqlite_file(engine.url.database):
        # A dedicated connection that takes the write lock before reading the revision; the
        # engine's own connections keep pysqlite's default transaction handling.
        locking = create_engine(engine.url, poolclass=NullPool,
                                connect_args={"timeout": LOCK_TIMEOUT_S})
        event.listen(locking, "connect", _sqlite_manual_transactions)
        event.listen(locking, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        try:
            with locking.begin() as conn:
                before = _upgrade_locked(conn, head)
        finally:
            locking.dispose()
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            before = _upgrade_locked(conn, head)
    return before, head


def check_current(engine: Engine) -> None:
    """Raise SchemaError unless the database is at :func:`head_revision`, saying how to upgrade."""
    head = head_revision()
    with engine.connect() as conn:
        current = current_revision(conn)
    if current != head:
        where = engine.url.render_as_string(hide_password=True)
        if current is not None:
            state = f"is at revision {current}"
        elif LEGACY_TABLES <= set(inspect(engine).get_table_names()):
            state = "was written before schema migrations"
        else:
            state = "has no cellbench schema"
        raise SchemaError(f"database {where} {state}; this cellbench needs revision {head}: "
                          f"run `main.py db upgrade --db {where}`")


def _upgrade_locked(conn: Connection, head: str) -> str | None:
    """Upgrade inside ``conn``'s transaction, which holds the schema lock; returns the revision
    found before."""
    where = conn.engine.url.render_as_string(hide_password=True)
    before = current_revision(conn)
    if before == head:
        return before
    config = alembic_config(conn)
    if before is None:
        found = LEGACY_TABLES & set(inspect(conn).get_table_names())
        if found == LEGACY_TABLES:
            command.stamp(config, LEGACY_REVISION)
        elif found:
            raise SchemaError(f"database {where} has the cellbench tables {sorted(found)} but "
                              f"not {sorted(LEGACY_TABLES - found)}: damaged or not a cellbench "
                              "database; not migrating it")
    else:
        try:
            ScriptDirectory(str(MIGRATIONS_DIR)).get_revision(before)
        except CommandError:
            raise SchemaError(f"database {where} is at schema revision {before!r}, which this "
                              f"cellbench does not know (newest: {head}); it was written by a "
                              "newer version: use that one") from None
    command.upgrade(config, "head")
    return before


def _sqlite_manual_transactions(dbapi_connection, record) -> None:
    # WAL from the file's creation on; then pysqlite must not open its own deferred transaction
    # (nor skip one before DDL): the "begin" listener emits BEGIN IMMEDIATE instead.
    set_sqlite_pragmas(dbapi_connection, record)
    dbapi_connection.isolation_level = None
