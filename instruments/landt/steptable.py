"""Render a CyclingProgram for a cell as the step table the operator enters in LANDdt / LANHE.

The Landt software has no remote interface, so the program travels through a person: this table
lists, per Landt step, the work mode in Landt's vocabulary (``Rest``, ``CC_Chg``, ``CC_DChg``,
``CV_Chg``, ``CV_DChg``, ``Cycle``, ``End``), the current in mA, the CV voltage, the end limits, and
the record interval. A CCCV step becomes two Landt steps (CC_Chg to the voltage, then CV_Chg).
``Cycle`` rows jump back to a step number; ``count`` is the total number of passes through the
block (check how your software version counts: some count repeats, i.e. passes - 1).

The Landt step numbers are also what a Landt export writes in its ``Step`` column, so the driver
and the simulator use ``StepTable.numbers`` to label records.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Sequence

from config.cycling import (CCCV, CellSection, ConstantCurrent, ConstantVoltage, CyclingProgram, Loop,
                            Rest, step_directions, with_rests)
from instruments.landt.follower import EXPORT_COLUMNS_HINT


@dataclass(frozen=True)
class StepRow:
    """One Landt step. ``limits`` are the end conditions as text, e.g. ('V>=3.4000 V', 't>=5:00:00')."""

    number: int
    mode: str
    current_ma: float | None = None
    voltage_v: float | None = None
    limits: tuple[str, ...] = ()
    goto_step: int | None = None
    count: int | None = None
    program_index: int | None = None


@dataclass(frozen=True)
class StepTable:
    rows: tuple[StepRow, ...]
    program: CyclingProgram
    cell: CellSection
    sample_id: str = ""
    channel: int | None = None
    numbers: dict[int, int] = field(default_factory=dict)  # program step index -> first Landt step

    @property
    def last_work_step(self) -> int:
        """Number of the last step that runs current or rests (the final step of a run)."""
        return max(r.number for r in self.rows if r.mode not in ("Cycle", "End"))

    def _cells(self, row: StepRow) -> list[str]:
        return [str(row.number), row.mode,
                "" if row.current_ma is None else f"{row.current_ma:.4f}",
                "" if row.voltage_v is None else f"{row.voltage_v:.4f}",
                " or ".join(row.limits),
                "" if row.goto_step is None else str(row.goto_step),
                "" if row.count is None else str(row.count),
                "" if row.mode in ("Cycle", "End") else f"{self.program.record_interval_s:g}",
                "" if row.mode in ("Cycle", "End") else f"{self.program.record_dv_v * 1000:g}"]

    HEADERS = ("step", "mode", "current_ma", "voltage_v", "end_when", "goto_step", "count",
               "record_interval_s", "record_dv_mv")

    def csv(self) -> str:
        """The table as CSV (one header line, one line per Landt step)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.HEADERS)
        for row in self.rows:
            writer.writerow(self._cells(row))
        return out.getvalue()

    def text(self) -> str:
        """The table as aligned text with the cell, safety limits and export settings above it."""
        cells = [list(self.HEADERS)] + [self._cells(r) for r in self.rows]
        widths = [max(len(c[k]) for c in cells) for k in range(len(self.HEADERS))]
        table = "\n".join("  ".join(c[k].ljust(widths[k]) for k in range(len(c))).rstrip() for c in cells)
        safety = self.program.safety
        capacity = f"{self.cell.capacity_ah * 1000:.4f} mAh" if self.cell.has_capacity else "n/a"
        mass = f"{self.cell.active_mass_mg:.3f} mg" if self.cell.active_mass_mg else "n/a"
        head = [
            f"Landt program for sample {self.sample_id or '?'}"
            + (f", channel {self.channel}" if self.channel is not None else ""),
            f"Cell: {self.cell.kind}, anode {self.cell.anode}, active mass {mass}, "
            f"nominal capacity (1 C) {capacity}",
            f"Safety: {safety.voltage_min_v} V <= V <= {safety.voltage_max_v} V, "
            f"|I| <= {safety.current_max_a * 1000:g} mA",
            f"Record every {self.program.record_interval_s:g} s or {self.program.record_dv_v * 1000:g} mV",
            f"Export: tab-separated text, columns {EXPORT_COLUMNS_HINT}",
            "Cycle rows: 'count' is the total number of passes through the block.",
            "",
        ]
        return "\n".join(head) + table + "\n"


