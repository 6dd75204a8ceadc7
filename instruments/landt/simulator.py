"""A simulated Landt channel with full remote control, running in the lab's virtual time.

It runs the expanded program step by step against the cell model: when the clock reaches a
step's start, the whole step is computed at once (the model returns numpy traces up to the step's
end condition) at the sample temperature of that moment. The records whose time has come are
appended, in bulk, to a tab-separated text export in the layout the real Landt software writes
(``EXPORT_HEADER``, or with ``layout="minimal"`` the default LANHE text export with only test
time, voltage and current), and ``read_new_records()`` reads them back through the same
``ExportFollower`` that follows a real Landt, so the parser is on the tested path.
``save_workbook`` writes the test so far as one of the LANDdt workbook layouts the reader
supports (``workbooks.WORKBOOK_LAYOUTS``).

A CCCV step runs as two Landt steps (CC_Chg, CV_Chg), numbered as in the step table. Safety
limits are checked on every record: the first record outside them ends the run in ``fault``.
``stop()`` ends the program at the current time and ``pause()`` holds it (the cell rests
unrecorded until ``resume()``); both rewind the cell model to the start of the running step and
recompute it up to now, so the cell is left in the state it has at that moment (the model is
shared with the potentiostat simulator, e.g. for EIS between cold discharges).

Transport faults from the lab (``instruments.sim.faults``): a write of new records that stops
part-way (``partial_write``: the export ends in a truncated line until the next write, and is
completed when the program ends) and an export that cannot be opened for a read
(``read_error``, retried by the reader).
"""
from __future__ import annotations

import copy
import dataclasses
import errno
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from config.cycling import CellSection, ConcreteStep, CyclingProgram, check_program_for_cell, expand
from config.errors import ConfigError
from instruments.cycler import (CyclerCapabilities, CyclerChannel, CyclerError, CyclerState, Prompt,
                                empty_columns)
from instruments.landt.exports import read_export
from instruments.landt.follower import ExportFollower, read_retrying
from instruments.landt.steptable import render_step_table
from instruments.landt.workbooks import write_workbook

EXPORT_HEADER = ("Record\tCycle\tStep\tStepStatus\tTestTime\tStepTime\tVoltage/V\tCurrent/mA\t"
                 "Capacity/mAh\tEnergy/mWh\n")
_ROW = ("%d\t%d\t%d\t%s\t%d %02d:%02d:%02d.%03d\t%d %02d:%02d:%02d.%03d\t%.6f\t%.6f\t%.6f\t%.6f\n")
MINIMAL_EXPORT_HEADER = "TestTime\tVoltage/V\tCurrent/mA\n"
_MINIMAL_ROW = "%d %02d:%02d:%02d.%03d\t%.6f\t%.6f\n"
LAYOUTS = ("full", "minimal")
_CURRENT_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class _Segment:
    """One cell-model call: a Landt step or what remains of it after a pause."""

    kind: str                      # "rest" | "cc" | "cv"
    step: int                      # Landt step number
    status: str                    # Landt work mode written to the export
    cycle: int
    current_a: float | None = None
    voltage_v: float | None = None
    until_voltage_v: float | None = None
    until_current_a: float | None = None
    max_duration_s: float = math.inf
    max_capacity_ah: float | None = None
    step_time_offset_s: float = 0.0
    capacity_offset_ah: float = 0.0
    energy_offset_wh: float = 0.0


@dataclasses.dataclass
class _Running:
    segment: _Segment
    start_s: float                 # clock time the segment began
    temperature_c: float
    snapshot: dict                 # cell model state at the segment's start
    time_s: np.ndarray             # absolute clock times of the records not yet written
    columns: dict                  # their values
    fault: str = ""                # set when the trace ends at a safety violation
    last_step_time_s: float = -math.inf   # step time of the last record written


def _snapshot(model) -> dict:
    return copy.deepcopy(model.__dict__)


def _restore(model, snapshot: dict) -> None:
    # Rewind in place: other simulators hold this very object. A random generator is rewound
    # through its state, so an rng shared with the lab stays shared.
    for key, value in copy.deepcopy(snapshot).items():
        current = model.__dict__.get(key)
        if isinstance(value, np.random.Generator) and isinstance(current, np.random.Generator):
            current.bit_generator.state = value.bit_generator.state
        else:
            model.__dict__[key] = value


def _duration_parts(seconds: np.ndarray) -> list[np.ndarray]:
    ms = np.round(np.asarray(seconds) * 1000.0).astype(np.int64)
    days, ms = np.divmod(ms, 86_400_000)
    hours, ms = np.divmod(ms, 3_600_000)
    minutes, ms = np.divmod(ms, 60_000)
    secs, ms = np.divmod(ms, 1000)
    return [days, hours, minutes, secs, ms]


