"""Where the database is and how to open it.

The database is chosen, in order, by an explicit URL or path (``--db``), the ``CELLBENCH_DB``
environment variable (a path or a SQLAlchemy URL), or ``data/cellbench.sqlite`` under the
project root (the parent of the ``storage/`` package). Any SQLAlchemy URL works; SQLite gets
WAL journaling so that readers (GUI, CLI) never block the writer and a crash loses at most
the last unflushed batch.
"""
from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.schema import metadata

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
    """A new Engine for ``url`` (resolved by :func:`resolve_db_url`) with the tables created.

    For a SQLite file the parent directory is created, and every connection is set to
    ``journal_mode=WAL`` and ``synchronous=NORMAL`` (durable at each checkpoint, no fsync per
    commit: a power cut may lose the last commits, never corrupt the file).
    """
    resolved = resolve_db_url(url)
    parsed = make_url(resolved)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and _is_sqlite_file(parsed.database):
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(resolved, json_serializer=_dumps_json)
    if is_sqlite:
        event.listen(engine, "connect", _set_sqlite_pragmas)
    metadata.create_all(engine)
    return engine


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


def describe(engine: Engine) -> str:
    """The engine's URL without its password, for error messages."""
    return engine.url.render_as_string(hide_password=True)


def _is_sqlite_file(database: str | None) -> bool:
    return bool(database) and database != ":memory:" and not database.startswith("file:")


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
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
