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
    assert window.plots.curve_points("nyquist") == 59
    assert window.plots.curve_points("chamber") > 10
    assert window.browser.table.rowCount() == 1
    window.browser.table.selectRow(0)
    tabs = [window.browser.results.tabText(i) for i in range(window.browser.results.count())]
    assert tabs[0] == "eis" and "eis: spectra" in tabs


def test_bad_protocol_is_refused_with_its_problems(window, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(SHORT_PROTOCOL.replace("temperatures_c = [30.0]", "temperatures_c = [300.0]")
                    .replace('id = "gui-pellet"', 'id = "gui-pellet"\ncolour = "blue"'))
    assert not window.add_protocol(path)
    assert window.queue.count() == 0
    text = window.log.toPlainText()
    assert "sample.colour: unknown key" in text


@pytest.fixture
def first_run_held(monkeypatch):
    """The first run's worker thread waits at its first step until the run is aborted (or 30 s):
    a simulated run can otherwise finish before the window has handled a click, and an abort test
    would race it."""
    import threading

    from gui import main_window
    held = []

    class HeldWorker(main_window.RunWorker):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            service = self.service

            def hold(name, doc):
                if name == "step_start" and not held:
                    held.append(doc)
                    until = threading.Event()
                    for _ in range(600):
                        if service.stop_requested or until.wait(0.05):
                            break
            service.subscribers.append(hold)

    monkeypatch.setattr(main_window, "RunWorker", HeldWorker)
    return held


def test_abort_button_stops_the_run_and_marks_it_aborted(window, qtbot, first_run_held):
    from config.protocol import resolve_protocol_path
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))  # 30 simulated days
    seen = []

    def abort_on_first_step(name, doc):
        if name == "step_start" and not seen:
            seen.append(doc)
            window.abort_button.click()
    window.document.connect(abort_on_first_step)
    window.start_next()
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


# --- the queue ------------------------------------------------------------------------------------
def _short(tmp_path, name: str, temperatures="[30.0]") -> str:
    path = tmp_path / f"{name}.toml"
    path.write_text(SHORT_PROTOCOL.replace('name = "gui_short_eis"', f'name = "{name}"')
                    .replace("temperatures_c = [30.0]", f"temperatures_c = {temperatures}"))
    return str(path)


def test_queue_items_can_be_reordered_and_removed(window, tmp_path):
    for name in ("a", "b", "c"):
        assert window.add_protocol(_short(tmp_path, name))
    window.queue.setCurrentRow(2)
    window.up_button.click()
    assert window.queued_names() == ["a", "c", "b"]
    window.queue.setCurrentRow(0)
    window.down_button.click()
    assert window.queued_names() == ["c", "a", "b"]
    window.up_button.click()  # already first after moving back
    window.up_button.click()
    assert window.queued_names() == ["a", "c", "b"]
    window.queue.setCurrentRow(1)
    window.remove_button.click()
    assert window.queued_names() == ["a", "b"]
    assert window.start_button.isEnabled()


def test_abort_stops_the_queue_and_asks_instead_of_starting_the_next(window, qtbot, tmp_path, first_run_held):
    from config.protocol import resolve_protocol_path
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))
    assert window.add_protocol(_short(tmp_path, "next_one"))
    started = []

    def abort_on_first_step(name, doc):
        if name == "step_start" and not started:
            started.append(doc)
            window.abort_button.click()
    window.document.connect(abort_on_first_step)
    window.start_queue()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    assert window.last_result["status"] == "aborted"
    qtbot.wait(300)
    assert window.worker is None, "the next protocol must not start by itself"
    assert window.queued_names() == ["next_one"]
    assert window.continue_dialog is not None and window.continue_dialog.isVisible()
    window.continue_dialog.button(window.continue_dialog.standardButtons().No).click()
    qtbot.wait(100)
    assert window.worker is None and window.queued_names() == ["next_one"]
    assert window.start_button.isEnabled() and not window.abort_button.isEnabled()


def test_abort_then_start_next_from_the_dialog(window, qtbot, tmp_path, first_run_held):
    from config.protocol import resolve_protocol_path
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))
    assert window.add_protocol(_short(tmp_path, "next_one"))
    aborted = []

    def abort_the_first_run(name, doc):
        # Only the first run: the second one's step_start must not abort it too.
        if name == "step_start" and not aborted:
            aborted.append(doc)
            window.abort()
    window.document.connect(abort_the_first_run)
    window.start_queue()
    qtbot.waitUntil(lambda: window.continue_dialog is not None, timeout=60000)
    window.continue_dialog.button(window.continue_dialog.standardButtons().Yes).click()
    qtbot.waitUntil(lambda: len(window.results) == 2, timeout=60000)
    assert [r["status"] for r in window.results] == ["aborted", "completed"]


