"""Reading runs back: pandas DataFrames and plain dicts, never ORM objects.

Every function takes the database as a URL, a path, ``None`` (the default database, see
storage/engine.py) or an Engine. Times are ISO 8601 strings in UTC (``...+00:00``)
everywhere, so JSON output, exports and tables agree.

A run's ``status`` is its effective status (storage/liveness.py): a run stored as ``running``
whose process is gone reads ``interrupted``, whoever looks.

Point counts come from ``streams.n_points`` (kept by the writer), and every query selects by
primary key or by an index led by ``run_id``: listing runs, showing or reading one run costs the
same however many other runs and points the database holds (bench/bench_storage_queries.py).
"""
from __future__ import annotations

import gc
import json
import os
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select, update

from storage.engine import describe, engine_for
from storage.liveness import effective_status
from storage.schema import (EXTRA_SLOT, analysis_results, gaps, points, runs, steps, streams,
                            suspensions)

Database = Engine | str | os.PathLike | None

RUN_LIST_COLUMNS = ["run_id", "uid", "protocol", "status", "simulated", "started_at",
                    "ended_at", "updated_at", "reason", "n_points"]

_RUN_LIST_DTYPES = {"run_id": np.int64, "simulated": bool, "n_points": np.int64}

_PANDAS_DTYPES = {"float": np.float64, "int": np.int64, "str": object}


class RunNotFound(LookupError):
    """No run with this id in this database."""

    def __init__(self, run_id: int, database: str) -> None:
        super().__init__(f"no run with id {run_id} in database {database}")
        self.run_id = run_id
        self.database = database


class StreamNotFound(LookupError):
    """The run has no stream of this name."""


def list_runs(db: Database = None) -> pd.DataFrame:
    """One row per run, newest first, columns ``RUN_LIST_COLUMNS`` (``n_points``: the run's
    points over all its streams); times as ISO 8601 UTC."""
    engine = engine_for(db)
    query = select(runs.c.id, runs.c.uid, runs.c.protocol_name, runs.c.status,
                   runs.c.simulated, runs.c.started_at, runs.c.ended_at, runs.c.updated_at,
                   runs.c.reason, runs.c.host, runs.c.pid, runs.c.process_started,
                   _run_points(runs.c.id)).order_by(runs.c.id.desc())
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    records = [(r.id, r.uid, r.protocol_name, _status(r), bool(r.simulated), _iso(r.started_at),
                _iso(r.ended_at), _iso(r.updated_at), r.reason, int(r.n_points)) for r in rows]
    by_column = list(zip(*records)) if records else [()] * len(RUN_LIST_COLUMNS)
    # Text columns as object: pandas >= 3 would make them its string dtype, None becoming NaN
    # (and NaN is not JSON).
    return pd.DataFrame({name: pd.Series(values, dtype=_RUN_LIST_DTYPES.get(name, object))
                         for name, values in zip(RUN_LIST_COLUMNS, by_column)})


def get_run(db: Database, run_id: int) -> dict:
    """The run's row (JSON fields decoded, times ISO 8601 UTC) with its ``steps``, ``streams``
    (columns with units and dtypes, ``n_points``), ``suspensions`` (procedures/watch.py),
    ``gaps`` (points an instrument's buffer lost while no controller read it) and
    ``analysis`` results, oldest first, and
    ``n_points``, the run's points over all streams."""
    engine = engine_for(db)
    with engine.connect() as conn:
        row = _run_row(conn, engine, run_id)
        run = {
            "run_id": row.id, "uid": row.uid, "protocol_name": row.protocol_name,
            "protocol": row.protocol, "sample": row.sample, "station": row.station,
            "simulated": bool(row.simulated), "status": _status(row), "reason": row.reason,
            "traceback": row.traceback, "started_at": _iso(row.started_at),
            "ended_at": _iso(row.ended_at), "updated_at": _iso(row.updated_at),
            "host": row.host, "pid": row.pid, "process_started": row.process_started,
        }
        run["steps"] = [
            {"step_index": s.step_index, "kind": s.kind, "name": s.name, "params": s.params,
             "status": s.status, "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at),
             "summary": s.summary}
            for s in conn.execute(select(steps).where(steps.c.run_id == run_id)
                                  .order_by(steps.c.id))]
        run["streams"] = _streams(conn, run_id)
        run["n_points"] = sum(s["n_points"] for s in run["streams"])
        run["suspensions"] = [
            {"state": x.state, "step_index": x.step_index, "reason": x.reason,
             "setpoint_c": x.setpoint_c, "started_at": _iso(x.started_at),
             "ended_at": _iso(x.ended_at), **(x.detail or {})}
            for x in conn.execute(select(suspensions).where(suspensions.c.run_id == run_id)
                                  .order_by(suspensions.c.id))]
        run["gaps"] = [
            {"stream": g.stream, "step_index": g.step_index, "technique": g.technique,
             "from_s": g.from_s, "to_s": g.to_s, "points_lost": g.points_lost,
             "points_expected": g.points_expected}
            for g in conn.execute(select(gaps).where(gaps.c.run_id == run_id).order_by(gaps.c.id))]
        run["analysis"] = [
            {"name": a.name, "step_index": a.step_index, "result": a.result,
             "created_at": _iso(a.created_at)}
            for a in conn.execute(select(analysis_results)
                                  .where(analysis_results.c.run_id == run_id)
                                  .order_by(analysis_results.c.id))]
    return run


