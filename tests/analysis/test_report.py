"""The run report: synthetic runs of each analysis kind rendered to Markdown with PNG figures."""

import math
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from analysis import figures, figures_eis
from analysis.cold_discharge import cold_discharge_table
from analysis.cycling import summarize_cycles
from analysis.dcpol import analyze_dcpol
from analysis.lsv import analyze_lsv
from analysis.report import duration, number, render_report, with_error

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AREA_CM2 = 0.5  # cycling electrode area used by the synthetic cells


# --------------------------------------------------------------------------- run and data builders


def make_run(protocol_name, analysis=(), streams=(), status="completed", reason="", steps=None,
             sample=None, simulated=True):
    """A dict shaped like storage.readers.get_run's."""
    return {
        "run_id": 7, "uid": "abc123", "protocol_name": protocol_name,
        "protocol": {"protocol": {"name": protocol_name, "description": f"{protocol_name} test run"}},
        "sample": sample if sample is not None else
        {"id": "oNBH-Q-01", "batch": "o-NBH-Q", "thickness_um": 1000.0, "diameter_mm": 10.0, "notes": ""},
        "station": {"config": {"station": {"name": "test bench"},
                               "chamber": {"driver": "espec", "transport": "serial", "address": "COM3"},
                               "potentiostat": {"driver": "biologic", "model": "SP-200", "board": "premium",
                                                "channel": 1},
                               "cycler": {"driver": "landt", "channel": 2}},
                    "simulated": simulated, "identities": {"chamber": "SU-262 ROM 1.2"}},
        "simulated": simulated, "status": status, "reason": reason, "traceback": None,
        "started_at": "2025-03-01T10:00:00+00:00", "ended_at": "2025-03-01T13:30:00+00:00",
        "steps": steps if steps is not None else [
            {"step_index": 0, "kind": "chamber", "name": "to 30 °C", "params": {}, "status": "completed",
             "started_at": "2025-03-01T10:00:00+00:00", "ended_at": "2025-03-01T11:05:00+00:00",
             "summary": {"temperature_c": 30.02}}],
        "streams": [{"name": name, "step_index": step, "metadata": {"role": role}, "columns": {},
                     "n_points": None} for name, role, step in streams],
        "analysis": [{"name": name, "step_index": step, "result": result} for name, step, result in analysis],
    }


def chamber_frame(hours=3.5, interval_s=10.0):
    time_s = np.arange(0.0, hours * 3600, interval_s)
    setpoint = np.where(time_s < 3600, 30.0, -10.0)
    temperature = setpoint + 20 * np.exp(-(time_s % 3600) / 400) * np.where(time_s < 3600, 0, 1)
    temperature[5] = np.nan  # one failed reading
    return pd.DataFrame({"time_s": time_s, "temperature_c": temperature, "setpoint_c": setpoint})


def spectrum_frame(r_ohm, n=41):
    """R ‖ CPE plus a blocking-electrode CPE: a depressed arc and a spike."""
    frequency = np.logspace(6, 0, n)
    omega = 2 * np.pi * frequency
    z = r_ohm / (1 + r_ohm * 1e-9 * (1j * omega) ** 0.9) + 1 / (1e-6 * (1j * omega) ** 0.8)
    return pd.DataFrame({"frequency_hz": frequency, "z_real_ohm": z.real, "z_imag_ohm": z.imag})


def lsv_record(area_cm2):
    voltage = np.arange(2.0, 4.5, 0.001)
    time_s = (voltage - voltage[0]) / 50e-6
    faradaic = 1e-7 * np.exp((voltage - 2.2) / 0.06)
    density = 0.2e-6 + faradaic / (1 + faradaic / 500e-6)  # levels off at 500 µA/cm²
    return pd.DataFrame({"time_s": time_s, "ewe_v": voltage, "i_a": density * area_cm2})


def dcpol_record(conductance_s=2e-8, steps_v=(0.1, 0.2, 0.3, 0.4), step_s=7200.0):
    parts, start = [], 0.0
    for level in steps_v:
        t = np.arange(0.0, step_s, 10.0)
        current = level * conductance_s + 5e-7 * level * np.exp(-t / 300.0)
        parts.append(pd.DataFrame({"time_s": start + t, "ewe_v": level, "i_a": current}))
        start += step_s
    return pd.concat(parts, ignore_index=True)


def _cv_mean_current_a(t, tau_s):
    """1 mA decaying with ``tau_s``, logged as cyclers log it: the mean since the previous record."""
    charge = -1e-3 * tau_s * np.exp(-t / tau_s)
    return np.concatenate(([1e-3], np.diff(charge) / np.diff(t)))


def cycling_record(n_cycles, points_per_half=200, charge_mah=1.0, ice=0.9, ce=0.99, fade=0.002):
    """CC charge (1 mA, Q = charge_mah), CV hold, rest, CC discharge, rest per cycle, canonical columns.

    Charge and discharge are sampled at both ends of every step, so Ah-counting is exact: the charge of
    cycle n is charge_mah·(1 - fade·(n-1)) + the CV charge, the discharge is CE × charge."""
    frames, t0, record = [], 0.0, 0
    cv_tau_s, cv_s = 600.0, 1200.0
    cv_mah = 1.0 * cv_tau_s * (1 - math.exp(-cv_s / cv_tau_s)) / 3600
    truth = []
    for cycle in range(1, n_cycles + 1):
        q_cc = charge_mah * (1 - fade * (cycle - 1))
        q_charge = q_cc + cv_mah
        q_discharge = (ice if cycle == 1 else ce) * q_charge
        truth.append((q_charge, q_discharge))
        cc_s = q_cc * 3600.0  # at 1 mA
        dis_s = q_discharge * 3600.0
        for step, (kind, seconds, current, v0, v1) in enumerate((
                ("CC_Chg", cc_s, lambda t: np.full(t.size, 1e-3), 2.9, 3.4),
                ("CV_Chg", cv_s, lambda t: _cv_mean_current_a(t, cv_tau_s), 3.4, 3.4),
                ("Rest", 600.0, lambda t: np.zeros(t.size), 3.35, 3.3),
                ("CC_DChg", dis_s, lambda t: np.full(t.size, -1e-3), 3.3, 2.0),
                ("Rest", 600.0, lambda t: np.zeros(t.size), 2.4, 2.5)), start=1):
            t = np.linspace(0.0, seconds, points_per_half if kind != "Rest" else 10)
            voltage = v0 + (v1 - v0) * np.sqrt(t / seconds)
            n = t.size
            frames.append(pd.DataFrame({
                "record": np.arange(record, record + n), "cycle": cycle, "step": step, "step_type": kind,
                "test_time_s": t0 + t, "step_time_s": t, "voltage_v": voltage, "current_a": current(t),
                "capacity_ah": 0.0, "energy_wh": 0.0}))
            record += n
            t0 += seconds  # the next step starts where this one ended: no charge in between
    return pd.concat(frames, ignore_index=True), truth


