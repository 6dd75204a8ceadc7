"""The watched chamber (issue 9 item 2): a lost band, an alarm or a silent chamber suspends the run;
what happens to the interrupted measurement depends on the step kind."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from config.protocol import ChamberWatch, Protocol, resolve_protocol_path
from config.station import load_station, read_toml
from procedures.progress import ProgressPrinter
from procedures.service import RunService
from procedures.watch import Band, ConditionWatch, SetPoint
from storage.readers import get_run, read_stream

ROOT = Path(__file__).resolve().parents[2]
# The short protocol below (onbh_conductivity at 30 °C only) settles at ~0.14 h, soaks until
# 1.1425 h and measures its spectrum in the next 31 s.
SETTLED_H = 0.15
DURING_SPECTRUM_H = 1.1445


def station(**chamber_faults):
    cfg = load_station(simulate=True)
    cfg.sim.faults = {"chamber": chamber_faults}
    return cfg


def conductivity_at(temperatures, watch=None, soak_s=3600.0) -> Protocol:
    data = read_toml(resolve_protocol_path("onbh_conductivity"))
    data["steps"][0].update(temperatures_c=temperatures, soak_s=soak_s)
    if watch:
        data["protocol"]["watch"] = watch
    return Protocol.model_validate(data)


def run(protocol, cfg, db, subscribers=(), on_runner=None):
    return RunService(cfg, db, report_dir=False, subscribers=subscribers,
                      on_runner=on_runner).run(protocol)


# --- the band ----------------------------------------------------------------------------------
def test_band_leaves_beyond_band_and_returns_only_within_band_minus_hysteresis():
    band = Band(0.5, 0.2)
    assert [band.update(d) for d in (0.4, -0.5, 0.51)] == [True, True, False]
    assert [band.update(d) for d in (0.49, 0.45, -0.31, 0.3)] == [False, False, False, True]
    assert [band.update(d) for d in (0.49, -0.49, -0.51)] == [True, True, False]
    with pytest.raises(ValueError, match="hysteresis"):
        Band(0.5, 0.5)


class _Clock:
    def __init__(self):
        self.t = 0.0

    def now(self):
        return self.t


class _Ctx:
    """What ConditionWatch uses of a StepContext, recording the documents it emits."""

    def __init__(self):
        self.clock = _Clock()
        self.run_uid = "run"
        self.step_index = 3
        self.docs = []
        self.station = None

    def emit(self, name, doc):
        self.docs.append((name, doc))

    def report_progress(self, **fields):
        pass


def test_noise_at_the_band_edge_suspends_once_not_at_every_crossing():
    ctx = _Ctx()
    watch = ConditionWatch(ctx, ChamberWatch(), interval_s=10.0)
    watch.arm(SetPoint(30.0, None, 3600.0))
    watch._resent = True  # noqa: SLF001 - no chamber here; re-sending is another test's subject
    rng = np.random.default_rng(0)
    noise = 30.5 + rng.uniform(-0.05, 0.05, 200)  # hovering at the band's edge, both sides
    for k, temperature in enumerate(noise):
        ctx.clock.t = 10.0 * k
        watch.observe(ctx.clock.t, float(temperature), (), None)
        if watch.open is not None:
            watch._resent = True  # noqa: SLF001
    assert watch.count == 1 and watch.open is not None  # left once, never counted as back
    ctx.clock.t += 10.0
    watch.observe(ctx.clock.t, 30.25, (), None)  # within band - hysteresis: back
    assert watch.open is None
    assert [doc["state"] for _, doc in ctx.docs] == ["suspended", "recovered"]
    # and noise within the band never suspends
    quiet = ConditionWatch(ctx, ChamberWatch(), interval_s=10.0)
    quiet.arm(SetPoint(30.0, None, 3600.0))
    for k, temperature in enumerate(30.0 + rng.uniform(-0.45, 0.45, 500)):
        quiet.observe(10.0 * k, float(temperature), (), None)
    assert quiet.count == 0


def test_a_watch_is_concerned_only_by_readings_that_could_change_it():
    """What a shared chamber's monitor asks before waking a run: nothing to judge without a held
    set point; a quiet reading inside band − hysteresis changes nothing; an alarm, a silent
    chamber, a reading near the band's edge or an open suspension may."""
    watch = ConditionWatch(_Ctx(), ChamberWatch(), interval_s=10.0)  # ±0.5 °C, hysteresis 0.2
    assert not watch.concerned_by(80.0, (), None)  # not armed
    watch.arm(SetPoint(30.0, None, 3600.0))
    assert not watch.concerned_by(30.29, (), None)
    assert watch.concerned_by(30.31, (), None) and watch.concerned_by(29.69, None, None)
    assert watch.concerned_by(30.0, (21,), None) and watch.concerned_by(math.nan, None, "no reply")
    watch.observe(0.0, 31.0, (), None)  # suspended
    assert watch.concerned_by(30.0, (), None)  # the reading that may end it


