"""The database schema: runs, steps, streams, points and analysis results (SQLAlchemy Core).

Data points: one narrow ``points`` table for every stream of every run
-----------------------------------------------------------------------
A row is ``(stream_id, seq, time_s, v0 .. v15, extra)`` with primary key ``(stream_id, seq)``.
Each stream's descriptor maps its columns onto that row and the mapping is stored with the
stream (``streams.layout``, e.g. ``{"time_s": "time_s", "frequency_hz": "v0", "mode": "extra"}``)
next to the columns' units and dtypes (``streams.columns``), so a stream reads back as a
DataFrame with its original column names and units.

- ``time_s``: a float column named ``time_s`` goes here, so time windows can be queried.
- ``v0`` .. ``v15``: float columns, and int columns (ints with ``|x| < 2**53`` are exact in a
  double). NaN is stored as NULL and read back as NaN. A stream with more than 16 float/int
  columns is refused when its descriptor arrives (:class:`StreamLayoutError`), never truncated.
- str columns: dictionary-encoded per stream. Each value gets an integer code (its index in
  ``streams.str_codes[column]``, a list grown by the writer in the transaction that first stores
  the value) and the code goes into a free float slot, so a str column costs what a float column
  costs. NULL code: the value is None, or is in ``extra``, which holds the values of a column that
  has reached ``MAX_STR_CODES`` distinct values (free text is not a small set). A str column finds
  no free slot when the numeric columns use all 16; it then lives in ``extra`` as a whole.
- ``extra``: JSON text of the row's str values that have no code and of any int too large for a
  double, NULL otherwise. Streams written before revision 0002 keep their str columns there
  (their layout says ``"extra"``) and read back unchanged.

``streams.n_points`` is the stream's row count, kept by the writer in the transaction that
inserts the rows, so no query counts ``points``.

Why this and not the alternatives: one table per stream would need DDL at run time and makes
"every point of a run" a union over unknown tables; a long (stream, seq, column, value) table
multiplies rows and index entries by the column count, which is several times slower to ingest
and needs a pivot to read; a JSON/BLOB per row or per page is compact but opaque to SQL and
slow to decode. Fixed float slots keep one row and one B-tree entry per point, bind plain
floats (the fastest path of every DBAPI) and stay queryable. On SQLite the table is declared
``WITHOUT ROWID`` so the primary key *is* the table: one B-tree insert per row instead of two.

The tables are created and changed by the migrations in storage/migrations/ only; this module
describes revision ``SCHEMA_REVISION`` and is what the code queries.

Timestamps are stored as UTC (:class:`UTCDateTime`); JSON columns use SQLAlchemy's portable
``JSON`` type. Nothing here is SQLite-only except the ``sqlite_with_rowid`` option, which
other dialects ignore.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer,
                        MetaData, String, Table, Text, UniqueConstraint)
from sqlalchemy.types import TypeDecorator

SCHEMA_REVISION = "0005"
"""The migration revision these tables describe (storage/migrations/versions/)."""
N_VALUE_SLOTS = 16
VALUE_SLOTS = tuple(f"v{i}" for i in range(N_VALUE_SLOTS))
TIME_SLOT = "time_s"
EXTRA_SLOT = "extra"
MAX_EXACT_INT = 2 ** 53
"""Ints with ``|x| < MAX_EXACT_INT`` are stored exactly in a float slot; larger ones in ``extra``."""
MAX_STR_CODES = 1024
"""Distinct values of one str column that get codes; further values go to ``extra``."""


class StreamLayoutError(ValueError):
    """A stream's columns cannot be stored (too many numeric columns, unknown dtype)."""


class SchemaError(RuntimeError):
    """The database's schema is not one this code can use or upgrade (storage/migrations/)."""


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    SQLite has no time zones and SQLAlchemy would silently drop the offset, so values are
    normalised to naive UTC on the way in and marked UTC on the way out.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: storage needs timezone-aware UTC times")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


def utc_from_epoch(seconds: float) -> datetime:
    """UTC datetime of ``seconds`` since the Unix epoch (the documents' ``time`` field)."""
    return datetime.fromtimestamp(float(seconds), tz=timezone.utc)


metadata = MetaData()

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(64), nullable=False, unique=True),
    Column("protocol_name", String(255), nullable=False),
    Column("protocol", JSON),
    Column("sample", JSON),
    Column("station", JSON),
    Column("simulated", Boolean, nullable=False, default=False),
    Column("status", String(32), nullable=False),
    Column("reason", Text),
    Column("traceback", Text),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    # The writing process (storage/liveness.py): host name, pid, and the process's start time as
    # the OS reports it (a pid may be reused).
    Column("host", String(255)),
    Column("pid", Integer),
    Column("process_started", String(64)),
    # Run ids are shown to users and named in exports: never reuse one after a deletion.
    sqlite_autoincrement=True,
)

