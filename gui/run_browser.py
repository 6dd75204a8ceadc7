"""Browse stored runs: search and filter the list, a run's results as tables, its streams plotted
(Nyquist right side up with equal axes), its report, an export, and an overlay of several runs.

A selected run that is still running, written by this process or any other station on the same
database, is followed (storage/follow.py): every ``FOLLOW_INTERVAL_MS`` its new points are
appended to the plotted curve and new streams offered, and when it ends its status and analysis
are shown."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer, QUrl
from PyQt6.QtGui import QDesktopServices
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                             QLineEdit, QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                             QTabWidget, QVBoxLayout, QWidget)

from config.documents import STREAM_ROLES, StreamRole
from config.documents import FINAL_STATUSES
from gui.result_tables import Table, result_tables

EIS_COLUMNS = ("z_real_ohm", "z_imag_ohm")
FOLLOW_INTERVAL_MS = 1000
"""How often a live run is polled: its points show within about a second of their commit."""


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
        self._curve = None
        self._follower = None
        self._live: dict[str, list[pd.DataFrame]] = {}
        """Points of the followed run by stream, as the polls delivered them."""
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(FOLLOW_INTERVAL_MS)
        self.follow_timer.timeout.connect(self.poll_live_run)

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
        from storage.follow import RunFollower
        from storage.liveness import effective_status
        from storage.readers import get_run
        run_id = self.selected_run_id()
        if run_id is None:
            return
        self.follow_timer.stop()
        self._follower, self._live = None, {}
        run = self._run = get_run(self.db, run_id)
        live_streams = []
        if effective_status(run["status"], run.get("updated_at")) == "running":
            self._follower = RunFollower(self.db, run_id)
            first = self._follower.poll()
            self._take(first)
            live_streams = [info.name for info in first.new_streams]
            self.follow_timer.start()
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
        self._add_streams(live_streams)  # any that appeared between the two reads
        self.stream_box.blockSignals(False)
        self._plot_stream(self.stream_box.currentText())

    def result_table(self, index: int) -> QTableWidget:
        return self.results.widget(index)

    def _plot_stream(self, name: str) -> None:
        from storage.readers import read_stream
        run_id = self.selected_run_id()
        if not name or run_id is None:
            return
        self._frame = self._live_frame(name) if self._follower is not None \
            else read_stream(self.db, run_id, name)
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
            self._curve = None
        if self._frame is None or not x or not y:
            return
        nyquist = (x, y) == EIS_COLUMNS
        y_values = self._frame[y].to_numpy(float)
        if nyquist:
            y_values = -y_values  # −Z'' upwards, as a Nyquist plot is read
        n = len(self.plot.getPlotItem().listDataItems())
        colour = pg.intColor(n, hues=8, maxValue=200)
        name = f"run {self.selected_run_id()}: {self.stream_box.currentText()}"
        self._curve = self.plot.plot(self._frame[x].to_numpy(float), y_values,
                                     pen=pg.mkPen(colour, width=1.5),
                                     symbol="o" if nyquist else None, symbolSize=4,
                                     symbolBrush=colour, name=name)
        self.plot.setLabel("bottom", x)
        self.plot.setLabel("left", f"−{y}" if nyquist else y)
        self.plot.setAspectLocked(nyquist)
        self.plot.getPlotItem().setDownsampling(auto=True, mode="peak")
        self.plot.getPlotItem().setClipToView(True)
        self.plot.autoRange()
        # and keep following the data (a live run's new points) until the user pans or zooms
        self.plot.enableAutoRange()

    # --- a live run ------------------------------------------------------------------------------
    @property
    def following(self) -> bool:
        return self.follow_timer.isActive()

    def poll_live_run(self) -> None:
        """Append what was committed since the last poll; when the run has ended, show it as
        stored (status, analysis) and stop polling."""
        if self._follower is None:
            self.follow_timer.stop()
            return
        run_id = self._follower.run_id
        update = self._follower.poll()
        self._take(update)
        if update.ended:
            self.follow_timer.stop()
            self._follower = None
            for i in range(self.table.rowCount()):
                if self.table.item(i, 0).text() == str(run_id):
                    self.table.item(i, 2).setText(update.status)
            self._show_selected()
            return
        self._add_streams([info.name for info in update.new_streams])
        name = self.stream_box.currentText()
        if name in update.points:
            self._frame = self._live_frame(name)
            self._extend_curve()

    def _add_streams(self, names: list[str]) -> None:
        for name in names:
            if self.stream_box.findText(name) < 0:
                self.stream_box.addItem(name)

    def _take(self, update) -> None:
        for name, frame in update.points.items():
            self._live.setdefault(name, []).append(frame)

    def _live_frame(self, name: str) -> pd.DataFrame:
        parts = self._live.get(name) or []
        if len(parts) > 1:  # one frame from then on: the next poll appends to it
            self._live[name] = parts = [pd.concat(parts)]
        if parts:
            return parts[0]
        from storage.readers import read_stream
        return read_stream(self.db, self._follower.run_id, name)  # empty: its columns

    def _extend_curve(self) -> None:
        x, y = self.x_box.currentText(), self.y_box.currentText()
        if self._curve is None or x not in self._frame or y not in self._frame:
            self._replot()
            return
        y_values = self._frame[y].to_numpy(float)
        if (x, y) == EIS_COLUMNS:
            y_values = -y_values
        self._curve.setData(self._frame[x].to_numpy(float), y_values)

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