def _duration(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours}:{minutes:02d}:{secs:02d}" + (f".{ms:03d}" if ms else "")


def _ma(amps: float) -> float:
    return amps * 1000.0


def render_step_table(program: CyclingProgram, cell: CellSection, *,
                      chamber_rests: Sequence[tuple[int, float]] = (), sample_id: str = "",
                      channel: int | None = None) -> StepTable:
    """The Landt step table of ``program`` on ``cell``.

    ``chamber_rests``: (before_step_index, duration_s) pairs, rests inserted before steps of
    ``program`` (indices into ``program.steps``) so the chamber can settle (config.cycling.with_rests).
    """
    if chamber_rests:
        program = with_rests(program, chamber_rests)
    directions = step_directions(program)
    numbers: dict[int, int] = {}
    number = 1
    for i, step in enumerate(program.steps):
        numbers[i] = number
        number += 2 if isinstance(step, CCCV) else 1
    tag_index = {s.tag: i for i, s in enumerate(program.steps) if s.tag is not None}

    def amps(rate, current):
        return current if current is not None else cell.current_for_rate(rate)

    rows: list[StepRow] = []
    for i, step in enumerate(program.steps):
        n = numbers[i]
        if isinstance(step, Rest):
            rows.append(StepRow(n, "Rest", limits=(f"t>={_duration(step.duration_s)}",), program_index=i))
        elif isinstance(step, ConstantCurrent):
            charge = step.direction == "charge"
            limits = []
            if step.until_voltage_v is not None:
                limits.append(f"V{'>=' if charge else '<='}{step.until_voltage_v:.4f} V")
            if step.until_time_s is not None:
                limits.append(f"t>={_duration(step.until_time_s)}")
            if step.until_capacity_ah is not None:
                limits.append(f"Q>={_ma(step.until_capacity_ah):.4f} mAh")
            rows.append(StepRow(n, "CC_Chg" if charge else "CC_DChg",
                                current_ma=_ma(amps(step.rate_c, step.current_a)),
                                limits=tuple(limits), program_index=i))
        elif isinstance(step, ConstantVoltage):
            limits = []
            if step.until_rate_c is not None or step.until_current_a is not None:
                limits.append(f"I<={_ma(amps(step.until_rate_c, step.until_current_a)):.4f} mA")
            if step.until_time_s is not None:
                limits.append(f"t>={_duration(step.until_time_s)}")
            rows.append(StepRow(n, "CV_Chg" if directions[i] == "charge" else "CV_DChg",
                                voltage_v=step.voltage_v, limits=tuple(limits), program_index=i))
        elif isinstance(step, CCCV):
            rows.append(StepRow(n, "CC_Chg", current_ma=_ma(amps(step.rate_c, step.current_a)),
                                limits=(f"V>={step.voltage_v:.4f} V",), program_index=i))
            limits = [f"I<={_ma(amps(step.until_rate_c, step.until_current_a)):.4f} mA"]
            if step.until_time_s is not None:
                limits.append(f"t>={_duration(step.until_time_s)}")
            rows.append(StepRow(n + 1, "CV_Chg", voltage_v=step.voltage_v, limits=tuple(limits),
                                program_index=i))
        elif isinstance(step, Loop):
            rows.append(StepRow(n, "Cycle", goto_step=numbers[tag_index[step.to_tag]], count=step.count,
                                program_index=i))
    rows.append(StepRow(number, "End"))
    return StepTable(rows=tuple(rows), program=program, cell=cell, sample_id=sample_id, channel=channel,
                     numbers=numbers)
