"""Export formats other tools read: the per-cycle summary (CSV, xlsx), the Battery Data Format time
series with a round trip, Parquet for every stream, and the CLI's --format."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.cycling import summarize_cycles
from procedures.documents import DocumentStream, StreamWriter, new_uid
from storage.engine import make_engine
from storage.export import (BDF_COLUMNS, CYCLE_COLUMNS, EXPORT_FORMATS, ExportError, UnknownFormat, export,
                            read_bdf, read_parquet_stream)
from storage.readers import get_run, read_stream
from storage.writer import StorageWriter

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0
MASS_MG, AREA_CM2 = 12.5, 0.785
RECORD_UNITS = {"record": "", "cycle": "", "step": "", "step_type": ("", "str"), "test_time_s": "s",
                "step_time_s": "s", "voltage_v": "V", "current_a": "A"}


def cycling_record(n_cycles=3):
    """CC charge and CC discharge with rests; a different capacity and CE in every cycle; every step
    sampled at both ends, so Ah- and Wh-counting by the trapezoid rule is exact per step."""
    parts, start, step = [], 0.0, 0
    for cycle in range(1, n_cycles + 1):
        q_charge, ce = 1.0 - 0.05 * cycle, 0.80 + 0.06 * cycle
        for kind, seconds, current, v0, v1 in (("cc_charge", q_charge * 3600.0, 1e-3, 2.9, 3.4),
                                               ("rest", 600.0, 0.0, 3.35, 3.3),
                                               ("cc_discharge", ce * q_charge * 3600.0, -1e-3, 3.3, 2.0),
                                               ("rest", 600.0, 0.0, 2.4, 2.5)):
            step += 1
            t = np.linspace(0.0, seconds, 50)
            parts.append(pd.DataFrame({"cycle": cycle, "step": step, "step_type": kind, "test_time_s": start + t,
                                       "step_time_s": t, "voltage_v": v0 + (v1 - v0) * np.sqrt(t / seconds),
                                       "current_a": current}))
            start += seconds
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "record", np.arange(1, len(frame) + 1))
    return frame


@pytest.fixture
def db(db_url):
    """Run 1: a cycling run (record, chamber log, cycling analysis); run 2: an EIS-only run."""
    engine = make_engine(db_url)  # on each backend (conftest.py)
    writer = StorageWriter(engine, flush_rows=100)
    docs = DocumentStream()
    docs.subscribe(writer, critical=True)
    uid = new_uid()
    docs.emit("start", {"run_uid": uid, "time": T0, "protocol_name": "cccv_cycling", "protocol": {},
                        "sample": {"id": "NVP|01 half/cell"}, "station": {}, "simulated": True})
    docs.emit("step_start", {"run_uid": uid, "step_index": 0, "kind": "cycling", "name": "cycles", "params": {},
                             "time": T0})
    record = cycling_record()
    stream = StreamWriter(docs.emit, uid, "cycling", RECORD_UNITS, step_index=0,
                          metadata={"role": "cycling", "phase": "program", "temperature_c": 25.0})
    stream.write({c: (record[c].tolist() if c == "step_type" else record[c].to_numpy()) for c in RECORD_UNITS})
    chamber = StreamWriter(docs.emit, uid, "chamber", {"time_s": "s", "temperature_c": "°C"},
                           metadata={"role": "chamber_log"})
    chamber.write({"time_s": np.arange(0.0, 600.0, 60.0), "temperature_c": np.full(10, 25.0)})
    docs.emit("step_stop", {"run_uid": uid, "step_index": 0, "status": "completed", "time": T0 + 4e4,
                            "summary": {}})
    result = summarize_cycles(record.rename(columns={"test_time_s": "time_s"}), mass_mg=MASS_MG,
                              area_cm2=AREA_CM2)
    docs.emit("analysis", {"run_uid": uid, "name": "cycling", "step_index": None, "result": result})
    docs.emit("stop", {"run_uid": uid, "time": T0 + 4e4, "status": "completed", "reason": "", "traceback": None})
    other = new_uid()
    docs.emit("start", {"run_uid": other, "time": T0 + 5e4, "protocol_name": "eis", "protocol": {},
                        "sample": {}, "station": {}, "simulated": True})
    spectrum = StreamWriter(docs.emit, other, "peis", {"frequency_hz": "Hz", "z_real_ohm": "Ohm"},
                            metadata={"role": "eis_spectrum"})
    spectrum.write({"frequency_hz": np.logspace(5, 0, 6), "z_real_ohm": np.full(6, 100.0)})
    docs.emit("stop", {"run_uid": other, "time": T0 + 5e4, "status": "completed", "reason": "", "traceback": None})
    return engine


def half_cycle_integrals(record: pd.DataFrame, cycle: int, kind: str) -> tuple[float, float]:
    """(mAh, mWh) of one half cycle by the trapezoid rule, independent of the analysis code."""
    rows = record[(record["cycle"] == cycle) & (record["step_type"] == kind)]
    t, i, v = (rows[c].to_numpy() for c in ("test_time_s", "current_a", "voltage_v"))
    return abs(np.trapezoid(i, t)) / 3.6, abs(np.trapezoid(i * v, t)) / 3.6


def test_cycle_summary_csv_has_capacities_ce_energies_and_voltages_per_cycle(db, tmp_path):
    (path,) = export(db, 1, tmp_path, "cycles-csv")
    assert path.name == "cycles.csv"
    table = pd.read_csv(path)
    assert tuple(table.columns) == CYCLE_COLUMNS
    assert table["cycle"].tolist() == [1, 2, 3]
    record = cycling_record()
    for _, row in table.iterrows():
        charge_mah, charge_mwh = half_cycle_integrals(record, row["cycle"], "cc_charge")
        discharge_mah, discharge_mwh = half_cycle_integrals(record, row["cycle"], "cc_discharge")
        assert row["charge_mah"] == pytest.approx(charge_mah, rel=1e-9)
        assert row["discharge_mah"] == pytest.approx(discharge_mah, rel=1e-9)
        assert row["discharge_mah_per_g"] == pytest.approx(discharge_mah / (MASS_MG / 1000), rel=1e-9)
        assert row["charge_mah_per_cm2"] == pytest.approx(charge_mah / AREA_CM2, rel=1e-9)
        assert row["ce_pct"] == pytest.approx(80.0 + 6.0 * row["cycle"], rel=1e-9)
        assert row["charge_energy_mwh"] == pytest.approx(charge_mwh, rel=1e-9)
        assert row["discharge_energy_mwh"] == pytest.approx(discharge_mwh, rel=1e-9)
        assert row["energy_efficiency_pct"] == pytest.approx(discharge_mwh / charge_mwh * 100, rel=1e-9)
        assert row["avg_discharge_voltage_v"] == pytest.approx(discharge_mwh / discharge_mah, rel=1e-9)
        assert row["cv_charge_share_pct"] == 0.0


def test_cycle_summary_xlsx_holds_the_same_numbers_and_the_run(db, tmp_path):
    (csv_path,) = export(db, 1, tmp_path / "csv", "cycles-csv")
    (path,) = export(db, 1, tmp_path / "xlsx", "cycles-xlsx")
    sheets = pd.read_excel(path, sheet_name=None)
    assert list(sheets) == ["Cycle", "Run"]
    pd.testing.assert_frame_equal(sheets["Cycle"], pd.read_csv(csv_path), check_exact=False, rtol=1e-12,
                                  check_dtype=False)  # Excel keeps 0.0 as 0
    identity = dict(zip(sheets["Run"]["quantity"], sheets["Run"]["value"]))
    assert identity["run id"] == 1 and identity["protocol"] == "cccv_cycling"


def test_bdf_round_trip_gives_back_the_same_numbers_and_units(db, tmp_path):
    paths = export(db, 1, tmp_path, "bdf")
    data = [p for p in paths if p.name.endswith(".bdf.csv")]
    day = get_run(db, 1)["started_at"][:10].replace("-", "")
    assert [p.name for p in data] == [f"NVP_01_half_cell__{day}__run1_cycling.bdf.csv"]
    assert data[0].read_text(encoding="utf-8").splitlines()[0] == ",".join(BDF_COLUMNS)
    back = read_bdf(data[0])
    stored = read_stream(db, 1, "cycling")
    assert stored.attrs["units"]["test_time_s"] == "s" and stored.attrs["units"]["current_a"] == "A"
    np.testing.assert_array_equal(back["time_s"], stored["test_time_s"].to_numpy())
    np.testing.assert_array_equal(back["voltage_v"], stored["voltage_v"].to_numpy())
    np.testing.assert_array_equal(back["current_a"], stored["current_a"].to_numpy())
    np.testing.assert_array_equal(back["cycle"], stored["cycle"].to_numpy())
    # Step Count / 1 rises by one at every step change and nowhere else.
    changes = np.flatnonzero(np.diff(stored["step"].to_numpy()) != 0)
    np.testing.assert_array_equal(np.flatnonzero(np.diff(back["step"].to_numpy()) != 0), changes)
    assert back["step"].iloc[0] == 1 and np.all(np.diff(back["step"]) >= 0)
    # Charge positive, as BDF's current: the round trip gives the same capacities.
    round_trip = summarize_cycles(back, mass_mg=MASS_MG, area_cm2=AREA_CM2)
    stored_result = get_run(db, 1)["analysis"][0]["result"]
    assert [c["discharge_mah"] for c in round_trip["cycles"]] == \
        pytest.approx([c["discharge_mah"] for c in stored_result["cycles"]], rel=1e-12)
    metadata = json.loads(paths[1].read_text(encoding="utf-8"))
    assert metadata["current_sign"] == "positive on charge" and metadata["stream"] == "cycling"


def test_read_bdf_converts_known_units_and_names_what_is_missing(tmp_path):
    path = tmp_path / "other.bdf.csv"
    pd.DataFrame({"Test Time / h": [0.0, 0.5], "Voltage / mV": [3000.0, 3100.0],
                  "Current / mA": [1.0, 1.0]}).to_csv(path, index=False)
    back = read_bdf(path)
    assert back["time_s"].tolist() == [0.0, 1800.0]
    assert back["voltage_v"].tolist() == pytest.approx([3.0, 3.1])
    assert back["current_a"].tolist() == pytest.approx([1e-3, 1e-3])
    pd.DataFrame({"Test Time / s": [0.0], "Voltage / V": [3.0]}).to_csv(path, index=False)
    with pytest.raises(ExportError, match=r"other\.bdf\.csv: no 'Current / A' column"):
        read_bdf(path)
    pd.DataFrame({"Test Time / fortnight": [0.0], "Voltage / V": [3.0], "Current / A": [0.0]}).to_csv(path, index=False)
    with pytest.raises(ExportError, match="column 'Test Time / fortnight' has unit 'fortnight'"):
        read_bdf(path)
    pd.DataFrame({"Test Time / s": [0.0, "x"], "Voltage / V": [3.0, 3.0], "Current / A": [0.0, 0.0]}) \
        .to_csv(path, index=False)
    with pytest.raises(ExportError, match="'Test Time / s' is not a number at data row 2"):
        read_bdf(path)


def test_parquet_keeps_every_stream_with_its_units_and_metadata(db, tmp_path):
    import pyarrow.parquet as pq

    paths = export(db, 1, tmp_path, "parquet")
    assert [p.name for p in paths] == ["cycling.parquet", "chamber.parquet", "run.json"]
    for name in ("cycling", "chamber"):
        stored = read_stream(db, 1, name)
        back = read_parquet_stream(tmp_path / f"{name}.parquet")
        assert back.attrs["units"] == stored.attrs["units"]
        assert back.attrs["metadata"] == stored.attrs["metadata"]
        assert back.index.name == "seq" and back.index.tolist() == stored.index.tolist()
        for column in stored.columns:
            if stored[column].dtype == object:
                assert back[column].tolist() == stored[column].tolist()
            else:
                assert back[column].dtype == stored[column].dtype, column
                np.testing.assert_array_equal(back[column].to_numpy(), stored[column].to_numpy())
    schema = pq.read_schema(tmp_path / "chamber.parquet")
    assert schema.field("temperature_c").metadata[b"unit"] == "°C".encode()


def test_formats_without_their_data_or_unknown_are_refused_by_name(db, tmp_path):
    with pytest.raises(ExportError, match="run 2 has no cycling stream with data"):
        export(db, 2, tmp_path, "bdf")
    with pytest.raises(ExportError, match=r"run 2 has no cycling analysis with cycles \(its analyses: none\)"):
        export(db, 2, tmp_path, "cycles-csv")
    with pytest.raises(UnknownFormat, match="formats are " + ", ".join(EXPORT_FORMATS)):
        export(db, 1, tmp_path, "hdf5")
    assert [p.name for p in export(db, 2, tmp_path / "parquet", "parquet")] == ["peis.parquet", "run.json"]


def test_cli_export_format(db, tmp_path):
    url = db.url.render_as_string(hide_password=False)

    def run(*args):
        return subprocess.run([sys.executable, str(ROOT / "main.py"), "export", *args, "--db", url],
                              capture_output=True, text=True, cwd=ROOT, timeout=120)

    done = run("1", "--out", str(tmp_path / "a"), "--format", "cycles-xlsx")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "a" / "cycles.xlsx")
    default = run("1", "--out", str(tmp_path / "b"))
    assert default.returncode == 0 and default.stdout.split() == \
        [str(tmp_path / "b" / n) for n in ("cycling.csv", "chamber.csv", "run.json")]
    for args, message in ((("1", "--format", "hdf5"), "unknown export format 'hdf5'"),
                          (("2", "--format", "bdf"), "run 2 has no cycling stream with data")):
        refused = run(*args, "--out", str(tmp_path / "c"))
        assert refused.returncode == 2 and message in refused.stderr
        assert "Traceback" not in refused.stderr
