"""Importing BioLogic files as runs, through the library and the command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.biologic_files import cycling_records, read_biologic
from storage.importer import ImportFileError, column_unit, import_files
from storage.readers import get_run, list_runs, read_stream

ROOT = Path(__file__).resolve().parent.parent.parent
DATA = ROOT / "tests" / "data" / "biologic"


def test_cycling_file_becomes_a_run_with_records_instrument_columns_and_analysis(tmp_path):
    db = f"sqlite:///{tmp_path / 'import.sqlite'}"
    mpt = DATA / "gcpl.issue_149.mpt"
    [run_id] = import_files(db, [mpt])
    run = get_run(db, run_id)
    assert run["status"] == "completed" and run["protocol_name"] == "imported GCPL"
    assert run["protocol"]["metadata"]["software"].startswith("EC-Lab for windows v11.50")
    assert run["protocol"]["imported_from"] == str(mpt.resolve())

    records = read_stream(db, run_id, "records")
    expected = cycling_records(read_biologic(mpt))
    assert list(records.columns) == list(expected.columns)
    assert np.allclose(records["dq_ah"], expected["dq_ah"], rtol=0, atol=0)
    assert records.attrs["units"]["current_a"] == "A"
    assert records["cycle"].tolist() == expected["cycle"].tolist()

    original = read_biologic(mpt).data
    kept = {}
    for stream in run["streams"]:
        if stream["name"].startswith("instrument_"):
            frame = read_stream(db, run_id, stream["name"])
            kept.update({name: frame[name].to_numpy() for name in frame.columns})
            units = frame.attrs["units"]
            if "Q charge/mA.h" in frame.columns:
                assert units["Q charge/mA.h"] == "mA.h"
    assert set(kept) == set(original.columns)
    assert np.array_equal(kept["Efficiency/%"], original["Efficiency/%"].to_numpy())

    [analysis] = run["analysis"]
    cycles = analysis["result"]["cycles"]
    assert [c["cycle"] for c in cycles] == [1, 2, 3, 4]
    assert cycles[0]["ce_pct"] == pytest.approx(99.9439, abs=1e-3)


def test_peis_file_stores_each_loop_as_a_numbered_spectrum(tmp_path):
    db = f"sqlite:///{tmp_path / 'import.sqlite'}"
    [run_id] = import_files(db, [DATA / "peis.issue_149.mpr"])
    eis = read_stream(db, run_id, "eis")
    assert eis["spectrum"].tolist() == [n for n in (1, 2, 3, 4) for _ in range(21)]
    assert (eis["z_imag_ohm"].iloc[:5] < 0).all()
    assert get_run(db, run_id)["analysis"] == []


def test_a_bad_file_is_refused_by_name_and_earlier_files_stay(tmp_path):
    db = f"sqlite:///{tmp_path / 'import.sqlite'}"
    bad = tmp_path / "landt.mpt"
    bad.write_text("Record,TestTime,Voltage,Current\n1,0,3.0,1.0\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="landt.mpt.*not a BioLogic file"):
        import_files(db, [DATA / "gcpl.issue_226.I.mpr", bad])
    assert len(list_runs(db)) == 1


@pytest.mark.parametrize("name, unit", [("time/s", "s"), ("Q charge/discharge/mA.h", "mA.h"),
                                        ("control/V/mA", "V/mA"), ("cycle number", ""),
                                        ("Re(Conductivity)/mS/cm", "mS/cm"), ("ox/red", "")])
def test_column_units(name, unit):
    assert column_unit(name) == unit


def cli(*args, check_exit=0):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == check_exit, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def test_cli_import_and_analyze_biologic_files(tmp_path):
    db = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    rows = json.loads(cli("import", str(DATA / "bcd.issue_241.mpr"), str(DATA / "peis.issue_149.mpt"),
                          "--db", db, "--json").stdout)
    assert [row["run_id"] for row in rows] == [1, 2]

    cycling = json.loads(cli("analyze", "cycling", str(DATA / "gcpl.pr_182.1.mpt"), "--mass-mg", "10",
                             "--area-cm2", "1.0", "--json").stdout)
    assert [c["cycle"] for c in cycling["cycles"]] == [0, 1, 2, 3, 4]
    assert cycling["cycles"][1]["ce_pct"] == pytest.approx(86.099854, abs=0.1)
    assert any("CE 105.0" in w for w in cycling["warnings"])

    eis = json.loads(cli("analyze", "eis", str(DATA / "peis.issue_149.mpr"), "--thickness-um", "1000",
                         "--diameter-mm", "10", "--json").stdout)
    assert [s["file"].rsplit("#", 1)[1] for s in eis["spectra"]] == ["1", "2", "3", "4"]


def test_cli_refuses_a_foreign_file_named_mpt(tmp_path):
    bad = tmp_path / "x.mpt"
    bad.write_text("time_s,voltage_v,current_a\n0,3,0.001\n", encoding="utf-8")
    proc = cli("analyze", "cycling", str(bad), "--mass-mg", "1", "--area-cm2", "1", check_exit=2)
    assert "not a BioLogic file" in proc.stderr
    proc = cli("import", str(bad), "--db", f"sqlite:///{tmp_path / 'x.sqlite'}", check_exit=2)
    assert "not a BioLogic file" in proc.stderr


def test_cli_reads_an_eclab_export_saved_under_another_name(tmp_path):
    renamed = tmp_path / "export.txt"
    renamed.write_bytes((DATA / "gcpl.issue_226.I.mpt").read_bytes())
    result = json.loads(cli("analyze", "cycling", str(renamed), "--mass-mg", "1", "--area-cm2", "1",
                            "--json").stdout)
    assert result["cycles"][0]["ce_pct"] == pytest.approx(98.139832, abs=0.1)
