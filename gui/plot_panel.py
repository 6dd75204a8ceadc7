"""Plot building blocks: curves that keep every point they are given, time axes that switch to
hours, a cursor read-out, and the temperature colours of the reports.

A curve never drops data: it appends into a growing buffer and hands the whole record to
pyqtgraph, which draws it with peak downsampling and clip-to-view, so a 100-cycle run stays
whole on screen at the cost of a few pixels' work per redraw.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

HOURS_ABOVE_S = 3 * 3600.0  # a time axis spanning more than this is labelled in hours

# Dark text on white, as in the reports and on paper.
pg.setConfigOptions(background="w", foreground="k")


class GrowingArray:
    """A float array with amortised O(1) append (capacity doubles)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._data = np.empty(capacity, float)
        self.size = 0

    def extend(self, values) -> None:
        values = np.asarray(values, float).ravel()
        end = self.size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), float)
            grown[:self.size] = self._data[:self.size]
            self._data = grown
        self._data[self.size:end] = values
        self.size = end

    @property
    def values(self) -> np.ndarray:
        return self._data[:self.size]


class Curve:
    """One curve: every point received is kept; ``flush`` redraws it if anything arrived."""

    def __init__(self, item: pg.PlotDataItem, name: str) -> None:
        self.item = item
        self.name = name
        self.x = GrowingArray()
        self.y = GrowingArray()
        self.dirty = False

    def append(self, x, y) -> None:
        self.x.extend(x)
        self.y.extend(y)
        self.dirty = True

    def replace(self, x, y) -> None:
        self.x, self.y = GrowingArray(), GrowingArray()
        self.append(x, y)

    def flush(self) -> None:
        if self.dirty:
            self.item.setData(*self.display_data())
            self.dirty = False

    def display_data(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x.values, self.y.values

    @property
    def points_received(self) -> int:
        return self.x.size

    @property
    def points_shown(self) -> int:
        """Points pyqtgraph draws after downsampling and clipping to the view."""
        # getData() gives the data as set; the display dataset is what reaches the screen.
        shown = self.item._getDisplayDataset()
        return 0 if shown is None or shown.x is None else int(len(shown.x))

    def state(self) -> dict:
        return {"name": self.name, "points_shown": self.points_shown,
                "points_received": self.points_received}


class EnvelopeCurve(Curve):
    """A long record against time (x increasing, no gaps): while the view shows the whole record,
    pyqtgraph gets its min/max envelope, kept up to date as points arrive (each bucket of
    ``BUCKET`` points gives its lowest and highest point, in order), so a redraw costs the same
    at 10 k or 10 M points. Every extreme is drawn: the picture is that of the whole record. Once
    the user zooms in, the raw points are drawn (pyqtgraph clips them to the view)."""

    BUCKET = 32
    ENVELOPE_ABOVE = 20_000  # below this, the raw record is cheap enough

    def __init__(self, item: pg.PlotDataItem, name: str) -> None:
        super().__init__(item, name)
        self.env_x = GrowingArray()
        self.env_y = GrowingArray()
        self.enveloped = 0  # raw points already summarised in the envelope

    def replace(self, x, y) -> None:
        self.env_x, self.env_y, self.enveloped = GrowingArray(), GrowingArray(), 0
        super().replace(x, y)

    def display_data(self) -> tuple[np.ndarray, np.ndarray]:
        view = self.item.getViewBox()
        zoomed = view is not None and not view.autoRangeEnabled()[0]
        if self.x.size <= self.ENVELOPE_ABOVE or zoomed:
            return self.x.values, self.y.values
        self._extend_envelope()
        tail = slice(self.enveloped, self.x.size)
        return (np.concatenate([self.env_x.values, self.x.values[tail]]),
                np.concatenate([self.env_y.values, self.y.values[tail]]))

    def _extend_envelope(self) -> None:
        n = (self.x.size - self.enveloped) // self.BUCKET
        if n == 0:
            return
        span = slice(self.enveloped, self.enveloped + n * self.BUCKET)
        x = self.x.values[span].reshape(n, self.BUCKET)
        y = self.y.values[span].reshape(n, self.BUCKET)
        lo, hi = np.argmin(y, axis=1), np.argmax(y, axis=1)
        first, second = np.minimum(lo, hi), np.maximum(lo, hi)
        rows = np.arange(n)
        self.env_x.extend(np.column_stack([x[rows, first], x[rows, second]]))
        self.env_y.extend(np.column_stack([y[rows, first], y[rows, second]]))
        self.enveloped += n * self.BUCKET


class TimeAxis(pg.AxisItem):
    """A time axis in seconds that reads in hours once the view spans more than three hours."""

    def __init__(self, **kwargs) -> None:
        super().__init__("bottom", **kwargs)
        self._in_hours: bool | None = None

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph's name
        if maxVal - minVal <= HOURS_ABOVE_S:
            self._set_hours(False)
            return super().tickValues(minVal, maxVal, size)
        self._set_hours(True)
        ticks = super().tickValues(minVal / 3600.0, maxVal / 3600.0, size)
        return [(spacing * 3600.0, [v * 3600.0 for v in values]) for spacing, values in ticks]

    def tickStrings(self, values, scale, spacing):  # noqa: N802 - pyqtgraph's name
        if self._in_hours:
            return super().tickStrings([v / 3600.0 for v in values], scale, spacing / 3600.0)
        return super().tickStrings(values, scale, spacing)

    def _set_hours(self, hours: bool) -> None:
        if hours != self._in_hours:
            self._in_hours = hours
            self.setLabel("time / h" if hours else "time / s")


def temperature_colour(temperature_c: float | None, low_c: float, high_c: float):
    """Cold blue to warm red (matplotlib's coolwarm, as in the reports) over [low_c, high_c]."""
    from matplotlib import colormaps
    if temperature_c is None:
        return pg.mkColor("k")
    span = high_c - low_c
    r, g, b, _ = colormaps["coolwarm"](0.5 if span <= 0 else (temperature_c - low_c) / span)
    return pg.mkColor(int(255 * r), int(255 * g), int(255 * b))


def sequence_colour(index: int, count: int):
    """Colours for a sequence (cycles): viridis, as in the reports' cycle figures."""
    from matplotlib import colormaps
    r, g, b, _ = colormaps["viridis"](0.85 * index / max(count - 1, 1))
    return pg.mkColor(int(255 * r), int(255 * g), int(255 * b))


class PlotPanel(QWidget):
    """A titled figure of one kind: one or more stacked plots sharing a cursor read-out."""

    def __init__(self, kind: str, title: str, axes: list[tuple[str, str]], *, time_x: bool = False,
                 equal_axes: bool = False, log_x: bool = False, log_y_rows: tuple[int, ...] = (),
                 link_x: bool = True, parent=None) -> None:
        super().__init__(parent)
        self.kind = kind
        self.title = title
        self.curves: list[Curve] = []
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.layout_widget.setBackground("w")
        self.plots: list[pg.PlotItem] = []
        for row, (x_label, y_label) in enumerate(axes):
            axis = {"bottom": TimeAxis()} if time_x else {}
            plot = self.layout_widget.addPlot(row=row, col=0, axisItems=axis,
                                              title=title if row == 0 else None)
            if not time_x:
                plot.setLabel("bottom", x_label)
            plot.setLabel("left", y_label)
            plot.showGrid(x=True, y=True, alpha=1.0)
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                # An opaque light-grey grid at major ticks only: blended (alpha) grid lines and
                # minor ones made the repaint of a live plot three times slower.
                axis.setStyle(maxTickLevel=0)
                axis.setPen(pg.mkPen(215, 215, 215))
                axis.setTextPen(pg.mkPen("k"))
                axis.enableAutoSIPrefix(False)  # the unit is in the label
            plot.setLogMode(x=log_x, y=row in log_y_rows)
            # Whole records drawn at screen resolution: min/max per pixel column, and for records
            # in time only what is in view (set on the plot: it imposes its settings on every item
            # added). Not clipped elsewhere: a clipped curve's bounds are those of the view, so
            # "show all" could not find the rest of a spectrum.
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(time_x)
            plot.addLegend(offset=(-10, 10))
            if equal_axes:
                plot.setAspectLocked(True)  # a Nyquist plot is read by its angles
            if row and link_x:
                plot.setXLink(self.plots[0])
            self.plots.append(plot)
        self.readout = QLabel(" ")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget, 1)
        layout.addWidget(self.readout)
        self.layout_widget.scene().sigMouseMoved.connect(self._on_mouse)

    def add_curve(self, name: str, colour, *, row: int = 0, symbol: str | None = None,
                  width: float = 1.0, legend: bool = True, record: bool = False) -> Curve:
        """A curve on plot ``row``; ``record``: a long record in time order without gaps (see
        EnvelopeCurve)."""
        item = pg.PlotDataItem(pen=pg.mkPen(colour, width=width), symbol=symbol, symbolSize=5,
                               symbolBrush=colour, symbolPen=None, connect="finite",
                               name=name if legend else None)
        item.setSkipFiniteCheck(True)
        self.plots[row].addItem(item)
        curve = (EnvelopeCurve if record else Curve)(item, name)
        if record:
            # Zooming in or out switches between the envelope and the raw points.
            self.plots[row].vb.sigXRangeChanged.connect(lambda *_: setattr(curve, "dirty", True))
        self.curves.append(curve)
        return curve

    def flush(self) -> None:
        for curve in self.curves:
            curve.flush()

    def state(self, run_id) -> dict:
        return {"title": self.title, "kind": self.kind, "run_id": run_id,
                "curves": [c.state() for c in self.curves]}

    def _on_mouse(self, pos) -> None:
        for plot in self.plots:
            if plot.sceneBoundingRect().contains(pos):
                point = plot.vb.mapSceneToView(pos)
                x, y = point.x(), point.y()
                if plot.ctrl.logXCheck.isChecked():
                    x = 10 ** x
                if plot.ctrl.logYCheck.isChecked():
                    y = 10 ** y
                bottom = plot.getAxis("bottom")
                if isinstance(bottom, TimeAxis) and bottom._in_hours:
                    self.readout.setText(f"t = {x / 3600:.4g} h   y = {y:.5g}")
                else:
                    self.readout.setText(f"x = {x:.5g}   y = {y:.5g}")
                return
