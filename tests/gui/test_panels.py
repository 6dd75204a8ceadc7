"""The station panel's live readings, fed documents directly."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from config.station import load_station  # noqa: E402
from gui.panels import StationPanel  # noqa: E402


def _chamber(panel, times, temps, setpoint):
    panel("event_page", {"descriptor_uid": "c", "seq_start": 0, "data": {
        "time_s": np.asarray(times, float), "temperature_c": np.asarray(temps, float),
        "setpoint_c": np.full(len(times), setpoint)}})


def test_station_panel_counts_down_the_chamber_settling_dwell(qtbot):
    panel = StationPanel(load_station(simulate=True))
    qtbot.addWidget(panel)
    panel("descriptor", {"descriptor_uid": "c", "stream": "chamber", "run_uid": "r", "step_index": None,
                         "columns": {}, "metadata": {"role": "chamber_log"}})
    panel("step_start", {"run_uid": "r", "step_index": 0, "kind": "chamber", "name": "to 0 °C", "time": 0.0,
                         "params": {"stabilization": {"tolerance_c": 0.3, "dwell_s": 300.0,
                                                      "timeout_s": 7200.0, "poll_s": 10.0}}})
    _chamber(panel, [0, 10], [20.0, 12.0], 0.0)
    assert "set point 0.0 °C" in panel.chamber.text() and "outside ±0.3 K" in panel.chamber.text()
    _chamber(panel, [20, 120], [0.2, -0.1], 0.0)
    assert "0:03:20 of dwell left" in panel.chamber.text()
    _chamber(panel, [200, 320], [0.5, 0.1], 0.0)  # left the band at 200 s: the dwell restarts
    assert "0:05:00 of dwell left" in panel.chamber.text()
    _chamber(panel, [620], [0.0], 0.0)
    assert "settled" in panel.chamber.text()
