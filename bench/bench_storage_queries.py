"""`runs`, `show` and `export` of one run cost the same however much else the database holds.

Two SQLite databases hold the same run 1 (a cycling stream with the Landt record columns and a
chamber log, written by StorageWriter from documents, ``POINTS_PER_RUN`` points in all):

- "1 run": only that run;
- "N runs": the same file plus N - 1 more runs of the same size (copied in SQL), so the points
  table is N times larger and run 1 is its oldest part.

Timed on each (best of ``REPEAT``, warm engine): ``list_runs`` (what `runs` reads; it returns one
row per run, so it grows with the number of runs by design, never with their points), ``get_run``
(`show`), ``read_stream`` of run 1's cycling stream, and ``export_run`` of run 1 (`export`). For
comparison, the point count as readers made it before revision 0002 (GROUP BY over ``points``).
Then the SQLite query plan of every statement those readers issue: each must search an index,
never scan a table other than ``runs`` (whose every row `runs` lists).

Run: ``.venv/bin/python bench/bench_storage_queries.py [N_RUNS [POINTS_PER_RUN]]`` (default 200
runs of 50,000 points; the N-run file takes about 1 GB in a temp dir).
"""
from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procedures.documents import DocumentStream, StreamWriter  # noqa: E402
from storage.engine import make_engine  # noqa: E402
from storage.export import export_run  # noqa: E402
from storage.readers import get_run, list_runs, read_stream  # noqa: E402
from storage.writer import StorageWriter  # noqa: E402

REPEAT = 15
CHAMBER_EVERY = 10
"""One chamber row per this many cycler records."""
STEP_TYPES = np.array(["Rest", "CC_Chg", "CV_Chg", "Rest", "CC_DChg"], dtype=object)
RECORD_COLUMNS = {"record": ("", "int"), "cycle": ("", "int"), "step": ("", "int"),
                  "step_type": ("", "str"), "test_time_s": "s", "step_time_s": "s",
                  "voltage_v": "V", "current_a": "A", "capacity_ah": "Ah", "energy_wh": "Wh"}


def write_run(url: str, n_points: int) -> None:
    """Run 1: a cycling stream and a chamber log, ``n_points`` rows in all, through the writer."""
    n_records = n_points * CHAMBER_EVERY // (CHAMBER_EVERY + 1)
    n_chamber = n_points - n_records
    engine = make_engine(url)
    writer = StorageWriter(engine)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    docs.emit("start", {"run_uid": "run-1", "time": 0.0, "protocol_name": "full_cell_45mg",
                        "protocol": {"cycles": 100}, "sample": {"id": "FC-45"},
                        "station": {"simulated": True}, "simulated": True})
    docs.emit("step_start", {"run_uid": "run-1", "step_index": 0, "kind": "cycling",
                             "name": "cycling", "params": {}, "time": 0.0})
    cycling = StreamWriter(docs.emit, "run-1", "cycling", RECORD_COLUMNS, step_index=0)
    chamber = StreamWriter(docs.emit, "run-1", "chamber", {"time_s": "s", "temperature_c": "degC"})
    rng = np.random.default_rng(0)
    for start in range(0, n_records, 500):
        n = min(500, n_records - start)
        record = np.arange(start, start + n)
        step = record // 400 % 5 + 1
        cycling.write({"record": record, "cycle": record // 2000 + 1, "step": step,
                       "step_type": STEP_TYPES[step - 1], "test_time_s": record * 30.0,
                       "step_time_s": record % 400 * 30.0, "voltage_v": rng.uniform(1, 4, n),
                       "current_a": rng.normal(0, 1e-4, n), "capacity_ah": rng.uniform(0, 1e-3, n),
                       "energy_wh": rng.uniform(0, 3e-3, n)})
    chamber.write({"time_s": np.arange(n_chamber) * 300.0,
                   "temperature_c": 25.0 + rng.normal(0, 0.05, n_chamber)})
    docs.emit("step_stop", {"run_uid": "run-1", "step_index": 0, "status": "completed",
                            "time": 1.0, "summary": {"records": n_records}})
    docs.emit("analysis", {"run_uid": "run-1", "name": "cycling", "step_index": None,
                           "result": {"ice_pct": 78.2}})
    docs.emit("stop", {"run_uid": "run-1", "time": 2.0, "status": "completed", "reason": "",
                       "traceback": None})
    engine.dispose()


