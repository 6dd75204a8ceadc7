"""The command line as a user runs it: JSON only on stdout, clear errors, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, check_exit=0):
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == check_exit, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('cli') / 'cli.sqlite'}"


@pytest.fixture(scope="module")
def conductivity(db, tmp_path_factory):
    proc = cli("run", "onbh_conductivity", "--simulate", "--db", db, "--json",
               "--report-dir", str(tmp_path_factory.mktemp("report")))
    return json.loads(proc.stdout), proc


def test_run_json_is_the_only_thing_on_stdout(conductivity):
    doc, proc = conductivity
    assert set(doc) >= {"run_id", "status", "analysis"}
    assert doc["status"] == "completed"
    spectra = doc["analysis"]["spectra"]
    assert len(spectra) == 7
    for s in spectra:
        assert set(s) >= {"file", "temperature_c", "model", "r_total_ohm", "r_bulk_ohm",
                          "sigma_total_s_per_cm", "sigma_bulk_s_per_cm", "kk_residual_pct"}
    total = doc["analysis"]["arrhenius"]["total"]
    assert set(total) >= {"ea_ev", "ea_stderr_ev", "prefactor_s_k_per_cm", "r2"}
    assert "run onbh_conductivity started" in proc.stderr   # progress went to stderr
    assert Path(doc["report"]).exists()


def test_runs_show_and_export(conductivity, db, tmp_path):
    doc, _ = conductivity
    runs = json.loads(cli("runs", "--db", db, "--json").stdout)
    assert runs[0] == {"run_id": doc["run_id"], "protocol": "onbh_conductivity",
                       "status": "completed", "started_at": runs[0]["started_at"]}
    assert runs[0]["started_at"].endswith("+00:00")
    shown = json.loads(cli("show", str(doc["run_id"]), "--db", db, "--json").stdout)
    assert shown["analysis"] == doc["analysis"]
    out = tmp_path / "export"
    cli("export", str(doc["run_id"]), "--db", db, "--out", str(out))
    eis = sorted(out.glob("*peis*.csv"))
    assert len(eis) == 7
    header = eis[0].read_text().splitlines()[0]
    assert "frequency_hz" in header and "z_imag_ohm" in header
    assert (out / "chamber.csv").read_text().splitlines()[0].startswith("seq,time_s")


def test_unknown_run_is_a_clear_error(db):
    proc = cli("show", "999", "--db", db, "--json", check_exit=2)
    assert proc.stdout == ""
    assert "no run with id 999" in proc.stderr


def test_bad_protocol_is_refused_before_anything_runs(tmp_path, db):
    bad = tmp_path / "bad.toml"
    bad.write_text('[protocol]\nname = "x"\n[sample]\nid = "s"\nthickness_um = 1000\n'
                   'diameter_mm = 10\n[[steps]]\nkind = "temperature_eis_series"\n'
                   'temperatures_c = [20, 200]\nsoak_s = -5\n')
    proc = cli("run", str(bad), "--simulate", "--db", db, check_exit=2)
    assert "steps[0].temperatures_c[1]: 200" in proc.stderr
    assert "steps[0].soak_s" in proc.stderr


def write_spectrum(path, r_ohm, temperature_c=None):
    f = np.logspace(np.log10(7e6), 0, 61)
    w = 2 * np.pi * f
    z = r_ohm + 1e-7 * 1j * w + 1 / (2e-6 * (1j * w) ** 0.88)
    cols = [f, z.real, z.imag] + ([np.full(f.size, temperature_c)] if temperature_c is not None else [])
    header = "frequency_hz,z_real_ohm,z_imag_ohm" + (",temperature_c" if temperature_c is not None else "")
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=header, comments="")


def test_analyze_eis_json_with_null_for_unknowns(tmp_path):
    one = tmp_path / "one.csv"
    write_spectrum(one, 27.68)
    doc = json.loads(cli("analyze", "eis", str(one), "--thickness-um", "1000", "--diameter-mm", "10",
                         "--json").stdout)
    spectrum = doc["spectra"][0]
    assert spectrum["file"] == str(one)
    assert spectrum["temperature_c"] is None
    assert doc["arrhenius"] is None
    assert spectrum["sigma_total_s_per_cm"] == pytest.approx(4.6e-3, rel=0.03)


def test_analyze_eis_arrhenius_from_files(tmp_path):
    files = []
    for t, r in ((-10.0, 424.4), (30.0, 27.68)):
        path = tmp_path / f"t{t}.csv"
        write_spectrum(path, r, t)
        files.append(str(path))
    doc = json.loads(cli("analyze", "eis", *files, "--thickness-um", "1000", "--diameter-mm", "10",
                         "--json").stdout)
    assert doc["arrhenius"]["total"]["ea_ev"] == pytest.approx(0.4935, abs=0.01)


def test_malformed_csv_names_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("frequency_hz,z_real_ohm,z_imag_ohm\n1000,10,-1\n100,abc,-2\n")
    proc = cli("analyze", "eis", str(bad), "--thickness-um", "1000", "--diameter-mm", "10",
               check_exit=2)
    assert str(bad) in proc.stderr and "3" in proc.stderr and "z_real_ohm" in proc.stderr
