"""Analysis at the end of a run, fed by the run's documents (never by re-reading instruments).

An analyzer subscribes when the run starts, keeps the streams it cares about, and at the end
computes its result and emits an ``analysis`` document, which storage records with the run.
"""
from __future__ import annotations

import numpy as np

from analysis.eis import analyze_eis_series
from config.documents import StreamRole


class StreamCollector:
    """Collects the event pages of streams whose descriptor metadata has a given role."""

    def __init__(self, role: str, on_page=None) -> None:
        """``on_page(entry, data)``, if given, receives each page instead of it being kept."""
        self.role = role
        self.on_page = on_page
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
        # A stream cut by a crash (marked incomplete on resume) is kept in storage, not analysed.
        if (name == "descriptor" and doc["metadata"].get("role") == self.role
                and not doc["metadata"].get("incomplete")):
            entry = {"name": doc["stream"], "step_index": doc["step_index"],
                     "metadata": doc["metadata"], "pages": []}
            self.streams[doc["stream"]] = entry
            self._by_uid[doc["descriptor_uid"]] = entry
        elif name == "event_page" and doc["descriptor_uid"] in self._by_uid:
            entry = self._by_uid[doc["descriptor_uid"]]
            if self.on_page is None:
                entry["pages"].append(doc["data"])
            else:
                self.on_page(entry, doc["data"])
        elif name == "step_stop":
            self.step_summaries[doc["step_index"]] = doc["summary"]
        elif name == "suspension":
            for stream in doc.get("invalidated") or ():
                if stream in self.streams:
                    self.streams[stream]["valid"] = False

    def valid_streams(self) -> dict[str, dict]:
        """The streams not invalidated by a suspension (procedures/watch.py)."""
        return {name: entry for name, entry in self.streams.items() if entry.get("valid", True)}

    def columns(self, stream_name: str) -> dict[str, np.ndarray]:
        pages = self.streams[stream_name]["pages"]
        if not pages:
            return {}
        return {k: np.concatenate([np.asarray(p[k]) for p in pages]) for k in pages[0]}


class Analyzer:
    """Collects the streams of one ``role`` during the run; at the end ``compute()`` turns them
    into a result, emitted as an ``analysis`` document named ``name``."""

    name = ""
    role = ""

    def __init__(self) -> None:
        self.collector = StreamCollector(self.role)
        self.protocol = None

    def attach(self, stream, protocol) -> None:
        self.protocol = protocol
        self.collector.attach(stream)

    def detach(self) -> None:
        self.collector.detach()

    def finish(self, emit, run_uid: str) -> dict | None:
        self.detach()
        result = self.compute()
        if result is not None:
            emit("analysis", {"run_uid": run_uid, "name": self.name, "step_index": None,
                              "result": result})
        return result

    def compute(self) -> dict | None:
        raise NotImplementedError


class EisAnalyzer(Analyzer):
    """σ per spectrum and the Arrhenius fit, for runs with PEIS spectra of a pellet; a spectrum
    invalidated by a suspension is left out (it was measured again)."""

    name, role = "eis", StreamRole.EIS_SPECTRUM

    def spectra(self) -> list[dict]:
        out = []
        for name, entry in self.collector.valid_streams().items():
            cols = self.collector.columns(name)
            if len(cols.get("frequency_hz", ())) < 8:
                continue
            summary = self.collector.step_summaries.get(entry["step_index"], {})
            out.append({"label": name, "frequency_hz": cols["frequency_hz"],
                        "z_real_ohm": cols["z_real_ohm"], "z_imag_ohm": cols["z_imag_ohm"],
                        "temperature_c": summary.get("temperature_c")})
        return out

    def compute(self) -> dict | None:
        spectra = self.spectra()
        if not spectra:
            return None
        sample = self.protocol.sample
        result = analyze_eis_series(spectra, sample.thickness_um, sample.diameter_mm)
        repeats = repeated_temperatures(result["spectra"])
        if repeats:
            result["stability"] = repeats
        return result


