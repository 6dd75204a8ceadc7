"""Live plots fed by the document stream: the figures an experimentalist reads during a run.

Each run gets a :class:`RunPlots` (a tab per figure, created when its first stream arrives); a
:class:`RunPlotFeeder` routes the run's documents into it. EIS spectra become Nyquist and Bode
curves coloured by temperature, and each finished spectrum is fitted at once so the Arrhenius plot
fills in temperature by temperature; cycling records become V–t, V–Q per cycle, dQ/dV and capacity
and CE per cycle. Curves keep every point (see gui/plot_panel.py); redraws are batched on a timer.
"""
from __future__ import annotations

import logging
import math

import numpy as np
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QTabWidget,
                             QVBoxLayout, QWidget)

from config.documents import STREAM_ROLES, DocumentRouter, StreamRole, role_of
from gui.plot_panel import PlotPanel, sequence_colour, temperature_colour

log = logging.getLogger(__name__)

REDRAW_INTERVAL_MS = 100
EIS_ROLES = (StreamRole.EIS_SPECTRUM, StreamRole.CELL_EIS)
DQDV_CYCLES = (1, 2, 5, 10, 20, 50, 100)  # dQ/dV of the first cycles, then every decade or so


class RunPlots(QTabWidget):
    """The figures of one run, a tab each, created on demand in a fixed, readable order."""

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.run_id: int | None = None
        self.panels: dict[str, PlotPanel] = {}
        self.measurement_shown = False
        self.follow_high_frequency = True  # the Nyquist view goes to each new fit's region
        self.hf_limits_ohm: list[float] = []  # resistances read from the fitted spectra

    def panel(self, kind: str) -> PlotPanel:
        if kind not in self.panels:
            self.panels[kind] = self._make(kind)
            index = self.addTab(self._wrap(kind), self.panels[kind].title)
            if kind != "chamber" and not self.measurement_shown:
                # Show the measurement itself; the chamber log stays one click away.
                self.setCurrentIndex(index)
                self.measurement_shown = True
        return self.panels[kind]

    def _wrap(self, kind: str) -> QWidget:
        panel = self.panels[kind]
        if kind != "nyquist":
            return panel
        # One click to the high-frequency region where the pellet's resistance is read.
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.zoom_hf_button = QPushButton("Zoom to high frequency")
        self.zoom_hf_button.clicked.connect(self.zoom_high_frequency)
        whole = QPushButton("Whole spectra")
        whole.clicked.connect(self.show_whole_spectra)
        row.addWidget(self.zoom_hf_button)
        row.addWidget(whole)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addWidget(panel)
        return box

    @staticmethod
    def _make(kind: str) -> PlotPanel:
        eis = STREAM_ROLES[StreamRole.EIS_SPECTRUM]
        if kind == "nyquist":
            return PlotPanel(kind, "Nyquist", [(eis.x_label, eis.y_label)], equal_axes=True)
        if kind == "bode":
            return PlotPanel(kind, "Bode", [("f / Hz", "|Z| / Ω"), ("f / Hz", "−phase / °")], log_x=True,
                             log_y_rows=(0,))
        if kind == "arrhenius":
            return PlotPanel(kind, "Arrhenius", [("1000 / T / K⁻¹", "log₁₀ σ / S cm⁻¹")])
        if kind == "chamber":
            chamber = STREAM_ROLES[StreamRole.CHAMBER_LOG]
            return PlotPanel(kind, chamber.title, [("time", chamber.y_label)], time_x=True)
        if kind == "voltage_time":
            cycling = STREAM_ROLES[StreamRole.CYCLING]
            return PlotPanel(kind, "Voltage–time", [("time", cycling.y_label)], time_x=True)
        if kind == "voltage_capacity":
            return PlotPanel(kind, "Voltage–capacity", [("Q / mAh", "U / V")])
        if kind == "dqdv":
            return PlotPanel(kind, "dQ/dV", [("U / V", "dQ/dV / mAh V⁻¹")])
        if kind == "cold_discharge":
            return PlotPanel(kind, "Discharge per temperature", [("Q / mAh", "U / V")])
        if kind == "capacity_cycle":
            return PlotPanel(kind, "Capacity and CE", [("cycle", "Q / mAh"), ("cycle", "CE / %")])
        if kind == "lsv":
            return PlotPanel(kind, "LSV", [("E / V", "j / µA cm⁻²")])
        if kind == "dc_polarization":
            # The current falls by decades to its electronic plateau: read on a log scale.
            return PlotPanel(kind, "DC polarization", [("time", "I / µA")], time_x=True, log_y_rows=(0,))
        raise KeyError(kind)

    def flush(self) -> None:
        for panel in self.panels.values():
            panel.flush()

    def state(self) -> list[dict]:
        self.flush()
        return [panel.state(self.run_id) for panel in self.panels.values()]

    def show_whole_spectra(self) -> None:
        self.follow_high_frequency = False
        plot = self.panels["nyquist"].plots[0]
        plot.autoRange()
        plot.enableAutoRange()  # and keep following the spectra as they grow

    def spectrum_fitted(self) -> None:
        if self.follow_high_frequency:
            self.zoom_high_frequency()

    def zoom_high_frequency(self) -> None:
        """Show Z' from 0 to a little beyond the largest resistance read so far (or, before any
        fit, the real part where −Z'' is lowest between the arcs and the electrode spike)."""
        panel = self.panels.get("nyquist")
        if panel is None or not panel.curves:
            return
        self.follow_high_frequency = True
        limits = self.hf_limits_ohm
        if not limits:
            limits = [_valley_real_ohm(c.x.values, c.y.values) for c in panel.curves if c.x.size > 2]
        if limits:
            top = 1.25 * max(limits)
            panel.plots[0].setRange(xRange=(0.0, top), yRange=(0.0, 0.6 * top), padding=0.02)


