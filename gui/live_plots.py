"""Live plots fed by the document stream: each stream role gets the plot that suits it."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QTabWidget

# role -> (x column, y column, y sign, title, x label, y label)
PLOTS = {
    "eis_spectrum": ("z_real_ohm", "z_imag_ohm", -1.0, "Nyquist", "Z' / Ω", "−Z'' / Ω"),
    "chamber_log": ("time_s", "temperature_c", 1.0, "Chamber", "time / s", "T / °C"),
    "lsv": ("ewe_v", "i_a", 1.0, "LSV", "E / V", "I / A"),
    "dc_polarization": ("time_s", "i_a", 1.0, "DC polarization", "time / s", "I / A"),
    "cycling": ("test_time_s", "voltage_v", 1.0, "Cycling", "time / s", "V / V"),
}

MAX_POINTS_SHOWN = 20000


class LivePlots(QTabWidget):
    """One tab per plot kind; one curve per stream, appended as event pages arrive."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._plots: dict[str, pg.PlotWidget] = {}
        self._curves: dict[str, dict] = {}

    def clear_run(self) -> None:
        for plot in self._plots.values():
            plot.clear()
        self._curves.clear()

    def on_document(self, name: str, doc: dict) -> None:
        if name == "start":
            self.clear_run()
        elif name == "descriptor":
            role = doc["metadata"].get("role")
            if role in PLOTS and all(c in doc["columns"] for c in PLOTS[role][:2]):
                self._add_curve(doc["descriptor_uid"], role, doc["stream"])
        elif name == "event_page" and doc["descriptor_uid"] in self._curves:
            entry = self._curves[doc["descriptor_uid"]]
            x_col, y_col, sign = PLOTS[entry["role"]][:3]
            entry["x"].append(np.asarray(doc["data"][x_col], float))
            entry["y"].append(sign * np.asarray(doc["data"][y_col], float))
            x = np.concatenate(entry["x"])[-MAX_POINTS_SHOWN:]
            y = np.concatenate(entry["y"])[-MAX_POINTS_SHOWN:]
            entry["x"], entry["y"] = [x], [y]
            entry["curve"].setData(x, y)

    def _plot_for(self, role: str) -> pg.PlotWidget:
        if role not in self._plots:
            _, _, _, title, xl, yl = PLOTS[role]
            plot = pg.PlotWidget(title=title)
            plot.setLabel("bottom", xl)
            plot.setLabel("left", yl)
            plot.addLegend()
            plot.showGrid(x=True, y=True, alpha=0.3)
            if role == "eis_spectrum":
                plot.setAspectLocked(True)  # a Nyquist plot is read by its angles
            self._plots[role] = plot
            self.addTab(plot, title)
        return self._plots[role]

    def _add_curve(self, uid: str, role: str, stream: str) -> None:
        plot = self._plot_for(role)
        color = pg.intColor(len([c for c in self._curves.values() if c["role"] == role]), hues=9)
        curve = plot.plot([], [], pen=pg.mkPen(color, width=1.5), symbol="o" if role == "eis_spectrum" else None,
                          symbolSize=4, symbolBrush=color, name=stream)
        self._curves[uid] = {"role": role, "curve": curve, "x": [], "y": []}
        if role != "chamber_log":
            # Show the measurement itself; the chamber log stays one click away.
            self.setCurrentWidget(plot)

    def curve_points(self, role: str) -> int:
        """Points currently shown for a role (used by tests and the status bar)."""
        return sum(len(c["x"][0]) if c["x"] else 0 for c in self._curves.values() if c["role"] == role)