# --------------------------------------------------------------------------- checks


def linked_pngs(report_path: Path) -> list[Path]:
    text = report_path.read_text(encoding="utf-8")
    return [report_path.parent / link for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)]


def assert_valid_pngs(paths):
    assert paths, "the report links no figure"
    for path in paths:
        assert path.is_file(), f"{path} is linked but missing"
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 2000, f"{path} is not a real PNG"
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 300 and image.size[1] > 200


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("value, digits, text", [
    (4.6012, 3, "4.60"), (0.49123, 3, "0.491"), (1000.0, 3, "1000"), (123456.0, 3, "1.23 × 10⁵"),
    (1.234e-8, 4, "1.234 × 10⁻⁸"), (0.0, 3, "0"), (None, 3, "—"), (float("nan"), 3, "—"),
    (-2.5e-4, 3, "-2.50 × 10⁻⁴"),
])
def test_number(value, digits, text):
    assert number(value, digits) == text


@pytest.mark.parametrize("value, stderr, unit, text", [
    (4.6012, 0.0213, "mS/cm", "4.601 ± 0.021 mS/cm"),
    (0.49123, 0.01234, "eV", "0.491 ± 0.012 eV"),
    (1.234e-8, 3.1e-10, "S/cm", "(1.234 ± 0.031) × 10⁻⁸ S/cm"),
    (28.3, 4.0, "Ω", "28.3 ± 4.0 Ω"),
    (28.3, None, "Ω", "28.3 Ω"),
    (None, 0.1, "Ω", "—"),
    (2.2, 1e-9, "V", "2.20 ± <0.00001 V"),  # at most 3 decimals beyond the value's own
    (2.20003, 3e-5, "V", "2.20003 ± 0.00003 V"),
])
def test_with_error(value, stderr, unit, text):
    assert with_error(value, stderr, unit) == text


@pytest.mark.parametrize("seconds, text", [
    (42.0, "42 s"), (3600.0, "60 min"), (3 * 3600 + 300, "3 h 05 min"), (3 * 86400 + 7200, "3 d 02 h"),
    (None, "—"), (-1.0, "—"),
])
def test_duration(seconds, text):
    assert duration(seconds) == text


# --------------------------------------------------------------------------- analysis kinds


def eis_result():
    sigmas = {-10.0: (0.301e-3, 2.0e-6), 30.0: (4.6012e-3, 2.13e-5), 50.0: (14.02e-3, 1.1e-4)}
    spectra = [{"file": f"peis_{i}", "temperature_c": t, "model": "L-R-CPEel", "r_total_ohm": 0.1 / (s * 0.785),
                "r_total_stderr_ohm": 0.1 / (s * 0.785) * e / s, "sigma_total_s_per_cm": s,
                "sigma_total_stderr_s_per_cm": e, "r_bulk_ohm": None, "sigma_bulk_s_per_cm": None,
                "r_bulk_stderr_ohm": None, "sigma_bulk_stderr_s_per_cm": None, "kk_residual_pct": 0.12,
                "warnings": ["high-frequency intercept indistinguishable from zero: R_bulk unknown"] if i == 0 else []}
               for i, (t, (s, e)) in enumerate(sigmas.items())]
    prefactor = 4.6012e-3 * 303.15 * math.exp(0.49123 / (8.617333e-5 * 303.15))  # through σ(30 °C)
    arrhenius = {"total": {"ea_ev": 0.49123, "ea_stderr_ev": 0.01234, "prefactor_s_k_per_cm": prefactor, "r2": 0.99871,
                           "t_min_c": -10.0, "t_max_c": 50.0, "n_points": 3, "form": "sigma_T"}, "bulk": None}
    return {"spectra": spectra, "arrhenius": arrhenius}


def test_eis_report_shows_sigma_per_temperature_ea_and_figures(tmp_path):
    frames = {f"peis_{i}": spectrum_frame(r) for i, r in enumerate((2000.0, 150.0, 50.0))}
    frames["chamber"] = chamber_frame()
    streams = [(name, "eis_spectrum", i + 1) for i, name in enumerate(frames) if name != "chamber"]
    run = make_run("onbh_conductivity", analysis=[("eis", None, eis_result())],
                   streams=streams + [("chamber", "chamber_log", None)])
    path = render_report(run, frames, tmp_path / "out")
    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "out" / "report.md"
    assert text.startswith("# onbh_conductivity: run 7")
    assert "**completed**" in text
    for sigma in ("0.3010 ± 0.0020 mS/cm", "4.601 ± 0.021 mS/cm", "14.02 ± 0.11 mS/cm"):
        assert sigma in text
    for temperature in ("-10.0 °C", "30.0 °C", "50.0 °C"):
        assert temperature in text
    assert "0.491 ± 0.012 eV" in text and "| 0.9987 |" in text
    assert "R_bulk unknown" in text
    assert "simulated instruments" in text and "SP-200" in text and "SU-262 ROM 1.2" in text
    assert "1000 µm" in text and "0.7854 cm²" in text  # sample thickness and derived area
    pngs = linked_pngs(path)
    assert {p.name for p in pngs} >= {"eis_nyquist.png", "eis_arrhenius_total.png", "chamber_chamber.png"}
    assert_valid_pngs(pngs)
    assert "1 failed" in text  # the NaN chamber reading


