"""StorageWriter: documents in, DataFrames out; batching; statuses; crashes; errors; engine."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import event, select

from procedures.documents import DocumentStream, StreamWriter, new_uid
from storage import engine as storage_engine
from storage.engine import describe, make_engine, resolve_db_url
from storage.readers import get_run, list_runs, mark_interrupted, read_stream
from storage.schema import N_VALUE_SLOTS, StreamLayoutError, points, streams
from storage.writer import DocumentError, StorageWriteError, StorageWriter

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t


@pytest.fixture
def url(db_url):
    """A fresh database on each backend (tests/storage/conftest.py)."""
    return db_url


def count_commits(engine) -> list:
    commits = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return commits


def start(stream: DocumentStream, uid: str, **extra) -> None:
    doc = {"run_uid": uid, "time": T0, "protocol_name": "eis_temperature_steps",
           "protocol": {"steps": [{"kind": "eis"}]}, "sample": {"thickness_um": 812.0},
           "station": {"potentiostat": "sim"}, "simulated": True}
    stream.emit("start", {**doc, **extra})


def stop(stream: DocumentStream, uid: str, status: str = "completed", reason: str = "",
         traceback: str | None = None) -> None:
    stream.emit("stop", {"run_uid": uid, "time": T0 + 3600.0, "status": status,
                         "reason": reason, "traceback": traceback})


def new_run(url, **writer_options):
    engine = make_engine(url)
    writer = StorageWriter(engine, **writer_options)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    uid = new_uid()
    start(docs, uid)
    return engine, writer, docs, uid


def floats_page(rng, n, offset=0):
    return {"time_s": np.arange(offset, offset + n) * 0.5, "voltage_v": rng.normal(size=n)}


# --- round trip ---------------------------------------------------------------------------
def test_round_trip_preserves_values_dtypes_order_and_units(url):
    engine, writer, docs, uid = new_run(url, flush_rows=7)
    rng = np.random.default_rng(3)
    eis = StreamWriter(docs.emit, uid, "eis_30c",
                       {"time_s": "s", "frequency_hz": "Hz", "z_real_ohm": "ohm",
                        "z_imag_ohm": "ohm", "cycle": ("", "int"), "range": ("", "str")},
                       step_index=0, metadata={"setpoint_c": 30.0})
    chamber = StreamWriter(docs.emit, uid, "chamber", {"time_s": "s", "temperature_c": "degC",
                                                       "alarm_code": ("", "int")})
    expected = []
    for page in range(5):
        n = 3 + page
        data = {"time_s": rng.uniform(0, 1e5, n), "frequency_hz": np.logspace(6, -1, n),
                "z_real_ohm": rng.normal(1e3, 50, n), "z_imag_ohm": -rng.uniform(0, 500, n),
                "cycle": rng.integers(-10**6, 10**6, n),
                "range": [f"{page}µA-{i}" for i in range(n)]}
        eis.write(data)
        chamber.write({"time_s": [page * 10.0], "temperature_c": [29.5 + page],
                       "alarm_code": [page - 2]})
        expected.append(pd.DataFrame(data))
    stop(docs, uid)

    frame = read_stream(engine, writer.run_id or 1, "eis_30c")
    want = pd.concat(expected, ignore_index=True)
    assert list(frame.columns) == list(want.columns)
    assert frame.index.name == "seq"
    assert frame.index.tolist() == list(range(len(want)))
    for column in ["time_s", "frequency_hz", "z_real_ohm", "z_imag_ohm"]:
        assert frame[column].dtype == np.float64
        np.testing.assert_array_equal(frame[column].to_numpy(), want[column].to_numpy())
    assert frame["cycle"].dtype == np.int64
    assert frame["cycle"].tolist() == want["cycle"].tolist()
    assert frame["range"].tolist() == want["range"].tolist()
    assert frame.attrs["units"] == {"time_s": "s", "frequency_hz": "Hz", "z_real_ohm": "ohm",
                                    "z_imag_ohm": "ohm", "cycle": "", "range": ""}
    assert frame.attrs["metadata"] == {"setpoint_c": 30.0}
    chamber_frame = read_stream(engine, 1, "chamber")
    assert chamber_frame["temperature_c"].tolist() == [29.5, 30.5, 31.5, 32.5, 33.5]
    assert chamber_frame["alarm_code"].tolist() == [-2, -1, 0, 1, 2]
    assert chamber_frame["alarm_code"].dtype == np.int64


def test_nan_missing_strings_and_ints_beyond_double_precision_round_trip(url):
    engine, writer, docs, uid = new_run(url)
    stream = StreamWriter(docs.emit, uid, "mixed",
                          {"current_a": "A", "counter": ("", "int"), "note": ("", "str")})
    big = [2**53 + 1, -(2**62) - 3, 7]
    stream.write({"current_a": [np.nan, -1e-12, np.inf], "counter": np.array(big),
                  "note": ["a", None, ""]})
    stream.write({"current_a": [1.0], "counter": [5], "note": ["b"]})
    writer.flush()
    frame = read_stream(engine, writer.run_id, "mixed")
    current = frame["current_a"].to_numpy()
    assert np.isnan(current[0]) and current[1] == -1e-12 and current[2] == np.inf
    assert frame["counter"].tolist() == big + [5]
    assert frame["note"].tolist() == ["a", None, "", "b"]


def test_int_only_stream_keeps_ints_beyond_double_precision(url):
    engine, writer, docs, uid = new_run(url)
    stream = StreamWriter(docs.emit, uid, "counts", {"count": ("", "int")})
    stream.write({"count": [1, 2, 3]})
    stream.write({"count": [2**53 + 1, 4, -(2**63)]})
    writer.flush()
    frame = read_stream(engine, writer.run_id, "counts")
    assert frame["count"].tolist() == [1, 2, 3, 2**53 + 1, 4, -(2**63)]


def test_streams_without_points_read_as_empty_frames_with_their_dtypes(url):
    engine, writer, docs, uid = new_run(url)
    StreamWriter(docs.emit, uid, "numeric", {"time_s": "s", "voltage_v": "V"})
    StreamWriter(docs.emit, uid, "mixed", {"n": ("", "int"), "tag": ("", "str")})
    numeric = read_stream(engine, writer.run_id, "numeric")
    mixed = read_stream(engine, writer.run_id, "mixed")
    assert numeric.empty and list(numeric.columns) == ["time_s", "voltage_v"]
    assert numeric.dtypes.tolist() == [np.float64, np.float64]
    assert mixed.empty and mixed.dtypes.tolist() == [np.int64, object]


def test_out_of_order_pages_read_back_in_sequence_order(url):
    engine, writer, docs, uid = new_run(url)
    docs.emit("descriptor", {"run_uid": uid, "descriptor_uid": "d1", "stream": "s",
                             "step_index": None, "metadata": {},
                             "columns": {"x_v": {"unit": "V", "dtype": "float"}}})
    docs.emit("event_page", {"descriptor_uid": "d1", "seq_start": 3, "data": {"x_v": [3.0, 4.0]}})
    docs.emit("event_page", {"descriptor_uid": "d1", "seq_start": 0,
                             "data": {"x_v": [0.0, 1.0, 2.0]}})
    writer.flush()
    frame = read_stream(engine, writer.run_id, "s")
    assert frame.index.tolist() == [0, 1, 2, 3, 4]
    assert frame["x_v"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_portable_core_insert_path_round_trips(url):
    # DBAPIs with a named paramstyle use SQLAlchemy Core insert(); exercise that path.
    engine, writer, docs, uid = new_run(url)
    writer._placeholder = None
    stream = StreamWriter(docs.emit, uid, "s", {"time_s": "s", "n": ("", "int"),
                                                "tag": ("", "str")})
    stream.write({"time_s": [0.5, np.nan], "n": [1, 2**60], "tag": ["x", "y"]})
    numeric = StreamWriter(docs.emit, uid, "numeric", {"time_s": "s", "n": ("", "int")})
    numeric.write({"time_s": [1.5, 2.5], "n": [-4, 9]})
    stop(docs, uid)
    frame = read_stream(engine, 1, "s")
    assert frame["time_s"].iloc[0] == 0.5 and np.isnan(frame["time_s"].iloc[1])
    assert frame["n"].tolist() == [1, 2**60]
    assert frame["tag"].tolist() == ["x", "y"]
    assert read_stream(engine, 1, "numeric")["n"].tolist() == [-4, 9]


def test_many_rows_span_multi_row_statements_and_remainders(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10_000)
    rng = np.random.default_rng(0)
    stream = StreamWriter(docs.emit, uid, "long", {"time_s": "s", "voltage_v": "V"})
    pages = [floats_page(rng, n, offset) for n, offset in [(333, 0), (1000, 333), (2, 1333)]]
    for page in pages:
        stream.write(page)
    stop(docs, uid)
    frame = read_stream(engine, 1, "long")
    np.testing.assert_array_equal(frame["voltage_v"].to_numpy(),
                                  np.concatenate([p["voltage_v"] for p in pages]))
    assert frame.index.tolist() == list(range(1335))


# --- batching -----------------------------------------------------------------------------
def test_flushes_when_buffer_reaches_flush_rows_in_one_transaction_each(url):
    engine, writer, docs, uid = new_run(url, flush_rows=1000, flush_interval_s=1e9,
                                        clock=FakeClock())
    commits = count_commits(engine)
    stream = StreamWriter(docs.emit, uid, "s", {"time_s": "s", "voltage_v": "V"})
    commits.clear()  # the descriptor's own transaction
    rng = np.random.default_rng(1)
    for i in range(3):
        stream.write(floats_page(rng, 300, 300 * i))
    assert writer.flushes == 0 and writer.pending_rows == 900 and not commits
    assert read_stream(engine, writer.run_id, "s").empty
    stream.write(floats_page(rng, 300, 900))
    assert writer.flushes == 1 and len(commits) == 1 and writer.pending_rows == 0
    assert len(read_stream(engine, writer.run_id, "s")) == 1200
    for i in range(4, 8):
        stream.write(floats_page(rng, 300, 300 * i))
    assert writer.flushes == 2 and len(commits) == 2 and writer.rows_written == 2400


def test_flushes_by_clock_interval_at_the_next_document(url):
    clock = FakeClock()
    engine, writer, docs, uid = new_run(url, flush_rows=10**6, flush_interval_s=2.0,
                                        clock=clock)
    stream = StreamWriter(docs.emit, uid, "s", {"time_s": "s", "voltage_v": "V"})
    rng = np.random.default_rng(2)
    stream.write(floats_page(rng, 10))
    clock.t = 1.9
    stream.write(floats_page(rng, 10, 10))
    assert writer.flushes == 0
    clock.t = 2.5  # the interval passes while nothing arrives: nothing is written yet
    assert writer.flushes == 0
    stream.write(floats_page(rng, 10, 20))
    assert writer.flushes == 1 and writer.rows_written == 30
    clock.t = 4.0
    stream.write(floats_page(rng, 10, 30))
    assert writer.flushes == 1  # 1.5 s since the last flush
    clock.t = 4.6
    docs.emit("step_start", {"run_uid": uid, "step_index": 0, "kind": "soak", "name": "soak",
                             "params": {}, "time": T0})
    assert writer.flushes == 2 and writer.rows_written == 40


def test_step_stop_analysis_and_stop_flush_with_their_own_write(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6, flush_interval_s=1e9,
                                        clock=FakeClock())
    docs.emit("step_start", {"run_uid": uid, "step_index": 0, "kind": "eis", "name": "EIS 30 C",
                             "params": {"amplitude_v": 0.01}, "time": T0 + 1})
    stream = StreamWriter(docs.emit, uid, "s", {"time_s": "s"}, step_index=0)
    commits = count_commits(engine)
    rng = np.random.default_rng(4)
    for kind, doc in [
        ("step_stop", {"run_uid": uid, "step_index": 0, "status": "completed",
                       "time": T0 + 60, "summary": {"points": np.int64(5)}}),
        ("analysis", {"run_uid": uid, "name": "eis", "step_index": 0,
                      "result": {"r_bulk_ohm": np.float64(812.5)}}),
    ]:
        stream.write({"time_s": rng.uniform(size=5)})
        before = len(commits)
        docs.emit(kind, doc)
        assert len(commits) == before + 1, kind
        assert writer.pending_rows == 0
    stream.write({"time_s": [1.0, 2.0]})
    stop(docs, uid)
    assert writer.flushes == 3 and writer.rows_written == 12
    run = get_run(engine, 1)
    assert run["steps"][0]["status"] == "completed"
    assert run["steps"][0]["summary"] == {"points": 5}
    assert run["analysis"][0]["result"] == {"r_bulk_ohm": 812.5}


# --- statuses -----------------------------------------------------------------------------
def test_run_status_goes_from_running_to_the_stop_status(url):
    engine, writer, docs, uid = new_run(url)
    run_id = writer.run_id
    assert isinstance(run_id, int)
    run = get_run(engine, run_id)
    assert run["status"] == "running" and run["ended_at"] is None and run["uid"] == uid
    # Run times are wall time, whatever the documents' (possibly virtual) clock says.
    started = datetime.fromisoformat(run["started_at"])
    assert abs((datetime.now(timezone.utc) - started).total_seconds()) < 60
    stop(docs, uid, status="failed", reason="chamber alarm", traceback="Traceback ...")
    run = get_run(engine, run_id)
    assert (run["status"], run["reason"], run["traceback"]) == \
        ("failed", "chamber alarm", "Traceback ...")
    assert started <= datetime.fromisoformat(run["ended_at"]) <= datetime.now(timezone.utc)
    assert writer.run_id is None
    # The writer takes the next run of a queue.
    uid2 = new_uid()
    start(docs, uid2)
    assert writer.run_id == run_id + 1
    stop(docs, uid2, status="aborted", reason="user abort")
    assert list_runs(engine)["status"].tolist() == ["aborted", "failed"]


def test_crashed_run_keeps_flushed_rows_and_can_be_marked_interrupted(url):
    engine, writer, docs, uid = new_run(url, flush_rows=100, flush_interval_s=1e9,
                                        clock=FakeClock())
    stream = StreamWriter(docs.emit, uid, "s", {"time_s": "s", "voltage_v": "V"})
    rng = np.random.default_rng(5)
    stream.write(floats_page(rng, 150))
    stream.write(floats_page(rng, 30, 150))  # buffered when the "crash" happens
    run_id = writer.run_id
    del writer, docs  # no stop, no close: the process died

    fresh = make_engine(url)  # another process opening the file
    assert get_run(fresh, run_id)["status"] == "running"
    assert len(read_stream(fresh, run_id, "s")) == 150
    assert mark_interrupted(fresh, run_id) is True
    run = get_run(fresh, run_id)
    assert run["status"] == "interrupted" and "interrupted" in run["reason"]
    assert mark_interrupted(fresh, run_id) is False
    assert len(read_stream(fresh, run_id, "s")) == 150
    fresh.dispose()


def test_close_flushes_and_leaves_the_run_running(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6, flush_interval_s=1e9,
                                        clock=FakeClock())
    StreamWriter(docs.emit, uid, "s", {"time_s": "s"}).write({"time_s": [1.0, 2.0]})
    writer.close()
    assert len(read_stream(engine, writer.run_id, "s")) == 2
    assert get_run(engine, writer.run_id)["status"] == "running"


# --- errors -------------------------------------------------------------------------------
def test_stream_with_too_many_numeric_columns_is_refused(url):
    engine, writer, docs, uid = new_run(url)
    columns = {"time_s": "s", **{f"c{i}_v": "V" for i in range(N_VALUE_SLOTS + 1)},
               "label": ("", "str")}
    with pytest.raises(StreamLayoutError, match=r"'wide' has 17 float/int columns.*at most 16"):
        StreamWriter(docs.emit, uid, "wide", columns)
    ok = {"time_s": "s", **{f"c{i}_v": "V" for i in range(N_VALUE_SLOTS)}}
    StreamWriter(docs.emit, uid, "full", ok).write({k: [1.0] for k in ok})
    writer.flush()
    assert read_stream(engine, writer.run_id, "full").shape == (1, N_VALUE_SLOTS + 1)


@pytest.mark.parametrize("name, doc, message", [
    ("event_page", {"descriptor_uid": "nope", "seq_start": 0, "data": {"x": [1.0]}},
     "unknown descriptor 'nope'"),
    ("event_page", {"descriptor_uid": "d", "seq_start": 0, "data": {"y": [1.0]}},
     r"missing columns \['x'\], unexpected columns \['y'\]"),
    ("event_page", {"descriptor_uid": "d", "seq_start": 0, "data": {"x": ["a"]}},
     "column 'x' is not float"),
    ("event_page", {"descriptor_uid": "d", "seq_start": 0, "data": {"x": [1.0], "n": [0.5]}},
     None),
    ("stop", {"run_uid": "u", "time": T0, "status": "done", "reason": "", "traceback": None},
     "status 'done'"),
    ("step_stop", {"run_uid": "u", "step_index": 4, "status": "completed", "time": T0},
     "step_stop for step 4 .* without a step_start"),
    ("descriptor", {"run_uid": "u", "descriptor_uid": "e", "stream": "s2", "step_index": None,
                    "metadata": {}, "columns": {"x": {"unit": "V", "dtype": "complex"}}},
     "dtype 'complex'"),
])
def test_bad_documents_raise_value_errors_naming_the_problem(url, name, doc, message):
    engine, writer, docs, uid = new_run(url)
    columns = {"x": {"unit": "V", "dtype": "float"}}
    if message is None:  # an int column given floats
        columns["n"] = {"unit": "", "dtype": "int"}
        message = "column 'n' is declared int"
    writer("descriptor", {"run_uid": uid, "descriptor_uid": "d", "stream": "s",
                          "step_index": None, "metadata": {}, "columns": columns})
    with pytest.raises(ValueError, match=message):
        writer(name, doc)
    assert writer.pending_rows == 0


def test_documents_before_start_and_double_start_are_refused(url):
    writer = StorageWriter(make_engine(url))
    with pytest.raises(DocumentError, match="'descriptor' document before any 'start'"):
        writer("descriptor", {})
    with pytest.raises(DocumentError, match="unknown document name 'bogus'"):
        writer("bogus", {})
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    start(docs, "first")
    with pytest.raises(DocumentError, match="while run 1 .* has had no 'stop'"):
        start(docs, "second")


def test_database_error_names_run_and_stream_and_keeps_the_rows(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6)
    stream = StreamWriter(docs.emit, uid, "eis_30c", {"time_s": "s"})
    stream.write({"time_s": [0.0, 1.0]})
    writer.flush()
    chamber = StreamWriter(docs.emit, uid, "chamber", {"temperature_c": "degC"})
    chamber.write({"temperature_c": [25.0]})
    stream.seq = 1  # a buggy producer repeats sequence number 1
    stream.write({"time_s": [5.0, 6.0]})
    with pytest.raises(StorageWriteError, match=r"run 1 \(" + uid + r"\).*3 buffered rows "
                       r"of stream\(s\) \['eis_30c', 'chamber'\].*" + re.escape(describe(engine))
                       + r".*(UNIQUE|unique)") as info:
        writer.flush()
    assert isinstance(info.value.__cause__, engine.dialect.loaded_dbapi.IntegrityError)
    assert writer.pending_rows == 3  # nothing silently dropped
    assert read_stream(engine, 1, "eis_30c")["time_s"].tolist() == [0.0, 1.0]
    assert read_stream(engine, 1, "chamber").empty  # the whole flush was rolled back
    with pytest.raises(StorageWriteError):
        stop(docs, uid)
    assert get_run(engine, 1)["status"] == "running"


def test_writer_rejects_bad_options(url):
    with pytest.raises(ValueError, match="flush_rows"):
        StorageWriter(url, flush_rows=0)
    with pytest.raises(ValueError, match="flush_interval_s"):
        StorageWriter(url, flush_interval_s=-1)


# --- engine -------------------------------------------------------------------------------
def test_resolve_db_url_from_argument_environment_and_default(tmp_path, monkeypatch):
    monkeypatch.delenv("CELLBENCH_DB", raising=False)
    assert resolve_db_url(None) == "sqlite:///" + str(storage_engine.PROJECT_ROOT / "data" /
                                                      "cellbench.sqlite")
    assert storage_engine.PROJECT_ROOT.joinpath("storage", "engine.py").is_file()
    monkeypatch.setenv("CELLBENCH_DB", str(tmp_path / "env.sqlite"))
    assert resolve_db_url(None) == f"sqlite:///{tmp_path / 'env.sqlite'}"
    monkeypatch.setenv("CELLBENCH_DB", "postgresql://u:p@localhost/cellbench")
    assert resolve_db_url(None) == "postgresql://u:p@localhost/cellbench"
    assert resolve_db_url("sqlite:///x.db") == "sqlite:///x.db"
    assert resolve_db_url(tmp_path / "a.sqlite") == f"sqlite:///{tmp_path / 'a.sqlite'}"


def test_make_engine_creates_directory_tables_and_wal(tmp_path):
    path = tmp_path / "deep" / "er" / "c.sqlite"
    engine = make_engine(str(path))
    assert path.parent.is_dir()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        tables = set(conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table'").scalars())
    assert {"runs", "steps", "streams", "points", "analysis_results"} <= tables
    engine.dispose()


# --- str columns, point counts, statuses --------------------------------------------------
def stored_stream(engine, name: str):
    with engine.connect() as conn:
        return tuple(conn.execute(select(streams.c.id, streams.c.layout, streams.c.str_codes,
                                         streams.c.n_points).where(streams.c.name == name)).one())


def test_str_columns_are_coded_in_a_float_slot_with_the_code_table_in_the_stream(url):
    engine, writer, docs, uid = new_run(url, flush_rows=4)
    records = StreamWriter(docs.emit, uid, "cycling", {"record": ("", "int"),
                                                       "step_type": ("", "str"), "v": "V"})
    values = ["Rest", "CC_Chg", None, "Rest", "CC_DChg", "", "CC_Chg"]
    records.write({"record": [0, 1, 2], "step_type": np.array(values[:3], dtype=object),
                   "v": [1.0, 2.0, 3.0]})
    records.write({"record": [3, 4, 5, 6], "step_type": values[3:], "v": [4.0, 5, 6, 7]})
    writer.flush()
    stream_id, layout, codes, n_points = stored_stream(engine, "cycling")
    assert layout == {"record": "v0", "step_type": "v2", "v": "v1"}
    assert codes == {"step_type": ["Rest", "CC_Chg", "CC_DChg", ""]}
    assert n_points == 7
    with engine.connect() as conn:
        stored = [tuple(row) for row in conn.execute(
            select(points.c.v2, points.c.extra).where(points.c.stream_id == stream_id)
            .order_by(points.c.seq))]
    assert stored == [(0.0, None), (1.0, None), (None, None), (0.0, None), (2.0, None),
                      (3.0, None), (1.0, None)]  # no per-row JSON
    frame = read_stream(engine, writer.run_id, "cycling")
    assert frame["step_type"].tolist() == values
    assert frame["step_type"].dtype == object


def test_str_values_beyond_the_code_limit_and_non_str_values_round_trip(url, monkeypatch):
    monkeypatch.setattr("storage.writer.MAX_STR_CODES", 3)
    engine, writer, docs, uid = new_run(url)
    notes = StreamWriter(docs.emit, uid, "notes", {"n": ("", "int"), "note": ("", "str")})
    first = ["a", "b", "a", None]
    second = ["c", "free text 1", "b", 7, "free text 2", 2.5]
    notes.write({"n": [1, 2, 3, 2**60], "note": first})
    notes.write({"n": [5, 6, 7, 8, 9, 10], "note": second})
    stop(docs, uid)
    _, _, codes, n_points = stored_stream(engine, "notes")
    assert codes == {"note": ["a", "b", "c"]} and n_points == 10
    frame = read_stream(engine, 1, "notes")
    assert frame["note"].tolist() == first + ["c", "free text 1", "b", "7", "free text 2", "2.5"]
    assert frame["n"].tolist() == [1, 2, 3, 2**60, 5, 6, 7, 8, 9, 10]


def test_str_column_without_a_free_slot_is_kept_in_extra(url):
    engine, writer, docs, uid = new_run(url)
    columns = {f"x{i}": "V" for i in range(N_VALUE_SLOTS)}
    wide = StreamWriter(docs.emit, uid, "wide", {**columns, "tag": ("", "str")})
    wide.write({**{c: [float(i)] * 2 for i, c in enumerate(columns)}, "tag": ["p", None]})
    writer.flush()
    _, layout, codes, _ = stored_stream(engine, "wide")
    assert layout["tag"] == "extra" and codes is None
    frame = read_stream(engine, writer.run_id, "wide")
    assert frame["tag"].tolist() == ["p", None] and frame["x15"].tolist() == [15.0, 15.0]


def fail_next_stream_update(engine) -> None:
    """The next UPDATE of ``streams`` fails as a full disk would, once."""
    def fail(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("UPDATE streams"):
            event.remove(engine, "before_cursor_execute", fail)
            raise engine.dialect.loaded_dbapi.OperationalError("database or disk is full")
    event.listen(engine, "before_cursor_execute", fail)


def test_code_table_of_a_failed_flush_is_written_by_the_retry(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6)
    tags = StreamWriter(docs.emit, uid, "tags", {"tag": ("", "str")})
    tags.write({"tag": ["a"]})
    writer.flush()
    tags.write({"tag": ["b", "a", "c"]})
    fail_next_stream_update(engine)
    with pytest.raises(StorageWriteError, match="disk is full"):
        writer.flush()
    assert stored_stream(engine, "tags")[2:] == ({"tag": ["a"]}, 1)  # rolled back together
    assert read_stream(engine, writer.run_id, "tags")["tag"].tolist() == ["a"]
    writer.flush()
    assert stored_stream(engine, "tags")[2:] == ({"tag": ["a", "b", "c"]}, 4)
    assert read_stream(engine, writer.run_id, "tags")["tag"].tolist() == ["a", "b", "a", "c"]


def test_point_counts_follow_each_commit_and_roll_back_with_a_failed_one(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6)
    a = StreamWriter(docs.emit, uid, "a", {"time_s": "s"})
    b = StreamWriter(docs.emit, uid, "b", {"time_s": "s"})
    a.write({"time_s": [0.0, 1.0]})
    assert stored_stream(engine, "a")[3] == 0  # buffered, not committed
    b.write({"time_s": [0.0]})
    writer.flush()
    a.write({"time_s": [2.0]})
    writer.flush()
    assert [s["n_points"] for s in get_run(engine, writer.run_id)["streams"]] == [3, 1]
    b.write({"time_s": [9.0]})
    a.write({"time_s": [3.0]})
    fail_next_stream_update(engine)
    with pytest.raises(StorageWriteError):
        writer.flush()
    assert [s["n_points"] for s in get_run(engine, writer.run_id)["streams"]] == [3, 1]
    assert len(read_stream(engine, writer.run_id, "a")) == 3  # the rows rolled back too
    writer.flush()
    assert [s["n_points"] for s in get_run(engine, writer.run_id)["streams"]] == [4, 2]


def test_unsafe_is_a_stop_status_but_not_a_step_status(url):
    engine, writer, docs, uid = new_run(url)
    docs.emit("step_start", {"run_uid": uid, "step_index": 0, "kind": "eis", "time": T0})
    with pytest.raises(DocumentError, match="status 'unsafe'"):
        docs.emit("step_stop", {"run_uid": uid, "step_index": 0, "status": "unsafe",
                                "time": T0})
    stop(docs, uid, status="unsafe", reason="cell relay did not open")
    run = get_run(engine, 1)
    assert (run["status"], run["reason"]) == ("unsafe", "cell relay did not open")


def test_pages_are_copied_when_they_arrive_and_mixed_int_dtypes_stay_exact(url):
    engine, writer, docs, uid = new_run(url, flush_rows=10**6)
    stream = StreamWriter(docs.emit, uid, "s", {"v": "V", "n": ("", "int"),
                                                "tag": ("", "str")})
    v, tags = np.array([1.0, 2.0]), np.array(["a", "b"], dtype=object)
    stream.write({"v": v, "n": np.array([2**63 - 1, 5], dtype=np.uint64), "tag": tags})
    v[:] = -1.0  # the producer reuses its buffers before the flush
    tags[:] = "z"
    stream.write({"v": v, "n": np.array([-(2**62), 3], dtype=np.int64), "tag": tags})
    writer.flush()
    frame = read_stream(engine, writer.run_id, "s")
    assert frame["v"].tolist() == [1.0, 2.0, -1.0, -1.0]
    assert frame["tag"].tolist() == ["a", "b", "z", "z"]
    assert frame["n"].tolist() == [2**63 - 1, 5, -(2**62), 3]