# --- alarms and recovery ---------------------------------------------------------------------
def test_a_chamber_alarm_suspends_the_soak_which_starts_over_after_it_clears(tmp_path):
    db = f"sqlite:///{tmp_path / 'alarm.sqlite'}"
    result = run(conductivity_at([30.0]), station(alarm_at_h=0.5, alarm_duration_h=0.1), db)
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["reason"] == "chamber alarm 9" and suspension["state"] == "recovered"
    assert suspension["ended_at"] - suspension["started_at"] == pytest.approx(360, abs=25)
    assert "soak started over" in suspension["action"]
    # the soak was repeated in full after the alarm: the spectrum starts an hour after it cleared
    steps = get_run(db, result.run_id)["steps"]
    assert steps[0]["summary"]["soak_s"] == 3600.0
    [spectrum] = result.analysis["eis"]["spectra"]
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)


def test_a_condition_that_does_not_recover_ends_the_run_failed_and_safe(tmp_path):
    db = f"sqlite:///{tmp_path / 'stuck.sqlite'}"
    stations = []
    result = run(conductivity_at([30.0], watch={"recovery_timeout_s": 1800.0}),
                 station(alarm_at_h=0.5, alarm_duration_h=10.0), db,
                 on_runner=lambda runner: stations.append(runner.station))
    assert result.status == "failed"
    assert "chamber alarm 9" in result.reason and "not recovered within 1800 s" in result.reason
    assert stations[0].instruments.lab.thermal.controlled is False  # chamber in standby
    stored = get_run(db, result.run_id)
    assert stored["status"] == "failed"
    [suspension] = stored["suspensions"]
    assert suspension["state"] == "unrecovered" and suspension["action"] == "run ended safe"
    assert not any(s["name"].startswith("conductivity_peis") for s in stored["streams"])


# --- per step kind ---------------------------------------------------------------------------
def test_a_spectrum_caught_by_a_power_loss_is_stored_invalid_and_measured_again(tmp_path):
    db = f"sqlite:///{tmp_path / 'peis.sqlite'}"
    result = run(conductivity_at([30.0]),
                 station(power_loss_at_h=DURING_SPECTRUM_H, power_loss_duration_h=0.5), db)
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["invalidated"] == ["conductivity_peis_at_30_c"]
    assert suspension["mode_found"] == "STANDBY"  # back from the cut in standby: re-sent
    [spectrum] = result.analysis["eis"]["spectra"]
    assert spectrum["file"] == "conductivity_peis_at_30_c_2"
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)
    assert spectrum["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)
    streams = {s["name"]: s for s in get_run(db, result.run_id)["streams"]}
    invalid = streams["conductivity_peis_at_30_c"]
    assert invalid["n_points"] > 0 and invalid["metadata"]["valid"] is False  # kept, marked
    assert "valid" not in streams["conductivity_peis_at_30_c_2"]["metadata"]


def test_the_issues_chamber_switched_off_after_settling_gives_no_spectrum_off_temperature(tmp_path):
    """Issue 9: the chamber lost right after settling at 30 °C ended `completed` with a "30 °C"
    spectrum measured at 23.9 °C."""
    db = f"sqlite:///{tmp_path / 'off.sqlite'}"
    back = run(conductivity_at([30.0]), station(power_loss_at_h=SETTLED_H, power_loss_duration_h=0.5), db)
    assert back.status == "completed"
    [suspension] = back.suspensions
    assert suspension["step_index"] == 0 and suspension["reason"].startswith("chamber unreachable")
    [spectrum] = back.analysis["eis"]["spectra"]
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)

    gone = run(conductivity_at([30.0], watch={"recovery_timeout_s": 3600.0}),
               station(power_loss_at_h=SETTLED_H, power_loss_duration_h=5.0), db)
    # still dark at the end, the chamber cannot be put in standby: unsafe, and said so
    assert gone.status == "unsafe"
    assert "not recovered within 3600 s" in gone.reason and "chamber not made safe" in gone.reason
    assert not gone.analysis.get("eis")  # no spectrum measured off temperature


