"""The migrations on a real PostgreSQL server (the writer, readers and exports run on it through
the ``db_url`` fixture of their own tests).

Skipped unless ``CELLBENCH_TEST_POSTGRES_URL`` is set (see conftest.py); each test works in a
database of its own, dropped afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from procedures.documents import DocumentStream, StreamWriter
from storage import migrations
from storage.engine import make_engine, upgrade_database
from storage.readers import get_run, list_runs, read_stream
from storage.schema import SCHEMA_REVISION, SchemaError, metadata
from storage.writer import StorageWriter

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def url(empty_pg_url):
    return empty_pg_url


def test_empty_database_gets_the_schema_when_opened_and_round_trips(url):
    engine = make_engine(url)
    assert upgrade_database(url) == (SCHEMA_REVISION, SCHEMA_REVISION)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    writer = StorageWriter(engine, flush_rows=3)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    docs.emit("start", {"run_uid": "pg", "time": 0.0, "protocol_name": "p", "protocol": {},
                        "sample": {}, "station": {}, "simulated": True})
    stream = StreamWriter(docs.emit, "pg", "cycling", {"record": ("", "int"),
                                                       "step_type": ("", "str"), "v": "V"})
    stream.write({"record": [1, 2**60, 3], "step_type": ["Rest", None, "CC_Chg"],
                  "v": [1.0, np.nan, 3.0]})
    stream.write({"record": [4, 5], "step_type": ["Rest", "CC_DChg"], "v": [4.0, 5.0]})
    docs.emit("stop", {"run_uid": "pg", "time": 1.0, "status": "unsafe", "reason": "relay",
                       "traceback": None})
    frame = read_stream(engine, 1, "cycling")
    assert frame["record"].tolist() == [1, 2**60, 3, 4, 5]
    assert frame["step_type"].tolist() == ["Rest", None, "CC_Chg", "Rest", "CC_DChg"]
    assert np.isnan(frame["v"].iloc[1]) and frame["v"].iloc[4] == 5.0
    assert list_runs(engine)[["status", "n_points"]].values.tolist() == [["unsafe", 5]]
    assert [s["n_points"] for s in get_run(engine, 1)["streams"]] == [5]
    engine.dispose()


def test_revision_0001_database_is_upgraded_with_counts_backfilled(url):
    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0001")
        conn.exec_driver_sql("DROP TABLE alembic_version")  # as the code of 0bac8df left it
        conn.exec_driver_sql(
            "INSERT INTO runs (uid, protocol_name, simulated, status, started_at, updated_at) "
            "VALUES ('old', 'lsv', true, 'completed', now(), now())")
        conn.exec_driver_sql(
            "INSERT INTO streams (run_id, name, descriptor_uid, columns, layout) VALUES (1, "
            "'lsv', 'd', '{\"v\": {\"unit\": \"V\", \"dtype\": \"float\"}, \"tag\": "
            "{\"unit\": \"\", \"dtype\": \"str\"}}', '{\"v\": \"v0\", \"tag\": \"extra\"}')")
        conn.exec_driver_sql("INSERT INTO points (stream_id, seq, v0, extra) SELECT 1, g, "
                             "g * 0.5, '{\"tag\": \"t' || g || '\"}' FROM generate_series(0, 9) g")
    engine.dispose()
    with pytest.raises(SchemaError, match="was written before schema migrations"):
        make_engine(url)
    assert upgrade_database(url) == (None, SCHEMA_REVISION)
    assert list_runs(url)["n_points"].tolist() == [10]
    frame = read_stream(url, 1, "lsv")
    assert frame["v"].tolist() == [g * 0.5 for g in range(10)]
    assert frame["tag"].tolist() == [f"t{g}" for g in range(10)]


def test_processes_upgrading_at_once_do_not_race(url):
    code = ("import sys; from storage.engine import upgrade_database; "
            "print(upgrade_database(sys.argv[1])[1])")
    outcomes = at_once(code, url, 4)
    assert [out.strip() for out, _ in outcomes] == [SCHEMA_REVISION] * 4, \
        [err for _, err in outcomes]


def test_station_processes_opening_an_empty_database_at_once_share_one_schema(url):
    # What four `main.py run` processes do first: open the database and store a run.
    code = ("import sys; from storage.writer import StorageWriter; w = StorageWriter(sys.argv[1]); "
            "w('start', {'run_uid': sys.argv[2], 'time': 0.0, 'protocol_name': 'p'}); "
            "print(w.run_id)")
    outcomes = at_once(code, url, 4)
    assert sorted(int(out) for out, _ in outcomes) == [1, 2, 3, 4], [e for _, e in outcomes]
    assert sorted(list_runs(url)["uid"]) == [f"station-{i}" for i in range(4)]
    assert upgrade_database(url) == (SCHEMA_REVISION, SCHEMA_REVISION)


def at_once(code: str, url: str, n: int) -> list[tuple[str, str]]:
    """stdout and stderr of ``n`` Python processes running ``code URL station-<i>``, started
    together."""
    workers = [subprocess.Popen([sys.executable, "-c", code, url, f"station-{i}"], cwd=REPO,
                                text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
               for i in range(n)]
    return [worker.communicate(timeout=120) for worker in workers]
