"""Who drives a run: a resumed run is claimed in the database before any instrument is touched.

Two ``main.py resume RUN`` started together (or a resume of a run whose process still lives) must
not both drive the run: both would re-attach to the same instruments and write the same streams.
The run row already names its writer (host, pid, process start: storage/liveness.py), so claiming
is a compare-and-set on those columns: one UPDATE whose WHERE repeats the values read, in one
transaction. Whoever's UPDATE changes the row owns the run; the other finds the row changed under
it (rowcount 0) and reads who holds it now. SQLite serializes writers (the second UPDATE runs on
the committed row); PostgreSQL re-checks the WHERE of an UPDATE that waited on a row lock against
the row as committed (READ COMMITTED), so neither backend lets both win.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import select, update

from config.documents import RunStatus
from storage.engine import engine_for
from storage.liveness import effective_status, this_process
from storage.schema import runs


class RunHeld(Exception):
    """The run is driven by another live process (an expected failure: exit code 2)."""


def _holder(row) -> str:
    return f"process {row.pid} on {row.host or 'another host'}"


def _writer_is(row, values: dict):
    """The WHERE clause matching the run row's writer columns as ``row`` read them."""
    return [runs.c.status == row.status, runs.c.host.is_not_distinct_from(values["host"]),
            runs.c.pid.is_not_distinct_from(values["pid"]),
            runs.c.process_started.is_not_distinct_from(values["process_started"])]


def _read(conn, run_id: int):
    return conn.execute(select(runs.c.id, runs.c.status, runs.c.host, runs.c.pid,
                               runs.c.process_started, runs.c.updated_at)
                        .where(runs.c.id == run_id)).first()


def claim_run(db, run_id: int) -> None:
    """Make this process the writer of run ``run_id`` (status ``running``), unless another live
    process is; RunHeld names that process. The run must exist and be resumable (the caller
    checked). Claiming a run this process holds already changes nothing."""
    engine = engine_for(db)
    with engine.connect() as conn:
        row = _read(conn, run_id)
    if row is None:
        raise RunHeld(f"run {run_id} is not in the database")
    me = this_process()
    if (row.status, row.host, row.pid, row.process_started) == (
            RunStatus.RUNNING.value, me["host"], me["pid"], me["process_started"]):
        return  # this process holds it already
    if effective_status(row.status, row.updated_at, row.host, row.pid,
                        row.process_started) == RunStatus.RUNNING.value:
        raise RunHeld(f"run {run_id} is driven by {_holder(row)}; it is not resumed twice")
    seen = {"host": row.host, "pid": row.pid, "process_started": row.process_started}
    with engine.begin() as conn:
        won = conn.execute(update(runs).where(runs.c.id == run_id, *_writer_is(row, seen))
                           .values(status=RunStatus.RUNNING.value,
                                   updated_at=datetime.now(timezone.utc), **me)).rowcount
    if won != 1:
        with engine.connect() as conn:
            now = _read(conn, run_id)
        raise RunHeld(f"run {run_id} was claimed first by {_holder(now)}, which resumes it; "
                      "it is not resumed twice")


def release_run(db, run_id: int) -> None:
    """Give back a claim whose resume failed before its run started: ``interrupted`` again, if
    this process still holds it (a resume that ran has stored its own status)."""
    engine = engine_for(db)
    me = this_process()
    with engine.begin() as conn:
        row = _read(conn, run_id)
        if row is None or row.status != RunStatus.RUNNING.value:
            return
        conn.execute(update(runs).where(runs.c.id == run_id, *_writer_is(row, me))
                     .values(status=RunStatus.INTERRUPTED.value))
