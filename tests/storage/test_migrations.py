"""Schema migrations: revision 0001 is the pre-migration schema, old databases upgrade in place
keeping every run, stream and point, concurrent opens do not race, foreign schemas are refused."""
from __future__ import annotations

import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from procedures.documents import DocumentStream, StreamWriter
from storage import migrations
from storage.engine import make_engine, schema_is_current, upgrade_database
from storage.readers import get_run, list_runs, read_stream
from storage.schema import SCHEMA_REVISION, metadata
from storage.writer import StorageWriter

sys.path.insert(0, str(Path(__file__).parent))
from legacy_db import BIG_INT, LEGACY_RUNS  # noqa: E402

LEGACY_DB = Path(__file__).parent / "fixtures" / "cellbench_0bac8df.sqlite"


def sqlite_schema(path: Path) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                  "WHERE name != 'alembic_version' "
                                  "AND name NOT LIKE 'sqlite_autoindex_alembic%'").fetchall())
    finally:
        con.close()


def raw_counts(path: Path) -> dict[int, int]:
    con = sqlite3.connect(path)
    try:
        return dict(con.execute("SELECT stream_id, count(*) FROM points GROUP BY stream_id"))
    finally:
        con.close()


@pytest.fixture
def legacy(tmp_path) -> Path:
    """A copy of the database written by the storage code of commit 0bac8df."""
    path = tmp_path / "legacy.sqlite"
    shutil.copyfile(LEGACY_DB, path)
    return path


def expected_columns(stream: dict) -> dict[str, list]:
    """The stream's columns as written: every page's values, in order, as Python lists."""
    return {c: [v for page in stream["pages"] for v in list(page[c])] for c in stream["columns"]}


def test_revision_0001_creates_exactly_the_schema_of_commit_0bac8df(tmp_path):
    path = tmp_path / "r0001.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0001")
    engine.dispose()
    assert sqlite_schema(path) == sqlite_schema(LEGACY_DB)


def test_legacy_file_is_what_the_old_code_wrote():
    con = sqlite3.connect(LEGACY_DB)
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    columns = {r[1] for r in con.execute("PRAGMA table_info(streams)")}
    con.close()
    assert "alembic_version" not in tables and "n_points" not in columns


def test_legacy_database_is_upgraded_in_place_and_keeps_every_run_stream_and_point(legacy):
    counts_before = raw_counts(legacy)
    engine = make_engine(str(legacy))
    with engine.connect() as conn:
        assert migrations.current_revision(conn) == SCHEMA_REVISION == migrations.head_revision()

    runs = list_runs(engine).sort_values("run_id")
    assert runs["run_id"].tolist() == [1, 2, 3]
    assert runs["protocol"].tolist() == [r["protocol_name"] for r in LEGACY_RUNS]
    # The legacy run left "running" has no process stored and a heartbeat long stale.
    assert runs["status"].tolist() == ["completed", "aborted", "interrupted"]
    assert runs["reason"].tolist() == ["", "aborted by the operator (SIGINT)", None]
    expected_totals = [sum(len(p[next(iter(s["columns"]))]) for s in r["streams"]
                           for p in s["pages"]) for r in LEGACY_RUNS]
    assert runs["n_points"].tolist() == expected_totals == [75, 180, 25]

    stream_ids = iter(sorted(counts_before))  # streams with points, in id order
    for run_id, legacy_run in enumerate(LEGACY_RUNS, start=1):
        run = get_run(engine, run_id)
        assert run["n_points"] == expected_totals[run_id - 1]
        assert [s["name"] for s in run["streams"]] == [s["name"] for s in legacy_run["streams"]]
        for stored, legacy_stream in zip(run["streams"], legacy_run["streams"]):
            want = expected_columns(legacy_stream)
            n = len(next(iter(want.values())))
            assert stored["n_points"] == n
            if n:  # the backfilled count is the count of the old table's rows
                assert stored["n_points"] == counts_before[next(stream_ids)]
            frame = read_stream(engine, run_id, legacy_stream["name"])
            assert list(frame.columns) == list(want)
            assert frame.index.tolist() == list(range(n))
            for column, spec in legacy_stream["columns"].items():
                dtype = spec[1] if isinstance(spec, tuple) else "float"
                if dtype == "float":
                    # The file holds what the writer stored then; the expectation is recomputed
                    # here, and np.logspace is not bit-identical across numpy builds (1 ulp).
                    np.testing.assert_allclose(frame[column].to_numpy(),
                                               np.array(want[column], dtype=float),
                                               rtol=4 * np.finfo(float).eps, atol=0)
                else:
                    assert frame[column].tolist() == want[column], column
    assert read_stream(engine, 1, "chamber")["alarm_code"].tolist() == [0, BIG_INT, -3]
    assert read_stream(engine, 1, "eis_30c")["range"].iloc[-1] is None
    assert np.isnan(read_stream(engine, 2, "cycling")["current_a"].iloc[53])
    engine.dispose()


