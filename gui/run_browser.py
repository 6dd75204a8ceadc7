"""Browse stored runs: search and filter the list, a run's results as tables, its streams plotted
(Nyquist right side up with equal axes), its report, an export, and an overlay of several runs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                             QLineEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                             QTabWidget, QVBoxLayout, QWidget)

from config.documents import STREAM_ROLES, StreamRole
from config.documents import FINAL_STATUSES
from gui.result_tables import Table, result_tables

EIS_COLUMNS = ("z_real_ohm", "z_imag_ohm")


def _table_widget(table: Table) -> QTableWidget:
    widget = QTableWidget(len(table.rows), len(table.columns))
    widget.setHorizontalHeaderLabels(table.columns)
    widget.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for i, row in enumerate(table.rows):
        for j, value in enumerate(row):
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            widget.setItem(i, j, item)
    widget.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    widget.setWordWrap(True)
    return widget


class RunBrowser(QWidget):
    COLUMNS = ["run", "protocol", "status", "started (UTC)", "reason"]

    def __init__(self, db, parent=None) -> None:
        super().__init__(parent)
        self.db = db
        self.search = QLineEdit()
        self.search.setPlaceholderText("search protocol, status, reason…")
        self.search.textChanged.connect(self.apply_filter)
        self.status_filter = QComboBox()
        self.status_filter.addItems(["all", *FINAL_STATUSES, "running", "interrupted"])
        self.status_filter.currentTextChanged.connect(self.apply_filter)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._show_selected)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)

        self.summary = QLabel("select a run")
        self.summary.setWordWrap(True)  # a long failure message wraps; it never widens the panel
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.results = QTabWidget()
        self.stream_box = QComboBox()
        self.stream_box.currentTextChanged.connect(self._plot_stream)
        self.x_box, self.y_box = QComboBox(), QComboBox()
        self.x_box.currentTextChanged.connect(lambda _: self._replot())
        self.y_box.currentTextChanged.connect(lambda _: self._replot())
        self.overlay = QCheckBox("overlay")
        self.overlay.setToolTip("Keep the curves shown and add the next run's or stream's")
        self.report_button = QPushButton("Open report")
        self.report_button.clicked.connect(self.open_report)
        self.reanalyse_button = QPushButton("Re-analyse")
        self.reanalyse_button.setToolTip("Run the protocol's analysis again on the stored data "
                                         "(shown beside the stored results, not stored)")
        self.reanalyse_button.clicked.connect(self.reanalyse)
        self.export_button = QPushButton("Export…")
        self.export_button.clicked.connect(self._choose_export_dir)
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.addLegend()
        self._frame = None
        self._run: dict | None = None

        left = QWidget()
        lv = QVBoxLayout(left)
        row = QHBoxLayout()
        row.addWidget(self.search, 1)
        row.addWidget(self.status_filter)
        row.addWidget(refresh)
        lv.addLayout(row)
        lv.addWidget(self.table)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.addWidget(self.summary)
        row = QHBoxLayout()
        for label, box in (("stream", self.stream_box), ("x", self.x_box), ("y", self.y_box)):
            row.addWidget(QLabel(label))
            row.addWidget(box, 1)
        row.addWidget(self.overlay)
        row.addWidget(self.report_button)
        row.addWidget(self.reanalyse_button)
        row.addWidget(self.export_button)
        rv.addLayout(row)
        split_right = QSplitter(Qt.Orientation.Vertical)
        split_right.addWidget(self.plot)
        split_right.addWidget(self.results)
        rv.addWidget(split_right, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 2)
        QVBoxLayout(self).addWidget(split)

    # --- the list -------------------------------------------------------------------------------
    def refresh(self) -> None:
        from storage.readers import list_runs
        runs = list_runs(self.db)
        self.table.setRowCount(len(runs))
        for i, r in enumerate(runs.itertuples()):
            for j, value in enumerate((r.run_id, r.protocol, r.status, r.started_at, r.reason or "")):
                item = QTableWidgetItem(str(value))
                item.setToolTip(str(value))
                self.table.setItem(i, j, item)
        self.apply_filter()

    def apply_filter(self) -> None:
        words = self.search.text().lower().split()
        status = self.status_filter.currentText()
        for i in range(self.table.rowCount()):
            cells = [self.table.item(i, j).text() for j in range(self.table.columnCount())]
            text = " ".join(cells).lower()
            hidden = (status != "all" and cells[2] != status) or not all(w in text for w in words)
            self.table.setRowHidden(i, hidden)

    def visible_run_ids(self) -> list[int]:
        return [int(self.table.item(i, 0).text()) for i in range(self.table.rowCount())
                if not self.table.isRowHidden(i)]

    def selected_run_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return int(self.table.item(rows[0].row(), 0).text()) if rows else None

    # --- one run --------------------------------------------------------------------------------
    def _show_selected(self) -> None:
        from storage.readers import get_run
        run_id = self.selected_run_id()
        if run_id is None:
            return
        run = self._run = get_run(self.db, run_id)
        sample = run.get("sample") or {}
        text = (f"<b>run {run_id}: {run['protocol_name']}</b> — {run['status']}"
                f"{' (simulated)' if run.get('simulated') else ''}; sample {sample.get('id', '?')}; "
                f"{run.get('started_at')} → {run.get('ended_at') or '…'}")
        if run.get("reason"):
            text += f"<br>reason: {run['reason']}"
        self.summary.setText(text)
        self.results.clear()
        for analysis in run.get("analysis", []):
            for table in result_tables(analysis["name"], analysis["result"]):
                self.results.addTab(_table_widget(table), table.title)
        self.stream_box.blockSignals(True)
        self.stream_box.clear()
        self.stream_box.addItems([s["name"] for s in run.get("streams", [])])
        self.stream_box.blockSignals(False)
        self._plot_stream(self.stream_box.currentText())

    def result_table(self, index: int) -> QTableWidget:
        return self.results.widget(index)

    def _plot_stream(self, name: str) -> None:
        from storage.readers import read_stream
        run_id = self.selected_run_id()
        if not name or run_id is None:
            return
        self._frame = read_stream(self.db, run_id, name)
        numeric = [c for c in self._frame.columns if self._frame[c].dtype.kind in "fi" and c != "seq"]
        x_default, y_default = self._default_axes(name, numeric)
        for box, default in ((self.x_box, x_default), (self.y_box, y_default)):
            box.blockSignals(True)
            box.clear()
            box.addItems(numeric)
            box.setCurrentText(default)
            box.blockSignals(False)
        self._replot()

    def _default_axes(self, name: str, numeric: list[str]) -> tuple[str, str]:
        """The view its role suits (Nyquist for a spectrum), else the first two numeric columns."""
        role = self._role(name)
        if role is not None:
            info = STREAM_ROLES[role]
            if info.x in numeric and info.y in numeric:
                return info.x, info.y
        return (numeric[0] if numeric else ""), (numeric[1] if len(numeric) > 1 else "")

    def _role(self, name: str) -> StreamRole | None:
        for stream in (self._run or {}).get("streams", []):
            if stream["name"] == name:
                try:
                    return StreamRole((stream.get("metadata") or {}).get("role"))
                except ValueError:
                    return None
        return None

    def _replot(self) -> None:
        x, y = self.x_box.currentText(), self.y_box.currentText()
        if not self.overlay.isChecked():
            self.plot.clear()
        if self._frame is None or not x or not y:
            return
        nyquist = (x, y) == EIS_COLUMNS
        y_values = self._frame[y].to_numpy(float)
        if nyquist:
            y_values = -y_values  # −Z'' upwards, as a Nyquist plot is read
        n = len(self.plot.getPlotItem().listDataItems())
        colour = pg.intColor(n, hues=8, maxValue=200)
        name = f"run {self.selected_run_id()}: {self.stream_box.currentText()}"
        self.plot.plot(self._frame[x].to_numpy(float), y_values, pen=pg.mkPen(colour, width=1.5),
                       symbol="o" if nyquist else None, symbolSize=4, symbolBrush=colour, name=name)
        self.plot.setLabel("bottom", x)
        self.plot.setLabel("left", f"−{y}" if nyquist else y)
        self.plot.setAspectLocked(nyquist)
        self.plot.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.plot.getPlotItem().setClipToView(True)
        self.plot.autoRange()

    def plotted_curves(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [item.getData() for item in self.plot.getPlotItem().listDataItems()]

    def reanalyse(self) -> None:
        from gui.reanalysis import reanalyse
        run_id = self.selected_run_id()
        if run_id is None:
            return
        for name, result in reanalyse(self.db, run_id).items():
            for table in result_tables(f"re-analysed {name}", result):
                self.results.addTab(_table_widget(table), table.title)

    # --- report and export ----------------------------------------------------------------------
    def report_path(self) -> Path | None:
        from procedures.service import PROJECT_ROOT
        run_id = self.selected_run_id()
        if run_id is None:
            return None
        path = PROJECT_ROOT / "reports" / f"run_{run_id}" / "report.md"
        return path if path.exists() else None

    def open_report(self) -> None:
        path = self.report_path()
        if path is None:
            self.summary.setText(self.summary.text() + "<br>no report for this run in "
                                 f"reports/run_{self.selected_run_id()}/")
            return
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _choose_export_dir(self) -> None:
        out = QFileDialog.getExistingDirectory(self, "Export the run's streams to")
        if out:
            self.export(out)

    def export(self, out_dir, fmt: str = "csv") -> list[Path]:
        from storage.export import export
        run_id = self.selected_run_id()
        if run_id is None:
            return []
        paths = export(self.db, run_id, out_dir, fmt)
        self.summary.setText(self.summary.text() + f"<br>exported {len(paths)} file(s) to {out_dir}")
        return paths