def copy_run_1(url: str, n_copies: int) -> None:
    """Append ``n_copies`` runs identical to run 1 (new uids, new stream ids), in SQL."""
    engine = make_engine(url)
    with engine.begin() as conn:
        sql = conn.exec_driver_sql
        for k in range(2, n_copies + 2):
            sql("INSERT INTO runs (uid, protocol_name, protocol, sample, station, simulated, "
                "status, reason, traceback, started_at, ended_at, updated_at) "
                "SELECT uid || '-' || ?, protocol_name, protocol, sample, station, simulated, "
                "status, reason, traceback, started_at, ended_at, updated_at "
                "FROM runs WHERE id = 1", (k,))
            run_id = sql("SELECT max(id) FROM runs").scalar()
            sql("INSERT INTO steps (run_id, step_index, kind, name, params, status, started_at, "
                "ended_at, summary) SELECT ?, step_index, kind, name, params, status, "
                "started_at, ended_at, summary FROM steps WHERE run_id = 1", (run_id,))
            sql("INSERT INTO analysis_results (run_id, name, step_index, result, created_at) "
                "SELECT ?, name, step_index, result, created_at FROM analysis_results "
                "WHERE run_id = 1", (run_id,))
            sql("INSERT INTO streams (run_id, name, step_index, descriptor_uid, metadata, "
                "columns, layout, n_points, str_codes) SELECT ?, name, step_index, "
                "descriptor_uid || '-' || ?, metadata, columns, layout, n_points, str_codes "
                "FROM streams WHERE run_id = 1", (run_id, k))
            sql("INSERT INTO points SELECT new.id, p.seq, p.time_s, "
                + ", ".join(f"p.v{i}" for i in range(16)) + ", p.extra "
                "FROM streams AS old JOIN streams AS new ON new.name = old.name "
                "AND new.run_id = ? JOIN points AS p ON p.stream_id = old.id "
                "WHERE old.run_id = 1", (run_id,))
    engine.dispose()


def measure(urls: list[str], export_dir: Path) -> dict[str, list[float]]:
    """Best time of each reader on each database; the databases alternate within each repeat
    so that load from other processes hits them alike."""
    engines = [make_engine(url) for url in urls]
    legacy_count = ("SELECT s.id, c.n FROM streams AS s LEFT JOIN (SELECT stream_id, count(*) "
                    "AS n FROM points GROUP BY stream_id) AS c ON c.stream_id = s.id "
                    "WHERE s.run_id = 1")

    def old_count(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql(legacy_count).all()

    readers = {
        "list_runs (runs)": lambda engine: list_runs(engine),
        "get_run(1) (show)": lambda engine: get_run(engine, 1),
        "read_stream(1, cycling)": lambda engine: read_stream(engine, 1, "cycling"),
        "export_run(1) (export)": lambda engine: export_run(
            engine, 1, export_dir / f"export_{time.monotonic_ns()}"),
        "point count before 0002 (GROUP BY points)": old_count,
    }
    timings = {}
    for name, read in readers.items():
        best = [float("inf")] * len(engines)
        for _ in range(REPEAT):
            for k, engine in enumerate(engines):
                t0 = time.perf_counter()
                read(engine)
                best[k] = min(best[k], time.perf_counter() - t0)
        timings[name] = best
    for engine in engines:
        engine.dispose()
    return timings


def query_plans(url: str) -> list[tuple[str, list[str]]]:
    """(statement, plan lines) of every SELECT the readers issue for run 1."""
    engine = make_engine(url)
    statements: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", record)
    list_runs(engine)
    get_run(engine, 1)
    read_stream(engine, 1, "cycling")
    event.remove(engine, "before_cursor_execute", record)
    plans = []
    with engine.connect() as conn:
        for statement, parameters in dict.fromkeys(statements):
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans.append((statement, [row[-1] for row in rows]))
    engine.dispose()
    return plans


def main() -> None:
    n_runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    n_points = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        small, big = tmp_path / "one_run.sqlite", tmp_path / "many_runs.sqlite"
        t0 = time.perf_counter()
        write_run(f"sqlite:///{small}", n_points)
        shutil.copyfile(small, big)
        copy_run_1(f"sqlite:///{big}", n_runs - 1)
        print(f"built: 1 run and {n_runs} runs of {n_points:,} points "
              f"({big.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.0f} s")
        timings = measure([f"sqlite:///{small}", f"sqlite:///{big}"], tmp_path)
        labels = ["1 run", f"{n_runs} runs"]
        print(f"\n{'best of ' + str(REPEAT) + ', ms':44s} {labels[0]:>10s} {labels[1]:>10s}  ratio")
        for name, (a, b) in timings.items():
            print(f"{name:44s} {a * 1e3:10.2f} {b * 1e3:10.2f}  {b / a:5.2f}")
        a, b = timings["list_runs (runs)"]
        print(f"list_runs per run listed: {a * 1e3:.2f} ms (1 run), "
              f"{b * 1e3 / n_runs:.3f} ms ({n_runs} runs)")
        print("\nSQLite query plans of the readers' statements (on the large file):")
        full_scans = []
        for statement, plan in query_plans(f"sqlite:///{big}"):
            print("  " + " ".join(statement.split())[:110])
            for line in plan:
                print("      " + line)
                if line.startswith("SCAN") and not line.startswith("SCAN runs"):
                    full_scans.append(line)
        print("full scans other than runs: " + (", ".join(full_scans) or "none"))
        ratios = [b / a for name, (a, b) in timings.items()
                  if not name.startswith(("list_runs", "point count"))]
        print(f"median ratio {labels[1]} / {labels[0]} of show/read/export: "
              f"{statistics.median(ratios):.2f}")

if __name__ == "__main__":
    main()