def _lsv_after_a_chamber_step() -> Protocol:
    data = read_toml(resolve_protocol_path("lsv_oxidation"))
    data["steps"].insert(0, {"kind": "chamber", "name": "25 °C", "setpoint_c": 25.0, "soak_s": 600.0})
    return Protocol.model_validate(data)


def test_an_lsv_caught_out_of_band_ends_its_step_failed_with_the_reason(tmp_path):
    db = f"sqlite:///{tmp_path / 'lsv.sqlite'}"
    result = run(_lsv_after_a_chamber_step(), station(alarm_at_h=2.0, alarm_duration_h=0.2), db)
    assert result.status == "failed"
    assert "LSV (destructive, not repeated) stopped with the chamber out of its band: chamber alarm 9" \
        in result.reason
    stored = get_run(db, result.run_id)
    assert [s["status"] for s in stored["steps"]] == ["completed", "failed"]
    assert "step failed" in stored["suspensions"][0]["action"]
    lsv = read_stream(db, result.run_id, "lsv")
    assert 0 < len(lsv) and lsv["time_s"].iloc[-1] < 2.1 * 3600  # what was swept is kept


def test_cycling_out_of_band_marks_records_and_names_the_cycles(tmp_path, shortened_protocol):
    db = f"sqlite:///{tmp_path / 'cyc.sqlite'}"
    protocol = shortened_protocol("full_cell_45mg", 3)
    result = run(protocol, station(power_loss_at_h=30.0, power_loss_duration_h=1.0), db)
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["state"] == "recovered" and suspension["mode_found"] == "STANDBY"
    records = read_stream(db, result.run_id, "cycling")
    flagged = records[records["out_of_band"] == 1]
    assert len(flagged) > 0 and len(flagged) < len(records) / 10
    cycles = sorted(set(flagged["cycle"].astype(int)))
    analysis = result.analysis["cycling"]
    assert analysis["out_of_band_cycles"] == cycles
    warning = next(w for w in analysis["warnings"] if "out of its band" in w)
    assert f"cycle(s) {', '.join(map(str, cycles))} have records" in warning


# --- acceptance: onbh_conductivity with a power cut at the end of the 30 °C soak -----------------
@pytest.fixture(scope="module")
def power_cut_run(tmp_path_factory):
    db = f"sqlite:///{tmp_path_factory.mktemp('cut') / 'cut.sqlite'}"
    progress = io.StringIO()
    from config.protocol import load_protocol
    cfg = station(power_loss_at_h=6.0, power_loss_duration_h=0.5)
    result = run(load_protocol("onbh_conductivity", cfg), cfg, db,
                 subscribers=[ProgressPrinter(progress, bar=False)])
    return result, db, progress.getvalue()


