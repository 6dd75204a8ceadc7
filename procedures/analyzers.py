"""Analysis at the end of a run, fed by the run's documents (never by re-reading instruments).

An analyzer subscribes when the run starts, keeps the streams it cares about, and at the end
computes its result and emits an ``analysis`` document, which storage records with the run.
"""
from __future__ import annotations

import numpy as np

from analysis.eis import analyze_eis_series


class StreamCollector:
    """Collects the event pages of streams whose descriptor metadata has a given role."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.streams: dict[str, dict] = {}
        self._by_uid: dict[str, dict] = {}
        self.step_summaries: dict[int, dict] = {}
        self._unsubscribe = None

    def attach(self, stream) -> None:
        self.streams.clear()
        self._by_uid.clear()
        self.step_summaries.clear()
        stream.subscribe(self)
        self._unsubscribe = lambda: stream.unsubscribe(self)

    def detach(self) -> None:
        if self._unsubscribe:
            self._unsubscribe()
            self._unsubscribe = None

    def __call__(self, name: str, doc: dict) -> None:
        if name == "descriptor" and doc["metadata"].get("role") == self.role:
            entry = {"name": doc["stream"], "step_index": doc["step_index"],
                     "metadata": doc["metadata"], "pages": []}
            self.streams[doc["stream"]] = entry
            self._by_uid[doc["descriptor_uid"]] = entry
        elif name == "event_page" and doc["descriptor_uid"] in self._by_uid:
            self._by_uid[doc["descriptor_uid"]]["pages"].append(doc["data"])
        elif name == "step_stop":
            self.step_summaries[doc["step_index"]] = doc["summary"]

    def columns(self, stream_name: str) -> dict[str, np.ndarray]:
        pages = self.streams[stream_name]["pages"]
        if not pages:
            return {}
        return {k: np.concatenate([np.asarray(p[k]) for p in pages]) for k in pages[0]}


class EisAnalyzer:
    """σ per spectrum and the Arrhenius fit, for runs with PEIS spectra of a pellet."""

    name = "eis"

    def __init__(self) -> None:
        self.collector = StreamCollector("eis_spectrum")
        self.protocol = None

    def attach(self, stream, protocol) -> None:
        self.protocol = protocol
        self.collector.attach(stream)

    def spectra(self) -> list[dict]:
        out = []
        for name, entry in self.collector.streams.items():
            cols = self.collector.columns(name)
            if len(cols.get("frequency_hz", ())) < 8:
                continue
            summary = self.collector.step_summaries.get(entry["step_index"], {})
            out.append({"label": name, "frequency_hz": cols["frequency_hz"],
                        "z_real_ohm": cols["z_real_ohm"], "z_imag_ohm": cols["z_imag_ohm"],
                        "temperature_c": summary.get("temperature_c")})
        return out

    def finish(self, emit, run_uid: str) -> dict | None:
        self.collector.detach()
        spectra = self.spectra()
        if not spectra:
            return None
        sample = self.protocol.sample
        result = analyze_eis_series(spectra, sample.thickness_um, sample.diameter_mm)
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None,
                          "result": result})
        return result


class LsvAnalyzer:
    """Onset of oxidation or reduction of each LSV sweep; the stability window."""

    name = "lsv"

    def __init__(self) -> None:
        self.collector = StreamCollector("lsv")
        self.protocol = None

    def attach(self, stream, protocol) -> None:
        self.protocol = protocol
        self.collector.attach(stream)

    def finish(self, emit, run_uid: str) -> dict | None:
        from analysis.lsv import analyze_lsv
        self.collector.detach()
        results = []
        for name, entry in self.collector.streams.items():
            cols = self.collector.columns(name)
            if len(cols.get("ewe_v", ())) < 10:
                continue
            result = analyze_lsv(cols["ewe_v"], cols["i_a"], self.protocol.sample.area_cm2,
                                 threshold_a_per_cm2=entry["metadata"]["threshold_a_per_cm2"],
                                 time_s=cols["time_s"])
            results.append({"stream": name, **result})
        if not results:
            return None
        result = results[0] if len(results) == 1 else {"sweeps": results}
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None, "result": result})
        return result


class DcpolAnalyzer:
    """Steady current per voltage step and σe from the I–V slope."""

    name = "dcpol"

    def __init__(self) -> None:
        self.collector = StreamCollector("dc_polarization")
        self.protocol = None

    def attach(self, stream, protocol) -> None:
        self.protocol = protocol
        self.collector.attach(stream)

    def finish(self, emit, run_uid: str) -> dict | None:
        from analysis.dcpol import analyze_dcpol
        self.collector.detach()
        if not self.collector.streams:
            return None
        name, entry = next(iter(self.collector.streams.items()))
        cols = self.collector.columns(name)
        if len(cols.get("time_s", ())) < 3:
            return None
        sample = self.protocol.sample
        meta = entry["metadata"]
        # The set voltage, not the measured Ewe, identifies the steps (Ewe carries noise).
        result = analyze_dcpol(cols["time_s"], cols["setpoint_v"], cols["i_a"], sample.thickness_um,
                               sample.diameter_mm, drift_criterion_per_h=meta["drift_criterion_per_h"],
                               window_s=meta["drift_window_s"],
                               sigma_ion_s_per_cm=sample.ionic_conductivity_s_per_cm,
                               step=cols["step"])
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None, "result": result})
        return result


def _records_frame(collector: StreamCollector, name: str):
    import pandas as pd
    return pd.DataFrame(collector.columns(name))


class CyclingAnalyzer:
    """Capacities, CE, ICE, retention per cycle of the run's cycling program(s)."""

    name = "cycling"

    def __init__(self) -> None:
        self.collector = StreamCollector("cycling")
        self.protocol = None

    def attach(self, stream, protocol) -> None:
        self.protocol = protocol
        self.collector.attach(stream)

    def program_records(self, phase: str = "program"):
        """Records of every stream of the given phase, cycles renumbered to run on across
        programs (a second program's cycle 1 follows the first program's last cycle)."""
        import pandas as pd
        frames, offset = [], 0
        for name, entry in self.collector.streams.items():
            if entry["metadata"].get("phase") != phase:
                continue
            df = _records_frame(self.collector, name)
            if df.empty:
                continue
            df["cycle"] = df["cycle"] + offset
            offset = int(df["cycle"].max())
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else None

    def _summary(self, df) -> dict:
        from analysis.cycling import summarize_cycles
        cell = self.protocol.cell
        df = df.rename(columns={"test_time_s": "time_s"})
        df["time_s"] = _continuous_time(df["time_s"].to_numpy())
        return summarize_cycles(df, mass_mg=cell.active_mass_mg, area_cm2=cell.area_cm2)

    def finish(self, emit, run_uid: str) -> dict | None:
        self.collector.detach()
        df = self.program_records()
        if df is None:
            return None
        result = self._summary(df)
        cell = self.protocol.cell
        if cell.kind == "full" and cell.cathode_loading_mg_per_cm2:
            # PAPER.md protocol 8: what this loading means at the level of a stacked cell.
            from analysis.cell_capacity import effective_cell_capacity
            result["effective_cell_capacity"] = effective_cell_capacity(cell.cathode_loading_mg_per_cm2, "sn")
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None, "result": result})
        return result


