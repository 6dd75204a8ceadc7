"""PAPER.md protocol 2: σ at 30 °C on day 0 and after 30 days at room temperature."""
from __future__ import annotations

import pytest

from config.station import load_station


def test_metastable_pellet_keeps_its_conductivity(tmp_path, run_simulated):
    outcome, _, _, _ = run_simulated("onbh_stability", f"sqlite:///{tmp_path / 's.sqlite'}")
    assert outcome.status == "completed", outcome.reason
    (row,) = outcome.analysis["eis"]["stability"]
    assert row["temperature_c"] == pytest.approx(30.0, abs=0.1)
    assert row["change_pct"] == pytest.approx(0.0, abs=1.5)      # measurement noise only


def test_an_ageing_pellet_shows_its_loss_after_30_days(tmp_path, run_simulated):
    cfg = load_station(simulate=True)
    cfg.sim.pellet.aging_per_day = 0.005                        # 0.5 %/day -> -15 % in 30 days
    outcome, _, _, _ = run_simulated("onbh_stability", f"sqlite:///{tmp_path / 'a.sqlite'}",
                                     station_cfg=cfg)
    (row,) = outcome.analysis["eis"]["stability"]
    assert row["change_pct"] == pytest.approx(-15.0, abs=1.5)
