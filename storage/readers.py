"""Reading runs back: pandas DataFrames and plain dicts, never ORM objects.

Every function takes the database as a URL, a path, ``None`` (the default database, see
storage/engine.py) or an Engine. Times are ISO 8601 strings in UTC (``...+00:00``)
everywhere, so JSON output, exports and tables agree.
"""
from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, func, select, update

from storage.engine import describe, engine_for
from storage.schema import EXTRA_SLOT, analysis_results, points, runs, steps, streams

Database = Engine | str | os.PathLike | None

RUN_LIST_COLUMNS = ["run_id", "uid", "protocol", "status", "simulated", "started_at",
                    "ended_at", "updated_at", "reason"]


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
    """One row per run, newest first, columns ``RUN_LIST_COLUMNS``; times as ISO 8601 UTC."""
    engine = engine_for(db)
    query = select(runs.c.id, runs.c.uid, runs.c.protocol_name, runs.c.status,
                   runs.c.simulated, runs.c.started_at, runs.c.ended_at, runs.c.updated_at,
                   runs.c.reason).order_by(runs.c.id.desc())
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    records = [(r.id, r.uid, r.protocol_name, r.status, bool(r.simulated), _iso(r.started_at),
                _iso(r.ended_at), _iso(r.updated_at), r.reason) for r in rows]
    return pd.DataFrame.from_records(records, columns=RUN_LIST_COLUMNS)


def get_run(db: Database, run_id: int) -> dict:
    """The run's row (JSON fields decoded, times ISO 8601 UTC) with its ``steps``, ``streams``
    (columns with units and dtypes, point counts) and ``analysis`` results, oldest first."""
    engine = engine_for(db)
    with engine.connect() as conn:
        row = _run_row(conn, engine, run_id)
        run = {
            "run_id": row.id, "uid": row.uid, "protocol_name": row.protocol_name,
            "protocol": row.protocol, "sample": row.sample, "station": row.station,
            "simulated": bool(row.simulated), "status": row.status, "reason": row.reason,
            "traceback": row.traceback, "started_at": _iso(row.started_at),
            "ended_at": _iso(row.ended_at), "updated_at": _iso(row.updated_at),
        }
        run["steps"] = [
            {"step_index": s.step_index, "kind": s.kind, "name": s.name, "params": s.params,
             "status": s.status, "started_at": _iso(s.started_at), "ended_at": _iso(s.ended_at),
             "summary": s.summary}
            for s in conn.execute(select(steps).where(steps.c.run_id == run_id)
                                  .order_by(steps.c.id))]
        run["streams"] = _streams(conn, run_id)
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


def read_stream(db: Database, run_id: int, stream_name: str) -> pd.DataFrame:
    """The stream's points in sequence order, one column per descriptor column (original names
    and order), index ``seq``. float columns are float64 (NaN where missing), int columns int64,
    str columns strings. ``df.attrs["units"]`` maps column → unit, ``df.attrs["metadata"]`` is
    the descriptor's metadata."""
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
        columns, layout = stream.columns, stream.layout
        slots = list(dict.fromkeys(layout[c] for c in columns))
        if EXTRA_SLOT not in slots and any(s["dtype"] == "int" for s in columns.values()):
            slots.append(EXTRA_SLOT)  # ints beyond 2**53 live there
        query = (select(points.c.seq, *(points.c[s] for s in slots))
                 .where(points.c.stream_id == stream.id).order_by(points.c.seq))
        result = conn.execute(query)
        # The DBAPI's plain tuples: these columns are ints, floats and text that need no
        # SQLAlchemy result processing, and skipping Row objects halves the read time.
        rows = result.cursor.fetchall()
        result.close()
    names = ["seq", *slots]
    if EXTRA_SLOT in slots:
        by_slot = dict(zip(names, map(list, zip(*rows)))) if rows else {}
    else:
        block = np.array(rows, dtype=np.float64).reshape(len(rows), len(names))
        by_slot = {name: block[:, j] for j, name in enumerate(names)}
    extras = ([json.loads(e) if e else {} for e in by_slot[EXTRA_SLOT]]
              if EXTRA_SLOT in by_slot else None)
    index = pd.Index(np.asarray(by_slot.get("seq", []), dtype=np.int64), name="seq")
    # Series with an explicit dtype: pandas >= 3 would otherwise turn str columns into its
    # string dtype and None into NaN; object keeps the stored values exactly.
    data = {name: pd.Series(_column(by_slot.get(layout[name], []), name, spec["dtype"], extras),
                            index=index, dtype=_PANDAS_DTYPES[spec["dtype"]])
            for name, spec in columns.items()}
    frame = pd.DataFrame(data, index=index)
    frame.attrs["units"] = {name: spec["unit"] for name, spec in columns.items()}
    frame.attrs["metadata"] = stream.metadata
    return frame


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


def _run_row(conn: Connection, engine: Engine, run_id: int) -> Any:
    row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(run_id, describe(engine))
    return row


def _streams(conn: Connection, run_id: int) -> list[dict]:
    counts = (select(points.c.stream_id, func.count().label("n"))
              .group_by(points.c.stream_id).subquery())
    query = (select(streams, counts.c.n).outerjoin(counts, counts.c.stream_id == streams.c.id)
             .where(streams.c.run_id == run_id).order_by(streams.c.id))
    return [{"name": s.name, "step_index": s.step_index, "descriptor_uid": s.descriptor_uid,
             "metadata": s.metadata, "columns": s.columns, "n_points": int(s.n or 0)}
            for s in conn.execute(query)]


def _column(values: list, name: str, dtype: str, extras: list[dict] | None) -> Any:
    if dtype == "float":
        return np.array(values, dtype=np.float64)
    if dtype == "int":
        if extras is not None:
            values = [e[name] if name in e else v for v, e in zip(values, extras)]
        return np.array(values, dtype=np.int64)
    return [e.get(name) for e in extras] if extras is not None else []


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
