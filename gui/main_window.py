"""The main window: station panel and protocol queue on the left, live plots and runs on the right."""
from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem,
                             QMainWindow, QMessageBox, QPlainTextEdit, QPushButton, QSplitter,
                             QTabWidget, QVBoxLayout, QWidget)

from config.errors import ConfigError
from config.protocol import PROTOCOL_DIR, load_protocol
from gui.live_plots import LivePlots
from gui.run_browser import RunBrowser
from gui.run_worker import RunWorker


class StationPanel(QPlainTextEdit):
    def __init__(self, station_cfg) -> None:
        super().__init__(readOnly=True)
        c = station_cfg
        mode = "SIMULATED (virtual time)" if c.simulate else "real instruments"
        self.setPlainText(
            f"{c.station.name}\n{mode}\n\n"
            f"Chamber: {c.chamber.driver} via {c.chamber.transport} {c.chamber.address or ''}\n"
            f"  range {c.chamber.min_temperature_c:g} … {c.chamber.max_temperature_c:g} °C\n"
            f"Potentiostat: {c.potentiostat.model} ({c.potentiostat.board}) at "
            f"{c.potentiostat.address}, ch {c.potentiostat.channel}\n"
            f"Cycler: {c.cycler.driver}, ch {c.cycler.channel}")
        self.setMaximumHeight(160)


class MainWindow(QMainWindow):
    """Queue protocol files, run them one after another, watch them live, browse stored runs."""

    def __init__(self, station_cfg, db=None) -> None:
        super().__init__()
        self.setWindowTitle("cellbench")
        self.station_cfg = station_cfg
        self.db = db
        self.worker: RunWorker | None = None
        self.last_result: dict | None = None
        self.operator_dialog: QMessageBox | None = None
        self.report_dir = None

        self.queue = QListWidget()
        add = QPushButton("Add protocol…")
        add.clicked.connect(self._choose_protocol)
        self.start_button = QPushButton("Start queue")
        self.start_button.clicked.connect(self.start_next)
        self.abort_button = QPushButton("Abort run")
        self.abort_button.setEnabled(False)
        self.abort_button.clicked.connect(self.abort)
        self.status = QLabel("idle")
        self.log = QPlainTextEdit(readOnly=True)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(QLabel("Station"))
        lv.addWidget(StationPanel(station_cfg))
        lv.addWidget(QLabel("Protocol queue"))
        lv.addWidget(self.queue)
        buttons = QHBoxLayout()
        for b in (add, self.start_button, self.abort_button):
            buttons.addWidget(b)
        lv.addLayout(buttons)
        lv.addWidget(self.status)
        lv.addWidget(self.log)

        self.plots = LivePlots()
        self.browser = RunBrowser(db)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Live")
        self.tabs.addTab(self.browser, "Runs")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 3)
        self.setCentralWidget(split)
        self.resize(1300, 800)
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
            QMessageBox.warning(self, "Protocol refused", str(exc)) if self.isVisible() else None
            self._say(str(exc))
            return False
        item = QListWidgetItem(f"{protocol.protocol.name}  ({Path(path).name})")
        item.setData(Qt.ItemDataRole.UserRole, (protocol, str(path)))
        self.queue.addItem(item)
        return True

    def start_next(self) -> None:
        if self.worker is not None or self.queue.count() == 0:
            return
        item = self.queue.takeItem(0)
        protocol, source = item.data(Qt.ItemDataRole.UserRole)
        self.worker = RunWorker(protocol, self.station_cfg, self.db, source, report_dir=self.report_dir)
        self.worker.document.connect(self._on_document)
        self.worker.operator_request.connect(self._on_operator_request)
        self.worker.finished_run.connect(self._on_finished)
        self.abort_button.setEnabled(True)
        self.start_button.setEnabled(False)
        self.status.setText(f"running {protocol.protocol.name}")
        self.worker.start()

    def abort(self) -> None:
        if self.worker is not None:
            self.worker.abort()

    # --- documents ------------------------------------------------------------------------------
    def _on_document(self, name: str, doc: dict) -> None:
        self.plots.on_document(name, doc)
        if name == "step_start":
            self._say(f"step {doc['step_index']}: {doc['name'] or doc['kind']}")
        elif name == "analysis":
            self._say(f"analysis {doc['name']} ready")

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
        self.worker.wait()
        self.worker = None
        self.abort_button.setEnabled(False)
        self.start_button.setEnabled(True)
        reason = f" — {result['reason']}" if result.get("reason") else ""
        self.status.setText(f"run {result.get('run_id')}: {result['status']}{reason}")
        self._say(self.status.text())
        self.browser.refresh()
        if self.queue.count():
            self.start_next()

    def _say(self, text: str) -> None:
        self.log.appendPlainText(text)

    def closeEvent(self, event) -> None:
        if self.worker is not None:
            self.worker.abort()
            self.worker.wait(10000)
        super().closeEvent(event)