def _valley_real_ohm(z_real_ohm: np.ndarray, minus_z_imag_ohm: np.ndarray) -> float:
    """Z' at the lowest −Z'' after the first arc's apex: where a blocking-electrode spectrum
    turns from the pellet's arc(s) into the electrode spike."""
    apex = int(np.nanargmax(minus_z_imag_ohm))
    valley = apex + int(np.nanargmin(minus_z_imag_ohm[apex:]))
    return float(z_real_ohm[valley]) if z_real_ohm[valley] > 0 else float(np.nanmax(z_real_ohm))


class _Stream:
    """What the feeder remembers of one stream of the run."""

    def __init__(self, role: StreamRole, name: str, metadata: dict) -> None:
        self.role = role
        self.name = name
        self.metadata = metadata
        self.x_offset = 0.0
        self.offset_known = False
        self.closed = False
        self.columns: dict[str, list[np.ndarray]] = {}
        self.curves: dict[str, object] = {}
        self.temperatures_c: list[float] = []

    def keep(self, data: dict, names) -> None:
        for n in names:
            if n in data:
                self.columns.setdefault(n, []).append(np.asarray(data[n]))

    def column(self, name: str) -> np.ndarray:
        chunks = self.columns.get(name)
        return np.concatenate(chunks) if chunks else np.empty(0)