def repeated_temperatures(spectra: list[dict], tolerance_c: float = 0.5) -> list[dict]:
    """σ_total measured again at the same temperature (PAPER.md protocol 2: day 0 vs day 30):
    the first and the last measurement of each temperature and the change between them."""
    groups: dict[float, list[dict]] = {}
    for s in spectra:
        if s["temperature_c"] is None or s["sigma_total_s_per_cm"] is None:
            continue
        key = next((k for k in groups if abs(k - s["temperature_c"]) <= tolerance_c), s["temperature_c"])
        groups.setdefault(key, []).append(s)
    rows = []
    for temperature, group in groups.items():
        if len(group) < 2:
            continue
        first, last = group[0], group[-1]
        rows.append({"temperature_c": temperature, "first": first["file"], "last": last["file"],
                     "sigma_first_s_per_cm": first["sigma_total_s_per_cm"],
                     "sigma_last_s_per_cm": last["sigma_total_s_per_cm"],
                     "change_pct": (last["sigma_total_s_per_cm"] / first["sigma_total_s_per_cm"] - 1) * 100})
    return rows


class LsvAnalyzer(Analyzer):
    """Onset of oxidation or reduction of each LSV sweep; the stability window."""

    name, role = "lsv", StreamRole.LSV

    def compute(self) -> dict | None:
        from analysis.lsv import analyze_lsv
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
        return results[0] if len(results) == 1 else {"sweeps": results}


class DcpolAnalyzer(Analyzer):
    """Steady current per voltage step and σe from the I–V slope."""

    name, role = "dcpol", StreamRole.DC_POLARIZATION

    def compute(self) -> dict | None:
        from analysis.dcpol import analyze_dcpol
        if not self.collector.streams:
            return None
        name, entry = next(iter(self.collector.streams.items()))
        cols = self.collector.columns(name)
        if len(cols.get("time_s", ())) < 3:
            return None
        sample = self.protocol.sample
        meta = entry["metadata"]
        # The set voltage, not the measured Ewe, identifies the steps (Ewe carries noise).
        return analyze_dcpol(cols["time_s"], cols["setpoint_v"], cols["i_a"], sample.thickness_um,
                             sample.diameter_mm, drift_criterion_per_h=meta["drift_criterion_per_h"],
                             window_s=meta["drift_window_s"],
                             sigma_ion_s_per_cm=sample.ionic_conductivity_s_per_cm,
                             step=cols["step"])


def _continuous_time(t):
    """Test time restarts at 0 with each program: make it run on, for Ah-counting across them."""
    t = np.asarray(t, float).copy()
    for k in np.flatnonzero(np.diff(t) < 0):
        t[k + 1:] += t[k] - t[k + 1]
    return t