def list_streams(db: Database, run_id: int) -> pd.DataFrame:
    """One row per stream of the run: name, step_index, n_points, columns, units, metadata."""
    engine = engine_for(db)
    with engine.connect() as conn:
        _run_row(conn, engine, run_id)
        records = _streams(conn, run_id)
    return pd.DataFrame.from_records(
        [{"name": s["name"], "step_index": s["step_index"], "n_points": s["n_points"],
          "columns": list(s["columns"]), "units": {c: v["unit"] for c, v in s["columns"].items()},
          "metadata": s["metadata"]} for s in records],
        columns=["name", "step_index", "n_points", "columns", "units", "metadata"])


def read_stream(db: Database, run_id: int, stream_name: str,
                where_in: dict[str, Iterable] | None = None) -> pd.DataFrame:
    """The stream's points in sequence order, one column per descriptor column (original names
    and order), index ``seq``. float columns are float64 (NaN where missing), int columns int64,
    str columns strings. ``df.attrs["units"]`` maps column → unit, ``df.attrs["metadata"]`` is
    the descriptor's metadata.

    ``where_in`` keeps only the rows whose numeric column has one of the given values, e.g.
    ``{"cycle": [1, 2, 100]}``: the database selects them, so a long run is never in memory whole.
    """
    engine = engine_for(db)
    with engine.connect() as conn:
        _run_row(conn, engine, run_id)
        stream = conn.execute(select(streams).where(streams.c.run_id == run_id,
                                                    streams.c.name == stream_name)).first()
        if stream is None:
            names = conn.execute(select(streams.c.name).where(streams.c.run_id == run_id)
                                 .order_by(streams.c.id)).scalars().all()
            raise StreamNotFound(f"run {run_id} in {describe(engine)} has no stream "
                                 f"{stream_name!r}; its streams are {names}")
        return stream_frame(conn, stream, where_in=where_in)


def stream_frame(conn: Connection, stream: Any, after_seq: int | None = None,
                 where_in: dict[str, Iterable] | None = None,
                 seqs: list[int] | None = None) -> pd.DataFrame:
    """The points of ``stream`` (a row of ``streams``) read in ``conn``'s transaction, as
    :func:`read_stream` returns them; ``after_seq`` keeps only the points with a larger seq,
    ``seqs`` only those with these sequence numbers (storage/follow.py)."""
    run_id, stream_name = stream.run_id, stream.name
    columns, layout = stream.columns, stream.layout
    numeric_slots = list(dict.fromkeys(layout[c] for c in columns if layout[c] != EXTRA_SLOT))
    # extra holds ints beyond 2**53, str values without a code, and str columns without a
    # slot (all str columns of streams written before revision 0002).
    has_extra = any(spec["dtype"] != "float" for spec in columns.values())
    slots = numeric_slots + [EXTRA_SLOT] * has_extra
    query = (select(points.c.seq, *(points.c[s] for s in slots))
             .where(points.c.stream_id == stream.id).order_by(points.c.seq))
    if after_seq is not None:
        query = query.where(points.c.seq > after_seq)
    if seqs is not None:
        query = query.where(points.c.seq.in_(seqs))
    for name, values in (where_in or {}).items():
        slot = layout.get(name)
        if slot is None or slot == EXTRA_SLOT:
            raise ValueError(f"stream {stream_name!r} of run {run_id}: cannot select on column "
                             f"{name!r} (numeric columns: {numeric_columns(columns, layout)})")
        query = query.where(points.c[slot].in_([float(v) for v in values]))
    result = conn.execute(query)
    # The DBAPI's plain tuples: these columns are ints, floats and text that need no
    # SQLAlchemy result processing, and skipping Row objects halves the read time.
    with _no_cyclic_gc():
        rows = result.cursor.fetchall()
    result.close()
    n_slots = 1 + len(numeric_slots)
    if has_extra:
        by_column = list(zip(*rows)) if rows else [()] * (n_slots + 1)
        # None (NULL, which NaN is stored as) becomes NaN.
        block = np.array(by_column[:n_slots], dtype=np.float64).reshape(n_slots, len(rows)).T
        extras = {i: json.loads(e) for i, e in enumerate(by_column[n_slots]) if e}
    else:
        block = np.array(rows, dtype=np.float64).reshape(len(rows), n_slots)
        extras = {}
    by_slot = {slot: block[:, j] for j, slot in enumerate(["seq", *numeric_slots])}
    index = pd.Index(by_slot["seq"].astype(np.int64), name="seq")
    codes = stream.str_codes or {}
    # Series with an explicit dtype: pandas >= 3 would otherwise turn str columns into its
    # string dtype and None into NaN; object keeps the stored values exactly.
    data = {name: pd.Series(_column(name, spec["dtype"], by_slot.get(layout[name]), len(rows),
                                    extras, codes.get(name)),
                            index=index, dtype=_PANDAS_DTYPES[spec["dtype"]])
            for name, spec in columns.items()}
    frame = pd.DataFrame(data, index=index)
    frame.attrs["units"] = {name: spec["unit"] for name, spec in columns.items()}
    frame.attrs["metadata"] = stream.metadata
    return frame