class SimulatedLandt(CyclerChannel):
    """A simulated Landt channel (see module doc).

    lab: instruments.sim.lab.SimLab (sample temperature); cell_model: the cell on the channel (the
    contract of instruments.sim.cell.CellModel); export_path: the text export it writes;
    layout: "full" (every column) or "minimal" (test time, voltage, current).
    """

    capabilities = CyclerCapabilities(remote_start=True, live_data=True, pause=True)

    def __init__(self, lab, cell_model, export_path, clock=None, channel: int = 1,
                 layout: str = "full") -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"simulated Landt: layout must be one of {LAYOUTS}, not {layout!r}")
        self.layout = layout
        self.lab = lab
        self.model = cell_model
        self.export_path = Path(export_path)
        self.clock = clock if clock is not None else lab.clock
        self.channel = channel
        self.name = f"simulated Landt channel {channel}"
        self.fault_reason = ""
        self.retried_reads = 0
        self.faults = lab.fault_injector("cycler") if hasattr(lab, "fault_injector") else None
        self._unwritten = ""
        self._state = CyclerState.IDLE
        self._follower: ExportFollower | None = None
        self._segments: Iterator[_Segment] = iter(())
        self._held: _Segment | None = None
        self._running: _Running | None = None

    # --- control ------------------------------------------------------------------------------
    def start(self, program: CyclingProgram, cell: CellSection, sample_id: str,
              on_prompt: Prompt | None = None) -> None:
        """Start ``program`` now; the export file is created anew (``on_prompt`` is not needed)."""
        if self._state in (CyclerState.RUNNING, CyclerState.PAUSED):
            raise CyclerError(f"{self.name}: start refused, a program is running")
        problems = check_program_for_cell(program, cell)
        if problems:
            raise ConfigError(f"{self.name}: program", problems)
        table = render_step_table(program, cell, sample_id=sample_id, channel=self.channel)
        self._program = program
        # A list iterator, not a generator: the simulated station's state is pickled between
        # processes (instruments/sim/persist.py).
        self._segments = iter(list(self._segments_of(expand(program, cell), table.numbers)))
        self._held = None
        self._running = None
        self.fault_reason = ""
        self.export_path.parent.mkdir(parents=True, exist_ok=True)
        self.export_path.write_text(EXPORT_HEADER if self.layout == "full" else MINIMAL_EXPORT_HEADER,
                                    encoding="utf-8")
        self._unwritten = ""
        self._follower = ExportFollower(self.export_path, opener=self._open_export)
        self._t0 = self.clock.now()
        self._next_start = self._t0
        self._record = 0
        self._state = CyclerState.RUNNING

    def attach(self, program: CyclingProgram, cell: CellSection, sample_id: str) -> None:
        """A simulated channel restored with its saved state (instruments/sim/persist.py) is still
        running the program it was given; nothing to do but check that it was."""
        if self._state == CyclerState.IDLE:
            raise CyclerError(f"{self.name}: attach refused, no program was started on the channel")

    def stop(self) -> None:
        """End the program at the current clock time (a last record is written at that time)."""
        if self._state == CyclerState.RUNNING:
            self._advance()
        if self._state not in (CyclerState.RUNNING, CyclerState.PAUSED):
            return
        if self._running is not None:
            self._cut_running(self.clock.now())
        self._state = CyclerState.FINISHED
        self._write([])

    def pause(self) -> None:
        """Hold the program now; the cell rests, unrecorded, until resume()."""
        if self._state != CyclerState.RUNNING:
            raise CyclerError(f"{self.name}: pause refused, the channel is {self._state.value}")
        self._advance()
        if self._state != CyclerState.RUNNING:
            return
        if self._running is not None:
            self._held = self._cut_running(self.clock.now())
        self._paused_at = self.clock.now()
        self._state = CyclerState.PAUSED

    def resume(self) -> None:
        if self._state != CyclerState.PAUSED:
            raise CyclerError(f"{self.name}: resume refused, the channel is {self._state.value}")
        now = self.clock.now()
        if now > self._paused_at:
            self.model.run_rest(now - self._paused_at, self.lab.sample_temperature_c(),
                                record_interval_s=max(now - self._paused_at, 1.0))
        self._next_start = now
        self._state = CyclerState.RUNNING

    def state(self) -> CyclerState:
        if self._state == CyclerState.RUNNING:
            self._advance()
        return self._state

    def read_new_columns(self) -> dict:
        if self._state == CyclerState.RUNNING:
            self._advance()
        if self._follower is None:
            return empty_columns()
        # Once the program has ended nothing more is written: whatever the follower still holds
        # back (rests whose cycle was not known yet) is read now.
        ended = self._state not in (CyclerState.RUNNING, CyclerState.PAUSED)
        return read_retrying(self._follower, self.clock, include_partial=ended,
                             on_retry=self._count_retry)

    def _count_retry(self, exc) -> None:
        self.retried_reads += 1

    def _open_export(self, path, mode: str):
        if self.faults is not None and self.faults.draw(("read_error",)):
            raise PermissionError(errno.EACCES, "the Landt software holds the file (sharing "
                                  "violation, injected)", str(path))
        return open(path, mode)

    # --- simulation -----------------------------------------------------------------------------
    @staticmethod
    def _segments_of(steps: Iterator[ConcreteStep], numbers: dict[int, int]) -> Iterator[_Segment]:
        for step in steps:
            n = numbers[step.index]
            charge = step.direction == "charge"
            if step.kind == "rest":
                yield _Segment("rest", n, "Rest", step.cycle, max_duration_s=step.duration_s)
            elif step.kind == "cc":
                yield _Segment("cc", n, "CC_Chg" if charge else "CC_DChg", step.cycle,
                               current_a=step.current_a, until_voltage_v=step.until_voltage_v,
                               max_duration_s=step.until_time_s or math.inf,
                               max_capacity_ah=step.until_capacity_ah)
            elif step.kind == "cv":
                yield _Segment("cv", n, "CV_Chg" if charge else "CV_DChg", step.cycle,
                               voltage_v=step.voltage_v, until_current_a=step.until_current_a or 0.0,
                               max_duration_s=step.until_time_s or math.inf)
            else:
                yield _Segment("cc", n, "CC_Chg", step.cycle, current_a=step.current_a,
                               until_voltage_v=step.voltage_v)
                yield _Segment("cv", n + 1, "CV_Chg", step.cycle, voltage_v=step.voltage_v,
                               until_current_a=step.until_current_a,
                               max_duration_s=step.until_time_s or math.inf)

    def _run_model(self, segment: _Segment, temperature_c: float, max_duration_s: float):
        interval = self._program.record_interval_s
        if segment.kind == "rest":
            return self.model.run_rest(max_duration_s, temperature_c, record_interval_s=interval)
        if segment.kind == "cc":
            return self.model.run_cc(segment.current_a, temperature_c,
                                     until_voltage_v=segment.until_voltage_v, max_duration_s=max_duration_s,
                                     max_capacity_ah=segment.max_capacity_ah, record_interval_s=interval,
                                     record_dv=self._program.record_dv_v)
        return self.model.run_cv(segment.voltage_v, temperature_c, until_current_a=segment.until_current_a,
                                 max_duration_s=max_duration_s, record_interval_s=interval)

    def _begin(self, segment: _Segment) -> None:
        snapshot = _snapshot(self.model)
        temperature_c = self.lab.sample_temperature_c()
        trace = self._run_model(segment, temperature_c, segment.max_duration_s)
        n = len(trace.time_s)
        safety = self._program.safety
        bad = ((trace.voltage_v < safety.voltage_min_v) | (trace.voltage_v > safety.voltage_max_v)
               | (np.abs(trace.current_a) > safety.current_max_a * (1 + _CURRENT_TOLERANCE)))
        fault = ""
        if bad.any():
            k = int(np.argmax(bad))
            n = k + 1
            fault = (f"{self.name}: safety limit exceeded at step {segment.step} "
                     f"(V = {trace.voltage_v[k]:.4f} V, I = {trace.current_a[k]:.6g} A; limits "
                     f"{safety.voltage_min_v}…{safety.voltage_max_v} V, |I| <= {safety.current_max_a} A)")
        self._running = _Running(
            segment=segment, start_s=self._next_start, temperature_c=temperature_c, snapshot=snapshot,
            time_s=self._next_start + np.asarray(trace.time_s[:n], float),
            columns={"step_time_s": segment.step_time_offset_s + np.asarray(trace.time_s[:n], float),
                     "voltage_v": np.asarray(trace.voltage_v[:n], float),
                     "current_a": np.asarray(trace.current_a[:n], float),
                     "capacity_ah": segment.capacity_offset_ah + np.asarray(trace.capacity_ah[:n], float),
                     "energy_wh": segment.energy_offset_wh + np.asarray(trace.energy_wh[:n], float)},
            fault=fault)

    def _advance(self) -> None:
        """Simulate up to the clock's now and append the records due to the export."""
        now = self.clock.now()
        chunks: list[str] = []
        while self._state == CyclerState.RUNNING:
            if self._running is None:
                if self._next_start > now:
                    break
                segment = self._held or next(self._segments, None)
                self._held = None
                if segment is None:
                    self._state = CyclerState.FINISHED
                    break
                self._begin(segment)
            running = self._running
            due = int(np.searchsorted(running.time_s, now, side="right"))
            if due:
                chunks.append(self._format(running, slice(0, due)))
                running.time_s = running.time_s[due:]
                running.columns = {k: v[due:] for k, v in running.columns.items()}
            if running.time_s.size:
                break
            if running.fault:
                self.fault_reason = running.fault
                self._state = CyclerState.FAULT
            self._next_start = self._end_of(running)
            self._running = None
        self._write(chunks)

    def _end_of(self, running: _Running) -> float:
        return running.start_s + running.last_step_time_s - running.segment.step_time_offset_s

    def _format(self, running: _Running, rows: slice) -> str:
        cols = {k: v[rows] for k, v in running.columns.items()}
        n = len(cols["voltage_v"])
        records = range(self._record + 1, self._record + n + 1)
        self._record += n
        running.last_step_time_s = float(cols["step_time_s"][-1])
        segment = running.segment
        test = _duration_parts(running.time_s[rows] - self._t0)
        if self.layout == "minimal":
            fields = [*(p.tolist() for p in test), cols["voltage_v"].tolist(),
                      (cols["current_a"] * 1e3).tolist()]
            return "".join(map(_MINIMAL_ROW.__mod__, zip(*fields)))
        step = _duration_parts(cols["step_time_s"])
        fields = [records, [segment.cycle] * n, [segment.step] * n, [segment.status] * n,
                  *(p.tolist() for p in test), *(p.tolist() for p in step),
                  cols["voltage_v"].tolist(), (cols["current_a"] * 1e3).tolist(),
                  (cols["capacity_ah"] * 1e3).tolist(), (cols["energy_wh"] * 1e3).tolist()]
        return "".join(map(_ROW.__mod__, zip(*fields)))

    def _write(self, chunks: list[str]) -> None:
        """Append records; an injected partial write leaves the rest for the next one. Once the
        program has ended, everything is written."""
        text = self._unwritten + "".join(chunks)
        self._unwritten = ""
        if not text:
            return
        ended = self._state not in (CyclerState.RUNNING, CyclerState.PAUSED)
        if not ended and self.faults is not None and self.faults.draw(("partial_write",)):
            cut = 1 + int(self.faults.uniform() * (len(text) - 1))
            text, self._unwritten = text[:cut], text[cut:]
        with open(self.export_path, "a", encoding="utf-8") as fh:
            fh.write(text)

    def _cut_running(self, t_s: float) -> _Segment | None:
        """End the running segment at clock time ``t_s``: rewind the cell, recompute up to ``t_s``,
        write the record at ``t_s``; returns what remains of the segment."""
        running = self._running
        self._running = None
        segment = running.segment
        _restore(self.model, running.snapshot)
        elapsed_s = t_s - running.start_s
        if elapsed_s <= 0:
            self._next_start = t_s
            return segment
        trace = self._run_model(segment, running.temperature_c, min(elapsed_s, segment.max_duration_s))
        passed_s = float(trace.time_s[-1])
        last = {"step_time_s": segment.step_time_offset_s + passed_s,
                "voltage_v": float(trace.voltage_v[-1]), "current_a": float(trace.current_a[-1]),
                "capacity_ah": segment.capacity_offset_ah + float(trace.capacity_ah[-1]),
                "energy_wh": segment.energy_offset_wh + float(trace.energy_wh[-1])}
        if last["step_time_s"] > running.last_step_time_s + 1e-9:
            running.time_s = np.array([running.start_s + passed_s])
            running.columns = {k: np.array([v]) for k, v in last.items()}
            self._write([self._format(running, slice(0, 1))])
        self._next_start = t_s
        capacity_ah = float(trace.capacity_ah[-1])
        return dataclasses.replace(
            segment, max_duration_s=segment.max_duration_s - passed_s,
            max_capacity_ah=None if segment.max_capacity_ah is None else segment.max_capacity_ah - capacity_ah,
            step_time_offset_s=last["step_time_s"], capacity_offset_ah=last["capacity_ah"],
            energy_offset_wh=last["energy_wh"])

    def save_workbook(self, path, layout: str, **options) -> None:
        """Write the records exported so far as an xlsx workbook in ``layout`` (see
        ``workbooks.write_workbook``), from the text export, as the Landt software re-exports."""
        write_workbook(read_export(self.export_path), path, layout, **options)
