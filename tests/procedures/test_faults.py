"""Instrument faults end a run cleanly: status failed, reason and traceback stored, data kept,
instruments made safe (issue: Foundation, item 10)."""
from __future__ import annotations

from config.station import load_station
from storage.readers import get_run, read_stream


def station_with_faults(**faults):
    cfg = load_station(simulate=True)
    cfg.sim.faults = faults
    return cfg


def test_potentiostat_error_code_fails_the_run_and_keeps_the_chamber_log(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'f.sqlite'}"
    cfg = station_with_faults(potentiostat={"fail_on": {"BL_GetData": -201}})
    stations = []
    outcome, run_id, _, _ = run_simulated("onbh_conductivity", db, station_cfg=cfg,
                                          on_runner=lambda r: stations.append(r.station))
    assert outcome.status == "failed"
    assert "BL_GetData" in outcome.reason and "-201" in outcome.reason
    run = get_run(db, run_id)
    assert run["status"] == "failed"
    assert "BiologicError" in run["traceback"]
    assert len(read_stream(db, run_id, "chamber")) > 100      # measured before the fault: kept
    assert stations[0].instruments.lab.thermal.controlled is False       # chamber back in standby


def test_chamber_refusing_its_set_point_fails_the_run_with_the_command_named(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'c.sqlite'}"
    cfg = station_with_faults(chamber={"na_on": "TEMP", "na_reply": "NA:CHB NOT READY"})
    outcome, run_id, _, _ = run_simulated("onbh_conductivity", db, station_cfg=cfg)
    assert outcome.status == "failed"
    assert "'TEMP, S-10.0" in outcome.reason and "CHB NOT READY" in outcome.reason
    assert get_run(db, run_id)["status"] == "failed"
