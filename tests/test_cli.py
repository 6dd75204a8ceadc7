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
                       "status": "completed", "started_at": runs[0]["started_at"],
                       "reason": runs[0]["reason"], "n_points": runs[0]["n_points"]}
    assert runs[0]["started_at"].endswith("+00:00")
    shown = json.loads(cli("show", str(doc["run_id"]), "--db", db, "--json").stdout)
    assert shown["analysis"] == doc["analysis"]
    assert shown["reason"] == runs[0]["reason"] and isinstance(shown["reason"], str)
    assert len(shown["streams"]) == 8  # 7 spectra and the chamber log
    assert shown["n_points"] == runs[0]["n_points"] == sum(s["n_points"] for s in shown["streams"])
    assert all(s["n_points"] > 0 for s in shown["streams"])
    text = cli("show", str(doc["run_id"]), "--db", db).stdout
    chamber = next(s for s in shown["streams"] if s["name"] == "chamber")
    assert f"stream chamber: {chamber['n_points']} points" in text
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


def test_analyze_lsv_and_dcpol_from_csv(tmp_path):
    v = np.linspace(1.3, 5.0, 4000)
    t = (v - 1.3) / 50e-6
    i = 0.785 * (0.5e-6 + 1e-5 * 10 ** ((v - 2.2) / 0.15))
    lsv = tmp_path / "lsv.csv"
    np.savetxt(lsv, np.column_stack([t, v, np.minimum(i, 5e-3)]), delimiter=",",
               header="time_s,voltage_v,current_a", comments="")
    doc = json.loads(cli("analyze", "lsv", str(lsv), "--area-cm2", "0.785", "--json").stdout)
    assert list(doc)[:4] == ["onset_threshold_v", "onset_tangent_v", "threshold_a_per_cm2", "direction"]
    assert doc["direction"] == "oxidation"
    assert doc["onset_threshold_v"] == pytest.approx(2.2, abs=0.05)

    rows = []
    for k, volts in enumerate((0.1, 0.2, 0.3, 0.4)):
        ts = np.arange(0.0, 6 * 3600, 10.0)
        amps = volts * 7.854e-8 * (1 + 5 * np.exp(-ts / 1200)) + 2e-11
        rows.append(np.column_stack([ts + k * 6 * 3600, np.full(ts.size, volts), amps]))
    dc = tmp_path / "dc.csv"
    np.savetxt(dc, np.vstack(rows), delimiter=",", header="time_s,voltage_v,current_a", comments="")
    doc = json.loads(cli("analyze", "dcpol", str(dc), "--thickness-um", "1000", "--diameter-mm", "10",
                         "--json").stdout)
    assert [s["converged"] for s in doc["steps"]] == [True] * 4
    assert doc["sigma_e_s_per_cm"] == pytest.approx(1e-8, rel=0.02)


def test_analyze_cycling_csv_with_a_discharge_before_the_first_charge(tmp_path):
    # 2 h discharge at 1 mA, then two cycles of 3 h charge / 2.7 h discharge at 1 mA.
    segments = [(-1e-3, 7200.0), (1e-3, 10800.0), (-1e-3, 9720.0), (1e-3, 10800.0), (-1e-3, 9720.0)]
    t0, rows = 0.0, []
    for current, duration in segments:
        ts = np.arange(0.0, duration + 1e-9, 60.0)
        volts = 3.0 + 0.3 * np.sign(current) * ts / duration
        rows.append(np.column_stack([t0 + ts, volts, np.full(ts.size, current)]))
        t0 += duration + 60.0
    path = tmp_path / "cycles.csv"
    np.savetxt(path, np.vstack(rows), delimiter=",", header="time_s,voltage_v,current_a", comments="")
    doc = json.loads(cli("analyze", "cycling", str(path), "--mass-mg", "35", "--area-cm2", "0.785",
                         "--json").stdout)
    first = doc["cycles"][0]
    assert first["cycle"] == 0 and first["charge_mah"] is None and first["ce_pct"] is None
    assert first["discharge_mah"] == pytest.approx(2.0, rel=0.01)
    assert doc["ice_pct"] == pytest.approx(90.0, rel=0.01)
    assert doc["reference_cycle"] == 1


def test_a_station_that_does_not_answer_is_an_error_with_exit_2_and_no_run(tmp_path):
    from storage.readers import list_runs
    station = tmp_path / "lab.toml"
    station.write_text(f"""[station]
simulate = false
[chamber]
address = "ASRL/dev/ttyCELLBENCH-NO-SUCH-PORT::INSTR"
[potentiostat]
dll_path = "{tmp_path / 'no' / 'EClib64.dll'}"
""", encoding="utf-8")
    db = tmp_path / "u.sqlite"
    proc = cli("run", "onbh_conductivity", "--station", str(station), "--db", str(db), check_exit=2)
    assert "error: the station's instruments did not answer" in proc.stderr
    assert "chamber:" in proc.stderr and "potentiostat:" in proc.stderr
    assert list_runs(f"sqlite:///{db}").empty


def test_ctrl_c_where_a_command_has_no_stop_of_its_own_is_one_line_and_exit_130(monkeypatch, capsys):
    import main as cli

    def interrupted(args):
        raise KeyboardInterrupt  # as while the command still loads its modules

    monkeypatch.setattr(cli, "cmd_runs", interrupted)
    assert cli.main(["runs"]) == 130
    assert capsys.readouterr().err == "interrupted (Ctrl+C)\n"
