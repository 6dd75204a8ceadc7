"""Ingest speed of the storage writer, against its anchors, measured in one run.

The same N points (stream id, sequence number, time_s and four floats) from the same numpy
arrays, written to fresh files in a temp dir:

1. anchor: stdlib ``sqlite3.executemany`` into an equivalent table (same primary key, WITHOUT
   ROWID), WAL + synchronous=NORMAL, one transaction per batch of ``BATCH`` rows; tuples are
   built from the numpy arrays inside the timing, as any writer must.
2. StorageWriter fed event_page documents of ``PAGE`` rows, flush_rows=BATCH, until ``stop``
   has committed. It can beat the anchor: it binds each page as one flat float list
   (numpy ``tolist()``) into multi-row ``INSERT ... VALUES (..),(..)`` statements, where the
   anchor runs its one-row statement once per row.
3. for reference, SQLAlchemy Core ``insert()`` executemany with dicts into the same schema: the
   path the writer avoids on SQLite.
4. PyMeasure's Worker -> CSV path: a Procedure with 5 DATA_COLUMNS emitting the same rows as
   ``batch results`` of PAGE rows, run by ``pymeasure.experiment.Worker`` with a Results file,
   timed until the worker thread has finished (its Recorder has written every row).

5. a cycler-shaped stream (the Landt record columns: three ints, ``step_type`` text from a
   handful of values, six floats) through StorageWriter, against raw sqlite3 executemany into a
   table with a TEXT column for ``step_type``: what a str column costs the writer; also in
   pages of ``FOLLOWER_PAGE`` rows, the size the Landt follower emits (a poll's new records).

Targets: StorageWriter >= 60 % of the raw sqlite3 anchor and >= 3x PyMeasure.

Run: ``.venv/bin/python bench/bench_storage_ingest.py [N]`` from the repository root.
"""
from __future__ import annotations

import logging
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent), str(Path(__file__).resolve().parent)]

from sqlalchemy import insert  # noqa: E402

from storage.engine import make_engine  # noqa: E402
from storage.schema import streams  # noqa: E402
from storage.writer import StorageWriter  # noqa: E402

from ingest_data import BATCH, FLOAT_COLUMNS, core_insert_s, make_data  # noqa: E402

PAGE = 500
FOLLOWER_PAGE = 7
CYCLER_INT_COLUMNS = ("record", "cycle", "step")
CYCLER_FLOAT_COLUMNS = ("test_time_s", "step_time_s", "voltage_v", "current_a", "capacity_ah",
                        "energy_wh")
STEP_TYPES = np.array(["Rest", "CC_Chg", "CV_Chg", "Rest", "CC_DChg"], dtype=object)