def test_stop_after_this_run_leaves_the_rest_queued(window, qtbot, tmp_path):
    assert window.add_protocol(_short(tmp_path, "first"))
    assert window.add_protocol(_short(tmp_path, "second"))
    window.start_queue()
    window.stop_after_box.setChecked(True)
    with qtbot.waitSignal(window.queue_finished, timeout=60000):
        pass
    assert [r["status"] for r in window.results] == ["completed"]
    assert window.queued_names() == ["second"] and window.worker is None
    assert not window.stop_after_box.isChecked()


def test_pause_holds_at_a_safe_point_and_resume_finishes_the_run(window, qtbot, tmp_path):
    assert window.add_protocol(_short(tmp_path, "two_temperatures", "[20.0, 30.0]"))
    seen = []
    window.document.connect(lambda name, doc: seen.append((name, doc)))
    window.start_queue()
    window.pause_button.click()  # at once: the run holds at its first safe point
    qtbot.waitUntil(lambda: any(n == "progress" and d["state"] == "paused" for n, d in seen), timeout=30000)
    assert window.pause_button.text() == "Resume"
    assert window.status.text().startswith("paused")
    assert "PAUSED" in window.progress_panel.state.text()
    steps_when_paused = sum(n == "step_start" for n, _ in seen)
    qtbot.wait(500)
    assert window.last_result is None
    assert sum(n == "step_start" for n, _ in seen) == steps_when_paused, "no step starts while paused"
    window.pause_button.click()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    assert window.last_result["status"] == "completed"
    assert sum(n == "step_start" for n, _ in seen) > steps_when_paused
    assert window.pause_button.text() == "Pause" and not window.pause_button.isEnabled()


def test_progress_and_station_panels_follow_the_run(window, qtbot, tmp_path):
    assert window.add_protocol(_short(tmp_path, "progress_check", "[20.0, 30.0]"))
    timings = []
    window.document.connect(
        lambda name, doc: name == "progress" and timings.append(window.progress_panel.timing.text()))
    window.start_queue()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    last = window.progress_panel.last
    assert last["step_index"] + 1 == last["n_steps"] and last["n_steps"] >= 4
    assert f"of {last['n_steps']}" in window.progress_panel.step.text()
    # Simulated: wall time beside instrument time while running; the run's length at the end.
    assert timings and all("elapsed" in t and "remaining" in t and "wall" in t for t in timings)
    assert window.progress_panel.timing.text().startswith("ended after ")
    assert window.progress_panel.bar.value() == 1000
    assert "set point 30.0 °C" in window.station_panel.chamber.text()


# --- live plots ---------------------------------------------------------------------------------
def test_live_eis_plots_colour_by_temperature_and_fill_the_arrhenius_plot(window, qtbot, tmp_path):
    assert window.add_protocol(_short(tmp_path, "three_temperatures", "[0.0, 25.0, 50.0]"))
    window.start_queue()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    plots = window.plots.current
    nyquist = plots.panels["nyquist"]
    assert [c.name for c in nyquist.curves] == ["0 °C", "25 °C", "50 °C"]
    cold, warm = (c.item.opts["pen"].color() for c in (nyquist.curves[0], nyquist.curves[-1]))
    assert cold.blue() > cold.red() and warm.red() > warm.blue()
    assert len(plots.panels["bode"].curves) == 6
    arrhenius = plots.panels["arrhenius"].curves
    assert arrhenius[0].points_received == 3
    assert "Ea" in arrhenius[1].name
    # The view follows the high-frequency region where σ is read, not the electrode spike; the
    # whole spectra and back are one click each.
    widest = max(c.x.values.max() for c in nyquist.curves)
    assert nyquist.plots[0].vb.viewRange()[0][1] < 0.5 * widest
    window.plots.current.show_whole_spectra()
    qtbot.wait(50)
    assert nyquist.plots[0].vb.viewRange()[0][1] >= widest
    plots.zoom_hf_button.click()
    assert nyquist.plots[0].vb.viewRange()[0][1] < 0.5 * widest


def test_run_browser_filters_and_shows_spectra_right_side_up(window, qtbot, tmp_path):
    assert window.add_protocol(_short(tmp_path, "browse_me"))
    window.start_queue()
    qtbot.waitUntil(lambda: window.last_result is not None, timeout=60000)
    browser = window.browser
    window.tabs.setCurrentWidget(browser)
    assert browser.visible_run_ids() == [window.last_result["run_id"]]
    browser.search.setText("no-such-protocol")
    assert browser.visible_run_ids() == []
    browser.search.setText("browse_me")
    browser.status_filter.setCurrentText("aborted")
    assert browser.visible_run_ids() == []
    browser.status_filter.setCurrentText("completed")
    assert browser.visible_run_ids() == [window.last_result["run_id"]]
    browser.table.selectRow(0)
    browser.stream_box.setCurrentText(next(s for s in [browser.stream_box.itemText(i)
                                            for i in range(browser.stream_box.count())] if "peis" in s))
    assert (browser.x_box.currentText(), browser.y_box.currentText()) == ("z_real_ohm", "z_imag_ohm")
    (x, y), = browser.plotted_curves()
    assert (y > 0).sum() > 0.8 * len(y), "−Z'' is plotted upwards"
    spectra = browser.result_table([browser.results.tabText(i) for i in range(browser.results.count())]
                                   .index("eis: spectra"))
    headers = [spectra.horizontalHeaderItem(j).text() for j in range(spectra.columnCount())]
    assert spectra.rowCount() == 1 and "sigma_total_s_per_cm" in headers
    browser.reanalyse_button.click()
    titles = [browser.results.tabText(i) for i in range(browser.results.count())]
    again = browser.result_table(titles.index("re-analysed eis: spectra"))
    assert [again.item(0, j).text() for j in range(again.columnCount())] == \
        [spectra.item(0, j).text() for j in range(spectra.columnCount())]
    paths = browser.export(tmp_path / "export")
    assert any(p.name.endswith(".csv") for p in paths)


