"""How far a run has come, and what a resumed run continues: the storage side of resume.

The writer (storage/writer.py) keeps one ``run_checkpoints`` row per run, written in every one
of its transactions, so it always describes exactly the rows committed with it: the step index
reached, that step's position (from the last ``checkpoint`` document of the step: which voltage
level, which temperatures of a cold discharge are done...), and a ``generation`` that counts the
transactions. Positions that are properties of the stored data themselves are not duplicated
here: the cycler's record number read up to is the largest ``record`` of its stream, the
potentiostat's read position is its stream's ``n_points``.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, func, insert, select, update

from storage.engine import engine_for
from storage.schema import points, run_checkpoints, streams


def write_checkpoint(conn: Connection, run_id: int, generation: int, clock_t0: float,
                     step_index: int, position: dict) -> None:
    """Upsert the run's checkpoint inside ``conn``'s transaction."""
    values = {"generation": generation, "clock_t0": clock_t0, "step_index": step_index,
              "position": position, "updated_at": datetime.now(timezone.utc)}
    changed = conn.execute(update(run_checkpoints).where(run_checkpoints.c.run_id == run_id)
                           .values(**values)).rowcount
    if not changed:
        conn.execute(insert(run_checkpoints).values(run_id=run_id, **values))


def read_checkpoint(db, run_id: int) -> dict | None:
    """The run's checkpoint (generation, clock_t0, step_index, position) or None."""
    engine = engine_for(db)
    with engine.connect() as conn:
        row = conn.execute(select(run_checkpoints)
                           .where(run_checkpoints.c.run_id == run_id)).first()
    if row is None:
        return None
    return {"generation": int(row.generation), "clock_t0": float(row.clock_t0),
            "step_index": int(row.step_index), "position": dict(row.position or {})}


def stored_streams(conn: Connection, run_id: int) -> list[dict]:
    """Every stream of the run as the writer needs it to continue it: ids, columns, layout, codes,
    and ``n_points`` (the next ``seq``: a stream's rows are numbered 0..n-1 without gaps)."""
    query = (select(streams.c.id, streams.c.name, streams.c.step_index, streams.c.descriptor_uid,
                    streams.c.metadata, streams.c.columns, streams.c.layout, streams.c.n_points,
                    streams.c.str_codes)
             .where(streams.c.run_id == run_id).order_by(streams.c.id))
    return [{"id": int(s.id), "name": s.name, "step_index": s.step_index,
             "descriptor_uid": s.descriptor_uid, "metadata": dict(s.metadata or {}),
             "columns": s.columns, "layout": s.layout, "n_points": int(s.n_points),
             "str_codes": s.str_codes or {}} for s in conn.execute(query)]


def run_streams(db, run_id: int) -> list[dict]:
    engine = engine_for(db)
    with engine.connect() as conn:
        return stored_streams(conn, run_id)


def duplicate_and_gap_count(db, run_id: int) -> dict:
    """Per stream: stored rows, ``n_points``, and whether the seq numbers run 0..n-1 (a check of
    a resumed run: no row twice, none missing)."""
    engine = engine_for(db)
    out = {}
    with engine.connect() as conn:
        for s in stored_streams(conn, run_id):
            n, lo, hi = conn.execute(select(func.count(), func.min(points.c.seq), func.max(points.c.seq))
                                     .where(points.c.stream_id == s["id"])).one()
            out[s["name"]] = {"rows": int(n), "n_points": s["n_points"],
                              "contiguous": n == 0 or (lo == 0 and hi == n - 1)}
    return out
