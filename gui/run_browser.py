"""Browse stored runs: the list, a run's analysis, and any of its streams plotted."""
from __future__ import annotations

import pyqtgraph as pg
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSplitter,
                             QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)
from PyQt6.QtCore import Qt

from procedures.jsonout import dumps


class RunBrowser(QWidget):
    COLUMNS = ["run", "protocol", "status", "started (UTC)"]

    def __init__(self, db, parent=None) -> None:
        super().__init__(parent)
        self.db = db
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._show_selected)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        self.details = QPlainTextEdit(readOnly=True)
        self.stream_box = QComboBox()
        self.stream_box.currentTextChanged.connect(self._plot_stream)
        self.x_box, self.y_box = QComboBox(), QComboBox()
        self.x_box.currentTextChanged.connect(lambda _: self._replot())
        self.y_box.currentTextChanged.connect(lambda _: self._replot())
        self.plot = pg.PlotWidget()
        self._frame = None

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(refresh)
        lv.addWidget(self.table)
        right = QWidget()
        rv = QVBoxLayout(right)
        row = QHBoxLayout()
        for label, box in (("stream", self.stream_box), ("x", self.x_box), ("y", self.y_box)):
            row.addWidget(QLabel(label))
            row.addWidget(box)
        rv.addLayout(row)
        rv.addWidget(self.plot, 3)
        rv.addWidget(self.details, 2)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        QVBoxLayout(self).addWidget(split)

    def refresh(self) -> None:
        from storage.readers import list_runs
        runs = list_runs(self.db)
        self.table.setRowCount(len(runs))
        for i, r in enumerate(runs.itertuples()):
            for j, value in enumerate((r.run_id, r.protocol, r.status, r.started_at)):
                self.table.setItem(i, j, QTableWidgetItem(str(value)))

    def selected_run_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return int(self.table.item(rows[0].row(), 0).text()) if rows else None

    def _show_selected(self) -> None:
        from storage.readers import get_run
        run_id = self.selected_run_id()
        if run_id is None:
            return
        run = get_run(self.db, run_id)
        lines = [f"run {run_id}: {run['protocol_name']} — {run['status']}",
                 f"sample: {dumps(run.get('sample'), indent=None)}"]
        if run.get("reason"):
            lines.append(f"reason: {run['reason']}")
        for a in run.get("analysis", []):
            lines.append(f"analysis {a['name']}:\n{dumps(a['result'])}")
        self.details.setPlainText("\n".join(lines))
        self.stream_box.blockSignals(True)
        self.stream_box.clear()
        self.stream_box.addItems([s["name"] for s in run.get("streams", [])])
        self.stream_box.blockSignals(False)
        self._plot_stream(self.stream_box.currentText())

    def _plot_stream(self, name: str) -> None:
        from storage.readers import read_stream
        run_id = self.selected_run_id()
        if not name or run_id is None:
            return
        self._frame = read_stream(self.db, run_id, name)
        numeric = [c for c in self._frame.columns if self._frame[c].dtype.kind in "fi"]
        for box, default in ((self.x_box, 0), (self.y_box, 1)):
            box.blockSignals(True)
            box.clear()
            box.addItems(numeric)
            box.setCurrentIndex(min(default, len(numeric) - 1))
            box.blockSignals(False)
        self._replot()

    def _replot(self) -> None:
        self.plot.clear()
        x, y = self.x_box.currentText(), self.y_box.currentText()
        if self._frame is None or not x or not y:
            return
        self.plot.plot(self._frame[x].to_numpy(float), self._frame[y].to_numpy(float),
                       pen=pg.mkPen("c", width=1.5), symbol="o", symbolSize=3)
        self.plot.setLabel("bottom", x)
        self.plot.setLabel("left", y)
