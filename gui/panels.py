"""The left-hand panels of the main window: the station (identity and live readings) and the
progress of the run, both fed by the document stream."""
from __future__ import annotations

import numpy as np
from PyQt6.QtWidgets import QFormLayout, QGroupBox, QLabel, QProgressBar, QVBoxLayout

from config.documents import DocumentRouter, StreamRole, role_of
from procedures.progress import hms


def _wrapping_label(text: str = "—") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)  # long names and messages wrap instead of widening the panel
    return label


class StationPanel(QGroupBox, DocumentRouter):
    """Each instrument's identity and connection, and the readings the run reports: chamber
    temperature against its set point, potentiostat Ewe and I, cycler step and cycle."""

    def __init__(self, station_cfg, parent=None) -> None:
        QGroupBox.__init__(self, "Station", parent)
        c = station_cfg
        mode = "SIMULATED (virtual time)" if c.simulate else "real instruments"
        self.chamber = _wrapping_label()
        self.potentiostat = _wrapping_label()
        self.cycler = _wrapping_label()
        form = QFormLayout(self)
        form.addRow(_wrapping_label(f"<b>{c.station.name}</b> — {mode}"))
        form.addRow("Chamber:", _wrapping_label(
            f"{c.chamber.driver} via {c.chamber.transport} {c.chamber.address or ''} "
            f"({c.chamber.min_temperature_c:g} … {c.chamber.max_temperature_c:g} °C)"))
        form.addRow("", self.chamber)
        form.addRow("Potentiostat:", _wrapping_label(
            f"{c.potentiostat.model} ({c.potentiostat.board}) at {c.potentiostat.address}, "
            f"channel {c.potentiostat.channel}"))
        form.addRow("", self.potentiostat)
        form.addRow("Cycler:", _wrapping_label(f"{c.cycler.driver}, channel {c.cycler.channel}"))
        form.addRow("", self.cycler)
        self._roles: dict[str, StreamRole | None] = {}
        self._settling: dict | None = None  # the chamber step's stabilization criterion
        self.idle()

    def idle(self) -> None:
        self.chamber.setText("no run: no reading")
        self.potentiostat.setText("idle")
        self.cycler.setText("idle")

    def step_start(self, doc) -> None:
        stabilization = (doc.get("params") or {}).get("stabilization")
        self._settling = dict(stabilization, in_band_since=None) if stabilization else None

    def _settling_text(self, times_s, temps_c, setpoints_c) -> str:
        """Settling countdown: the dwell left once |T − set point| ≤ tolerance (s of clock time)."""
        crit = self._settling
        for t, temp, sp in zip(times_s, temps_c, setpoints_c):
            if abs(temp - sp) <= crit["tolerance_c"]:
                if crit["in_band_since"] is None:
                    crit["in_band_since"] = float(t)
            else:
                crit["in_band_since"] = None
        if crit["in_band_since"] is None:
            return f"settling: outside ±{crit['tolerance_c']:g} K"
        left = crit["dwell_s"] - (float(times_s[-1]) - crit["in_band_since"])
        return f"settled ({crit['dwell_s']:g} s within ±{crit['tolerance_c']:g} K)" if left <= 0 else \
            f"settling: {hms(left)} of dwell left within ±{crit['tolerance_c']:g} K"

    def descriptor(self, doc) -> None:
        self._roles[doc["descriptor_uid"]] = role_of(doc)
        role = self._roles[doc["descriptor_uid"]]
        if role in (StreamRole.EIS_SPECTRUM, StreamRole.CELL_EIS, StreamRole.LSV, StreamRole.DC_POLARIZATION):
            self.potentiostat.setText(f"running: {doc['stream']}")

    def event_page(self, doc) -> None:
        role, data = self._roles.get(doc["descriptor_uid"]), doc["data"]
        if role is StreamRole.CHAMBER_LOG:
            t, sp = float(data["temperature_c"][-1]), float(data["setpoint_c"][-1])
            text = f"T = {t:.1f} °C, set point {sp:.1f} °C (Δ {t - sp:+.1f} K)"
            if self._settling is not None:
                text += "\n" + self._settling_text(data["time_s"], data["temperature_c"], data["setpoint_c"])
            self.chamber.setText(text)
        elif role is StreamRole.CYCLING:
            self.cycler.setText(f"running: cycle {int(data['cycle'][-1])}, step {int(data['step'][-1])} "
                                f"({data['step_type'][-1]}), U = {float(data['voltage_v'][-1]):.3f} V, "
                                f"I = {float(data['current_a'][-1]) * 1e3:.3f} mA")
        elif "ewe_v" in data and "i_a" in data and len(data["ewe_v"]):
            self.potentiostat.setText(f"running: Ewe = {float(data['ewe_v'][-1]):.4f} V, "
                                      f"I = {float(data['i_a'][-1]) * 1e6:.3g} µA")
        elif role in (StreamRole.EIS_SPECTRUM, StreamRole.CELL_EIS):
            f = np.asarray(data["frequency_hz"], float)
            self.potentiostat.setText(f"running PEIS: f = {f[-1]:.4g} Hz")

    def step_stop(self, doc) -> None:
        self.potentiostat.setText("idle")
        self._settling = None

    def stop(self, doc) -> None:
        self.potentiostat.setText("idle")
        self.cycler.setText("idle")


