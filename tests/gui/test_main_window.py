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


def test_operator_request_shows_a_dialog_and_abort_ends_the_wait(window, qtbot, monkeypatch):
    """A request to the operator (a real Landt's start, a lead change) opens a dialog in the
    window while the run's thread waits; Abort ends the wait and the run."""
    from config.documents import RunStatus
    from config.protocol import resolve_protocol_path
    from gui import main_window
    from procedures.operator import OperatorRequest
    requests = []

    class AskingWorker(main_window.RunWorker):
        """The simulated station never needs a person, so the first step asks as a real
        station's Landt start does: from the run's thread, through the service's operator."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.operator_request.connect(lambda request, answer: requests.append(request))

            def ask(name, doc):
                if name == "step_start" and doc["step_index"] == 0:
                    self.service.operator.request("Load the step table on channel 1 and start it.",
                                                  kind="load_program",
                                                  clock=self.service.current_runner.station.clock)
            self.service.subscribers.append(ask)

    monkeypatch.setattr(main_window, "RunWorker", AskingWorker)
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))
    window.start_next()
    qtbot.waitUntil(lambda: window.operator_dialog is not None and window.operator_dialog.isVisible(),
                    timeout=30000)
    assert "Load the step table" in window.operator_dialog.text()
    assert isinstance(requests[0], OperatorRequest) and requests[0].kind == "load_program"
    window.abort_button.click()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=30000)
    assert window.last_result["status"] == RunStatus.ABORTED.value
    assert window.operator_dialog is None


def test_gui_runs_get_the_same_report_as_cli_runs(window, qtbot, tmp_path):
    path = tmp_path / "short.toml"
    path.write_text(SHORT_PROTOCOL)
    window.report_dir = str(tmp_path / "reports")
    assert window.add_protocol(path)
    window.start_next()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    report = window.last_result["report"]
    assert report.endswith("report.md") and os.path.exists(report)
    assert "gui_short_eis" in open(report, encoding="utf-8").read()
