"""The main window: station, queue and progress on the left; live plots and stored runs on the right.

The queue runs one protocol after another. Pause waits at the run's next safe point; Abort ends
the current run and stops the queue, which then asks whether to go on; "Stop after this run" lets
the current run finish and stops there.
"""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (QCheckBox, QFileDialog, QGridLayout, QLabel, QListWidget, QListWidgetItem,
                             QMainWindow, QMessageBox, QPlainTextEdit, QPushButton, QSplitter,
                             QTabWidget, QVBoxLayout, QWidget)

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, load_protocol
from gui.live_plots import LivePlots
from gui.panels import ProgressPanel, StationPanel
from gui.protocol_editor import ProtocolEditor
from gui.run_browser import RunBrowser
from gui.run_worker import RunWorker

LEFT_PANEL_MAX_PX = 380  # long messages wrap; they never widen the panel


class MainWindow(QMainWindow):
    """Queue protocol files, run them one after another, watch them live, browse stored runs."""

    queue_finished = pyqtSignal()
    """The queue has nothing left to run (or stopped): no run in progress."""
    document = pyqtSignal(str, object)
    """Every document of every run, after the window has shown it."""

    def __init__(self, station_cfg, db=None) -> None:
        super().__init__()
        self.setWindowTitle("cellbench")
        self.station_cfg = station_cfg
        self.db = db
        self.worker: RunWorker | None = None
        self.last_result: dict | None = None
        self.results: list[dict] = []
        self.operator_dialog: QMessageBox | None = None
        self.continue_dialog: QMessageBox | None = None
        self.report_dir = None
        self.queue_halted = False

        self.queue = QListWidget()
        self.queue.setWordWrap(True)
        self.add_button = QPushButton("Add protocol…")
        self.add_button.clicked.connect(self._choose_protocol)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button = QPushButton("Move up")
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button = QPushButton("Move down")
        self.down_button.clicked.connect(lambda: self.move_selected(+1))
        self.start_button = QPushButton("Start queue")
        self.start_button.clicked.connect(self.start_queue)
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Pause at the run's next safe point (between steps or cycles)")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.abort_button = QPushButton("Abort run")
        self.abort_button.setToolTip("End the current run now (instruments to their safe state); "
                                     "the queue stops and asks what to do")
        self.abort_button.clicked.connect(self.abort)
        self.stop_after_box = QCheckBox("Stop after this run")
        self.status = QLabel("idle")
        self.status.setWordWrap(True)
        self.log = QPlainTextEdit(readOnly=True)
        self.station_panel = StationPanel(station_cfg)
        self.progress_panel = ProgressPanel()

        left = QWidget()
        left.setMaximumWidth(LEFT_PANEL_MAX_PX)
        lv = QVBoxLayout(left)
        lv.addWidget(self.station_panel)
        lv.addWidget(QLabel("<b>Protocol queue</b>"))
        lv.addWidget(self.queue, 1)
        grid = QGridLayout()
        for i, b in enumerate((self.add_button, self.remove_button, self.up_button, self.down_button,
                               self.start_button, self.pause_button, self.abort_button)):
            grid.addWidget(b, i // 4, i % 4)
        grid.addWidget(self.stop_after_box, 2, 0, 1, 4)
        lv.addLayout(grid)
        lv.addWidget(self.status)
        lv.addWidget(self.progress_panel)
        lv.addWidget(self.log, 1)

        self.plots = LivePlots()
        self.browser = RunBrowser(db)
        self.editor = ProtocolEditor(station_cfg)
        self.editor.queue_requested.connect(self.queue_protocol)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Live")
        self.tabs.addTab(self.browser, "Runs")
        self.tabs.addTab(self.editor, "Protocol editor")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 3)
        self.setCentralWidget(split)
        self.resize(1400, 900)
        self._update_buttons()
        self.browser.refresh()

    # --- queue ----------------------------------------------------------------------------------
    def _choose_protocol(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Protocol file", str(PROTOCOL_DIR), "TOML (*.toml)")
        if path:
            self.add_protocol(path)

    def add_protocol(self, path) -> bool:
        """Validate and queue a protocol; a bad file is shown with every problem, not queued."""
        try:
            protocol = load_protocol(path, self.station_cfg)
        except ConfigError as exc:
            if self.isVisible():
                QMessageBox.warning(self, "Protocol refused", str(exc))
            self._say(str(exc))
            return False
        self.queue_protocol(protocol, str(path))
        return True

    def queue_protocol(self, protocol, source: str) -> None:
        item = QListWidgetItem(f"{protocol.protocol.name}  ({Path(source).name})")
        item.setData(Qt.ItemDataRole.UserRole, (protocol, source))
        self.queue.addItem(item)
        self._update_buttons()

    def queued_names(self) -> list[str]:
        return [self.queue.item(i).data(Qt.ItemDataRole.UserRole)[0].protocol.name
                for i in range(self.queue.count())]

    def remove_selected(self) -> None:
        row = self.queue.currentRow()
        if row >= 0:
            self.queue.takeItem(row)
        self._update_buttons()

    def move_selected(self, delta: int) -> None:
        row = self.queue.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.queue.count():
            return
        item = self.queue.takeItem(row)
        self.queue.insertItem(target, item)
        self.queue.setCurrentRow(target)

    def start_queue(self) -> None:
        """Start (or go on with) the queue from its first protocol."""
        self.queue_halted = False
        self.start_next()

    def start_next(self) -> None:
        if self.worker is not None or self.queue.count() == 0:
            self._update_buttons()
            return
        item = self.queue.takeItem(0)
        protocol, source = item.data(Qt.ItemDataRole.UserRole)
        self.worker = RunWorker(protocol, self.station_cfg, self.db, source, report_dir=self.report_dir)
        self.worker.document.connect(self._on_document)
        self.worker.operator_request.connect(self._on_operator_request)
        self.worker.finished_run.connect(self._on_finished)
        self.status.setText(f"running {protocol.protocol.name}")
        self.tabs.setCurrentWidget(self.plots)
        self.worker.start()
        self._update_buttons()

    def toggle_pause(self) -> None:
        if self.worker is None:
            return
        if self.pause_button.text() == "Pause":
            self.worker.pause()
            self.pause_button.setText("Resume")
            self._say("pause requested: the run stops at its next safe point")
        else:
            self.worker.resume()
            self.pause_button.setText("Pause")
            self._say("resumed")

    def abort(self) -> None:
        """Abort the current run; the queue does not go on by itself."""
        if self.worker is not None:
            self.queue_halted = True
            self.worker.abort()

    def _update_buttons(self) -> None:
        running = self.worker is not None
        self.start_button.setEnabled(not running and self.queue.count() > 0)
        self.pause_button.setEnabled(running)
        self.abort_button.setEnabled(running)
        if not running:
            self.pause_button.setText("Pause")

    # --- documents ------------------------------------------------------------------------------
    def _on_document(self, name: str, doc: dict) -> None:
        self.plots.on_document(name, doc)
        self.station_panel(name, doc)
        self.progress_panel(name, doc)
        if name == "step_start":
            self._say(f"step {doc['step_index']}: {doc['name'] or doc['kind']}")
        elif name == "analysis":
            self._say(f"analysis {doc['name']} ready")
        elif name == "progress" and doc.get("state") == "paused":
            self.status.setText(f"paused: {doc.get('message', '')}")
        self.document.emit(name, doc)

    def _on_operator_request(self, request, answer) -> None:
        """The run waits for the operator: a non-modal dialog, so Abort stays usable."""
        box = QMessageBox(QMessageBox.Icon.Information, "Operator action needed", request.message,
                          QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
        box.button(QMessageBox.StandardButton.Ok).setText("Done")
        box.button(QMessageBox.StandardButton.Cancel).setText("Cannot do it")
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.finished.connect(lambda code: answer(code == QMessageBox.StandardButton.Ok.value))
        self.operator_dialog = box
        self._say(f"operator: {request.message.splitlines()[0]}")
        box.open()

    def _close_operator_dialog(self) -> None:
        box, self.operator_dialog = self.operator_dialog, None
        if box is not None and box.isVisible():
            box.finished.disconnect()
            box.reject()

    def _on_finished(self, result: dict) -> None:
        self._close_operator_dialog()
        self.last_result = result
        self.results.append(result)
        self.worker.wait()
        self.worker = None
        if self.plots.current is not None and self.plots.current.run_id is None:
            self.plots.current.run_id = result.get("run_id")
        self.plots.flush()
        reason = f" — {result['reason']}" if result.get("reason") else ""
        self.status.setText(f"run {result.get('run_id')}: {result['status']}{reason}")
        self._say(self.status.text())
        self.browser.refresh()
        self._update_buttons()
        if self.queue.count() == 0:
            self.queue_finished.emit()
        elif self.queue_halted:
            self._ask_whether_to_continue()
        elif self.stop_after_box.isChecked():
            self.stop_after_box.setChecked(False)
            self._say(f"queue stopped after this run as asked; {self.queue.count()} waiting")
            self.queue_finished.emit()
        else:
            self.start_next()

    def _ask_whether_to_continue(self) -> None:
        """After an abort the queue waits: the operator chooses to go on or to stay stopped."""
        box = QMessageBox(QMessageBox.Icon.Question, "Queue stopped",
                          f"The run was aborted. {self.queue.count()} protocol(s) are still queued.\n"
                          "Start the next one now?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.button(QMessageBox.StandardButton.Yes).setText("Start next")
        box.button(QMessageBox.StandardButton.No).setText("Keep stopped")
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.finished.connect(self._on_continue_answer)
        self.continue_dialog = box
        self._say(f"queue stopped after the abort; {self.queue.count()} waiting")
        self.queue_finished.emit()
        box.open()

    def _on_continue_answer(self, code: int) -> None:
        self.continue_dialog = None
        if code == QMessageBox.StandardButton.Yes.value:
            self.start_queue()

    def _say(self, text: str) -> None:
        self.log.appendPlainText(text)

    def closeEvent(self, event) -> None:
        """Closing during a run asks first, then aborts the run and waits for the safe state."""
        if self.worker is not None:
            if self.isVisible() and QMessageBox.question(
                    self, "A run is in progress",
                    "Abort the run (instruments go to their safe state) and close?") \
                    != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.queue_halted = True
            self.worker.abort()
            self.worker.wait(30000)
        super().closeEvent(event)
