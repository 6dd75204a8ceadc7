"""Plot building blocks without a run: whole records, envelopes, hours, colours, stream offsets."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from gui.live_plots import RunPlotFeeder, RunPlots  # noqa: E402
from gui.plot_panel import EnvelopeCurve, PlotPanel, temperature_colour  # noqa: E402
from gui.result_tables import result_tables  # noqa: E402


def test_a_long_record_is_kept_whole_and_drawn_from_its_envelope(qtbot):
    panel = PlotPanel("voltage_time", "V–t", [("time", "U / V")], time_x=True)
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    curve = panel.add_curve("v", "b", record=True)
    assert isinstance(curve, EnvelopeCurve)
    t = np.arange(300_000, dtype=float)
    v = np.sin(t / 5000.0)
    v[123_457] = 9.0  # one spike must survive any reduction
    for start in range(0, len(t), 7_000):
        curve.append(t[start:start + 7000], v[start:start + 7000])
    curve.flush()
    assert curve.points_received == 300_000
    x_shown, y_shown = curve.display_data()
    assert len(x_shown) < 30_000 and y_shown.max() == 9.0 and y_shown.min() == v.min()
    assert np.all(np.diff(x_shown) >= 0)
    assert 0 < curve.points_shown < 30_000
    # Zoomed in, the raw points are drawn.
    panel.plots[0].setXRange(1000, 2000)
    x_raw, _ = curve.display_data()
    assert len(x_raw) == 300_000


def test_time_axis_reads_in_hours_for_long_views(qtbot):
    panel = PlotPanel("chamber", "Chamber", [("time", "T")], time_x=True)
    qtbot.addWidget(panel)
    axis = panel.plots[0].getAxis("bottom")
    axis.tickValues(0.0, 3600.0, 500)
    assert axis.labelText == "time / s"
    ticks = axis.tickValues(0.0, 100 * 3600.0, 500)
    assert axis.labelText == "time / h"
    assert all(v % 3600.0 == 0 for v in ticks[0][1])  # major ticks at whole hours
    assert axis.tickStrings([7200.0], 1.0, 3600.0) == ["2"]


def test_temperature_colours_go_from_cold_blue_to_warm_red():
    cold, warm = temperature_colour(-10.0, -10.0, 50.0), temperature_colour(50.0, -10.0, 50.0)
    assert cold.blue() > cold.red() and warm.red() > warm.blue()


def _descriptor(uid, role, stream, columns, **metadata):
    return {"descriptor_uid": uid, "stream": stream, "run_uid": "r", "step_index": 0,
            "columns": {c: {"unit": "", "dtype": "float"} for c in columns},
            "metadata": {"role": role, **metadata}}


def test_cycling_streams_whose_time_restarts_do_not_overlap(qtbot):
    plots = RunPlots("test")
    qtbot.addWidget(plots)
    feeder = RunPlotFeeder(plots)
    cols = ("test_time_s", "voltage_v", "current_a", "cycle", "step", "step_type", "capacity_ah")
    feeder("start", {"run_uid": "r", "time": 0.0, "protocol_name": "p", "sample": {}})
    for k, uid in enumerate(("d1", "d2")):
        feeder("descriptor", _descriptor(uid, "cycling", f"cycling{k}", cols))
        n = 50
        feeder("event_page", {"descriptor_uid": uid, "seq_start": 0, "data": {
            "test_time_s": np.arange(n) * 10.0, "voltage_v": np.linspace(2.0, 3.4, n),
            "current_a": np.full(n, 1e-3), "cycle": np.ones(n, int), "step": np.ones(n, int),
            "step_type": np.array(["cc_charge"] * n), "capacity_ah": np.linspace(0, 1e-3, n)}})
        feeder("step_stop", {"run_uid": "r", "step_index": k, "status": "completed", "time": 0.0,
                             "summary": {}})
    first, second = plots.panels["voltage_time"].curves
    assert second.x.values[0] > first.x.values[-1]
    capacity = plots.panels["capacity_cycle"].curves
    assert capacity[0].y.values[-1] == pytest.approx(1.0)  # mAh, charge of cycle 1


def test_results_become_tables_not_json():
    result = {"ice_pct": 78.2, "arrhenius": {"total": {"ea_ev": 0.49}},
              "cycles": [{"cycle": 1, "discharge_mah": 0.9}, {"cycle": 2, "discharge_mah": 0.89}],
              "warnings": ["one", "two"]}
    summary, cycles = result_tables("cycling", result)
    assert ["arrhenius.total.ea_ev", "0.49"] in summary.rows
    assert ["warnings", "one; two"] in summary.rows
    assert cycles.title == "cycling: cycles" and cycles.columns == ["cycle", "discharge_mah"]
    assert cycles.rows == [["1", "0.9"], ["2", "0.89"]]


def test_cold_discharge_gives_one_discharge_curve_per_temperature(qtbot):
    plots = RunPlots("cold")
    qtbot.addWidget(plots)
    feeder = RunPlotFeeder(plots)
    cols = ("test_time_s", "voltage_v", "current_a", "cycle", "step", "step_type", "capacity_ah")
    feeder("start", {"run_uid": "r", "time": 0.0, "protocol_name": "p", "sample": {}})
    feeder("descriptor", _descriptor("d", "cycling", "cold_discharge", cols, phase="cold_discharge",
                                     temperatures_c=[25.0, -15.0]))
    kinds = ["cc_charge"] * 10 + ["cc_discharge"] * 10 + ["cc_charge"] * 10 + ["cc_discharge"] * 10
    steps = [1] * 10 + [2] * 10 + [3] * 10 + [4] * 10
    cycles = [1] * 20 + [2] * 20
    feeder("event_page", {"descriptor_uid": "d", "seq_start": 0, "data": {
        "test_time_s": np.arange(40) * 60.0, "voltage_v": np.linspace(3.4, 1.5, 40),
        "current_a": np.full(40, 1e-3), "cycle": np.array(cycles), "step": np.array(steps),
        "step_type": np.array(kinds), "capacity_ah": np.tile(np.linspace(0, 1e-3, 10), 4)}})
    curves = plots.panels["cold_discharge"].curves
    assert [c.name for c in curves] == ["25 °C", "-15 °C"]
    assert [c.points_received for c in curves] == [10, 10]
    warm, cold = (c.item.opts["pen"].color() for c in curves)
    assert warm.red() > warm.blue() and cold.blue() > cold.red()


def _pellet_spectrum(r_ohm: float):
    """A pellet between blocking electrodes: an R‖CPE-like arc and the electrode spike."""
    f = np.logspace(6.8, 0, 60)
    w = 2 * np.pi * f
    z = r_ohm / (1 + 1j * w * r_ohm * 1e-11) + 1 / (1j * w * 1e-6)
    return f, z


def _feed_spectrum(feeder, uid: str, setpoint_c: float, r_ohm: float) -> None:
    cols = ("frequency_hz", "z_real_ohm", "z_imag_ohm")
    feeder("descriptor", _descriptor(uid, "eis_spectrum", f"peis_{uid}", cols, setpoint_c=setpoint_c))
    f, z = _pellet_spectrum(r_ohm)
    feeder("event_page", {"descriptor_uid": uid, "seq_start": 0,
                          "data": {"frequency_hz": f, "z_real_ohm": z.real, "z_imag_ohm": z.imag}})


def test_arrhenius_fills_in_per_spectrum_and_fits_only_with_two_temperatures(qtbot):
    plots = RunPlots("eis")
    qtbot.addWidget(plots)
    feeder = RunPlotFeeder(plots)
    feeder("start", {"run_uid": "r", "time": 0.0, "protocol_name": "p",
                     "sample": {"thickness_um": 1000.0, "diameter_mm": 10.0}})
    _feed_spectrum(feeder, "a", 30.0, 200.0)
    _feed_spectrum(feeder, "b", 30.0, 210.0)  # the same temperature a month later: no fit yet
    _feed_spectrum(feeder, "c", 50.0, 80.0)
    arrhenius = plots.panels["arrhenius"].curves
    assert arrhenius[0].points_received == 2 and len(arrhenius) == 1
    feeder("stop", {"run_uid": "r", "time": 1.0, "status": "completed", "reason": "", "traceback": None})
    assert arrhenius[0].points_received == 3 and "Ea" in arrhenius[1].name
