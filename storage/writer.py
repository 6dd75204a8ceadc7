"""The storage subscriber: writes the document stream of procedures/documents.py to the database.

``StorageWriter`` is a callable ``writer(name, doc)``; subscribe it with ``critical=True`` so a
failed write stops the run instead of losing data. Event-page rows are buffered and written in
ONE transaction per flush; a flush happens when ``flush_rows`` rows are buffered, when
``flush_interval_s`` of clock time has passed since the last flush (checked at each document),
and always at ``step_stop``, ``analysis`` and ``stop``. Every other document is written at once
(readers see a run, its streams and its current step immediately), in one transaction together
with whatever rows are buffered at that moment. Each flush also refreshes ``runs.updated_at`` (wall
time), a heartbeat by which a reader can tell a live run from one whose writer died, and, in the
same transaction as the rows, each stream's ``n_points`` and any new str codes (see
storage/schema.py).

A crash loses at most the unflushed buffer (points the instruments still hold: see below); the
run keeps status ``"running"``, which readers show as ``interrupted`` once its process is gone
(storage/liveness.py: the run row holds the writer's host, pid and process start time).

Resume (procedures/resume.py): every transaction also writes the run's checkpoint row
(storage/checkpoints.py: step index and position from the ``checkpoint`` documents, and a
``generation`` counting the transactions), and calls ``on_transaction(run_id, generation)`` just
before it commits, where the simulated station saves its state for that generation: "a point is
either committed or still obtainable from the instrument". A ``checkpoint`` document is written at
once, with the rows buffered before it. A ``start`` document with ``resume_run_id`` continues
that stored run: same run row, its streams continued from their stored point counts.

On SQLite and PostgreSQL (any DBAPI whose paramstyle is ``qmark``, ``format`` or ``pyformat``)
the point rows go through the DBAPI cursor's ``executemany`` of multi-row ``INSERT ... VALUES``
statements with prebuilt flat parameter lists, inside the flush's SQLAlchemy transaction (about
twice as fast as Core ``insert()`` with dicts on SQLite and on PostgreSQL with psycopg; see
bench/bench_storage_ingest.py and bench/bench_pg_ingest.py). Other DBAPIs use Core
``insert()``. NaN is bound as NULL everywhere (SQLite does it itself; PostgreSQL would store a
float NaN, which ``max()`` ranks above every number).
"""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timezone
from itertools import chain, repeat
from typing import Any, Callable

import numpy as np
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from config.documents import FINAL_STATUSES, STEP_STATUSES, SuspensionState
from storage.checkpoints import stored_streams, write_checkpoint
from storage.engine import describe, engine_for
from storage.liveness import this_process
from storage.schema import (EXTRA_SLOT, MAX_EXACT_INT, MAX_STR_CODES, analysis_results,
                            gaps, plan_layout, points, run_checkpoints, runs, steps, streams, suspensions,
                            utc_from_epoch)

log = logging.getLogger(__name__)

STOP_STATUSES = FINAL_STATUSES
SQLITE_MAX_PARAMETERS = 999
"""Bound parameters per statement: the limit of SQLite builds before 3.32, safe everywhere."""
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
"""The positional placeholder of each DBAPI paramstyle the fast insert path can bind."""


class DocumentError(ValueError):
    """A document that storage cannot accept (wrong order, unknown stream, bad columns)."""


class StorageWriteError(RuntimeError):
    """A database write failed; the message names the run, the stream(s) and the database.

    Buffered rows that failed to write stay buffered, so ``flush()`` may be retried.
    """


