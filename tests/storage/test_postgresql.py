"""The migrations and the writer on a real PostgreSQL server.

Skipped unless ``CELLBENCH_TEST_POSTGRES_URL`` names a database on a server where the user may
create databases (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and a driver
is installed; each test works in a database of its own, dropped afterwards.
"""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from procedures.documents import DocumentStream, StreamWriter
from storage import migrations
from storage.engine import make_engine, upgrade_database
from storage.readers import get_run, list_runs, read_stream
from storage.schema import SCHEMA_REVISION, SchemaError, metadata
from storage.writer import StorageWriter

SERVER_URL = os.environ.get("CELLBENCH_TEST_POSTGRES_URL")
pytestmark = pytest.mark.skipif(not SERVER_URL, reason="CELLBENCH_TEST_POSTGRES_URL is not set")


@pytest.fixture
def url():
    name = f"cellbench_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_fresh_database_is_upgraded_explicitly_and_round_trips(url):
    with pytest.raises(SchemaError, match="has no cellbench schema.*db upgrade"):
        make_engine(url)
    assert upgrade_database(url) == (None, SCHEMA_REVISION)
    engine = make_engine(url)
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
    repo = Path(__file__).resolve().parents[2]
    workers = [subprocess.Popen([sys.executable, "-c", code, url], cwd=repo, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(repo)})
               for _ in range(4)]
    outcomes = [worker.communicate(timeout=120) for worker in workers]
    assert [out.strip() for out, _ in outcomes] == [SCHEMA_REVISION] * 4, \
        [err for _, err in outcomes]