class RunPlotFeeder(DocumentRouter):
    """Routes one run's documents into its :class:`RunPlots`."""

    def __init__(self, plots: RunPlots) -> None:
        self.plots = plots
        self.streams: dict[str, _Stream] = {}
        self.sample: dict = {}
        self.time_end: dict[str, float] = {}  # per time-axis figure: where the last stream ended
        self.chamber_temperature_c: float | None = None
        self.chamber_setpoint_c: float | None = None
        self.spectra: list[dict] = []  # fitted spectra, for the Arrhenius plot
        self.eis_temperatures_c: list[float] = []
        self.cycling = _CyclingFeed(plots)
        self._onset_line = None

    # --- documents ------------------------------------------------------------------------------
    def start(self, doc) -> None:
        self.sample = doc.get("sample") or {}

    def descriptor(self, doc) -> None:
        role = role_of(doc)
        if role is None or not all(c in doc["columns"] for c in STREAM_ROLES[role].required_columns):
            return
        for other in self.streams.values():
            if other.role == role and not other.closed and role is not StreamRole.CHAMBER_LOG:
                self._finish(other)
        stream = _Stream(role, doc["stream"], doc.get("metadata") or {})
        self.streams[doc["descriptor_uid"]] = stream
        if role in EIS_ROLES:
            self._open_spectrum(stream)
        elif role is StreamRole.CHAMBER_LOG:
            panel = self.plots.panel("chamber")
            stream.curves = {"temperature_c": panel.add_curve("temperature", "r", width=1.5, record=True),
                             "setpoint_c": panel.add_curve("set point", "b", record=True)}
        elif role is StreamRole.CYCLING:
            self.cycling.open(stream)
        elif role is StreamRole.LSV:
            stream.curves["lsv"] = self.plots.panel("lsv").add_curve(stream.name, "b", width=1.5)
        elif role is StreamRole.DC_POLARIZATION:
            self.plots.panel("dc_polarization")

    def event_page(self, doc) -> None:
        stream = self.streams.get(doc["descriptor_uid"])
        if stream is None:
            return
        data = doc["data"]
        if stream.role in EIS_ROLES:
            self._spectrum_rows(stream, data)
        elif stream.role is StreamRole.CHAMBER_LOG:
            t = np.asarray(data["time_s"], float)
            for name, curve in stream.curves.items():
                curve.append(t, data[name])
            self.chamber_temperature_c = float(data["temperature_c"][-1])
            self.chamber_setpoint_c = float(data["setpoint_c"][-1])
            for s in self.streams.values():
                if s.role in EIS_ROLES and not s.closed:
                    s.temperatures_c.extend(np.asarray(data["temperature_c"], float).tolist())
        elif stream.role is StreamRole.CYCLING:
            self.cycling.rows(stream, data, self._time_x(stream, "voltage_time", data["test_time_s"]))
        elif stream.role is StreamRole.LSV:
            stream.keep(data, ("ewe_v", "i_a"))
            stream.curves["lsv"].append(data["ewe_v"], np.asarray(data["i_a"], float) / self._area_cm2() * 1e6)
        elif stream.role is StreamRole.DC_POLARIZATION:
            self._dcpol_rows(stream, data)

    def step_stop(self, doc) -> None:
        for stream in self.streams.values():
            if not stream.closed and stream.role is not StreamRole.CHAMBER_LOG:
                self._finish(stream)

    def analysis(self, doc) -> None:
        result = doc.get("result") or {}
        arrhenius = result.get("arrhenius") or {}
        if arrhenius.get("total"):
            self._draw_arrhenius_fit(arrhenius["total"])
        if "lsv" in self.plots.panels and "onset_threshold_v" in result:
            self._draw_onset(result)

    def stop(self, doc) -> None:
        for stream in self.streams.values():
            if not stream.closed:
                self._finish(stream)
        self.plots.flush()

    # --- time axes: the streams of one run never overlap -----------------------------------------
    def _time_x(self, stream: _Stream, kind: str, t) -> np.ndarray:
        t = np.asarray(t, float)
        if not stream.offset_known and len(t):
            end = self.time_end.get(kind)
            # A stream whose clock restarts at 0 (a cycler program, a technique) follows the last,
            # one sample interval after it.
            if end is not None and t[0] <= end:
                step = float(t[1] - t[0]) if len(t) > 1 and t[1] > t[0] else 1.0
                stream.x_offset = end - float(t[0]) + step
            stream.offset_known = True
        x = t + stream.x_offset
        if len(x):
            self.time_end[kind] = max(self.time_end.get(kind, -math.inf), float(x[-1]))
        return x

    # --- EIS --------------------------------------------------------------------------------------
    def _open_spectrum(self, stream: _Stream) -> None:
        temperature = stream.metadata.get("setpoint_c", self.chamber_setpoint_c)
        stream.metadata["colour_temperature_c"] = temperature
        if temperature is not None:
            self.eis_temperatures_c.append(float(temperature))
        name = f"{temperature:g} °C" if temperature is not None else stream.name
        nyquist, bode = self.plots.panel("nyquist"), self.plots.panel("bode")
        if stream.role is StreamRole.EIS_SPECTRUM:
            self.plots.panel("arrhenius")  # a pellet's conductivity; a cell's EIS has none
        stream.curves = {"nyquist": nyquist.add_curve(name, "k", symbol="o"),
                         "modulus": bode.add_curve(f"|Z| {name}", "k", symbol="o"),
                         "phase": bode.add_curve(f"phase {name}", "k", row=1, symbol="o", legend=False)}
        self._recolour_spectra()

    def _recolour_spectra(self) -> None:
        if not self.eis_temperatures_c:
            return
        low, high = min(self.eis_temperatures_c), max(self.eis_temperatures_c)
        for stream in self.streams.values():
            if stream.role in EIS_ROLES:
                colour = temperature_colour(stream.metadata.get("colour_temperature_c"), low, high)
                for curve in stream.curves.values():
                    curve.item.setPen(colour, width=1.5)
                    curve.item.setSymbolBrush(colour)

    def _spectrum_rows(self, stream: _Stream, data: dict) -> None:
        stream.keep(data, ("frequency_hz", "z_real_ohm", "z_imag_ohm"))
        f = np.asarray(data["frequency_hz"], float)
        zr, zi = np.asarray(data["z_real_ohm"], float), np.asarray(data["z_imag_ohm"], float)
        stream.curves["nyquist"].append(zr, -zi)
        stream.curves["modulus"].append(f, np.hypot(zr, zi))
        stream.curves["phase"].append(f, -np.degrees(np.arctan2(zi, zr)))

    def _fit_spectrum(self, stream: _Stream) -> None:
        from analysis.eis import EisInputError, analyze_spectrum
        thickness, diameter = self.sample.get("thickness_um"), self.sample.get("diameter_mm")
        f = stream.column("frequency_hz")
        if stream.role is not StreamRole.EIS_SPECTRUM or not thickness or not diameter or len(f) < 5:
            return
        temps = stream.temperatures_c
        temperature = float(np.mean(temps)) if temps else stream.metadata.get("colour_temperature_c")
        try:
            result = analyze_spectrum(f, stream.column("z_real_ohm"), stream.column("z_imag_ohm"),
                                      thickness, diameter, temperature, stream.name)
        except EisInputError as exc:
            log.warning("live fit of %s: %s", stream.name, exc)
            return
        resistance = result.get("r_total_ohm") or result.get("r_bulk_ohm")
        if resistance:
            self.plots.hf_limits_ohm.append(resistance)
        self.plots.spectrum_fitted()
        if result.get("sigma_total_s_per_cm") and temperature is not None:
            self.spectra.append(result)
            self._draw_arrhenius_points()

    def _draw_arrhenius_points(self) -> None:
        panel = self.plots.panel("arrhenius")
        if not panel.curves:
            panel.add_curve("σ total", "b", symbol="o", width=0)
            panel.curves[0].item.setPen(None)
        t_k = np.array([r["temperature_c"] for r in self.spectra]) + 273.15
        sigma = np.array([r["sigma_total_s_per_cm"] for r in self.spectra])
        panel.curves[0].replace(1000.0 / t_k, np.log10(sigma))
        if len(set(np.round(t_k, 6))) >= 2:  # a fit needs two distinct temperatures
            from analysis.arrhenius import fit_arrhenius
            self._draw_arrhenius_fit(fit_arrhenius(t_k - 273.15, sigma))

    def _draw_arrhenius_fit(self, fit: dict) -> None:
        from analysis.arrhenius import arrhenius_sigma_s_per_cm
        panel = self.plots.panel("arrhenius")
        if len(panel.curves) < 2:
            panel.add_curve("fit", "r", width=1.5)
        t_c = np.linspace(fit["t_min_c"], fit["t_max_c"], 50)
        sigma = arrhenius_sigma_s_per_cm(t_c, fit["ea_ev"], fit["prefactor_s_k_per_cm"])
        panel.curves[1].replace(1000.0 / (t_c + 273.15), np.log10(sigma))
        panel.curves[1].name = f"fit: Ea = {fit['ea_ev']:.3f} eV"
        panel.plots[0].setTitle(f"Arrhenius — Ea = {fit['ea_ev']:.3f} eV ({fit['n_points']} points)")

    # --- LSV and DC polarization ----------------------------------------------------------------
    def _area_cm2(self) -> float:
        from analysis.physics import disc_area_cm2
        if self.sample.get("area_cm2"):
            return float(self.sample["area_cm2"])
        return disc_area_cm2(float(self.sample.get("diameter_mm") or 10.0))

    def _mark_lsv_onset(self, stream: _Stream) -> None:
        from analysis.lsv import analyze_lsv
        threshold = stream.metadata.get("threshold_a_per_cm2") or 10e-6
        try:
            result = analyze_lsv(stream.column("ewe_v"), stream.column("i_a"), self._area_cm2(), threshold)
        except ValueError as exc:
            log.warning("live LSV onset of %s: %s", stream.name, exc)
            return
        self._draw_onset(result)

    def _draw_onset(self, result: dict) -> None:
        """The threshold onset as a vertical line (the run's own analysis replaces the live one)."""
        import pyqtgraph as pg
        plot = self.plots.panel("lsv").plots[0]
        if self._onset_line is not None:
            plot.removeItem(self._onset_line)
            self._onset_line = None
        onset = result.get("onset_threshold_v")
        if onset is None:
            plot.setTitle("LSV — no onset within the sweep")
            return
        self._onset_line = pg.InfiniteLine(onset, angle=90, pen=pg.mkPen("r", width=1.5, style=2),
                                           label=f"onset {onset:.3f} V",
                                           labelOpts={"position": 0.9, "color": "r"})
        plot.addItem(self._onset_line)
        plot.setTitle(f"LSV — onset {onset:.3f} V")

    def _dcpol_rows(self, stream: _Stream, data: dict) -> None:
        panel = self.plots.panel("dc_polarization")
        x = self._time_x(stream, "dc_polarization", data["time_s"])
        steps = np.asarray(data["step"])
        i_ua = np.asarray(data["i_a"], float) * 1e6
        setpoints = np.asarray(data["setpoint_v"], float)
        for step in dict.fromkeys(steps.tolist()):
            sel = steps == step
            if step not in stream.curves:
                colour = sequence_colour(len(stream.curves), 8)
                stream.curves[step] = panel.add_curve(f"{setpoints[sel][0]:g} V", colour, width=1.5,
                                                      record=True)
            stream.curves[step].append(x[sel], i_ua[sel])

    # --- end of a stream --------------------------------------------------------------------------
    def _finish(self, stream: _Stream) -> None:
        stream.closed = True
        if stream.role in EIS_ROLES:
            self._fit_spectrum(stream)
        elif stream.role is StreamRole.CYCLING:
            self.cycling.close(stream)
        elif stream.role is StreamRole.LSV:
            self._mark_lsv_onset(stream)


