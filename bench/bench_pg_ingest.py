"""Ingest into PostgreSQL: the storage writer against raw batched inserts with the same driver.

The same N points (stream id, seq, time_s and four floats, from the same numpy arrays) into the
``points`` table of a fresh database at the newest schema, one transaction per ``BATCH`` rows:

1. anchor: psycopg alone, what the writer does without the writer: multi-row
   ``INSERT ... VALUES (..),(..)`` statements of ``999 // width`` rows through
   ``cursor.executemany``, parameters built from the numpy arrays inside the timing (one float64
   block, ``tolist()``), as any writer must;
2. StorageWriter fed event_page documents of ``PAGE`` rows, flush_rows=BATCH, from ``start`` until
   ``stop`` has committed (so it also pays for its run, stream, count and heartbeat rows);
3. for reference, SQLAlchemy Core ``insert()`` executemany with dicts: the portable path.

Each is run ``REPEAT`` times, alternating, into a truncated table; the best time of each counts
(the machine is shared: the best is the least disturbed). Target: writer >= 60 % of the anchor.

Run: ``.venv/bin/python bench/bench_pg_ingest.py [N]`` with ``CELLBENCH_BENCH_POSTGRES_URL`` (or
``CELLBENCH_TEST_POSTGRES_URL``) naming a database on a server where the user may create
databases; a database ``cellbench_bench_<random>`` is created and dropped.
"""
from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

import psycopg  # noqa: E402
from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from storage.engine import make_engine  # noqa: E402
from storage.schema import metadata, streams  # noqa: E402
from storage.writer import SQLITE_MAX_PARAMETERS, StorageWriter  # noqa: E402

from ingest_data import BATCH, FLOAT_COLUMNS, SLOTS, core_insert_s, make_data  # noqa: E402

PAGE = 500
REPEAT = 3
URL_VARS = ("CELLBENCH_BENCH_POSTGRES_URL", "CELLBENCH_TEST_POSTGRES_URL")


def truncate(url: str) -> None:
    """Empty every table of the schema (the list follows storage/schema.py: the tables added since,
    which reference runs, made a fixed list fail on a database that had runs)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(metadata.tables)} RESTART IDENTITY"))
    engine.dispose()


def new_stream(url: str) -> int:
    engine = make_engine(url)
    with engine.begin() as conn:
        run_id = conn.execute(text(
            "INSERT INTO runs (uid, protocol_name, simulated, status, started_at, updated_at) "
            "VALUES (:uid, 'bench', true, 'running', now(), now()) RETURNING id"),
            {"uid": uuid.uuid4().hex}).scalar()
        stream_id = conn.execute(insert(streams).values(
            run_id=run_id, name="data", descriptor_uid=uuid.uuid4().hex, columns={}, layout={})
        ).inserted_primary_key[0]
    engine.dispose()
    return int(stream_id)


def bench_raw(url: str, data: dict[str, np.ndarray], n: int) -> float:
    stream_id = new_stream(url)
    parsed = make_url(url)
    conn = psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username,
                           password=parsed.password, dbname=parsed.database)
    names = ("stream_id", "seq", *SLOTS)
    per_statement = SQLITE_MAX_PARAMETERS // len(names)
    row = "(" + ",".join(["%s"] * len(names)) + ")"
    head = f"INSERT INTO points ({','.join(names)}) VALUES "
    full_sql = head + ",".join([row] * per_statement)
    width = len(names)
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        block = np.empty((stop - start, width))
        block[:, 0] = stream_id
        block[:, 1] = np.arange(start, stop)
        for j, name in enumerate(FLOAT_COLUMNS, start=2):
            block[:, j] = data[name][start:stop]
        params = block.ravel().tolist()
        step = per_statement * width
        n_full = len(params) // step * step
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(full_sql, [params[i:i + step] for i in range(0, n_full, step)])
            if n_full < len(params):
                rest = (len(params) - n_full) // width
                cursor.execute(head + ",".join([row] * rest), params[n_full:])
    elapsed = time.perf_counter() - t0
    assert conn.execute("SELECT count(*) FROM points").fetchone()[0] == n
    conn.close()
    return elapsed


def bench_writer(url: str, data: dict[str, np.ndarray], n: int) -> float:
    engine = make_engine(url)
    writer = StorageWriter(engine, flush_rows=BATCH, flush_interval_s=3600.0)
    columns = {c: {"unit": c.rsplit("_", 1)[1], "dtype": "float"} for c in FLOAT_COLUMNS}
    pages = [{"descriptor_uid": "bench-descriptor", "seq_start": start,
              "data": {c: data[c][start:start + PAGE] for c in columns}}
             for start in range(0, n, PAGE)]
    t0 = time.perf_counter()
    writer("start", {"run_uid": "bench-run", "time": time.time(), "protocol_name": "bench",
                     "protocol": {}, "sample": {}, "station": {}, "simulated": True})
    writer("descriptor", {"run_uid": "bench-run", "descriptor_uid": "bench-descriptor",
                          "stream": "data", "step_index": None, "metadata": {},
                          "columns": columns})
    for page in pages:
        writer("event_page", page)
    writer("stop", {"run_uid": "bench-run", "time": time.time(), "status": "completed",
                    "reason": "", "traceback": None})
    elapsed = time.perf_counter() - t0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM points")).scalar() == n
    engine.dispose()
    return elapsed


def bench_core(url: str, data: dict[str, np.ndarray], n: int) -> float:
    stream_id = new_stream(url)
    engine = make_engine(url)
    elapsed = core_insert_s(engine, stream_id, data, n)
    engine.dispose()
    return elapsed


def main() -> int:
    server = next((os.environ[v] for v in URL_VARS if os.environ.get(v)), None)
    if server is None:
        print(f"bench_pg_ingest: skipped: set {URL_VARS[0]} (or {URL_VARS[1]}) to a PostgreSQL "
              "database on a server where the user may create databases")
        return 0
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    data = make_data(n)
    name = f"cellbench_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        version = conn.execute(text("SHOW server_version")).scalar()
        fsync = conn.execute(text("SHOW fsync")).scalar()
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    make_engine(url).dispose()  # the schema
    runs = {"raw psycopg multi-row INSERT (anchor)": bench_raw,
            "StorageWriter (event pages -> commit)": bench_writer,
            "SQLAlchemy Core insert(), dicts": bench_core}
    best = {label: float("inf") for label in runs}
    try:
        for _ in range(REPEAT):
            for label, bench in runs.items():
                truncate(url)
                best[label] = min(best[label], bench(url, data, n))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
    print(f"PostgreSQL {version} (fsync={fsync}), psycopg {psycopg.__version__}; N = {n} points "
          f"(stream id, seq, time_s + 4 floats); event pages of {PAGE} rows; one transaction per "
          f"{BATCH} rows; best of {REPEAT}")
    rates = {label: n / t for label, t in best.items()}
    for label, t in best.items():
        print(f"{label:40s} {t:8.3f} s  {rates[label]:12,.0f} points/s")
    anchor = rates["raw psycopg multi-row INSERT (anchor)"]
    ours = rates["StorageWriter (event pages -> commit)"]
    print(f"StorageWriter / raw psycopg = {ours / anchor:.2f}  (target >= 0.60)")
    print(f"Core insert() / raw psycopg = {rates['SQLAlchemy Core insert(), dicts'] / anchor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
