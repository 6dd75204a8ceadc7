"""The paper's LSV and DC-polarization protocols on the simulated station (issue: LSV and DC pol)."""
from __future__ import annotations

import pytest

from storage.readers import get_run, read_stream


def test_oxidation_lsv_onset_and_speed(tmp_path, run_simulated):
    db = f"sqlite:///{tmp_path / 'lsv.sqlite'}"
    outcome, run_id, wall, _ = run_simulated("lsv_oxidation", db)
    assert outcome.status == "completed", outcome.reason
    lsv = outcome.analysis["lsv"]
    assert lsv["direction"] == "oxidation"
    assert lsv["onset_threshold_v"] == pytest.approx(2.2, abs=0.05)
    assert lsv["threshold_a_per_cm2"] == pytest.approx(10e-6)
    assert wall < 10.0
    sweep = read_stream(db, run_id, "lsv")
    # OCV -> 5.0 V at 50 µV/s is about 20 h of instrument time, every point stored.
    assert sweep["time_s"].iloc[-1] - sweep["time_s"].iloc[0] > 19 * 3600
    assert sweep["ewe_v"].iloc[-1] == pytest.approx(5.0, abs=0.01)
    assert get_run(db, run_id)["analysis"][0]["name"] == "lsv"


def test_reduction_lsv_has_no_onset(tmp_path, run_simulated):
    outcome, _, _, _ = run_simulated("lsv_reduction", f"sqlite:///{tmp_path / 'red.sqlite'}")
    lsv = outcome.analysis["lsv"]
    assert lsv["direction"] == "reduction"
    assert lsv["onset_threshold_v"] is None


def test_dc_polarization_recovers_the_configured_electronic_conductivity(tmp_path, run_simulated):
    outcome, _, _, station_cfg = run_simulated("dc_polarization", f"sqlite:///{tmp_path / 'dc.sqlite'}")
    dc = outcome.analysis["dcpol"]
    truth = station_cfg.sim.pellet.electronic_sigma_s_per_cm
    assert dc["sigma_e_s_per_cm"] == pytest.approx(truth, rel=0.10)
    assert [s["voltage_v"] for s in dc["steps"]] == [0.1, 0.2, 0.3, 0.4]
    assert all(s["converged"] for s in dc["steps"])
    # Steps end on the drift criterion (shortened through BL_UpdateParameters), not at 6 h.
    assert all(s["duration_s"] < 6 * 3600 - 60 for s in dc["steps"])