def test_power_cut_at_the_end_of_the_30c_soak_suspends_resumes_and_keeps_sigma(power_cut_run):
    result, db, _ = power_cut_run
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["state"] == "recovered" and suspension["setpoint_c"] == 30.0
    spectra = result.analysis["eis"]["spectra"]
    setpoints = [-10.0, 0.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    assert [s["temperature_c"] for s in spectra] == pytest.approx(setpoints, abs=0.5 - 0.2)
    sigma_30 = next(s for s in spectra if math.isclose(s["temperature_c"], 30.0, abs_tol=0.3))
    assert sigma_30["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)
    # every analysed spectrum lies within the band: the chamber log over each one says so
    log = read_stream(db, result.run_id, "chamber")
    steps = {s["step_index"]: s for s in get_run(db, result.run_id)["steps"]}
    for step in steps.values():
        if step["kind"] != "peis":
            continue
        t0 = step["summary"]["temperature_c"]
        assert abs(t0 - steps[step["step_index"] - 1]["summary"]["setpoint_c"]) <= 0.5


def test_suspensions_are_listed_by_show_json_and_in_the_progress_output(power_cut_run):
    result, db, progress = power_cut_run
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "show", str(result.run_id),
                           "--db", db, "--json"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    [suspension] = shown["suspensions"]
    assert suspension["state"] == "recovered" and suspension["setpoint_c"] == 30.0
    assert suspension["reason"].startswith("chamber unreachable")
    assert suspension["mode_found"] == "STANDBY"
    assert suspension["started_at"] < suspension["ended_at"]
    assert "run SUSPENDED at step 8: chamber unreachable" in progress
    assert "run resumed after 0:3" in progress  # half an hour of cut, then the first reading in band


# --- the station file ----------------------------------------------------------------------------
def test_station_file_chamber_faults_are_validated_and_the_shipped_station_has_none(tmp_path):
    from config.errors import ConfigError
    from config.station import DEFAULT_STATION
    assert "[sim.faults" not in DEFAULT_STATION.read_text()
    assert load_station(simulate=True).sim.faults == {}
    shipped = DEFAULT_STATION.read_text()
    good = tmp_path / "cut.toml"
    good.write_text(shipped + "\n[sim.faults.chamber]\npower_loss_at_h = 6.0\npower_loss_duration_h = 0.5\n")
    assert load_station(good).sim.faults["chamber"] == {
        "power_loss_at_h": 6.0, "power_loss_duration_h": 0.5}
    for table, message in (("power_loss_at_h = 6.0", "power_loss_at_h and power_loss_duration_h go together"),
                           ("power_loss_at_h = -1.0\npower_loss_duration_h = 1.0",
                            "power_loss_at_h must be >= 0 h"),
                           ("alarm_at_h = 1.0\nalarm_duration_h = 1.0\nalarm_code = 100",
                            "alarm_code must be an integer 0-99"),
                           ("power_cut_at_h = 1.0", r"unknown fault\(s\) \['power_cut_at_h'\]")):
        bad = tmp_path / "bad.toml"
        bad.write_text(shipped + f"\n[sim.faults.chamber]\n{table}\n")
        with pytest.raises(ConfigError, match=message):
            load_station(bad)


def test_a_chamber_lost_while_ramping_suspends_the_run_instead_of_failing_it(tmp_path):
    db = f"sqlite:///{tmp_path / 'ramp.sqlite'}"
    result = run(conductivity_at([30.0]), station(power_loss_at_h=0.02, power_loss_duration_h=0.3), db)
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["step_index"] == 0 and suspension["reason"].startswith("chamber unreachable")
    assert suspension["mode_found"] == "STANDBY"
    [spectrum] = result.analysis["eis"]["spectra"]
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)


def test_a_chamber_switched_off_at_its_panel_after_settling_is_switched_on_again(tmp_path):
    """Issue 9's probe as it was made: POWER, OFF right after settling at 30 °C. Main measured the
    "30 °C" spectrum at 23.96 °C (σ 3.23 mS/cm) and completed; now the band is lost within a
    minute, the chamber is found OFF, switched on with its set point, and the soak starts over."""
    db = f"sqlite:///{tmp_path / 'panel.sqlite'}"
    stations = []

    def switch_off_after_settling(name, doc):
        if name == "step_start" and doc["step_index"] == 0:
            at = doc["time"] + 530.0  # settled at ~512 s
            station = stations[0]
            done = []

            def task(now):
                if now >= at and not done:
                    done.append(station.chamber.adapter.simulator.handle("POWER, OFF"))
            station.clock.every(10.0, task)

    result = run(conductivity_at([30.0]), load_station(simulate=True), db,
                 subscribers=[switch_off_after_settling], on_runner=lambda r: stations.append(r.station))
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["mode_found"] == "OFF" and "outside 30 ± 0.5 °C" in suspension["reason"]
    assert "soak started over" in suspension["action"]
    [spectrum] = result.analysis["eis"]["spectra"]
    assert spectrum["temperature_c"] == pytest.approx(30.0, abs=0.1)
    assert spectrum["sigma_total_s_per_cm"] * 1e3 == pytest.approx(4.6, abs=0.1)


def test_a_hold_is_not_watched_the_cell_needs_no_chamber_there(tmp_path):
    """The stability protocol's storage hold has no set point: in a campaign another run may take
    the chamber to its own temperature meanwhile, so the band of the spectrum before it must not
    follow the cell into the hold (an alarm during the hold suspends nothing)."""
    data = read_toml(resolve_protocol_path("onbh_conductivity"))
    data["steps"][0].update(temperatures_c=[30.0], soak_s=600.0)
    data["steps"].append({"kind": "hold", "duration_s": 7200.0})
    db = f"sqlite:///{tmp_path / 'hold.sqlite'}"
    result = run(Protocol.model_validate(data), station(alarm_at_h=1.0, alarm_duration_h=0.1), db)
    assert result.status == "completed", result.reason
    assert result.suspensions == []
    assert [s["kind"] for s in get_run(db, result.run_id)["steps"]] == ["chamber", "peis", "hold"]


# --- a cold discharge caught out of band is repeated after a recharge ---------------------------
def test_a_cold_discharge_caught_out_of_band_is_stopped_recharged_resoaked_and_measured_again(tmp_path):
    """One formation cycle, then discharges at 25 and -5 °C; the -5 °C one runs from 48.0 h to
    53.2 h of the run and the power is cut at 50 h for half an hour."""
    data = read_toml(resolve_protocol_path("cold_discharge"))
    for step in data["steps"]:
        if step["kind"] == "cold_discharge":
            step["temperatures_c"] = [25.0, -5.0]
    db = f"sqlite:///{tmp_path / 'cold.sqlite'}"
    result = run(Protocol.model_validate(data),
                 station(power_loss_at_h=50.0, power_loss_duration_h=0.5), db)
    assert result.status == "completed", result.reason
    [suspension] = result.suspensions
    assert suspension["setpoint_c"] == -5.0 and suspension["state"] == "recovered"
    assert "discharge at -5 °C stopped out of band (stream cold_discharge, cycle 2)" in suspension["action"]
    stored = get_run(db, result.run_id)
    streams = {s["name"]: s for s in stored["streams"]}
    assert streams["cold_discharge_2"]["metadata"]["repeats"] == -5.0
    assert streams["cold_discharge_2"]["metadata"]["temperatures_c"] == [-5.0]
    # The spoiled discharge stays stored, its records out of band: the program was stopped in it.
    spoiled = read_stream(db, result.run_id, "cold_discharge")
    assert spoiled["cycle"].max() == 2
    assert (spoiled[(spoiled["cycle"] == 2) & (spoiled["current_a"] < 0)]["out_of_band"] == 1).any()
    # The repeat recharged the cell (CCCV to the upper cut-off), soaked at -5 °C, discharged.
    again = read_stream(db, result.run_id, "cold_discharge_2")
    assert again["voltage_v"].max() == pytest.approx(3.4, abs=0.02)
    assert (again["current_a"] > 0).any() and (again["current_a"] < 0).any()
    assert not again["out_of_band"].any()
    chamber = read_stream(db, result.run_id, "chamber")
    charge_again = again["test_time_s"][again["current_a"] > 0].iloc[0]
    discharge_again = again["test_time_s"][again["current_a"] < 0].iloc[0]
    assert discharge_again > charge_again
    after_cut = chamber[chamber["time_s"] > 50.5 * 3600]["setpoint_c"].to_numpy()
    recharge = int(np.argmax(after_cut == 20.0))
    assert after_cut[recharge] == 20.0 and (after_cut[recharge:] == -5.0).any()  # re-soaked at -5
    analysis = result.analysis["cold_discharge"]
    table = analysis["cold_discharge"]
    assert [(row["temperature_c"], row["stream"], row["out_of_band"]) for row in table] == \
        [(25.0, "cold_discharge", False), (-5.0, "cold_discharge_2", False)]
    for row, expected in zip(table, [3.1, 2.8]):  # the paper's figures
        assert row["discharge_mah_per_cm2"] == pytest.approx(expected, abs=0.1)
    assert analysis["repeated_discharges"] == [{"temperature_c": -5.0, "stream": "cold_discharge",
                                                "stream_cycle": 2, "repeated_in": "cold_discharge_2"}]
    assert any("-5 °C of cold_discharge (its cycle 2)" in w and "left out of the analysis" in w
               for w in analysis["warnings"])
    # One cell EIS per temperature: -5 °C is not measured twice.
    assert [e["temperature_c"] for e in analysis["cell_eis"]] == [25.0, -5.0]
    step = next(s for s in stored["steps"] if s["kind"] == "cold_discharge")
    assert step["summary"]["repeated"] == [{"temperature_c": -5.0, "stream": "cold_discharge", "cycle": 2}]
