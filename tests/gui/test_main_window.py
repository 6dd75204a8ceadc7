"""The desktop GUI, offscreen: queue a protocol, watch it live, find it in the run browser."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("pytestqt")

from config.station import load_station  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

SHORT_PROTOCOL = """
[protocol]
name = "gui_short_eis"
analysis = "eis"
[sample]
id = "gui-pellet"
thickness_um = 1000.0
diameter_mm = 10.0
[[steps]]
kind = "temperature_eis_series"
temperatures_c = [30.0]
soak_s = 600.0
[steps.peis]
final_frequency_hz = 10.0
"""


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(load_station(simulate=True), db=f"sqlite:///{tmp_path / 'gui.sqlite'}")
    qtbot.addWidget(win)
    return win


def test_queued_protocol_runs_live_and_is_browsable(window, qtbot, tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL)
    assert window.add_protocol(path)
    window.start_next()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    assert window.last_result["status"] == "completed", window.last_result
    assert window.plots.curve_points("eis_spectrum") == 59
    assert window.plots.curve_points("chamber_log") > 10
    assert window.browser.table.rowCount() == 1
    window.browser.table.selectRow(0)
    assert "analysis eis" in window.browser.details.toPlainText()


def test_bad_protocol_is_refused_with_its_problems(window, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SHORT_PROTOCOL.replace("temperatures_c = [30.0]", "temperatures_c = [300.0]")
                    .replace('id = "gui-pellet"', 'id = "gui-pellet"\ncolour = "blue"'))
    assert not window.add_protocol(path)
    assert window.queue.count() == 0
    text = window.log.toPlainText()
    assert "sample.colour: unknown key" in text


def test_abort_button_stops_the_run_and_marks_it_aborted(window, qtbot):
    from config.protocol import resolve_protocol_path
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))  # 30 simulated days
    seen = []

    def abort_on_first_step(name, doc):
        if name == "step_start" and not seen:
            seen.append(doc)
            window.abort_button.click()
    window.start_next()
    window.worker.document.connect(abort_on_first_step)
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    assert window.last_result["status"] == "aborted"
    assert "aborted from the GUI" in window.last_result["reason"]
    assert window.abort_button.isEnabled() is False