def _continuous_time(t):
    """Test time restarts at 0 with each program: make it run on, for Ah-counting across them."""
    import numpy as np
    t = np.asarray(t, float).copy()
    restarts = np.flatnonzero(np.diff(t) < 0)
    for k in restarts:
        t[k + 1:] += t[k] - t[k + 1]
    return t


class SymmetricAnalyzer(CyclingAnalyzer):
    """Overpotential per half cycle of a symmetric cell."""

    name = "symmetric"

    def finish(self, emit, run_uid: str) -> dict | None:
        from analysis.symmetric import symmetric_overpotential
        self.collector.detach()
        df = self.program_records()
        if df is None:
            return None
        df = df.rename(columns={"test_time_s": "time_s"})
        df["time_s"] = _continuous_time(df["time_s"].to_numpy())
        result = symmetric_overpotential(df)
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None, "result": result})
        return result


class ColdDischargeAnalyzer(CyclingAnalyzer):
    """The cycling summary of the whole run, the capacity of each cold discharge, and the cell's
    ohmic and polarization resistance at each temperature."""

    name = "cold_discharge"

    def __init__(self) -> None:
        super().__init__()
        self.eis = StreamCollector("cell_eis")

    def attach(self, stream, protocol) -> None:
        super().attach(stream, protocol)
        self.eis.attach(stream)

    def finish(self, emit, run_uid: str) -> dict | None:
        import pandas as pd
        from analysis.cell_eis import analyze_cell_spectrum
        from analysis.cold_discharge import cold_discharge_table
        self.collector.detach()
        self.eis.detach()
        formation, cold = self.program_records("program"), self.program_records("cold_discharge")
        parts = [df for df in (formation, cold) if df is not None]
        if not parts:
            return None
        if formation is not None and cold is not None:
            cold = cold.assign(cycle=cold["cycle"] + int(formation["cycle"].max()))
        result = self._summary(pd.concat([p for p in (formation, cold) if p is not None],
                                         ignore_index=True))
        temperatures = next((e["metadata"]["temperatures_c"] for e in self.collector.streams.values()
                             if e["metadata"].get("phase") == "cold_discharge"), [])
        cold_cycles = [] if cold is None else sorted(set(cold["cycle"].tolist()))
        by_cycle = {c["cycle"]: c for c in result["cycles"]}
        discharges = []
        for temperature, cycle in zip(temperatures, cold_cycles):
            row = by_cycle.get(cycle, {})
            discharges.append({"temperature_c": temperature, "discharge_mah": row.get("discharge_mah"),
                               "avg_discharge_voltage_v": row.get("avg_discharge_voltage_v")})
        area = self.protocol.cell.area_cm2
        result["cold_discharge"] = cold_discharge_table(discharges, area) if discharges else []
        cell_eis = []
        for name, entry in self.eis.streams.items():
            cols = self.eis.columns(name)
            if len(cols.get("frequency_hz", ())) < 8:
                continue
            summary = self.eis.step_summaries.get(entry["step_index"], {})
            cell_eis.append({"stream": name, "temperature_c": entry["metadata"].get("setpoint_c"),
                             **analyze_cell_spectrum(cols["frequency_hz"], cols["z_real_ohm"],
                                                     cols["z_imag_ohm"], area)})
        result["cell_eis"] = cell_eis
        emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None, "result": result})
        return result


ANALYZERS = {"eis": EisAnalyzer, "lsv": LsvAnalyzer, "dcpol": DcpolAnalyzer,
             "cycling": CyclingAnalyzer, "symmetric": SymmetricAnalyzer,
             "cold_discharge": ColdDischargeAnalyzer}


def analyzers_for(protocol) -> list:
    kind = protocol.protocol.analysis
    return [ANALYZERS[kind]()] if kind in ANALYZERS else []