class _CyclingFeed:
    """Cycling records into V–t, V–Q per cycle, dQ/dV of chosen cycles and capacity/CE per cycle.

    Capacities are the cycler's (capacity_ah restarts at each step): a half cycle's capacity is
    the sum over its steps of each step's largest |Q|.
    """

    def __init__(self, plots: RunPlots) -> None:
        self.plots = plots
        self.vq_curves: dict[int, object] = {}
        self.per_cycle: dict[int, dict[str, float]] = {}
        self.cycle_rows: dict[int, list[dict]] = {}
        self.last_step: int | None = None
        self.current_cycle: int | None = None
        self.cold_step: int | None = None
        self.cold_curves: list = []

    def open(self, stream: _Stream) -> None:
        stream.curves["vt"] = self.plots.panel("voltage_time").add_curve(stream.name, "b", record=True)
        for kind in ("voltage_capacity", "dqdv", "capacity_cycle"):
            self.plots.panel(kind)
        self.last_step = None

    def rows(self, stream: _Stream, data: dict, x: np.ndarray) -> None:
        stream.curves["vt"].append(x, data["voltage_v"])
        cycles = np.asarray(data["cycle"], int)
        steps = np.asarray(data["step"], int)
        voltage = np.asarray(data["voltage_v"], float)
        q_mah = np.abs(np.asarray(data["capacity_ah"], float)) * 1e3
        kinds = np.asarray(data["step_type"]).astype(str)
        # Split the page where the cycle or step changes; each piece is one step of one cycle.
        cuts = np.flatnonzero((np.diff(cycles) != 0) | (np.diff(steps) != 0)) + 1
        for piece in np.split(np.arange(len(cycles)), cuts):
            if not len(piece):
                continue
            cycle, step, kind = int(cycles[piece[0]]), int(steps[piece[0]]), kinds[piece[0]]
            if self.current_cycle is not None and cycle != self.current_cycle:
                self._cycle_done(self.current_cycle)
            self.current_cycle = cycle
            curve = self._vq_curve(cycle)
            if self.last_step is not None and step != self.last_step:
                curve.append([np.nan], [np.nan])  # a new step starts its own line
            self.last_step = step
            curve.append(q_mah[piece], voltage[piece])
            rows = self.cycle_rows.setdefault(cycle, [])
            if not rows or rows[-1]["step"] != step:
                rows.append({"step": step, "kind": kind, "v": [], "q": []})
            rows[-1]["v"].append(voltage[piece])
            rows[-1]["q"].append(q_mah[piece])
            if stream.metadata.get("phase") == "cold_discharge" and "discharge" in kind:
                self._cold_discharge(stream, step, q_mah[piece], voltage[piece])

    def _cold_discharge(self, stream: _Stream, step: int, q_mah, voltage) -> None:
        """The k-th discharge of the cold-discharge protocol is the one at temperatures_c[k]."""
        if step != self.cold_step:
            self.cold_step = step
            temps = [float(t) for t in stream.metadata.get("temperatures_c") or []]
            k = len(self.cold_curves)
            t = temps[k] if k < len(temps) else None
            colour = temperature_colour(t, min(temps), max(temps)) if temps else "k"
            name = f"{t:g} °C" if t is not None else f"discharge {k + 1}"
            self.cold_curves.append(self.plots.panel("cold_discharge").add_curve(name, colour, width=1.5))
        self.cold_curves[-1].append(q_mah, voltage)

    def close(self, stream: _Stream) -> None:
        if self.current_cycle is not None:
            self._cycle_done(self.current_cycle)
            self.current_cycle = None

    def _vq_curve(self, cycle: int):
        if cycle not in self.vq_curves:
            panel = self.plots.panel("voltage_capacity")
            # Colours run over 100 cycles (the usual test); later cycles keep the last colour.
            self.vq_curves[cycle] = panel.add_curve(f"cycle {cycle}", sequence_colour(min(cycle, 100) - 1, 100),
                                                    legend=cycle in DQDV_CYCLES)
        return self.vq_curves[cycle]

    def _cycle_done(self, cycle: int) -> None:
        rows = self.cycle_rows.pop(cycle, [])
        charge = sum(float(np.max(np.concatenate(r["q"]))) for r in rows if "discharge" not in r["kind"]
                     and "charge" in r["kind"])
        discharge = sum(float(np.max(np.concatenate(r["q"]))) for r in rows if "discharge" in r["kind"])
        self.per_cycle[cycle] = {"charge": charge, "discharge": discharge}
        if cycle in DQDV_CYCLES:
            self._dqdv(cycle, rows)
        self._draw_capacity()

    def _dqdv(self, cycle: int, rows: list[dict]) -> None:
        from analysis.dqdv import DqdvInputError, dqdv
        panel = self.plots.panel("dqdv")
        colour = sequence_colour(DQDV_CYCLES.index(cycle), len(DQDV_CYCLES))
        curve = None
        for row in rows:
            if not row["kind"].startswith("cc_"):
                continue  # dQ/dV of a constant-current segment only: CV and rests have no meaning here
            direction = "discharge" if "discharge" in row["kind"] else "charge"
            try:
                result = dqdv(np.concatenate(row["v"]), np.concatenate(row["q"]) / 1e3, direction=direction)
            except (DqdvInputError, ValueError) as exc:
                log.info("dQ/dV of cycle %s %s skipped: %s", cycle, direction, exc)
                continue
            if curve is None:
                curve = panel.add_curve(f"cycle {cycle}", colour, width=1.5)
            else:
                curve.append([np.nan], [np.nan])
            curve.append(result["voltage_v"], np.asarray(result["dqdv_ah_per_v"]) * 1e3)

    def _draw_capacity(self) -> None:
        panel = self.plots.panel("capacity_cycle")
        if not panel.curves:
            panel.add_curve("charge", "r", symbol="o")
            panel.add_curve("discharge", "b", symbol="o")
            panel.add_curve("CE", "k", row=1, symbol="o")
        cycles = sorted(self.per_cycle)
        charge = np.array([self.per_cycle[c]["charge"] for c in cycles])
        discharge = np.array([self.per_cycle[c]["discharge"] for c in cycles])
        with np.errstate(divide="ignore", invalid="ignore"):
            ce = np.where(charge > 0, 100.0 * discharge / charge, np.nan)
        panel.curves[0].replace(cycles, charge)
        panel.curves[1].replace(cycles, discharge)
        panel.curves[2].replace(cycles, ce)


