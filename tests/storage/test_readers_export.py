"""Readers (runs, streams, analysis, errors) and the CSV/JSON export."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from procedures.documents import DocumentStream, StreamWriter, new_uid
from storage.engine import describe, make_engine
from storage.export import export_run, header_with_unit
from storage.readers import (RUN_LIST_COLUMNS, RunNotFound, StreamNotFound, get_run,
                             latest_analysis, list_runs, list_streams, read_stream)
from storage.writer import StorageWriter

T0 = 1_700_000_000.0
FREQ = np.logspace(6, 0, 13)


@pytest.fixture
def db(db_url):
    """A database holding two runs: 1 completed EIS run with analyses, 2 still running."""
    engine = make_engine(db_url)  # on each backend (conftest.py)
    writer = StorageWriter(engine, flush_rows=50)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    uid = new_uid()
    docs.emit("start", {"run_uid": uid, "time": T0, "protocol_name": "eis_arrhenius",
                        "protocol": {"temperatures_c": [30, 50]},
                        "sample": {"name": "NZSP-3", "thickness_um": 812.0},
                        "station": {"potentiostat": {"model": "SP-300"}}, "simulated": True})
    for index, temperature in enumerate([30.0, 50.0]):
        docs.emit("step_start", {"run_uid": uid, "step_index": index, "kind": "eis",
                                 "name": f"EIS {temperature:g} C", "params": {"n": 13},
                                 "time": T0 + 100 * index})
        stream = StreamWriter(docs.emit, uid, f"eis_{temperature:g}c",
                              {"frequency_hz": "Hz", "z_real_ohm": "Ohm", "z_imag_ohm": "Ohm",
                               "temp": "K", "range": ("", "str")},
                              step_index=index, metadata={"setpoint_c": temperature})
        stream.write({"frequency_hz": FREQ, "z_real_ohm": 1000.0 / (index + 1) + FREQ * 0,
                      "z_imag_ohm": -np.sqrt(FREQ), "temp": FREQ * 0 + 273.15 + temperature,
                      "range": ["10 mA"] * 13})
        docs.emit("step_stop", {"run_uid": uid, "step_index": index, "status": "completed",
                                "time": T0 + 100 * index + 50, "summary": {"points": 13}})
        docs.emit("analysis", {"run_uid": uid, "name": "eis", "step_index": index,
                               "result": {"r_bulk_ohm": 1000.0 / (index + 1)}})
    docs.emit("analysis", {"run_uid": uid, "name": "arrhenius", "step_index": None,
                           "result": {"ea_ev": 0.31}})
    docs.emit("stop", {"run_uid": uid, "time": T0 + 400, "status": "completed", "reason": "",
                       "traceback": None})
    docs.emit("start", {"run_uid": new_uid(), "time": T0 + 500, "protocol_name": "lsv",
                        "protocol": {}, "sample": {}, "station": {}, "simulated": False})
    return engine


def test_list_runs_newest_first_with_iso_utc_times(db):
    runs = list_runs(db)
    assert list(runs.columns) == RUN_LIST_COLUMNS
    assert runs["run_id"].tolist() == [2, 1]
    assert runs["protocol"].tolist() == ["lsv", "eis_arrhenius"]
    assert runs["status"].tolist() == ["running", "completed"]
    assert runs["simulated"].tolist() == [False, True]
    # Wall-clock ISO 8601 UTC times, newest run first.
    started = [pd.Timestamp(t) for t in runs["started_at"]]
    assert all(t.tzname() == "UTC" for t in started) and started[0] >= started[1]
    assert pd.Timestamp(runs["updated_at"].iloc[0]).tzname() == "UTC"
    assert pd.Timestamp(runs["ended_at"].iloc[1]) >= started[1]


def test_list_runs_of_an_empty_database_is_an_empty_frame(tmp_path):
    runs = list_runs(str(tmp_path / "new.sqlite"))
    assert runs.empty and list(runs.columns) == RUN_LIST_COLUMNS


def test_get_run_decodes_json_and_lists_steps_streams_analysis(db):
    run = get_run(db, 1)
    assert run["protocol"] == {"temperatures_c": [30, 50]}
    assert run["sample"] == {"name": "NZSP-3", "thickness_um": 812.0}
    assert run["station"] == {"potentiostat": {"model": "SP-300"}}
    assert run["simulated"] is True and run["status"] == "completed"
    assert [(s["step_index"], s["name"], s["status"]) for s in run["steps"]] == \
        [(0, "EIS 30 C", "completed"), (1, "EIS 50 C", "completed")]
    assert run["steps"][1]["started_at"] == "2023-11-14T22:15:00+00:00"
    eis = run["streams"][0]
    assert eis["name"] == "eis_30c" and eis["n_points"] == 13 and eis["step_index"] == 0
    assert eis["columns"]["frequency_hz"] == {"unit": "Hz", "dtype": "float"}
    assert eis["metadata"] == {"setpoint_c": 30.0}
    assert [a["name"] for a in run["analysis"]] == ["eis", "eis", "arrhenius"]
    json.dumps(run)  # plain JSON-able data for the CLI's `show --json`


def test_list_streams_counts_points(db):
    streams = list_streams(db, 1)
    assert streams["name"].tolist() == ["eis_30c", "eis_50c"]
    assert streams["n_points"].tolist() == [13, 13]
    assert streams["units"].iloc[0]["z_imag_ohm"] == "Ohm"
    assert list_streams(db, 2).empty


def test_read_stream_returns_original_columns(db):
    frame = read_stream(db, 1, "eis_50c")
    assert list(frame.columns) == ["frequency_hz", "z_real_ohm", "z_imag_ohm", "temp", "range"]
    np.testing.assert_array_equal(frame["z_imag_ohm"].to_numpy(), -np.sqrt(FREQ))
    assert (frame["z_real_ohm"] == 500.0).all()
    assert frame.attrs["units"]["temp"] == "K"


def test_latest_analysis_returns_newest_result_or_none(db):
    assert latest_analysis(db, 1, "eis") == {"r_bulk_ohm": 500.0}
    assert latest_analysis(db, 1, "eis", step_index=0) == {"r_bulk_ohm": 1000.0}
    assert latest_analysis(db, 1, "arrhenius") == {"ea_ev": 0.31}
    assert latest_analysis(db, 1, "dcpol") is None


@pytest.mark.parametrize("call", [
    lambda db: get_run(db, 99),
    lambda db: read_stream(db, 99, "eis_30c"),
    lambda db: list_streams(db, 99),
    lambda db: latest_analysis(db, 99, "eis"),
    lambda db: export_run(db, 99, "unused"),
])
def test_missing_run_raises_run_not_found_naming_run_and_database(db, call):
    with pytest.raises(RunNotFound, match=r"no run with id 99 in database " + re.escape(describe(db))):
        call(db)


def test_missing_stream_names_the_available_ones(db):
    with pytest.raises(StreamNotFound, match=r"no stream 'eis_70c'.*\['eis_30c', 'eis_50c'\]"):
        read_stream(db, 1, "eis_70c")
    assert issubclass(StreamNotFound, LookupError)


def test_readers_accept_a_path_or_url_as_database(db):
    where = Path(db.url.database) if db.dialect.name == "sqlite" \
        else db.url.render_as_string(hide_password=False)
    assert get_run(where, 1)["protocol_name"] == "eis_arrhenius"


def test_export_writes_one_csv_per_stream_with_units_and_run_json(db, tmp_path):
    out = tmp_path / "export" / "run1"
    paths = export_run(db, 1, out)
    assert [p.name for p in paths] == ["eis_30c.csv", "eis_50c.csv", "run.json"]
    frame = pd.read_csv(out / "eis_30c.csv", index_col="seq")
    assert list(frame.columns) == ["frequency_hz", "z_real_ohm", "z_imag_ohm", "temp [K]",
                                   "range"]
    np.testing.assert_array_equal(frame["frequency_hz"].to_numpy(), FREQ)
    np.testing.assert_array_equal(frame["z_imag_ohm"].to_numpy(), -np.sqrt(FREQ))
    assert frame.index.tolist() == list(range(13))
    run = json.loads((out / "run.json").read_text())
    assert run["run_id"] == 1 and run["sample"]["thickness_um"] == 812.0
    assert run["analysis"][-1] == {**run["analysis"][-1], "name": "arrhenius",
                                   "result": {"ea_ev": 0.31}}
    assert run["streams"][1]["columns"]["temp"]["unit"] == "K"


def test_export_of_a_run_without_streams_writes_run_json_only(db, tmp_path):
    paths = export_run(db, 2, tmp_path)
    assert [p.name for p in paths] == ["run.json"]


@pytest.mark.parametrize("name, unit, header", [
    ("frequency_hz", "Hz", "frequency_hz"),
    ("sigma_s_per_cm", "S/cm", "sigma_s_per_cm"),
    ("temperature_c", "°C", "temperature_c"),
    ("count", "", "count"),
    ("temp", "K", "temp [K]"),
    ("z_real", "Ohm", "z_real [Ohm]"),
    ("chz", "Hz", "chz [Hz]"),
])
def test_header_with_unit(name, unit, header):
    assert header_with_unit(name, unit) == header