def column_max(db: Database, run_id: int, stream_name: str, column: str) -> float | None:
    """The largest value of a numeric column of a stream (None for an empty stream)."""
    engine = engine_for(db)
    with engine.connect() as conn:
        stream = conn.execute(select(streams).where(streams.c.run_id == run_id,
                                                    streams.c.name == stream_name)).first()
        if stream is None:
            raise StreamNotFound(f"run {run_id} in {describe(engine)} has no stream {stream_name!r}")
        slot = stream.layout.get(column)
        if slot is None or slot == EXTRA_SLOT:
            raise ValueError(f"stream {stream_name!r} of run {run_id}: no numeric column {column!r}")
        value = conn.execute(select(func.max(points.c[slot])).where(points.c.stream_id == stream.id)).scalar()
    return None if value is None else float(value)


def numeric_columns(columns: dict, layout: dict) -> list[str]:
    return [c for c in columns if layout.get(c) not in (None, EXTRA_SLOT)]


def latest_analysis(db: Database, run_id: int, name: str,
                    step_index: int | None = None) -> dict | None:
    """The newest ``result`` stored under analysis ``name`` for the run (restricted to
    ``step_index`` if given), or None if there is none."""
    engine = engine_for(db)
    query = (select(analysis_results.c.result)
             .where(analysis_results.c.run_id == run_id, analysis_results.c.name == name)
             .order_by(analysis_results.c.id.desc()).limit(1))
    if step_index is not None:
        query = query.where(analysis_results.c.step_index == step_index)
    with engine.connect() as conn:
        _run_row(conn, engine, run_id)
        row = conn.execute(query).first()
    return None if row is None else row.result


def mark_interrupted(db: Database, run_id: int,
                     reason: str = "interrupted: the writer stopped without a stop document"
                     ) -> bool:
    """Set a ``running`` run's status to ``interrupted`` (its flushed data stay).

    Call it for runs known to have no live writer (e.g. at start-up, or when ``updated_at`` is
    older than the flush interval). Returns False if the run was not ``running``.
    """
    engine = engine_for(db)
    with engine.begin() as conn:
        _run_row(conn, engine, run_id)
        changed = conn.execute(update(runs).where(runs.c.id == run_id,
                                                  runs.c.status == "running")
                               .values(status="interrupted", reason=reason)).rowcount
    return bool(changed)


def _status(row: Any) -> str:
    return effective_status(row.status, row.updated_at, row.host, row.pid, row.process_started)


def _run_row(conn: Connection, engine: Engine, run_id: int) -> Any:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(run_id, describe(engine))
    return row


def _run_points(run_id: Any) -> Any:
    """The run's points over all streams, from the stored counts (index on streams.run_id)."""
    return (select(func.coalesce(func.sum(streams.c.n_points), 0))
            .where(streams.c.run_id == run_id).scalar_subquery().label("n_points"))


def _streams(conn: Connection, run_id: int) -> list[dict]:
    query = (select(streams.c.name, streams.c.step_index, streams.c.descriptor_uid,
                    streams.c.metadata, streams.c.columns, streams.c.n_points)
             .where(streams.c.run_id == run_id).order_by(streams.c.id))
    return [{"name": s.name, "step_index": s.step_index, "descriptor_uid": s.descriptor_uid,
             "metadata": s.metadata, "columns": s.columns, "n_points": int(s.n_points)}
            for s in conn.execute(query)]


def _column(name: str, dtype: str, slot: np.ndarray | None, n: int, extras: dict[int, dict],
            codes: list[str] | None) -> Any:
    """Column ``name``'s values from its float slot (None: it has no slot), the rows' parsed
    ``extra`` JSON by row position, and its str code table."""
    overrides = [(i, e[name]) for i, e in extras.items() if name in e]
    if dtype == "float":
        return slot
    if dtype == "int":
        if not overrides:
            return slot.astype(np.int64)
        values = slot.tolist()
        for i, value in overrides:
            values[i] = value
        return np.array(values, dtype=np.int64)
    if slot is None:
        values = np.full(n, None, dtype=object)
    else:
        table = np.array([*(codes or []), None], dtype=object)
        values = table[np.where(np.isnan(slot), len(table) - 1, slot).astype(np.intp)]
    for i, value in overrides:
        values[i] = value
    return values


@contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector: a fetch allocates one tuple per row, which triggers
    collections that traverse the whole heap (a third of the time of reading a 45k-row stream);
    rows of numbers and text hold no reference cycles to collect."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
