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
            if len(cols.get("frequency_hz", ())) < 5:
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


ANALYZERS = {"eis": EisAnalyzer, "lsv": LsvAnalyzer, "dcpol": DcpolAnalyzer}


def analyzers_for(protocol) -> list:
    kind = protocol.protocol.analysis
    return [ANALYZERS[kind]()] if kind in ANALYZERS else []