def make_cycler_data(n: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    data = {name: rng.normal(size=n) for name in CYCLER_FLOAT_COLUMNS}
    data["record"] = np.arange(n)
    data["cycle"] = np.arange(n) // 2000 + 1
    data["step"] = np.arange(n) // 400 % 5 + 1
    data["step_type"] = STEP_TYPES[data["step"] - 1]
    return data


def bench_raw_sqlite_cycler(path: Path, data: dict[str, np.ndarray], n: int) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    names = CYCLER_INT_COLUMNS + ("step_type",) + CYCLER_FLOAT_COLUMNS
    con.execute("CREATE TABLE records (stream_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
                "record INTEGER, cycle INTEGER, step INTEGER, step_type TEXT, "
                + ", ".join(f"{c} REAL" for c in CYCLER_FLOAT_COLUMNS)
                + ", PRIMARY KEY (stream_id, seq)) WITHOUT ROWID")
    con.commit()
    sql = (f"INSERT INTO records (stream_id, seq, {', '.join(names)}) "
           f"VALUES ({','.join('?' * (len(names) + 2))})")
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        cols = [data[c][start:stop].tolist() for c in names]
        with con:
            con.executemany(sql, zip([1] * (stop - start), range(start, stop), *cols))
    elapsed = time.perf_counter() - t0
    assert con.execute("SELECT count(*) FROM records").fetchone()[0] == n
    con.close()
    return elapsed


def bench_raw_sqlite(path: Path, data: dict[str, np.ndarray], n: int) -> float:
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("CREATE TABLE points (stream_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
                "time_s REAL, v0 REAL, v1 REAL, v2 REAL, v3 REAL, "
                "PRIMARY KEY (stream_id, seq)) WITHOUT ROWID")
    con.commit()
    sql = "INSERT INTO points (stream_id, seq, time_s, v0, v1, v2, v3) VALUES (?,?,?,?,?,?,?)"
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        stop = min(start + BATCH, n)
        cols = [data[c][start:stop].tolist() for c in FLOAT_COLUMNS]
        rows = list(zip([1] * (stop - start), range(start, stop), *cols))
        with con:
            con.executemany(sql, rows)
    elapsed = time.perf_counter() - t0
    assert con.execute("SELECT count(*) FROM points").fetchone()[0] == n
    con.close()
    return elapsed


def bench_storage_writer(path: Path, data: dict[str, np.ndarray], n: int,
                         columns: dict[str, dict] | None = None, page: int = PAGE) -> float:
    """StorageWriter time for ``data`` in event pages of ``page`` rows; ``columns`` is the
    descriptor's (default: FLOAT_COLUMNS, all float)."""
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    writer = StorageWriter(engine, flush_rows=BATCH, flush_interval_s=3600.0)
    run_uid, descriptor_uid = "bench-run", "bench-descriptor"
    if columns is None:
        columns = {c: {"unit": c.rsplit("_", 1)[1], "dtype": "float"} for c in FLOAT_COLUMNS}
    pages = [{"descriptor_uid": descriptor_uid, "seq_start": start,
              "data": {c: data[c][start:start + page] for c in columns}}
             for start in range(0, n, page)]
    t0 = time.perf_counter()
    writer("start", {"run_uid": run_uid, "time": time.time(), "protocol_name": "bench",
                     "protocol": {}, "sample": {}, "station": {}, "simulated": True})
    writer("descriptor", {"run_uid": run_uid, "descriptor_uid": descriptor_uid,
                          "stream": "data", "step_index": None, "metadata": {},
                          "columns": columns})
    for page in pages:
        writer("event_page", page)
    writer("stop", {"run_uid": run_uid, "time": time.time(), "status": "completed",
                    "reason": "", "traceback": None})
    elapsed = time.perf_counter() - t0
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM points").scalar() == n
    engine.dispose()
    return elapsed


def bench_core_insert(path: Path, data: dict[str, np.ndarray], n: int) -> float:
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        stream_id = conn.execute(insert(streams).values(
            run_id=0, name="data", descriptor_uid="d", columns={}, layout={})
        ).inserted_primary_key[0]
    elapsed = core_insert_s(engine, stream_id, data, n)
    engine.dispose()
    return elapsed


def bench_pymeasure(path: Path, data: dict[str, np.ndarray], n: int) -> float:
    from pymeasure.experiment import Procedure, Results, Worker

    class BatchProcedure(Procedure):
        DATA_COLUMNS = list(FLOAT_COLUMNS)

        def execute(self) -> None:
            for start in range(0, n, PAGE):
                self.emit("batch results",
                          {c: data[c][start:start + PAGE] for c in FLOAT_COLUMNS})

    logging.getLogger("pymeasure").setLevel(logging.WARNING)
    results = Results(BatchProcedure(), str(path))
    worker = Worker(results)
    t0 = time.perf_counter()
    worker.start()
    # Worker.join() defaults to a zero timeout; wait for the thread itself.
    threading.Thread.join(worker)
    elapsed = time.perf_counter() - t0
    with open(path) as f:
        lines = sum(1 for line in f if line.strip() and not line.startswith("#"))
    assert lines == n + 1, f"pymeasure wrote {lines - 1} of {n} rows"
    return elapsed


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    data = make_data(n)
    print(f"N = {n} points (stream id, seq, time_s + 4 floats); event pages of {PAGE} rows; "
          f"one transaction per {BATCH} rows")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        timings = {
            "raw sqlite3 executemany (anchor)": bench_raw_sqlite(tmp_path / "raw.sqlite",
                                                                 data, n),
            "StorageWriter (event pages -> commit)": bench_storage_writer(
                tmp_path / "writer.sqlite", data, n),
            "SQLAlchemy Core insert(), dicts": bench_core_insert(tmp_path / "core.sqlite",
                                                                 data, n),
            "PyMeasure Worker -> CSV": bench_pymeasure(tmp_path / "pymeasure.csv", data, n),
        }
    rates = {name: n / t for name, t in timings.items()}
    for name, t in timings.items():
        print(f"{name:40s} {t:8.3f} s  {rates[name]:12,.0f} rows/s")
    ours = rates["StorageWriter (event pages -> commit)"]
    anchor = rates["raw sqlite3 executemany (anchor)"]
    pym = rates["PyMeasure Worker -> CSV"]
    print(f"StorageWriter / raw sqlite3 = {ours / anchor:.2f}  (target >= 0.60)")
    print(f"StorageWriter / PyMeasure   = {ours / pym:.1f}x (target >= 3x)")
    print(f"Core insert() / raw sqlite3 = "
          f"{rates['SQLAlchemy Core insert(), dicts'] / anchor:.2f}")

    cycler = make_cycler_data(n)
    cycler_columns = {**{c: {"unit": "", "dtype": "int"} for c in CYCLER_INT_COLUMNS},
                      "step_type": {"unit": "", "dtype": "str"},
                      **{c: {"unit": "", "dtype": "float"} for c in CYCLER_FLOAT_COLUMNS}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        raw = bench_raw_sqlite_cycler(tmp_path / "raw_cycler.sqlite", cycler, n)
        ours = bench_storage_writer(tmp_path / "writer_cycler.sqlite", cycler, n,
                                    cycler_columns)
        small_pages = bench_storage_writer(tmp_path / "writer_small.sqlite", cycler, n,
                                           cycler_columns, FOLLOWER_PAGE)
    print(f"\ncycler records (3 int, step_type str, 6 float columns), N = {n}:")
    print(f"{'raw sqlite3 executemany, TEXT column':40s} {raw:8.3f} s  {n / raw:12,.0f} rows/s")
    print(f"{'StorageWriter':40s} {ours:8.3f} s  {n / ours:12,.0f} rows/s")
    print(f"{f'StorageWriter, pages of {FOLLOWER_PAGE} rows':40s} {small_pages:8.3f} s  "
          f"{n / small_pages:12,.0f} rows/s")
    print(f"StorageWriter / raw sqlite3 = {raw / ours:.2f}; "
          f"in pages of {FOLLOWER_PAGE} rows {raw / small_pages:.2f}")


if __name__ == "__main__":
    main()