class LivePlots(QWidget):
    """The Live tab: the plots of the session's runs, newest shown, earlier ones a choice away."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.runs: list[RunPlots] = []
        self.feeder: RunPlotFeeder | None = None
        self.chooser = QComboBox()
        self.chooser.currentIndexChanged.connect(lambda i: self.stack.setCurrentIndex(i))
        self.stack = QStackedWidget()
        top = QHBoxLayout()
        top.addWidget(QLabel("run"))
        top.addWidget(self.chooser, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    @property
    def current(self) -> RunPlots | None:
        return self.runs[-1] if self.runs else None

    def on_document(self, name: str, doc: dict) -> None:
        if name == "start":
            plots = RunPlots(doc.get("protocol_name", "run"))
            self.runs.append(plots)
            self.stack.addWidget(plots)
            self.chooser.addItem(f"{len(self.runs)}: {plots.title}")
            self.chooser.setCurrentIndex(len(self.runs) - 1)
            self.feeder = RunPlotFeeder(plots)
        if self.feeder is not None:
            self.feeder(name, doc)

    def _tick(self) -> None:
        if self.isVisible():
            self.flush()

    def flush(self) -> None:
        """Hand what arrived since the last redraw to the current run's plots."""
        if self.current is not None:
            self.current.flush()

    def state(self) -> dict:
        """The scripted mode's record of every plot of the session (see gui/app.py)."""
        return {"plots": [p for run in self.runs for p in run.state()]}

    def curve_points(self, kind: str) -> int:
        """Points received by the current run's curves of one figure kind."""
        panel = self.current.panels.get(kind) if self.current else None
        return sum(c.points_received for c in panel.curves) if panel else 0