steps = Table(
    "steps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("name", String(255)),
    Column("params", JSON),
    Column("status", String(32), nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("summary", JSON),
    Index("ix_steps_run_step", "run_id", "step_index"),
)

streams = Table(
    "streams", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("step_index", Integer),
    Column("descriptor_uid", String(64), nullable=False, unique=True),
    Column("metadata", JSON),
    Column("columns", JSON, nullable=False),
    Column("layout", JSON, nullable=False),
    Column("n_points", Integer, nullable=False, server_default="0"),
    Column("str_codes", JSON),
    UniqueConstraint("run_id", "name", name="uq_streams_run_name"),
)

points = Table(
    "points", metadata,
    Column("stream_id", Integer, ForeignKey("streams.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column(TIME_SLOT, Float),
    *(Column(slot, Float) for slot in VALUE_SLOTS),
    Column(EXTRA_SLOT, Text),
    sqlite_with_rowid=False,
)

analysis_results = Table(
    "analysis_results", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("step_index", Integer),
    Column("result", JSON),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_analysis_run_name", "run_id", "name"),
)

suspensions = Table(
    "suspensions", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("uid", String(64), nullable=False, unique=True),
    Column("step_index", Integer),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("setpoint_c", Float),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("detail", JSON),  # what the step did, the streams it invalidated, the mode found
    Index("ix_suspensions_run", "run_id"),
)
"""A run's suspensions (procedures/watch.py), one row each, updated as its documents arrive;
times are the documents' clock times (virtual in simulation), as the steps' are."""

gaps = Table(
    "gaps", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("stream", String(255), nullable=False),
    Column("step_index", Integer),
    Column("technique", String(64)),
    Column("from_s", Float, nullable=False),
    Column("to_s", Float, nullable=False),
    Column("points_lost", Integer, nullable=False),
    Column("points_expected", Integer),
    Index("ix_gaps_run", "run_id"),
)
"""Points lost by an instrument's finite buffer while no controller read it (config/documents.py
``GapDoc``); ``from_s``/``to_s`` are run times, as the stream's ``time_s``."""
run_checkpoints = Table(
    "run_checkpoints", metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("generation", Integer, nullable=False),
    # The clock time of the run's start (virtual in simulation): the origin of its time_s columns.
    Column("clock_t0", Float, nullable=False),
    Column("step_index", Integer, nullable=False),
    Column("position", JSON),
    Column("updated_at", UTCDateTime, nullable=False),
)
"""How far a run has come: written in the same transaction as the rows it covers
(storage/checkpoints.py)."""

alembic_version = Table(
    "alembic_version", MetaData(),
    Column("version_num", String(32), primary_key=True),
)
"""Alembic's own table (outside ``metadata``): the database's schema revision."""


def plan_layout(stream: str, columns: dict) -> dict[str, str]:
    """Slot of each column (``time_s``, ``v0``.., or ``extra``) for a descriptor's ``columns``.

    Float and int columns take slots first, in column order; str columns then take the slots
    left (coded, see the module docstring) and ``extra`` when none is. Raises StreamLayoutError
    naming the stream if a dtype is unknown or more than ``N_VALUE_SLOTS`` float/int columns
    need a slot.
    """
    layout: dict[str, str] = {}
    free = iter(VALUE_SLOTS)
    for name, spec in columns.items():
        dtype = spec.get("dtype", "float") if isinstance(spec, dict) else None
        if dtype not in ("float", "int", "str"):
            raise StreamLayoutError(f"stream {stream!r}: column {name!r} has dtype {dtype!r}; "
                                    "expected 'float', 'int' or 'str'")
        if dtype == "str":
            continue
        if name == TIME_SLOT and dtype == "float":
            layout[name] = TIME_SLOT
            continue
        slot = next(free, None)
        if slot is None:
            numeric = [n for n, s in columns.items()
                       if s.get("dtype", "float") != "str" and n != TIME_SLOT]
            raise StreamLayoutError(
                f"stream {stream!r} has {len(numeric)} float/int columns but storage holds "
                f"at most {N_VALUE_SLOTS} per stream (besides time_s); split the stream")
        layout[name] = slot
    for name, spec in columns.items():
        if spec.get("dtype") == "str":
            layout[name] = next(free, EXTRA_SLOT)
    return {name: layout[name] for name in columns}