class CycleChunks:
    """The records of a run's cycling programs, summarised a block of whole cycles at a time as
    they arrive, so that memory stays flat however many cycles a run has (a 1,000-cycle run holds
    the records of at most ``CHUNK_CYCLES`` + 1 cycles).

    Blocks are cut where the record's cycle number changes, so no cycle is split; each block's
    cycles are renumbered to follow the previous block's, and a second program's cycles follow
    the first's, as in one long record.
    """

    CHUNK_CYCLES = 20

    def __init__(self, summarize) -> None:
        self.summarize = summarize
        self.cycles: list[dict] = []
        self.warnings: list[str] = []
        self.out_of_band_cycles: set[int] = set()
        self._pending: list[dict] = []
        self._pending_cycles: set[int] = set()

    def add(self, data: dict) -> None:
        cycle = np.asarray(data["cycle"])
        if not len(cycle):
            return
        self._pending.append({k: np.asarray(v) for k, v in data.items()})
        self._pending_cycles.update(np.unique(cycle).tolist())
        if len(self._pending_cycles) > self.CHUNK_CYCLES:
            self._cut(keep_last_cycle=True)

    def end_program(self) -> None:
        """The stream of one program ended: its last cycle is complete as it stands."""
        if self._pending:
            self._cut(keep_last_cycle=False)

    def _cut(self, keep_last_cycle: bool) -> None:
        import pandas as pd
        cols = {k: np.concatenate([p[k] for p in self._pending]) for k in self._pending[0]}
        cycle = cols["cycle"]
        end = int(np.argmax(cycle == cycle[-1])) if keep_last_cycle else len(cycle)
        if keep_last_cycle and end == 0:
            return
        block = pd.DataFrame({k: v[:end] for k, v in cols.items()}).rename(columns={"test_time_s": "time_s"})
        rest = {k: v[end:] for k, v in cols.items()}
        self._pending = [rest] if len(rest["cycle"]) else []
        self._pending_cycles = set(np.unique(rest["cycle"]).tolist())
        if len(block) < 2:
            return
        summary = self.summarize(block)
        entries = summary["cycles"]
        self.warnings += [w for w in summary.get("warnings", []) if w not in self.warnings]
        numbered = [e["cycle"] for e in entries if e["cycle"] >= 1]
        offset = 0
        if self.cycles and numbered:
            offset = self.cycles[-1]["cycle"] + 1 - min(numbered)
            entries = [{**e, "cycle": e["cycle"] + offset} for e in entries]
        self.cycles.extend(entries)
        self.out_of_band_cycles |= {c + offset for c in out_of_band_cycles(block)}


def out_of_band_cycles(records) -> list[int]:
    """Cycles with records taken while the run was suspended (the cycler went on meanwhile)."""
    if "out_of_band" not in records:
        return []
    flagged = records["cycle"][records["out_of_band"].fillna(0).to_numpy() != 0]
    return sorted({int(c) for c in flagged})


def out_of_band_warning(cycles) -> str:
    return (f"cycle(s) {', '.join(map(str, sorted(cycles)))} have records taken while the chamber was "
            "out of its band (the run was suspended; the cycler cannot be paused): their capacities "
            "were not measured at the set temperature throughout")


class RecordsAnalyzer(Analyzer):
    """Base of the analyzers of cycler records: the records of a phase as one DataFrame."""

    role = StreamRole.CYCLING

    def program_records(self, phase: str = "program"):
        """Records of every stream of the given phase, cycles renumbered to run on across
        programs (a second program's cycle 1 follows the first program's last cycle), test time
        continuous, under the analysis' column name ``time_s``."""
        import pandas as pd
        frames, offset = [], 0
        for name, entry in self.collector.streams.items():
            if entry["metadata"].get("phase") != phase:
                continue
            df = pd.DataFrame(self.collector.columns(name))
            if df.empty:
                continue
            df["cycle"] = df["cycle"] + offset
            offset = int(df["cycle"].max())
            frames.append(df)
        if not frames:
            return None
        df = pd.concat(frames, ignore_index=True).rename(columns={"test_time_s": "time_s"})
        df["time_s"] = _continuous_time(df["time_s"].to_numpy())
        return df

    def summary(self, df) -> dict:
        from analysis.cycling import summarize_cycles
        cell = self.protocol.cell
        return summarize_cycles(df, mass_mg=cell.active_mass_mg, area_cm2=cell.area_cm2)