class ProgressPanel(QGroupBox, DocumentRouter):
    """Step i of n, cycle k of N, elapsed and remaining time (instrument and wall in simulation)."""

    def __init__(self, parent=None) -> None:
        QGroupBox.__init__(self, "Progress", parent)
        self.run = _wrapping_label("no run")
        self.step = _wrapping_label("")
        self.cycle = QLabel("")
        self.timing = _wrapping_label("")
        self.state = QLabel("")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        layout = QVBoxLayout(self)
        for w in (self.run, self.step, self.cycle, self.timing, self.state, self.bar):
            layout.addWidget(w)
        self.simulated = False
        self.started_at: float | None = None
        self.last: dict | None = None

    def start(self, doc) -> None:
        self.simulated = bool(doc.get("simulated"))
        self.started_at = doc["time"]
        total = (doc.get("plan") or {}).get("expected_duration_s")
        self.run.setText(f"<b>{doc['protocol_name']}</b>, sample {doc['sample'].get('id')}"
                         + (f", expected {hms(total)}" if total else ""))
        self.bar.setValue(0)

    def progress(self, doc) -> None:
        self.last = doc
        self.step.setText(f"step {doc['step_index'] + 1} of {doc['n_steps']}: {doc.get('step_name', '')}")
        cycle = doc.get("cycle")
        self.cycle.setText(f"cycle {cycle} of {doc.get('n_cycles') or '?'}" if cycle is not None else "")
        timing = f"{hms(doc['elapsed_s'])} elapsed, {hms(doc.get('remaining_s'))} remaining"
        if self.simulated:
            timing += f" (instrument time; {doc['wall_elapsed_s']:.1f} s wall)"
        self.timing.setText(timing)
        state = doc.get("state") or "running"
        self.state.setText(state.upper() + (f": {doc['message']}" if doc.get("message") else ""))
        remaining = doc.get("remaining_s") or 0.0
        total = doc["elapsed_s"] + remaining
        self.bar.setValue(int(1000 * doc["elapsed_s"] / total) if total > 0 else 0)

    def stop(self, doc) -> None:
        self.state.setText(doc["status"].upper() + (f": {doc['reason']}" if doc.get("reason") else ""))
        if self.started_at is not None:
            clock = " (instrument time)" if self.simulated else ""
            self.timing.setText(f"ended after {hms(doc['time'] - self.started_at)}{clock}")
        if doc["status"] == "completed":
            self.bar.setValue(1000)
