"""Where the database is and how to open it.

The database is chosen, in order, by an explicit URL or path (``--db``), the ``CELLBENCH_DB``
environment variable (a path or a SQLAlchemy URL), or ``data/cellbench.sqlite`` under the
project root (the parent of the ``storage/`` package). Any SQLAlchemy URL works; SQLite gets
WAL journaling so that readers (GUI, CLI) never block the writer and a crash loses at most
the last unflushed batch.

The schema belongs to the migrations in storage/migrations/: opening a SQLite database brings it
to the newest revision (creating it if empty, upgrading one written by older code in place).
Opening an empty database on any other server creates the schema (several station processes may
start on a fresh lab database at once: the migrations serialise them under a lock), but a server
database holding an older schema must be upgraded explicitly (``main.py db upgrade --db URL``),
because a lab server's existing data are migrated by its administrator, not by whichever client
connects first.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url

from storage.schema import SCHEMA_REVISION, alembic_version

ENV_VAR = "CELLBENCH_DB"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PATH = PROJECT_ROOT / "data" / "cellbench.sqlite"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def resolve_db_url(url: str | os.PathLike | None) -> str:
    """SQLAlchemy URL for ``url``: a URL is returned as is, a file path becomes ``sqlite:///``.

    ``None`` means ``$CELLBENCH_DB`` if set and non-empty, else the default database file.
    """
    if url is None or str(url) == "":
        url = os.environ.get(ENV_VAR) or DEFAULT_DB_PATH
    text = os.fspath(url)
    if "://" in text:
        return text
    return "sqlite:///" + str(Path(text).expanduser().resolve())


def make_engine(url: str | os.PathLike | None) -> Engine:
    """A new Engine for ``url`` (resolved by :func:`resolve_db_url`) on the current schema.

    SQLite: the file's parent directory is created, the schema migrated to the newest revision,
    and every connection set to ``journal_mode=WAL`` and ``synchronous=NORMAL`` (durable at each
    checkpoint, no fsync per commit: a power cut may lose the last commits, never corrupt the
    file). Other databases: an empty one gets the schema; otherwise raises
    storage.schema.SchemaError unless already current.
    """
    engine = _new_engine(url)
    try:
        if not schema_is_current(engine):
            from storage import migrations
            if engine.dialect.name == "sqlite" or _has_no_tables(engine):
                migrations.upgrade_engine(engine)
            else:
                migrations.check_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade_database(url: str | os.PathLike | None) -> tuple[str | None, str]:
    """Migrate the database at ``url`` (any backend) to the newest schema revision; returns
    (revision before, revision after); before is None for a database that had no schema."""
    from storage import migrations
    engine = _new_engine(url)
    try:
        return migrations.upgrade_engine(engine)
    finally:
        engine.dispose()


def schema_is_current(engine: Engine) -> bool:
    """True if the database is at the schema revision this code uses (two cheap queries;
    importing Alembic is left to the rare case that needs it)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(alembic_version.name):
            return False
        return conn.execute(select(alembic_version.c.version_num)).scalars().all() == [
            SCHEMA_REVISION]


def _has_no_tables(engine: Engine) -> bool:
    with engine.connect() as conn:
        return not inspect(conn).get_table_names()


def engine_for(url_or_engine: Engine | str | os.PathLike | None) -> Engine:
    """The Engine to use: an Engine is returned as is; URLs share one cached Engine each.

    Caching matters for readers called many times by the GUI's run browser: an Engine owns a
    connection pool and checks the schema once.
    """
    if isinstance(url_or_engine, Engine):
        return url_or_engine
    resolved = resolve_db_url(url_or_engine)
    with _engines_lock:
        engine = _engines.get(resolved)
        if engine is None:
            engine = _engines[resolved] = make_engine(resolved)
        return engine


def _new_engine(url: str | os.PathLike | None) -> Engine:
    resolved = resolve_db_url(url)
    parsed = make_url(resolved)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and is_sqlite_file(parsed.database):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(resolved, json_serializer=_dumps_json)
    if is_sqlite:
        event.listen(engine, "connect", set_sqlite_pragmas)
    return engine


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for error messages."""
    return engine.url.render_as_string(hide_password=True)


def is_sqlite_file(database: str | None) -> bool:
    """True for the database name of a SQLite URL that is a plain file (not memory, not a URI)."""
    return bool(database) and database != ":memory:" and not database.startswith("file:")


def set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL journal and synchronous=NORMAL on a new SQLite DBAPI connection."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _dumps_json(value: Any) -> str:
    """JSON text for the JSON columns; numpy scalars and arrays become plain numbers and lists,
    because protocols, summaries and analysis results are often built from numpy results."""
    return json.dumps(value, default=_numpy_to_python)


def _numpy_to_python(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"value of type {type(value).__name__} is not JSON serializable: {value!r}")