class CyclingAnalyzer(RecordsAnalyzer):
    """Capacities, CE, ICE, retention per cycle of the run's cycling program(s), summarised block
    by block as the records arrive (CycleChunks), so a 1,000-cycle run needs no more memory than
    a 10-cycle one."""

    name = "cycling"

    def __init__(self) -> None:
        super().__init__()
        self.collector = StreamCollector(self.role, on_page=self._on_page)
        self.chunks: CycleChunks | None = None
        self._current = None

    def attach(self, stream, protocol) -> None:
        super().attach(stream, protocol)
        self.chunks = CycleChunks(self.summary)
        self._current = None

    def _on_page(self, entry: dict, data: dict) -> None:
        if entry["metadata"].get("phase") != "program":
            return
        if self._current not in (None, entry["name"]):
            self.chunks.end_program()
        self._current = entry["name"]
        self.chunks.add(data)

    def compute(self) -> dict | None:
        from analysis.cycling import cycle_statistics
        self.chunks.end_program()
        if not self.chunks.cycles:
            return None
        warnings = list(self.chunks.warnings)
        if self.chunks.out_of_band_cycles:
            warnings.append(out_of_band_warning(self.chunks.out_of_band_cycles))
        result = cycle_statistics(self.chunks.cycles, warnings=warnings)
        result["out_of_band_cycles"] = sorted(self.chunks.out_of_band_cycles)
        cell = self.protocol.cell
        if cell.kind == "full" and cell.cathode_loading_mg_per_cm2:
            # PAPER.md protocol 8: what this loading means at the level of a stacked cell.
            from analysis.cell_capacity import effective_cell_capacity
            result["effective_cell_capacity"] = effective_cell_capacity(cell.cathode_loading_mg_per_cm2, "sn")
        return result


class SymmetricAnalyzer(RecordsAnalyzer):
    """Overpotential per half cycle of a symmetric cell."""

    name = "symmetric"

    def compute(self) -> dict | None:
        from analysis.symmetric import symmetric_overpotential
        df = self.program_records()
        return None if df is None else symmetric_overpotential(df)