def test_lsv_report_shows_onsets_and_threshold(tmp_path):
    area = math.pi * 1.0**2 / 4
    frame = lsv_record(area)
    result = analyze_lsv(frame["ewe_v"], frame["i_a"], area, 10e-6, frame["time_s"])
    assert 2.3 < result["onset_threshold_v"] < 2.6
    run = make_run("lsv_oxidation", analysis=[("lsv", 0, result)], streams=[("lsv_0", "lsv", 0)],
                   sample={"id": "LSV-01", "diameter_mm": 10.0, "loading_mg_per_cm2": 8.9})
    path = render_report(run, {"lsv_0": frame}, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert f"{result['onset_threshold_v']:.3f} V vs Na9Sn4" in text
    assert f"{result['onset_tangent_v']:.3f} V vs Na9Sn4" in text
    assert "10.0 µA/cm²" in text and "50.0 µV/s" in text and "oxidation" in text
    assert "8.900 mg/cm²" in text
    assert_valid_pngs(linked_pngs(path))
    assert "## Chamber temperature" in text and "no chamber log stored" in text


def test_dcpol_report_shows_steps_sigma_and_fit(tmp_path):
    frame = dcpol_record()
    result = analyze_dcpol(frame["time_s"], frame["ewe_v"], frame["i_a"], 1000.0, 10.0, window_s=1800.0,
                           sigma_ion_s_per_cm=4.6e-3)
    sigma_truth = 2e-8 * 0.1 / 0.7853981634
    assert result["sigma_e_s_per_cm"] == pytest.approx(sigma_truth, rel=1e-3)
    run = make_run("dc_polarization", analysis=[("dcpol", 0, result)],
                   streams=[("dcpol_0", "dc_polarization", 0)])
    path = render_report(run, {"dcpol_0": frame}, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert with_error(result["sigma_e_s_per_cm"], result["sigma_e_stderr_s_per_cm"], "S/cm") in text
    assert "2.55" in text and "S/cm" in text  # σe = 2.546e-9 S/cm
    assert number(result["t_e"]) in text and "slope" in text
    assert text.count("| yes |") == 4  # every step converged
    for level in ("0.100 V", "0.200 V", "0.300 V", "0.400 V"):
        assert level in text
    assert "8.000 nA" in text  # steady current of the 0.4 V step
    pngs = linked_pngs(path)
    assert {p.name for p in pngs} == {"dcpol_current_dcpol_0.png", "dcpol_iv.png"}
    assert_valid_pngs(pngs)


def test_cycling_report_shows_summary_and_per_cycle_table(tmp_path):
    frame, truth = cycling_record(5)
    result = summarize_cycles(frame, area_cm2=AREA_CM2)
    run = make_run("cccv_cycling", analysis=[("cycling", 1, result)], streams=[("cycling_1", "cycling", 1)])
    path = render_report(run, {"cycling_1": frame}, tmp_path)
    text = path.read_text(encoding="utf-8")
    first_charge, first_discharge = truth[0]
    assert f"{first_charge / AREA_CM2:.3f} mAh/cm² = {first_charge:.3f} mAh" in text
    assert f"{first_discharge / AREA_CM2:.3f} mAh/cm²" in text
    assert "90.00 %" in text  # ICE
    assert "99.00 %" in text  # mean CE of cycles 2-5
    retention = truth[-1][1] / truth[0][1] * 100
    assert f"capacity retention (vs cycle 1) | {retention:.1f} %" in text  # ~109 %: ICE 90 %
    assert "… " not in text  # 5 cycles: the whole table
    for cycle in range(1, 6):
        assert re.search(rf"^\| {cycle} \| {truth[cycle - 1][0] / AREA_CM2:.3f} \|", text, re.M)
    pngs = linked_pngs(path)
    assert {p.name for p in pngs} == {"cycling_capacity.png", "cycling_voltage.png", "cycling_dqdv.png"}
    assert_valid_pngs(pngs)
    assert "cycles 1, 2, 5" in text and "cycles 1 and 5" in text


def test_cycling_table_is_abbreviated_but_summary_uses_every_cycle(tmp_path):
    frame, truth = cycling_record(14, points_per_half=40)
    result = summarize_cycles(frame, area_cm2=AREA_CM2)
    run = make_run("cccv_cycling", analysis=[("cycling", None, result)], streams=[("cycling", "cycling", 1)])
    text = render_report(run, {"cycling": frame}, tmp_path).read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| \d", text, re.M)
    assert rows == ["1", "2", "3", "4", "5", "10", "11", "12", "13", "14"]
    assert "… 4 cycles …" in text and "(first 5 and last 5 of 14)" in text
    assert f"{truth[-1][1] / AREA_CM2:.3f} mAh/cm²" in text  # last complete discharge
    assert "cycles 1, 2, 10, 14" in text


def test_cold_discharge_report_table_and_curves(tmp_path):
    temperatures = [25.0, 0.0, -5.0, -10.0, -15.0]
    capacities = [1.55, 1.45, 1.40, 1.25, 0.75]  # mAh
    parts, start = [], 0.0
    for cycle, q in enumerate(capacities, start=1):  # a 20 °C recharge precedes every discharge
        for current, seconds, v0, v1 in ((1e-3, 1.6 * 3.6 * 1000, 2.9, 3.4), (-1e-3, q * 3600, 3.3, 1.5)):
            t = np.linspace(0.0, seconds, 150)
            parts.append(pd.DataFrame({"cycle": cycle, "test_time_s": start + t, "step_time_s": t,
                                       "voltage_v": np.linspace(v0, v1, t.size), "current_a": current,
                                       "step_type": "CC_Chg" if current > 0 else "CC_DChg",
                                       "step": len(parts)}))
            start += seconds + 1
    frame = pd.concat(parts, ignore_index=True)
    rows = cold_discharge_table([{"temperature_c": t, "discharge_mah": q}
                                 for t, q in zip(temperatures, capacities)], AREA_CM2)
    run = make_run("cold_discharge", analysis=[("cold_discharge", None, {"cold_discharge": rows,
                                                                          "reference_temperature_c": 25.0})],
                   streams=[("cycling", "cycling", 2)])
    path = render_report(run, {"cycling": frame}, tmp_path)
    text = path.read_text(encoding="utf-8")
    for q in capacities:
        assert f"{q / AREA_CM2:.2f} mAh/cm²" in text
    assert "| -15.0 °C | 1.50 mAh/cm² | 0.750 mAh | 48.4 % |" in text and "| 0.0 °C | 2.90 mAh/cm²" in text
    assert "reference temperature | 25.00 °C" in text
    assert "matched to the table rows by order" in text
    pngs = linked_pngs(path)
    assert {p.name for p in pngs} == {"cold_discharge_capacity.png", "cold_discharge_curves.png"}
    assert_valid_pngs(pngs)


def test_aborted_run_without_analysis_or_data_says_what_is_missing(tmp_path):
    steps = [{"step_index": 0, "kind": "temperature_eis_series", "name": "σ(T)", "params": {},
              "status": "aborted", "started_at": "2025-03-01T10:00:00+00:00", "ended_at": None, "summary": None}]
    run = make_run("onbh_conductivity", status="aborted", reason="aborted by the operator", steps=steps,
                   streams=[("peis_0", "eis_spectrum", 0)])
    run["station"] = None
    path = render_report(run, {"peis_0": spectrum_frame(100.0).iloc[:0]}, tmp_path / "aborted")
    text = path.read_text(encoding="utf-8")
    assert "**aborted**" in text and "aborted by the operator" in text
    assert "no analysis result stored (run aborted: aborted by the operator)" in text
    assert "no chamber log stored" in text and "no station snapshot stored" in text
    assert "## Missing" in text
    assert linked_pngs(path) == []


def test_aborted_run_with_some_spectra_plots_what_was_measured(tmp_path):
    run = make_run("onbh_conductivity", status="aborted", reason="chamber alarm",
                   streams=[("peis_0", "eis_spectrum", 1), ("peis_1", "eis_spectrum", 3)])
    for stream, setpoint in zip(run["streams"], (-10.0, 0.0)):
        stream["metadata"]["setpoint_c"] = setpoint
    frames = {"peis_0": spectrum_frame(2000.0), "peis_1": spectrum_frame(900.0)}
    path = render_report(run, frames, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "## Data without analysis" in text
    assert "eis_spectrum data (peis_0, peis_1) have no analysis result" in text
    assert [p.name for p in linked_pngs(path)] == ["eis_nyquist.png"]
    assert_valid_pngs(linked_pngs(path))


def test_result_without_its_data_still_renders(tmp_path):
    """An EIS result whose spectra were not handed over: tables, no Nyquist, and it says so."""
    run = make_run("onbh_conductivity", analysis=[("eis", None, eis_result()), ("custom", None, {"x_v": 1.5})])
    text = render_report(run, {}, tmp_path).read_text(encoding="utf-8")
    assert "4.601 ± 0.021 mS/cm" in text
    assert "no impedance spectra stored: no Nyquist plot" in text
    assert '"x_v": 1.5' in text  # an analysis without a section is shown as JSON
    assert_valid_pngs(linked_pngs(tmp_path / "report.md"))  # the Arrhenius plot needs no spectra


def test_100_cycle_run_renders_quickly(tmp_path):
    frame, _ = cycling_record(100, points_per_half=260)
    assert len(frame) == 80_000
    result = summarize_cycles(frame, area_cm2=AREA_CM2)
    run = make_run("cccv_cycling", analysis=[("cycling", 1, result)],
                   streams=[("cycling", "cycling", 1), ("chamber", "chamber_log", None)])
    frames = {"cycling": frame, "chamber": chamber_frame(hours=1300, interval_s=10.0)}
    render_report(make_run("warm-up"), {"chamber": chamber_frame(hours=1)}, tmp_path / "warm")  # loads fonts
    start = time.perf_counter()
    path = render_report(run, frames, tmp_path / "timed")
    elapsed = time.perf_counter() - start
    print(f"100-cycle report ({len(frame)} cycling rows, {len(frames['chamber'])} chamber rows): {elapsed:.2f} s")
    assert elapsed < 4.0  # target 2 s; margin for a loaded test machine
    assert_valid_pngs(linked_pngs(path))
    assert "(first 5 and last 5 of 100)" in path.read_text(encoding="utf-8")


def test_report_of_a_run_read_back_from_storage(tmp_path):
    """Documents -> StorageWriter -> SQLite -> get_run/read_stream -> report: the shapes storage returns."""
    from procedures.documents import StreamWriter
    from storage.readers import get_run, read_stream
    from storage.writer import StorageWriter

    db = tmp_path / "runs.sqlite"
    writer = StorageWriter(f"sqlite:///{db}")
    frame = dcpol_record()
    result = analyze_dcpol(frame["time_s"], frame["ewe_v"], frame["i_a"], 1000.0, 10.0, window_s=1800.0)
    writer("start", {"run_uid": "u1", "time": 1.74e9, "protocol_name": "dc_polarization",
                     "protocol": {"protocol": {"name": "dc_polarization"}},
                     "sample": {"id": "P-03", "thickness_um": 1000.0},
                     "station": {"config": {"potentiostat": {"driver": "biologic", "model": "SP-300"}},
                                 "simulated": False, "identities": {}}, "simulated": False})
    writer("step_start", {"run_uid": "u1", "step_index": 0, "kind": "dc_polarization", "name": "steps",
                          "params": {}, "time": 1.74e9})
    stream = StreamWriter(writer, "u1", "dcpol_0", {"time_s": "s", "ewe_v": "V", "i_a": "A"},
                          step_index=0, metadata={"role": "dc_polarization"})
    stream.write({column: frame[column].to_numpy() for column in ("time_s", "ewe_v", "i_a")})
    writer("step_stop", {"run_uid": "u1", "step_index": 0, "status": "completed", "time": 1.74e9 + 28800,
                         "summary": {"n_steps": 4}})
    writer("analysis", {"run_uid": "u1", "name": "dcpol", "step_index": 0, "result": result})
    writer("stop", {"run_uid": "u1", "time": 1.74e9 + 28800, "status": "completed", "reason": ""})
    writer.close()

    run = get_run(f"sqlite:///{db}", 1)
    frames = {s["name"]: read_stream(f"sqlite:///{db}", 1, s["name"]) for s in run["streams"]}
    path = render_report(run, frames, tmp_path / "report")
    text = path.read_text(encoding="utf-8")
    assert "real instruments" in text and "SP-300" in text and "8 h 00 min" in text
    assert with_error(result["sigma_e_s_per_cm"], result["sigma_e_stderr_s_per_cm"], "S/cm") in text
    assert "| dcpol_0 | dc_polarization | 0 | 2880 | time_s, ewe_v, i_a |" in text
    assert {p.name for p in linked_pngs(path)} == {"dcpol_current_dcpol_0.png", "dcpol_iv.png"}
    assert_valid_pngs(linked_pngs(path))


# --------------------------------------------------------------------------- report fidelity (issue 8)


class CapturedFigures:
    """Figures handed to a figure module's _save, kept for inspection (the module's _save clears a
    figure once printed, so this one prints it without clearing)."""

    def __init__(self, monkeypatch, module):
        self.figures = []

        def save(figure, path):
            self.figures.append(figure)
            figure.captured_axes = list(figure.axes)
            figure.savefig(path, format="png")
            return Path(path)

        monkeypatch.setattr(module, "_save", save)


def cold_cycling_frames():
    """A formation cycle at 25 °C (its own stream) and five cold discharges after 20 °C recharges
    (another stream, cycles numbered from 1 again, as the cycler numbers each program), each
    discharge a different capacity so that a curve shows which discharge it is."""
    def halves(cycles, start_s=0.0):
        parts = []
        for cycle, (charge_mah, discharge_mah, v_top) in enumerate(cycles, start=1):
            for current, q_mah, v0, v1, kind in ((1e-3, charge_mah, 2.9, 3.4, "cc_charge"),
                                                 (-1e-3, discharge_mah, v_top, 1.5, "cc_discharge")):
                seconds = q_mah * 3600.0
                t = np.linspace(0.0, seconds, 120)
                parts.append(pd.DataFrame({"cycle": cycle, "step": len(parts), "step_type": kind,
                                           "test_time_s": start_s + t, "step_time_s": t,
                                           "voltage_v": np.linspace(v0, v1, t.size), "current_a": current}))
                start_s += seconds
        return pd.concat(parts, ignore_index=True)

    formation = halves([(2.0, 1.6, 3.3)])
    cold_discharges = [1.55, 1.45, 1.40, 1.25, 0.75]
    recharges = [1.6] + cold_discharges[:-1]  # the recharge puts back what the last discharge took
    cold = halves([(q_charge, q, 3.3 - 0.2 * k) for k, (q_charge, q)
                   in enumerate(zip(recharges, cold_discharges))])
    return formation, cold, cold_discharges


COLD_TEMPERATURES = [25.0, 0.0, -5.0, -10.0, -15.0]


def cold_analysis(formation, cold, cell_eis=()):
    """The ColdDischargeAnalyzer's result for these streams, fed as the run's documents."""
    from types import SimpleNamespace

    from procedures.analyzers import ColdDischargeAnalyzer

    analyzer = ColdDischargeAnalyzer()
    analyzer.protocol = SimpleNamespace(cell=SimpleNamespace(active_mass_mg=None, area_cm2=AREA_CM2,
                                                             kind="full", cathode_loading_mg_per_cm2=None))
    for uid, (name, frame, metadata) in enumerate((
            ("cycling", formation, {"role": "cycling", "phase": "program", "temperature_c": 25.0}),
            ("cold", cold, {"role": "cycling", "phase": "cold_discharge",
                            "temperatures_c": COLD_TEMPERATURES}))):
        analyzer.collector("descriptor", {"metadata": metadata, "stream": name, "step_index": uid,
                                          "descriptor_uid": str(uid)})
        analyzer.collector("event_page", {"descriptor_uid": str(uid),
                                          "data": {c: frame[c].to_numpy() for c in frame.columns}})
    result = analyzer.compute()
    result["cell_eis"] = list(cell_eis)
    return result


def cell_spectrum(r_ohmic, r_pol, n=50):
    frequency = np.logspace(5, -1, n)
    omega = 2 * np.pi * frequency
    z = r_ohmic + r_pol / (1 + r_pol * 1e-5 * (1j * omega) ** 0.9) + 1 / (0.05 * (1j * omega) ** 0.5)
    return pd.DataFrame({"frequency_hz": frequency, "z_real_ohm": z.real, "z_imag_ohm": z.imag})


def cold_run(result):
    streams = [("cycling", "cycling", 0), ("cold", "cycling", 1)]
    streams += [(e["stream"], "cell_eis", 1) for e in result["cell_eis"]]
    return make_run("cold_discharge", analysis=[("cold_discharge", None, result)], streams=streams)


def test_cold_rows_name_their_own_discharge_and_ce_retention_stay_within_one_temperature():
    formation, cold, capacities = cold_cycling_frames()
    result = cold_analysis(formation, cold)
    rows = result["cold_discharge"]
    assert [r["temperature_c"] for r in rows] == COLD_TEMPERATURES
    assert [(r["stream"], r["stream_cycle"], r["cycle"]) for r in rows] == \
        [("cold", k, k + 1) for k in range(1, 6)]
    assert [r["discharge_mah"] for r in rows] == pytest.approx(capacities, rel=1e-3)
    assert rows[-1]["ce_pct"] == pytest.approx(0.75 / 1.25 * 100, rel=1e-3)
    groups = {g["temperature_c"]: g for g in result["per_temperature"]}
    assert groups[25.0]["cycles"] == [1, 2]  # formation and the 25 °C cold discharge
    assert groups[25.0]["retention_pct"] == pytest.approx(1.55 / 1.6 * 100, rel=1e-3)
    assert groups[25.0]["mean_ce_pct"] == pytest.approx(1.55 / 1.6 * 100, rel=1e-3)  # cycle 2 only
    assert groups[-15.0]["cycles"] == [6] and groups[-15.0]["retention_pct"] is None
    # The run-wide numbers would average over temperatures: withheld, and said why.
    assert result["mean_ce_pct"] is None and result["retention_pct"] is None
    assert any("mix discharge temperatures" in w for w in result["warnings"])


def test_cold_report_curves_are_labelled_by_the_temperature_they_were_measured_at(tmp_path, monkeypatch):
    from analysis import report as report_module

    formation, cold, capacities = cold_cycling_frames()
    result = cold_analysis(formation, cold)
    frames = {"cycling": formation, "cold": cold}
    context = report_module._Report(cold_run(result), frames, tmp_path)
    rows = report_module.Fields(result, "cold").entries("cold_discharge")
    curves, unit = report_module._cold_discharge_curves(context, rows)
    assert unit == "mAh/cm²"
    assert [t for t, _, _ in curves] == COLD_TEMPERATURES  # −15 °C included
    for (temperature, capacity, _), q in zip(curves, capacities):
        assert capacity[-1] == pytest.approx(q / AREA_CM2, rel=1e-3), f"curve labelled {temperature} °C"
    captured = CapturedFigures(monkeypatch, figures)
    text = render_report(cold_run(result), frames, tmp_path / "report").read_text(encoding="utf-8")
    legend = [t.get_text() for t in captured.figures[1].captured_axes[0].get_legend().get_texts()]
    assert legend == ["25.0 °C", "0.0 °C", "-5.0 °C", "-10.0 °C", "-15.0 °C"]
    lines = captured.figures[1].captured_axes[0].get_lines()
    assert [line.get_xdata()[-1] for line in lines] == pytest.approx([q / AREA_CM2 for q in capacities], rel=1e-3)
    assert "discharge curves found for" not in text
    assert "### Cycles at the same temperature" in text
    assert "| 25.0 °C | 1, 2 | 96.88 % | 96.9 % |" in text
    assert "mean ce" not in text and "retention |" not in text
    assert "mix discharge temperatures" in text


def test_cold_report_plots_the_cell_eis_at_each_temperature_with_resistances_marked(tmp_path, monkeypatch):
    formation, cold, _ = cold_cycling_frames()
    resistances = {25.0: (20.0, 200.0), 0.0: (110.0, 870.0), -15.0: (360.0, 2400.0)}
    eis = [{"stream": f"eis_cell_{i}", "temperature_c": t, "r_ohmic_ohm": ro, "r_polarization_ohm": rp,
            "r_total_ohm": ro + rp} for i, (t, (ro, rp)) in enumerate(resistances.items())]
    result = cold_analysis(formation, cold, eis)
    frames = {"cycling": formation, "cold": cold}
    frames.update({e["stream"]: cell_spectrum(e["r_ohmic_ohm"], e["r_polarization_ohm"]) for e in eis})
    captured = CapturedFigures(monkeypatch, figures_eis)
    path = render_report(cold_run(result), frames, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "cell_eis_nyquist.png" in {p.name for p in linked_pngs(path)}
    assert_valid_pngs(linked_pngs(path))
    assert "| -15.0 °C | 1.50 mAh/cm² | 0.750 mAh |" in text and "| 360 Ω | 2400 Ω |" in text
    (figure,) = captured.figures
    panels = figure.captured_axes
    assert len(panels) == 3
    for axes, (temperature, (ohmic, polarization)) in zip(panels, resistances.items()):
        assert f"{temperature:g} °C" in axes.get_title()
        marked = sorted(line.get_xdata()[0] for line in axes.get_lines() if line.get_linestyle() == "--")
        assert marked == pytest.approx([ohmic, ohmic + polarization])
        assert any(f"R_pol {polarization:.4g} Ω" == t.get_text() for t in axes.texts)


def test_nyquist_has_a_panel_zoomed_on_each_spectrum_where_r_total_is_read(tmp_path, monkeypatch):
    r_totals = {-10.0: 2000.0, 30.0: 150.0, 50.0: 50.0}
    items = []
    for temperature, r_total in r_totals.items():
        frame = spectrum_frame(r_total)
        items.append({"label": f"{temperature:g}", "temperature_c": temperature, "r_total_ohm": r_total,
                      **{c: frame[c].to_numpy() for c in frame.columns}})
    captured = CapturedFigures(monkeypatch, figures_eis)
    figures_eis.nyquist_overlay(items, tmp_path / "nyquist.png")
    (figure,) = captured.figures
    panels = [a for a in figure.captured_axes if a.get_label() != "<colorbar>"]
    overview, zooms = panels[0], panels[1:]
    assert len(zooms) == 3
    assert overview.get_xlim()[1] >= max(r_totals.values())
    for axes, item, r_total in zip(zooms, items, r_totals.values()):
        low, high = axes.get_xlim()
        assert low <= item["z_real_ohm"].min()  # from the highest frequency measured
        # The spike rises at R_total; the zoom shows its foot, not how far it climbs.
        assert low < r_total < high < 1.7 * r_total
        marked = [line.get_xdata()[0] for line in axes.get_lines() if line.get_linestyle() == "--"]
        assert marked == pytest.approx([r_total])
    # The warmest spectrum's arc is 40× smaller than the coldest's: in the overview it is a dot,
    # in its own panel it fills the frame.
    assert zooms[2].get_xlim()[1] - zooms[2].get_xlim()[0] < 0.05 * (overview.get_xlim()[1] - overview.get_xlim()[0])


def symmetric_record(n_cycles=12, half_s=3600.0, growth_v=0.0005):
    parts, start, step = [], 0.0, 0
    for cycle in range(1, n_cycles + 1):
        for sign in (1, -1):
            t = np.linspace(0.0, half_s, 60)
            level = 0.018 + growth_v * (cycle - 1)
            voltage = sign * level * (1 - 0.3 * np.exp(-t / 300.0))
            parts.append(pd.DataFrame({"cycle": cycle, "step": step, "test_time_s": start + t,
                                       "voltage_v": voltage, "current_a": sign * 1e-4}))
            start, step = start + half_s, step + 1
    return pd.concat(parts, ignore_index=True)


def test_symmetric_report_is_a_table_and_a_figure_not_json(tmp_path, monkeypatch):
    from analysis.symmetric import symmetric_overpotential

    frame = symmetric_record()
    result = symmetric_overpotential(frame)
    run = make_run("symmetric_na9sn4", analysis=[("symmetric", 0, result)], streams=[("cycling", "cycling", 0)])
    captured = CapturedFigures(monkeypatch, figures)
    path = render_report(run, {"cycling": frame}, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "```json" not in text and "## Symmetric cell (step 0)" in text
    first, last = result["cycles"][0], result["cycles"][-1]
    assert f"first mean overpotential (cycle 1) | {first['overpotential_mean_v'] * 1e3:.2f} mV" in text
    assert f"last mean overpotential (cycle 12) | {last['overpotential_mean_v'] * 1e3:.2f} mV" in text
    assert "(first 5 and last 5 of 12)" in text
    assert {p.name for p in linked_pngs(path)} == {"symmetric_overpotential.png", "symmetric_voltage.png"}
    assert_valid_pngs(linked_pngs(path))
    assert "have no analysis result" not in text  # the cycling stream is the symmetric result's data
    overpotential = captured.figures[0].captured_axes[0]
    mean_line = [line for line in overpotential.get_lines() if line.get_label() == "mean"][0]
    assert mean_line.get_ydata() == pytest.approx([c["overpotential_mean_v"] * 1e3 for c in result["cycles"]])
    # The voltage trace breaks at every half cycle instead of drawing the reversal as a line.
    voltage_panels = captured.figures[1].captured_axes
    for axes in voltage_panels:
        y = axes.get_lines()[0].get_ydata()
        assert np.isnan(y).sum() == 3  # two cycles: four halves, three breaks
        for piece in np.split(y, np.flatnonzero(np.isnan(y))):
            piece = piece[np.isfinite(piece)]
            assert np.all(np.sign(piece) == np.sign(piece[0]))  # no line crosses a reversal


def test_dcpol_lines_end_within_their_own_step(tmp_path, monkeypatch):
    """The instrument logs a step's last sample and the next step's first at the same instant; the
    next step's charging spike must not be drawn as the end of this step."""
    parts, start = [], 0.0
    for index, level in enumerate((0.1, 0.2, 0.3)):
        t = np.arange(0.0, 7200.0 + 1, 10.0)
        current = level * 2e-8 + 5e-7 * level * np.exp(-t / 300.0)
        current[0] = 2e-3  # the charging spike at the step's first sample
        parts.append(pd.DataFrame({"time_s": start + t, "ewe_v": level, "i_a": current,
                                   "setpoint_v": level, "step": index}))
        start += t[-1]  # the next step's first sample shares this step's last time
    frame = pd.concat(parts, ignore_index=True)
    result = analyze_dcpol(frame["time_s"], frame["setpoint_v"], frame["i_a"], 1000.0, 10.0, window_s=1800.0,
                           step=frame["step"])
    captured = CapturedFigures(monkeypatch, figures)
    figures.dcpol_current_figure(frame, result["steps"], tmp_path / "dcpol.png")
    axes = captured.figures[0].captured_axes[0]
    lines = [line for line in axes.get_lines() if line.get_label().endswith(" V")]
    assert len(lines) == 3
    for line, step in zip(lines, result["steps"]):
        tail = line.get_ydata()[-20:] * 1e-9  # nA → A
        assert tail.max() < 1.5 * step["steady_current_a"], line.get_label()
    # Without the analysis the whole record is one line, broken at each step boundary.
    captured.figures.clear()
    figures.dcpol_current_figure(frame, [], tmp_path / "record.png")
    record = captured.figures[0].captured_axes[0].get_lines()[0].get_ydata()
    assert np.isnan(record).sum() == 2


def test_broken_line_puts_a_gap_at_each_label_change():
    x = np.arange(6.0)
    t, y = figures.broken_line(x, x * 10, np.array([0, 0, 1, 1, 1, 2]))
    assert np.isnan(t).sum() == 2 and np.flatnonzero(np.isnan(y)).tolist() == [2, 6]
    t, _ = figures.broken_line(x, x, np.array([0, 0, 1, 1, 1, 2]), keep=np.array([0, 1, 3, 4]))
    assert np.flatnonzero(np.isnan(t)).tolist() == [2]  # only kept samples on both sides count


def test_a_missing_result_field_fails_loudly_but_an_unknown_value_prints_a_dash(tmp_path):
    from analysis.report import ReportFieldError

    result = eis_result()
    result["spectra"][1]["sigma_total_s_per_cm"] = None  # genuinely unknown
    text = render_report(make_run("onbh_conductivity", analysis=[("eis", None, result)]), {}, tmp_path / "a") \
        .read_text(encoding="utf-8")
    assert re.search(r"^\| peis_1 \| 30\.0 °C \| L-R-CPEel \| [^|]+ \| — \|", text, re.M)
    del result["spectra"][1]["r_total_ohm"]  # a renamed field: not an unknown value
    with pytest.raises(ReportFieldError, match=r"analysis 'eis' spectra\[1\] has no field 'r_total_ohm'") as error:
        render_report(make_run("onbh_conductivity", analysis=[("eis", None, result)]), {}, tmp_path / "b")
    assert isinstance(error.value, KeyError)
    assert str(error.value) == "analysis 'eis' spectra[1] has no field 'r_total_ohm'"

    cycling = summarize_cycles(cycling_record(3)[0], area_cm2=AREA_CM2)
    del cycling["mean_ce_pct"]
    with pytest.raises(ReportFieldError, match="analysis 'cycling' of step 1 has no field 'mean_ce_pct'"):
        render_report(make_run("c", analysis=[("cycling", 1, cycling)]), {}, tmp_path / "c")
    frame = dcpol_record()
    dcpol = analyze_dcpol(frame["time_s"], frame["ewe_v"], frame["i_a"], 1000.0, 10.0, window_s=1800.0)
    del dcpol["steps"][2]["drift_per_h"]
    with pytest.raises(ReportFieldError, match=r"steps\[2\] has no field 'drift_per_h'"):
        render_report(make_run("d", analysis=[("dcpol", 0, dcpol)]), {}, tmp_path / "d")


def test_text_from_files_is_escaped_not_rendered(tmp_path):
    run = make_run("cold <b>run</b>", sample={"id": "S-1", "notes": "pressed | 2 t & <script>x()</script>",
                                             "diameter_mm": 10.0})
    run["protocol"]["protocol"]["description"] = "# Heading? *bold* [click](http://evil) <img src=x onerror=y>"
    run["reason"] = "`code` and <!-- comment -->"
    run["steps"][0]["name"] = "to <i>30</i> °C"
    text = render_report(run, {}, tmp_path).read_text(encoding="utf-8")
    for raw in ("<b>", "<script>", "<img", "<!--", "<i>", "](http://evil)", "*bold*"):
        assert not re.search(r"(?<!\\)" + re.escape(raw), text), raw
    assert "\\# Heading? \\*bold\\* \\[click\\](http://evil) \\<img src=x onerror=y\\>" in text
    assert "pressed \\| 2 t &amp; \\<script\\>x()\\</script\\>" in text
    notes = next(line for line in text.splitlines() if line.startswith("| notes |"))
    assert len(re.findall(r"(?<!\\)\|", notes)) == 3  # the note's own bar does not split the cell
    assert text.startswith("# cold \\<b\\>run\\</b\\>: run 7")


def test_lsv_result_of_several_sweeps_shows_each_sweep_with_its_own_data(tmp_path):
    area = math.pi * 1.0**2 / 4
    oxidation = lsv_record(area)
    reduction = oxidation.assign(ewe_v=4.5 - oxidation["ewe_v"], i_a=-oxidation["i_a"])
    sweeps = [{"stream": name, **analyze_lsv(frame["ewe_v"], frame["i_a"], area, 10e-6, frame["time_s"])}
              for name, frame in (("lsv_ox", oxidation), ("lsv_red", reduction))]
    run = make_run("lsv", analysis=[("lsv", None, {"sweeps": sweeps})],
                   streams=[("lsv_ox", "lsv", 0), ("lsv_red", "lsv", 1)])
    path = render_report(run, {"lsv_ox": oxidation, "lsv_red": reduction}, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "### Sweep lsv_ox" in text and "### Sweep lsv_red" in text
    assert "| direction | oxidation |" in text and "| direction | reduction |" in text
    for sweep in sweeps:
        assert f"{sweep['onset_threshold_v']:.3f} V vs Na9Sn4" in text
    assert [p.name for p in linked_pngs(path)] == ["lsv_lsv_ox.png", "lsv_lsv_red.png"]
    assert_valid_pngs(linked_pngs(path))


def test_suspensions_are_tabled_and_a_spectrum_measured_while_suspended_is_not_drawn(tmp_path):
    run = make_run("onbh_conductivity", status="aborted", reason="aborted by the operator",
                   streams=[("peis_30", "eis_spectrum", 1), ("peis_30_2", "eis_spectrum", 1)])
    run["streams"][0]["metadata"].update(valid=False, invalid_reason="measured while the run was suspended")
    run["suspensions"] = [{"state": "recovered", "step_index": 1, "setpoint_c": 30.0,
                           "reason": "chamber alarm 9", "started_at": "2025-03-01T11:05:10+00:00",
                           "ended_at": "2025-03-01T11:11:10+00:00",
                           "action": "spectrum stored as invalid, measured again after stabilization and soak"}]
    path = render_report(run, {"peis_30": spectrum_frame(2000.0)}, tmp_path)
    text = path.read_text(encoding="utf-8")
    assert "## Suspensions" in text
    assert "| 1 | 30.00 °C | 2025-03-01 11:05:10 UTC | 2025-03-01 11:11:10 UTC | recovered | chamber alarm 9 |" in text
    assert linked_pngs(path) == []  # the only spectrum stored is the invalid one: nothing drawn