class _Stream:
    """What the writer needs to turn one stream's event pages into point parameters.

    A row's parameters are ``stream_id, seq, <slots in float_cols + int_cols + code_cols
    order>`` and, if the stream has int or str columns, ``extra``, flat (row after row in one
    list) because that is what multi-row INSERTs bind.
    """

    __slots__ = ("id", "name", "columns", "float_cols", "int_cols", "code_cols", "extra_cols",
                 "has_extra", "insert_columns", "rows_per_statement", "str_codes", "code_index",
                 "codes_changed")

    def __init__(self, stream_id: int, name: str, columns: dict, layout: dict[str, str]) -> None:
        self.id = stream_id
        self.name = name
        self.columns = columns
        slotted = {c: layout[c] for c in columns if layout[c] != EXTRA_SLOT}
        self.float_cols = [c for c in slotted if columns[c]["dtype"] == "float"]
        self.int_cols = [c for c in slotted if columns[c]["dtype"] == "int"]
        self.code_cols = [c for c in slotted if columns[c]["dtype"] == "str"]
        self.extra_cols = [c for c in columns if layout[c] == EXTRA_SLOT]
        # extra also holds ints beyond a double and str values beyond MAX_STR_CODES.
        self.has_extra = bool(self.extra_cols or self.int_cols or self.code_cols)
        self.insert_columns = (["stream_id", "seq"]
                               + [slotted[c] for c in self.float_cols + self.int_cols
                                  + self.code_cols]
                               + ([EXTRA_SLOT] if self.has_extra else []))
        self.rows_per_statement = max(1, SQLITE_MAX_PARAMETERS // len(self.insert_columns))
        self.str_codes: dict[str, list[str]] = {c: [] for c in self.code_cols}
        self.code_index: dict[str, dict] = {c: {None: np.nan} for c in self.code_cols}
        self.codes_changed = False
        """str_codes has values not yet committed."""

    def encode(self, name: str, values: list) -> tuple[np.ndarray, list[tuple[int, str]]]:
        """Float codes of str column ``name``'s ``values`` (NaN for None) and the (row, value)
        pairs that got no code because the column has ``MAX_STR_CODES`` values already."""
        index = self.code_index[name]
        try:
            return np.fromiter(map(index.__getitem__, values), np.float64, len(values)), []
        except (KeyError, TypeError):  # a new value (or one that is not a str yet)
            pass
        table = self.str_codes[name]
        codes = np.empty(len(values))
        spilled = []
        for i, value in enumerate(values):
            if value is not None and type(value) is not str:
                value = str(value)
            code = index.get(value)
            if code is None:
                if len(table) < MAX_STR_CODES:
                    code = index[value] = float(len(table))
                    table.append(value)
                    self.codes_changed = True
                else:
                    code = np.nan
                    spilled.append((i, value))
            codes[i] = code
        return codes, spilled

    def row_columns(self, with_extra: bool) -> list[str]:
        """The columns a row binds; ``with_extra`` False leaves the extra column out (NULL)."""
        return self.insert_columns[:-1] if self.has_extra and not with_extra \
            else self.insert_columns

    def multi_row_insert(self, n_rows: int, placeholder: str, with_extra: bool) -> str:
        """INSERT of ``n_rows`` rows in one statement (one statement execution per statement
        instead of per row: about twice the rows/s of a one-row executemany on SQLite, and
        on PostgreSQL with psycopg)."""
        names = self.row_columns(with_extra)
        row = "(" + ",".join([placeholder] * len(names)) + ")"
        return (f"INSERT INTO {points.name} ({','.join(names)}) VALUES "
                + ",".join([row] * n_rows))


class StorageWriter:
    """Subscriber ``writer(name, doc)`` that stores runs in the database at ``url_or_engine``.

    ``flush_rows`` (>= 1) and ``flush_interval_s`` (>= 0 s of ``clock`` time) bound what a crash
    can lose. An event page is checked and copied when it arrives (a bad page raises then, naming
    the problem) and turned into rows at the flush, all buffered pages of a stream at once: a
    cycler follower emits thousands of pages of a few rows, and per-page work would dominate. ``clock`` is any object with ``now()`` in seconds (the run's Clock, so that
    simulated runs flush by virtual time); ``None`` uses ``time.monotonic``.
    """

    def __init__(self, url_or_engine: Engine | str | os.PathLike | None = None,
                 flush_rows: int = 5000, flush_interval_s: float = 2.0,
                 clock: Any = None,
                 on_transaction: Callable[[int, int], None] | None = None) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be >= 1, not {flush_rows}")
        if flush_interval_s < 0:
            raise ValueError(f"flush_interval_s must be >= 0 s, not {flush_interval_s}")
        self.engine = engine_for(url_or_engine)
        self.flush_rows = int(flush_rows)
        self.flush_interval_s = float(flush_interval_s)
        self._now: Callable[[], float] = clock.now if clock is not None else time.monotonic
        self._placeholder = _PLACEHOLDERS.get(self.engine.dialect.loaded_dbapi.paramstyle)
        """The fast insert path's placeholder; None: Core ``insert()``."""
        # The fast path calls the DBAPI cursor directly, whose errors SQLAlchemy does not wrap.
        self._db_errors = (SQLAlchemyError, self.engine.dialect.loaded_dbapi.Error)
        self.run_id: int | None = None
        self.last_run_id: int | None = None
        """The id of the run most recently finished by a ``stop`` document."""
        self.run_uid: str | None = None
        self.flushes = 0
        """Committed transactions that wrote buffered point rows."""
        self.rows_written = 0
        self._streams: dict[str, _Stream] = {}
        self._pending: dict[int, list[tuple[int, int, dict]]] = {}
        """Buffered pages by stream id: (seq_start, rows, columns)."""
        self._pending_rows = 0
        self._last_flush = self._now()
        self.on_transaction = on_transaction
        self._generation = 0
        self._clock_t0 = 0.0
        self._position: tuple[int, dict] = (-1, {})
        """The checkpoint every transaction writes: (step index, position)."""
        self._handlers = {
            "start": self._on_start, "descriptor": self._on_descriptor,
            "event_page": self._on_event_page, "step_start": self._on_step_start,
            "step_stop": self._on_step_stop, "suspension": self._on_suspension,
            "gap": self._on_gap,
            "analysis": self._on_analysis, "stop": self._on_stop,
            "progress": lambda doc: None,  # derived from what is stored; nothing to keep
            "checkpoint": self._on_checkpoint,
        }

    # --- subscriber -----------------------------------------------------------------------
    def __call__(self, name: str, doc: dict) -> None:
        handler = self._handlers.get(name)
        if handler is None:
            raise DocumentError(f"storage: unknown document name {name!r}; "
                                f"expected one of {tuple(self._handlers)}")
        if name != "start" and self.run_id is None:
            raise DocumentError(f"storage: {name!r} document before any 'start' document")
        handler(doc)
        if self._pending_rows and (self._pending_rows >= self.flush_rows
                                   or self._now() - self._last_flush >= self.flush_interval_s):
            self.flush()

    @property
    def pending_rows(self) -> int:
        """Rows buffered and not yet committed."""
        return self._pending_rows

    def flush(self) -> None:
        """Commit buffered rows (no-op if none) in one transaction."""
        if self._pending_rows:
            self._transaction(lambda conn: None, "flush buffered rows")

    def close(self) -> None:
        """Commit buffered rows. A run without a ``stop`` document keeps status "running"."""
        self.flush()

    # --- documents ------------------------------------------------------------------------
    def _on_start(self, doc: dict) -> None:
        if self.run_id is not None:
            raise DocumentError(f"storage: 'start' of run {doc.get('run_uid')!r} while run "
                                f"{self.run_id} ({self.run_uid}) has had no 'stop'")
        self._streams.clear()
        self._clock_t0 = float(doc.get("time") or 0.0)
        if doc.get("resume_run_id") is not None:
            self._resume(doc)
            return
        values = {
            "uid": _field(doc, "run_uid", "start"),
            "protocol_name": _field(doc, "protocol_name", "start"),
            "protocol": doc.get("protocol"), "sample": doc.get("sample"),
            "station": doc.get("station"), "simulated": bool(doc.get("simulated", False)),
            # Run times are wall time (what `runs` lists); a simulated run's document times are
            # virtual and stay in its steps.
            "status": "running", "started_at": _wall_now(),
            "updated_at": _wall_now(), **this_process(),
        }
        self._generation, self._position = 0, (-1, {})
        self.run_uid = values["uid"]

        def write(conn: Connection) -> None:
            self.run_id = int(conn.execute(insert(runs).values(**values)).inserted_primary_key[0])
        try:
            self._transaction(write, f"insert the run ({values['protocol_name']})")
        except StorageWriteError:
            self.run_id = self.run_uid = None
            raise
        self._last_flush = self._now()

    def _resume(self, doc: dict) -> None:
        """Continue stored run ``resume_run_id``: running again, by this process; its streams
        are taken up where their stored rows end."""
        run_id = int(doc["resume_run_id"])
        try:
            with self.engine.connect() as conn:
                row = conn.execute(select(runs.c.uid).where(runs.c.id == run_id)).first()
                stored = stored_streams(conn, run_id)
                checkpoint = conn.execute(select(run_checkpoints)
                                          .where(run_checkpoints.c.run_id == run_id)).first()
        except self._db_errors as exc:
            raise StorageWriteError(f"storage: could not read run {run_id} to resume it from "
                                    f"{describe(self.engine)}: {exc}") from exc
        if row is None:
            raise DocumentError(f"storage: run {run_id} to resume is not in {describe(self.engine)}")
        self.run_id, self.run_uid = run_id, row.uid
        if checkpoint is not None:
            # Until the resumed run reaches its next step, its transactions keep the checkpoint
            # it resumed from (a second crash then resumes from there again).
            self._generation, self._clock_t0 = int(checkpoint.generation), float(checkpoint.clock_t0)
            self._position = (int(checkpoint.step_index), dict(checkpoint.position or {}))
        for s in stored:
            stream = _Stream(s["id"], s["name"], s["columns"], s["layout"])
            for column, values in (s["str_codes"] or {}).items():
                if column in stream.str_codes:
                    stream.str_codes[column] = list(values)
                    stream.code_index[column].update({v: float(i) for i, v in enumerate(values)})
            self._streams[s["descriptor_uid"]] = stream
        self._transaction(
            lambda conn: conn.execute(update(runs).where(runs.c.id == run_id).values(
                status="running", reason=None, traceback=None, ended_at=None, **this_process())),
            "mark the run running again")
        self._last_flush = self._now()

    def _on_descriptor(self, doc: dict) -> None:
        uid = _field(doc, "descriptor_uid", "descriptor")
        name = _field(doc, "stream", "descriptor")
        specs = _field(doc, "columns", "descriptor")
        bad = sorted(c for c, spec in specs.items() if not isinstance(spec, dict))
        if bad:
            raise DocumentError(f"storage: stream {name!r} of run {self.run_id}: columns {bad} "
                                "need a {'unit': ..., 'dtype': ...} spec")
        columns = {c: {"unit": str(spec.get("unit", "")), "dtype": spec.get("dtype", "float")}
                   for c, spec in specs.items()}
        if not columns:
            raise DocumentError(f"storage: stream {name!r} of run {self.run_id} has no columns")
        layout = plan_layout(name, columns)
        values = {"run_id": self.run_id, "name": name, "step_index": doc.get("step_index"),
                  "descriptor_uid": uid, "metadata": doc.get("metadata") or {},
                  "columns": columns, "layout": layout}

        created: list[int] = []
        self._transaction(
            lambda conn: created.append(
                conn.execute(insert(streams).values(**values)).inserted_primary_key[0]),
            f"insert stream {name!r}")
        self._streams[uid] = _Stream(int(created[0]), name, columns, layout)

    def _on_event_page(self, doc: dict) -> None:
        uid = _field(doc, "descriptor_uid", "event_page")
        stream = self._streams.get(uid)
        if stream is None:
            raise DocumentError(f"storage: event_page for unknown descriptor {uid!r} in run "
                                f"{self.run_id}; its descriptor document must come first")
        seq_start = _field(doc, "seq_start", "event_page")
        n, columns = _checked_page(stream, self.run_id, seq_start,
                                   _field(doc, "data", "event_page"))
        if n:
            self._pending.setdefault(stream.id, []).append((int(seq_start), n, columns))
            self._pending_rows += n

    def _on_checkpoint(self, doc: dict) -> None:
        index = _field(doc, "step_index", "checkpoint")
        self._position = (int(index), dict(doc.get("position") or {}))
        self._transaction(lambda conn: None, f"checkpoint step {index}")

    def _on_step_start(self, doc: dict) -> None:
        index = _field(doc, "step_index", "step_start")
        # A step taken up again after a crash starts from the position it had.
        self._position = (int(index), dict(doc.get("position") or {}))
        values = {"run_id": self.run_id, "step_index": index,
                  "kind": _field(doc, "kind", "step_start"), "name": doc.get("name"),
                  "params": doc.get("params") or {}, "status": "running",
                  "started_at": _optional_time(doc)}
        self._transaction(lambda conn: conn.execute(insert(steps).values(**values)),
                          f"insert step {index}")

    def _on_step_stop(self, doc: dict) -> None:
        index = _field(doc, "step_index", "step_stop")
        status = _status(doc, "step_stop", STEP_STATUSES)

        def write(conn: Connection) -> None:
            # The latest row of this step index: a resumed run may start a step again.
            step_id = conn.execute(
                select(steps.c.id).where(steps.c.run_id == self.run_id,
                                         steps.c.step_index == index)
                .order_by(steps.c.id.desc()).limit(1)).scalar()
            if step_id is None:
                raise DocumentError(f"storage: step_stop for step {index} of run {self.run_id} "
                                    "without a step_start")
            conn.execute(update(steps).where(steps.c.id == step_id).values(
                status=status, ended_at=_optional_time(doc), summary=doc.get("summary") or {}))
            for name in (doc.get("summary") or {}).get("incomplete_streams", ()):
                # A stream cut by a crash keeps its rows, marked so analysis leaves it out.
                for stream in self._streams.values():
                    if stream.name == name:
                        meta = conn.execute(select(streams.c.metadata)
                                            .where(streams.c.id == stream.id)).scalar() or {}
                        conn.execute(update(streams).where(streams.c.id == stream.id)
                                     .values(metadata={**meta, "incomplete": True}))
        self._transaction(write, f"finish step {index}")

    def _on_suspension(self, doc: dict) -> None:
        """One row per suspension, updated by each of its documents; the streams it invalidated
        get ``valid: false`` and the reason in their metadata, in the same transaction."""
        uid = _field(doc, "suspension_uid", "suspension")
        state = _field(doc, "state", "suspension")
        if state not in tuple(s.value for s in SuspensionState):
            raise DocumentError(f"storage: 'suspension' document has state {state!r}")
        values = {"state": state, "reason": _field(doc, "reason", "suspension"),
                  "step_index": doc.get("step_index"), "setpoint_c": doc.get("setpoint_c"),
                  "started_at": utc_from_epoch(_field(doc, "started_at", "suspension")),
                  "ended_at": None if doc.get("ended_at") is None else utc_from_epoch(doc["ended_at"]),
                  "detail": {key: doc.get(key) for key in ("action", "invalidated", "mode_found")
                             if doc.get(key) is not None}}
        invalidated = list(doc.get("invalidated") or [])

        def write(conn: Connection) -> None:
            found = conn.execute(select(suspensions.c.id).where(suspensions.c.uid == uid)).scalar()
            if found is None:
                conn.execute(insert(suspensions).values(run_id=self.run_id, uid=uid, **values))
            else:
                conn.execute(update(suspensions).where(suspensions.c.id == found).values(**values))
            for row in conn.execute(select(streams.c.id, streams.c.metadata).where(
                    streams.c.run_id == self.run_id, streams.c.name.in_(invalidated))).all():
                meta = {**(row.metadata or {}), "valid": False,
                        "invalid_reason": f"measured while the run was suspended: {values['reason']}"}
                conn.execute(update(streams).where(streams.c.id == row.id).values(metadata=meta))
        self._transaction(write, f"record suspension {uid}")

    def _on_gap(self, doc: dict) -> None:
        """One row per gap, in the transaction that also holds the rows read after it (the
        pending points are flushed with it)."""
        values = {"stream": _field(doc, "stream", "gap"), "step_index": doc.get("step_index"),
                  "technique": doc.get("technique"), "from_s": float(_field(doc, "from_s", "gap")),
                  "to_s": float(_field(doc, "to_s", "gap")),
                  "points_lost": int(_field(doc, "points_lost", "gap")),
                  "points_expected": doc.get("points_expected")}
        self._transaction(lambda conn: conn.execute(insert(gaps).values(run_id=self.run_id, **values)),
                          f"record a gap in {values['stream']}")

    def _on_analysis(self, doc: dict) -> None:
        name = _field(doc, "name", "analysis")
        values = {"run_id": self.run_id, "name": name, "step_index": doc.get("step_index"),
                  "result": doc.get("result"), "created_at": _wall_now()}
        self._transaction(lambda conn: conn.execute(insert(analysis_results).values(**values)),
                          f"insert analysis {name!r}")

    def _on_stop(self, doc: dict) -> None:
        status = _status(doc, "stop", STOP_STATUSES)
        _field(doc, "time", "stop")
        ended_at = _wall_now()
        self._transaction(
            lambda conn: conn.execute(update(runs).where(runs.c.id == self.run_id).values(
                status=status, reason=doc.get("reason"), traceback=doc.get("traceback"),
                ended_at=ended_at)),
            "finish the run")
        self.last_run_id = self.run_id
        self.run_id = self.run_uid = None
        self._streams.clear()

    # --- transactions ---------------------------------------------------------------------
    def _transaction(self, write: Callable[[Connection], Any], what: str) -> None:
        """Run ``write`` after inserting the buffered rows, all in one transaction.

        The buffer is cleared only after the commit, so a failed transaction loses nothing.
        """
        n_rows = self._pending_rows
        try:
            generation = self._generation + 1
            with self.engine.begin() as conn:
                if n_rows:
                    self._insert_points(conn)
                write(conn)
                conn.execute(update(runs).where(runs.c.id == self.run_id)
                             .values(updated_at=_wall_now()))
                step_index, position = self._position
                write_checkpoint(conn, self.run_id, generation, self._clock_t0, step_index, position)
                if self.on_transaction is not None:
                    self.on_transaction(self.run_id, generation)
            self._generation = generation
        except self._db_errors as exc:
            names = [s.name for s in self._streams.values() if s.id in self._pending]
            rows = f" with {n_rows} buffered rows of stream(s) {names}" if n_rows else ""
            raise StorageWriteError(f"storage: run {self.run_id} ({self.run_uid}): could not "
                                    f"{what}{rows} in {describe(self.engine)}: {exc}") from exc
        if n_rows:
            if log.isEnabledFor(logging.DEBUG):
                # When each point became visible to readers: followers' latency is measured
                # against these lines (bench/bench_lab_database.py).
                log.debug("run %d: committed %d rows at %.6f: %s", self.run_id, n_rows,
                          time.time(), " ".join(
                              f"{s.name}@{max(p[0] + p[1] - 1 for p in self._pending[s.id])}"
                              for s in self._streams.values() if s.id in self._pending))
            for stream in self._streams.values():
                if stream.id in self._pending:
                    stream.codes_changed = False
            self._pending.clear()
            self._pending_rows = 0
            self.flushes += 1
            self.rows_written += n_rows
            self._last_flush = self._now()

    def _insert_points(self, conn: Connection) -> None:
        """Insert the buffered rows, and count them (and store new str codes) in ``streams``."""
        by_id = {s.id: s for s in self._streams.values()}
        for stream_id, pages in self._pending.items():
            stream = by_id[stream_id]
            params, with_extra = _rows_params(stream, pages)
            if self._placeholder is not None:
                _multi_row_insert(conn, stream, params, self._placeholder, with_extra)
            else:
                keys = stream.row_columns(with_extra)
                width = len(keys)
                conn.execute(insert(points), [_row_dict(keys, params[i:i + width])
                                              for i in range(0, len(params), width)])
            counts = {"n_points": streams.c.n_points + sum(n for _, n, _ in pages)}
            if stream.codes_changed:
                counts["str_codes"] = stream.str_codes
            conn.execute(update(streams).where(streams.c.id == stream_id).values(**counts))


def _multi_row_insert(conn: Connection, stream: _Stream, params: list, placeholder: str,
                      with_extra: bool) -> None:
    """Insert flat ``params`` with the DBAPI cursor inside ``conn``'s transaction."""
    width = len(stream.row_columns(with_extra))
    per_statement = stream.rows_per_statement * width
    n_full = len(params) // per_statement * per_statement
    cursor = conn.connection.cursor()
    try:
        if n_full:
            cursor.executemany(
                stream.multi_row_insert(stream.rows_per_statement, placeholder, with_extra),
                [params[i:i + per_statement] for i in range(0, n_full, per_statement)])
        if n_full < len(params):
            cursor.execute(stream.multi_row_insert((len(params) - n_full) // width, placeholder,
                                                   with_extra), params[n_full:])
    finally:
        cursor.close()


def _row_dict(keys: list[str], row: list) -> dict:
    # Rows built by numpy carry stream_id and seq as floats; SQLite's column affinity makes
    # them integers, other backends need the proper types.
    values = dict(zip(keys, row))
    values["stream_id"], values["seq"] = int(values["stream_id"]), int(values["seq"])
    return values


def _checked_page(stream: _Stream, run_id: int | None, seq_start: Any,
                  data: dict) -> tuple[int, dict]:
    """Row count and a copy of one event page's columns (float columns float64, int columns
    integer arrays, str columns lists); raises DocumentError for a page storage cannot take."""
    where = f"run {run_id}, stream {stream.name!r}"
    if data.keys() != stream.columns.keys():
        missing = sorted(set(stream.columns) - set(data))
        extra = sorted(set(data) - set(stream.columns))
        raise DocumentError(f"storage: event_page of {where}: missing columns {missing}, "
                            f"unexpected columns {extra}")
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise DocumentError(f"storage: event_page of {where}: columns of unequal length "
                            f"{sorted(lengths)}")
    n = lengths.pop()
    if n == 0:
        return 0, {}
    if int(seq_start) < 0:
        raise DocumentError(f"storage: event_page of {where}: seq_start {seq_start} < 0")
    # Copies: the producer may reuse its arrays once the page is emitted.
    columns = {}
    for name in stream.float_cols:
        try:
            columns[name] = np.array(data[name], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise DocumentError(f"storage: event_page of {where}: column {name!r} is not "
                                f"float: {exc}") from exc
    for name in stream.int_cols:
        columns[name] = _int_array(np.array(data[name]), name, where)
    for name in stream.code_cols + stream.extra_cols:
        values = data[name]
        columns[name] = values.tolist() if isinstance(values, np.ndarray) else list(values)
    return n, columns


def _rows_params(stream: _Stream, pages: list[tuple[int, int, dict]]) -> tuple[list, bool]:
    """Flat point parameters (see :class:`_Stream`) of a stream's buffered pages, NaN as None,
    and whether they bind the extra column (False: no row has one; see row_columns)."""
    if len(pages) == 1:
        seq_start, n, data = pages[0]
        seq = np.arange(seq_start, seq_start + n)
    else:
        seq = np.concatenate([np.arange(start, start + n) for start, n, _ in pages])
        data = {name: np.concatenate([page[name] for _, _, page in pages])
                for name in stream.float_cols}
        for name in stream.int_cols:
            arrays = [page[name] for _, _, page in pages]
            # uint64 with int64 would promote to float64 and round ints beyond 2**53.
            exact = np.result_type(*arrays).kind in "iub"
            data[name] = np.concatenate(arrays, dtype=None if exact else object)
        data.update({name: list(chain.from_iterable(page[name] for _, _, page in pages))
                     for name in stream.code_cols + stream.extra_cols})
        n = len(seq)
    floats = [data[name] for name in stream.float_cols]
    ints = [data[name] for name in stream.int_cols]
    extras: dict[int, dict] = {}
    codes = []
    for name in stream.code_cols:
        column_codes, spilled = stream.encode(name, data[name])
        codes.append(column_codes)
        for i, value in spilled:
            extras.setdefault(i, {})[name] = value
    big_rows = [np.flatnonzero(_big_int_mask(a)) for a in ints]
    if not extras and not stream.extra_cols and not any(rows.size for rows in big_rows):
        # All numbers: one float64 block, one tolist(). stream_id and seq are exact in a double
        # and become integers in their integer columns (SQLite's affinity, PostgreSQL's
        # assignment cast); no row has an extra, so the column is left out.
        block = np.empty((n, len(stream.row_columns(False))))
        block[:, 0] = stream.id
        block[:, 1] = seq
        for j, column in enumerate(floats + ints + codes, start=2):
            block[:, j] = column
        flat = block.ravel()
        params = flat.tolist()
        for i in np.flatnonzero(np.isnan(flat)).tolist():
            params[i] = None
        return params, False
    int_lists = []
    for name, arr, rows in zip(stream.int_cols, ints, big_rows):
        values = arr.tolist()
        for i in rows.tolist():
            extras.setdefault(i, {})[name] = values[i]
            values[i] = None
        int_lists.append(values)
    for name in stream.extra_cols:
        for i, value in enumerate(data[name]):
            extras.setdefault(i, {})[name] = None if value is None else str(value)
    extra_texts = [None] * n
    for i, row_extra in extras.items():
        extra_texts[i] = json.dumps(row_extra, separators=(",", ":"))
    rows = zip(repeat(stream.id, n), seq.tolist(), *(_nan_as_none(a) for a in floats),
               *int_lists, *(_nan_as_none(c) for c in codes), extra_texts)
    return list(chain.from_iterable(rows)), True


def _nan_as_none(values: np.ndarray) -> list:
    out = values.tolist()
    for i in np.flatnonzero(np.isnan(values)).tolist():
        out[i] = None
    return out


def _int_array(values: Any, name: str, where: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iub":
        raise DocumentError(f"storage: event_page of {where}: column {name!r} is declared int "
                            f"but holds {arr.dtype} values")
    return arr


def _big_int_mask(arr: np.ndarray) -> np.ndarray:
    """Ints a double cannot hold exactly; they are stored in the row's extra JSON instead."""
    if arr.dtype.itemsize < 8:
        return np.zeros(arr.shape, dtype=bool)
    return (arr >= MAX_EXACT_INT) | (arr <= -MAX_EXACT_INT)


def _field(doc: dict, key: str, name: str) -> Any:
    try:
        return doc[key]
    except KeyError:
        raise DocumentError(f"storage: {name!r} document lacks {key!r} "
                            f"(has {sorted(doc)})") from None


def _status(doc: dict, name: str, allowed: tuple[str, ...]) -> str:
    status = _field(doc, "status", name)
    if status not in allowed:
        raise DocumentError(f"storage: {name!r} document has status {status!r}; "
                            f"expected one of {allowed}")
    return status


def _optional_time(doc: dict) -> datetime | None:
    return None if doc.get("time") is None else utc_from_epoch(doc["time"])


def _wall_now() -> datetime:
    return datetime.now(timezone.utc)