class ColdDischargeAnalyzer(RecordsAnalyzer):
    """The cycling summary of the whole run, the capacity of each cold discharge, and the cell's
    ohmic and polarization resistance at each temperature."""

    name = "cold_discharge"

    def __init__(self) -> None:
        super().__init__()
        self.eis = StreamCollector(StreamRole.CELL_EIS)

    def attach(self, stream, protocol) -> None:
        super().attach(stream, protocol)
        self.eis.attach(stream)

    def detach(self) -> None:
        super().detach()
        self.eis.detach()

    def compute(self) -> dict | None:
        """The cycling summary of formation and cold discharges together (cycles numbered on across
        programs), the cold-discharge table (each row naming its discharge by stream and the cycle
        number within it, and the CE of its cycle), CE and retention per discharge temperature, and
        the cell EIS. The run-wide mean CE and retention would average over discharge temperatures:
        they are None, with a warning, when the run discharged at more than one temperature."""
        import pandas as pd
        from analysis.cold_discharge import cold_discharge_table, per_temperature_summary
        formation, cold = self.program_records("program"), self.program_records("cold_discharge")
        if formation is None and cold is None:
            return None
        if formation is not None and cold is not None:
            cold = cold.assign(cycle=cold["cycle"] + int(formation["cycle"].max()),
                               time_s=cold["time_s"] + float(formation["time_s"].iloc[-1]))
        result = self.summary(pd.concat([p for p in (formation, cold) if p is not None],
                                        ignore_index=True))
        by_cycle = {c["cycle"]: c for c in result["cycles"]}
        flagged = out_of_band_cycles(pd.concat([p for p in (formation, cold) if p is not None],
                                               ignore_index=True))
        # A discharge caught out of band was stopped and measured again by a later program
        # (its stream's ``repeats``): the spoiled one is left out of the table and the summary.
        repeated_in = {entry["metadata"]["repeats"]: name for name, entry in self.collector.streams.items()
                       if entry["metadata"].get("repeats") is not None}
        spoiled = []
        discharged_at: dict[int, float] = {}
        discharges = []
        # The same numbering as program_records: formation streams first, each continuing the last.
        offset = 0
        for phase in ("program", "cold_discharge"):
            for name, entry in self.collector.streams.items():
                cycles = self.collector.columns(name).get("cycle")
                if entry["metadata"].get("phase") != phase or cycles is None or not len(cycles):
                    continue
                numbers = sorted({int(c) for c in cycles})
                if phase == "program":
                    temperatures = [entry["metadata"].get("temperature_c")] * len(numbers)
                else:  # one cold discharge per cycle, in the order of the step's temperatures
                    temperatures = entry["metadata"]["temperatures_c"]
                for stream_cycle, temperature in zip(numbers, temperatures):
                    cycle = by_cycle.get(stream_cycle + offset)
                    if temperature is None or cycle is None or cycle["discharge_mah"] is None:
                        continue  # an aborted run, or a formation program without its temperature
                    if (phase == "cold_discharge" and cycle["cycle"] in flagged
                            and repeated_in.get(temperature, name) != name):
                        spoiled.append((temperature, name, stream_cycle, repeated_in[temperature]))
                        continue
                    discharged_at[cycle["cycle"]] = float(temperature)
                    if phase == "cold_discharge":
                        discharges.append({"temperature_c": temperature, "discharge_mah": cycle["discharge_mah"],
                                           "avg_discharge_voltage_v": cycle["avg_discharge_voltage_v"],
                                           "cycle": cycle["cycle"], "stream": name,
                                           "stream_cycle": stream_cycle, "ce_pct": cycle["ce_pct"]})
                offset += max(numbers)
        area = self.protocol.cell.area_cm2
        table = cold_discharge_table(discharges, area) if discharges else []
        for row, entry in zip(table, discharges):
            # so that a report draws each row's own discharge curve
            row.update({key: entry[key] for key in ("cycle", "stream", "stream_cycle", "ce_pct")})
        result["cold_discharge"] = table
        result["per_temperature"] = per_temperature_summary(result["cycles"], discharged_at)
        result["warnings"] = []
        if len(result["per_temperature"]) > 1:
            result["mean_ce_pct"] = result["retention_pct"] = None
            result["warnings"].append(
                "mean CE and retention over the whole run would mix discharge temperatures: they are "
                "given per temperature (per_temperature) instead")
        result["out_of_band_cycles"] = flagged
        if flagged:
            result["warnings"].append(out_of_band_warning(flagged))
        for temperature, name, stream_cycle, again in spoiled:
            result["warnings"].append(
                f"the discharge at {temperature:g} °C of {name} (its cycle {stream_cycle}) was measured "
                f"with the chamber out of its band: left out of the analysis; it was measured again "
                f"after a recharge ({again})")
        result["repeated_discharges"] = [{"temperature_c": t, "stream": name, "stream_cycle": c,
                                          "repeated_in": again} for t, name, c, again in spoiled]
        for row in table:
            # Out of band and not repeated (the run ended first): flagged, not left out.
            row["out_of_band"] = row["cycle"] in flagged
        result["cell_eis"] = self.cell_eis(area)
        return result

    def cell_eis(self, area_cm2: float) -> list[dict]:
        from analysis.cell_eis import analyze_cell_spectrum
        rows = []
        for name, entry in self.eis.valid_streams().items():
            cols = self.eis.columns(name)
            if len(cols.get("frequency_hz", ())) < 5:
                continue
            rows.append({"stream": name, "temperature_c": entry["metadata"].get("setpoint_c"),
                         **analyze_cell_spectrum(cols["frequency_hz"], cols["z_real_ohm"],
                                                 cols["z_imag_ohm"], area_cm2)})
        return rows


ANALYZERS = {"eis": EisAnalyzer, "lsv": LsvAnalyzer, "dcpol": DcpolAnalyzer,
             "cycling": CyclingAnalyzer, "symmetric": SymmetricAnalyzer,
             "cold_discharge": ColdDischargeAnalyzer}


def analyzers_for(protocol) -> list:
    kind = protocol.protocol.analysis
    return [ANALYZERS[kind]()] if kind in ANALYZERS else []