def test_scripted_mode_writes_state_and_screenshot(qtbot, tmp_path):
    import json

    from gui.app import ScriptedOptions, main
    state, shot = tmp_path / "state.json", tmp_path / "shot.png"
    code = main(db=f"sqlite:///{tmp_path / 's.sqlite'}", simulate=True,
                options=ScriptedOptions(runs=[_short(tmp_path, "scripted", "[20.0, 40.0]")],
                                        quit_when_done=True, screenshot=str(shot), state_json=str(state)))
    assert code == 0
    assert shot.stat().st_size > 10000
    plots = {p["kind"]: p for p in json.loads(state.read_text())["plots"]}
    assert {"nyquist", "bode", "arrhenius", "chamber"} <= set(plots)
    assert [c["points_received"] for c in plots["nyquist"]["curves"]] == [59, 59]
    assert plots["nyquist"]["run_id"] == 1


def test_scripted_mode_refuses_a_bad_protocol_with_exit_2(tmp_path, capsys):
    from gui.app import ScriptedOptions, main
    code = main(simulate=True, options=ScriptedOptions(runs=[str(tmp_path / "missing.toml")],
                                                       quit_when_done=True))
    assert code == 2
    assert "missing.toml" in capsys.readouterr().err


# --- protocol editor ----------------------------------------------------------------------------
def _type(editor, path: str, text: str) -> None:
    widget = editor.field_widget(path)
    widget.setText(text)
    widget.textEdited.emit(text)
    editor.validate()  # what the typing pause does


def test_editor_validates_as_you_type_and_shows_each_problem_at_its_field(window, tmp_path):
    import tomllib

    from config.protocol import resolve_protocol_path
    editor = window.editor
    editor.open(resolve_protocol_path("onbh_conductivity"))
    assert editor.verdict.text() == "valid: 14 steps, expected 8:25:00"
    assert editor.queue_button.isEnabled()
    _type(editor, "steps[0].temperatures_c", "-10, 0, 300")
    _type(editor, "steps[0].soak_s", "an hour")
    temps, soak = editor.fields["steps[0].temperatures_c"], editor.fields["steps[0].soak_s"]
    assert "300.0 °C is outside the chamber's range" in temps.error.text()
    assert "valid number" in soak.error.text() and "an hour" in soak.error.text()
    assert editor.verdict.text().startswith("2 problem(s)")
    assert not editor.queue_button.isEnabled()
    assert not editor.fields["sample.id"].error.isVisible()
    _type(editor, "steps[0].temperatures_c", "20, 30")
    _type(editor, "steps[0].soak_s", "600")
    assert editor.verdict.text().startswith("valid: 4 steps")
    saved = editor.save(tmp_path / "edited.toml")
    data = tomllib.loads(saved.read_text())
    assert data["steps"][0]["temperatures_c"] == [20.0, 30.0] and data["steps"][0]["soak_s"] == 600
    editor.queue_button.click()
    assert window.queued_names() == ["onbh_conductivity"]
    assert window.queue.item(0).text().endswith("(edited.toml)")


def test_editor_form_comes_from_the_models_with_units():
    from gui.protocol_editor import unit_of
    assert unit_of("soak_s") == "s" and unit_of("temperature_c") == "°C"
    assert unit_of("cathode_loading_mg_per_cm2") == "mg/cm²" and unit_of("name") == ""


def test_closing_during_a_run_asks_then_aborts_it_safely(window, qtbot, monkeypatch, tmp_path, first_run_held):
    from PyQt6.QtWidgets import QMessageBox

    from config.protocol import resolve_protocol_path
    from storage.readers import list_runs
    answers = [QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes]
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or answers.pop(0))
    window.show()
    assert window.add_protocol(resolve_protocol_path("onbh_stability"))  # 30 simulated days
    started = []
    window.document.connect(lambda name, doc: name == "step_start" and started.append(doc))
    window.start_queue()
    qtbot.waitUntil(lambda: bool(started), timeout=30000)
    worker = window.worker
    assert not window.close() and window.isVisible() and worker.isRunning()  # "No": keeps running
    assert window.close()  # "Yes": abort, wait for the safe state, close
    assert len(asked) == 2 and worker.isFinished()
    runs = list_runs(window.db)
    assert runs.iloc[0]["status"] == "aborted"