def test_upgraded_legacy_database_takes_new_runs_without_reusing_ids(legacy):
    engine = make_engine(str(legacy))
    writer = StorageWriter(engine)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    docs.emit("start", {"run_uid": "new", "time": 0.0, "protocol_name": "p", "protocol": {},
                        "sample": {}, "station": {}, "simulated": True})
    stream = StreamWriter(docs.emit, "new", "cycling", {"step_type": ("", "str"), "v": "V"})
    stream.write({"step_type": ["Rest", "CC_Chg"], "v": [1.0, 2.0]})
    docs.emit("stop", {"run_uid": "new", "time": 1.0, "status": "completed", "reason": "",
                       "traceback": None})
    assert writer.last_run_id == 4
    assert read_stream(engine, 4, "cycling")["step_type"].tolist() == ["Rest", "CC_Chg"]
    assert read_stream(engine, 2, "cycling")["step_type"].iloc[0] == "Rest"  # old layout
    assert list_runs(engine)["n_points"].tolist() == [2, 25, 180, 75]
    engine.dispose()


def test_schema_module_matches_the_newest_revision(tmp_path):
    engine = make_engine(str(tmp_path / "fresh.sqlite"))
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert schema_is_current(engine)
    engine.dispose()


def test_upgrade_database_reports_revisions_and_is_idempotent(legacy, tmp_path):
    assert upgrade_database(str(legacy)) == (None, SCHEMA_REVISION)
    assert upgrade_database(str(legacy)) == (SCHEMA_REVISION, SCHEMA_REVISION)
    assert upgrade_database(str(tmp_path / "empty.sqlite")) == (None, SCHEMA_REVISION)


def test_a_partial_set_of_cellbench_tables_is_refused_untouched(tmp_path):
    path = tmp_path / "odd.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    con.close()
    with pytest.raises(migrations.SchemaError,
                       match=r"odd\.sqlite has the cellbench tables \['runs'\] but not "
                             r"\['analysis_results', 'points', 'steps', 'streams'\]"):
        make_engine(str(path))
    assert [r[1] for r in sqlite_schema(path)] == ["runs"]


def test_a_revision_from_newer_code_is_refused(legacy):
    con = sqlite3.connect(legacy)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    con.execute("INSERT INTO alembic_version VALUES ('0099')")
    con.commit()
    con.close()
    with pytest.raises(migrations.SchemaError, match="revision '0099', which this cellbench "
                                                     "does not know"):
        make_engine(str(legacy))


def test_check_current_says_how_to_upgrade(tmp_path):
    path = tmp_path / "old.sqlite"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0001")
    with pytest.raises(migrations.SchemaError,
                       match=rf"is at revision 0001; this cellbench needs revision {SCHEMA_REVISION}: run "
                             r"`main.py db upgrade --db sqlite:///.*old\.sqlite`"):
        migrations.check_current(engine)
    engine.dispose()


def test_a_failed_upgrade_leaves_the_old_revision_intact(legacy, monkeypatch):
    def broken_upgrade(config, revision):
        conn = config.attributes["connection"]
        conn.exec_driver_sql("ALTER TABLE streams ADD COLUMN n_points INTEGER")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('0002')")
        raise RuntimeError("disk full")

    monkeypatch.setattr(migrations.command, "upgrade", broken_upgrade)
    with pytest.raises(RuntimeError, match="disk full"):
        make_engine(str(legacy))
    assert sqlite_schema(legacy) == sqlite_schema(LEGACY_DB)  # not even stamped


def test_migrations_render_for_postgresql():
    config = migrations.alembic_config(url="postgresql://lab@db.example/cellbench")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert "CREATE TABLE points (" in sql and "SERIAL" in sql
    assert "ALTER TABLE streams ADD COLUMN n_points INTEGER DEFAULT '0' NOT NULL" in sql
    assert "UPDATE streams SET n_points = (SELECT count(*) FROM points" in sql
    assert "UPDATE alembic_version SET version_num='0002'" in sql
    assert "CREATE TABLE suspensions (" in sql


OPEN_AT_ONCE = """
import sys, time
from storage import migrations
from storage.engine import make_engine
path, start_at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
engine = make_engine(path)
with engine.connect() as conn:
    print(migrations.current_revision(conn))
"""


def test_processes_opening_a_fresh_database_at_once_do_not_race(tmp_path):
    path = tmp_path / "fresh.sqlite"
    start_at = time.time() + 6.0  # after every process has imported storage
    repo = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen([sys.executable, "-c", OPEN_AT_ONCE, str(path), str(start_at)],
                                cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(repo)})
               for _ in range(4)]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    assert [(out.strip(), worker.returncode) for (out, _), worker in zip(outcomes, workers)] == \
        [(SCHEMA_REVISION, 0)] * 4, [err for _, err in outcomes]
    con = sqlite3.connect(path)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(SCHEMA_REVISION,)]
    con.close()


def test_downgrade_to_0001_gives_back_a_database_the_old_code_reads(legacy):
    make_engine(str(legacy)).dispose()
    engine = create_engine(f"sqlite:///{legacy}")
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0001")
    engine.dispose()
    con = sqlite3.connect(legacy)
    columns = [r[1] for r in con.execute("PRAGMA table_info(streams)")]
    assert columns == ["id", "run_id", "name", "step_index", "descriptor_uid", "metadata",
                       "columns", "layout"]
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0001",)]
    con.close()
    assert raw_counts(legacy) == raw_counts(LEGACY_DB)
