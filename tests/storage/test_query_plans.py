"""The readers behind `runs`, `show` and `export` search indexes, never scan the points table:
their cost does not grow with what else the database holds."""
from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import event

from procedures.documents import DocumentStream, StreamWriter
from storage.engine import make_engine
from storage.readers import get_run, list_runs, list_streams, read_stream
from storage.writer import StorageWriter


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(tmp_path / "plans.sqlite")
    writer = StorageWriter(engine)
    for k in range(3):
        docs = DocumentStream()
        docs.subscribe(writer, critical=True)
        uid = f"run-{k}"
        docs.emit("start", {"run_uid": uid, "time": 0.0, "protocol_name": "p", "protocol": {},
                            "sample": {}, "station": {}, "simulated": True})
        docs.emit("step_start", {"run_uid": uid, "step_index": 0, "kind": "cycling",
                                 "time": 0.0})
        stream = StreamWriter(docs.emit, uid, "cycling", {"cycle": ("", "int"),
                                                          "step_type": ("", "str"), "v": "V"})
        stream.write({"cycle": np.arange(100), "step_type": ["Rest"] * 100, "v": np.ones(100)})
        docs.emit("step_stop", {"run_uid": uid, "step_index": 0, "status": "completed",
                                "time": 1.0})
        docs.emit("analysis", {"run_uid": uid, "name": "cycling", "step_index": None,
                               "result": {}})
        docs.emit("stop", {"run_uid": uid, "time": 1.0, "status": "completed", "reason": "",
                           "traceback": None})
    yield engine
    engine.dispose()


def plans_of(engine, read) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of every SELECT that ``read()`` issues, by statement."""
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))
    event.listen(engine, "before_cursor_execute", record)
    try:
        read()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    with engine.connect() as conn:
        return {statement: [row[-1] for row in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + statement, parameters)]
                for statement, parameters in statements
                if statement.lstrip().upper().startswith("SELECT")}


@pytest.mark.parametrize("read", [
    lambda engine: get_run(engine, 2),
    lambda engine: list_streams(engine, 2),
    lambda engine: read_stream(engine, 2, "cycling"),
], ids=["get_run", "list_streams", "read_stream"])
def test_one_run_readers_only_search_indexes(engine, read):
    plans = plans_of(engine, lambda: read(engine))
    assert plans
    for statement, plan in plans.items():
        assert not [line for line in plan if line.startswith("SCAN")], (statement, plan)
        assert any(line.startswith("SEARCH") for line in plan), (statement, plan)


def test_list_runs_scans_runs_only_and_counts_points_from_streams(engine):
    plans = plans_of(engine, lambda: list_runs(engine))
    [(statement, plan)] = plans.items()
    assert " points" not in statement.replace("\n", " ")  # the table, not n_points
    assert [line for line in plan if line.startswith("SCAN")] == ["SCAN runs"]
    assert any(line.startswith("SEARCH streams USING INDEX") for line in plan), plan
    assert list_runs(engine)["n_points"].tolist() == [100, 100, 100]
