"""The station's absolute limits applied to a protocol: potentials, currents, the cell's window,
durations and the number of points, each checked against the worst case the protocol allows.

Temperatures against the chamber's range and the EIS frequency are checked in ``config.protocol``;
this module adds what a protocol could do to a cell or to the station beyond them: a 40 A program
on a 10 A cycler, a 9.5 V EIS bias on a 3.4 V cell, a soak of 1e12 s, a sampling interval that
would write more points than any run should. Worst case means every timeout reached; a cycling
step that ends on voltage only is bounded by the cell's nominal capacity at its current (twice
it, for the margin a real cell's scatter needs).
"""
from __future__ import annotations

import math
from typing import Iterable

from config.cycling import (CCCV, CellSection, ConstantCurrent, ConstantVoltage, CyclingProgram, Loop,
                            Rest)
from config.station import StationConfig

CAPACITY_MARGIN = 2.0
"""A CC step ending on voltage is assumed to pass at most this many nominal capacities."""


def run_counts(steps) -> list[int]:
    """How often each program step runs: the product of the counts of the loops around it.

    Multiplied, not walked, so that a loop count of 1e12 costs nothing to bound."""
    tags = {s.tag: i for i, s in enumerate(steps) if s.tag is not None}
    counts = [1] * len(steps)
    for i, step in enumerate(steps):
        if isinstance(step, Loop) and step.to_tag in tags and tags[step.to_tag] < i:
            for j in range(tags[step.to_tag], i):
                counts[j] *= step.count
    return counts


def _step_bound_s(step, cell: CellSection | None) -> float:
    """The longest one program step can run, s (0 when nothing bounds it)."""
    if isinstance(step, Rest):
        return step.duration_s
    current = getattr(step, "current_a", None)
    if current is None and getattr(step, "rate_c", None) is not None and cell is not None \
            and cell.has_capacity:
        current = cell.current_for_rate(step.rate_c)
    bounds = [step.until_time_s] if step.until_time_s else []
    if isinstance(step, ConstantCurrent) and step.until_capacity_ah and current:
        bounds.append(step.until_capacity_ah / current * 3600.0)
    if isinstance(step, (ConstantCurrent, CCCV)) and current and cell is not None and cell.has_capacity:
        bounds.append(CAPACITY_MARGIN * cell.capacity_ah / current * 3600.0)
    cc = min(bounds) if bounds else 0.0
    if isinstance(step, CCCV) and step.until_time_s:
        return cc + step.until_time_s
    return cc


def program_bound_s(program: CyclingProgram, cell: CellSection | None) -> float:
    """Worst-case duration of a cycling program, s."""
    return sum(n * _step_bound_s(step, cell) for step, n in zip(program.steps, run_counts(program.steps))
               if not isinstance(step, Loop))


def program_limit_problems(where: str, program: CyclingProgram, cell: CellSection,
                           station: StationConfig) -> list[str]:
    """A program's safety window, voltages and currents within the cycler's absolute limits and
    the cell's cut-offs within its safety window."""
    vmax, imax = station.cycler.max_voltage_v, station.cycler.max_current_a
    problems = []
    safety = program.safety
    for field in ("voltage_min_v", "voltage_max_v"):
        value = getattr(safety, field)
        if abs(value) > vmax:
            problems.append(f"{where}.safety.{field}: {value} V is beyond the cycler's limit "
                            f"±{vmax} V (station file: cycler.max_voltage_v)")
    if safety.current_max_a > imax:
        problems.append(f"{where}.safety.current_max_a: {safety.current_max_a} A is above the "
                        f"cycler's limit {imax} A (station file: cycler.max_current_a)")
    for i, step in enumerate(program.steps):
        for field in ("voltage_v", "until_voltage_v"):
            value = getattr(step, field, None)
            if value is not None and abs(value) > vmax:
                problems.append(f"{where}.steps[{i}].{field}: {value} V is beyond the cycler's limit "
                                f"±{vmax} V")
        current = getattr(step, "current_a", None)
        if current is None and getattr(step, "rate_c", None) is not None and cell.has_capacity:
            current = cell.current_for_rate(step.rate_c)
        if current is not None and current > imax:
            problems.append(f"{where}.steps[{i}]: {current:.6g} A is above the cycler's limit "
                            f"{imax} A (station file: cycler.max_current_a)")
    for field in ("lower_cutoff_v", "upper_cutoff_v"):
        value = getattr(cell, field)
        if not safety.voltage_min_v <= value <= safety.voltage_max_v:
            problems.append(f"{where}.safety: the cell's {field} {value} V is outside the safety "
                            f"window {safety.voltage_min_v}…{safety.voltage_max_v} V")
    return problems


def cell_limit_problems(cell: CellSection, station: StationConfig) -> list[str]:
    vmax = station.cycler.max_voltage_v
    return [f"cell.{field}: {getattr(cell, field)} V is beyond the cycler's limit ±{vmax} V"
            for field in ("lower_cutoff_v", "upper_cutoff_v") if abs(getattr(cell, field)) > vmax]


def potential_problems(where: str, potentials_v: Iterable[float], station: StationConfig) -> list[str]:
    vmax = station.potentiostat.max_voltage_v
    return [f"{where}: {v} V is beyond the potentiostat's limit ±{vmax} V "
            f"(station file: potentiostat.max_voltage_v)" for v in potentials_v if abs(v) > vmax]


def cell_eis_bias_problems(where: str, peis, cell: CellSection) -> list[str]:
    """An EIS of a cell stays inside the cell's window: an absolute DC bias ± amplitude between
    its cut-offs; a bias vs the open circuit (which lies inside the window) no wider than it."""
    lo, hi = cell.lower_cutoff_v, cell.upper_cutoff_v
    if not peis.dc_vs_ocv:
        if lo <= peis.dc_voltage_v - peis.amplitude_v and peis.dc_voltage_v + peis.amplitude_v <= hi:
            return []
        return [f"{where}.dc_voltage_v: {peis.dc_voltage_v} V ± {peis.amplitude_v} V leaves the "
                f"cell's window {lo}…{hi} V"]
    if abs(peis.dc_voltage_v) + peis.amplitude_v <= hi - lo:
        return []
    return [f"{where}.dc_voltage_v: a bias of {peis.dc_voltage_v} V ± {peis.amplitude_v} V from the "
            f"open circuit leaves the cell's window {lo}…{hi} V whatever the open-circuit voltage"]


def duration_problems(where: str, durations: dict[str, float], station: StationConfig) -> list[str]:
    cap = station.limits.max_protocol_duration_s
    return [f"{where}.{name}: {value:g} s is longer than the station's maximum protocol length "
            f"{cap:g} s (station file: limits.max_protocol_duration_s)"
            for name, value in durations.items() if value is not None and value > cap]


def total_problems(total_s: float, points: float, chamber_log_s: float | None,
                   station: StationConfig) -> list[str]:
    """The protocol as a whole: its worst-case length and the points its sampling would record."""
    problems = []
    cap = station.limits.max_protocol_duration_s
    if total_s > cap:
        problems.append(f"protocol: it may run {total_s:.4g} s ({total_s / 86400:.4g} days) with every "
                        f"timeout reached, longer than the station's maximum {cap:g} s "
                        f"(station file: limits.max_protocol_duration_s)")
    if chamber_log_s:
        points += total_s / chamber_log_s
    if points > station.limits.max_points:
        problems.append(f"protocol: its sampling would record about {points:.4g} points, more than "
                        f"the station's maximum {station.limits.max_points} "
                        f"(station file: limits.max_points); record less often")
    return problems


def peis_bound_s(peis) -> float:
    """Longest a spectrum takes: (wait + averaging) periods at each frequency plus 0.1 s."""
    n = peis.frequency_number
    ratio = peis.final_frequency_hz / peis.initial_frequency_hz
    periods = peis.wait_for_steady_periods + peis.average_n_times
    return sum(periods / (peis.initial_frequency_hz * ratio ** (i / (n - 1))) + 0.1 for i in range(n))


def program_points(program: CyclingProgram, cell: CellSection | None) -> float:
    """Records of a program: one per record interval, plus one per record_dv_v over the cell's
    window on each current-carrying step."""
    window_v = (cell.upper_cutoff_v - cell.lower_cutoff_v) if cell is not None else 0.0
    swings = sum(n for step, n in zip(program.steps, run_counts(program.steps))
                 if isinstance(step, (ConstantCurrent, CCCV, ConstantVoltage)))
    return program_bound_s(program, cell) / program.record_interval_s + swings * window_v / program.record_dv_v


def step_worst_case(step, cell: CellSection | None, station: StationConfig) -> tuple[float, float]:
    """(worst-case duration, s; points recorded) of one protocol step, every timeout reached."""
    kind = step.kind
    stab = getattr(step, "stabilization", None)
    settle_s = (stab.timeout_s + step.soak_s) if stab is not None else 0.0
    if kind == "chamber":
        return settle_s, 0.0
    if kind == "peis":
        return peis_bound_s(step.peis), step.peis.frequency_number
    if kind == "temperature_eis_series":
        n = len(step.temperatures_c)
        return n * (settle_s + peis_bound_s(step.peis)), n * step.peis.frequency_number
    if kind == "hold":
        return step.duration_s, 0.0
    if kind == "lsv":
        # From the most distant open circuit the potentiostat allows.
        sweep_v = abs(step.end_voltage_v) + station.potentiostat.max_voltage_v
        total = step.rest_s + sweep_v / step.scan_rate_v_per_s
        return total, total / step.record_every_dt_s + sweep_v / step.record_every_dv_v
    if kind == "dc_polarization":
        n = len(step.voltages_v)
        total = n * step.max_step_s + max(n - 1, 0) * step.rest_between_s
        return total, total / step.record_every_dt_s
    if kind == "cycling":
        return settle_s + program_bound_s(step.program, cell), program_points(step.program, cell)
    if kind == "cold_discharge" and cell is not None and cell.has_capacity:
        program, _ = step.program_for(cell)
        n = len(step.temperatures_c) if step.eis else 0
        return (program_bound_s(program, cell),
                program_points(program, cell) + n * step.peis.frequency_number)
    return 0.0, 0.0


def step_duration_fields(step) -> dict[str, float]:
    """Every duration a step sets, by its name in the file (each bounded on its own)."""
    fields = {name: value for name, value in step if name.endswith("_s") and isinstance(value, float)}
    stab = getattr(step, "stabilization", None)
    if stab is not None:
        fields.update({f"stabilization.{name}": value for name, value in stab
                       if name.endswith("_s") and isinstance(value, float)})
    program = getattr(step, "program", None)
    if program is not None:
        for i, pstep in enumerate(program.steps):
            fields.update({f"program.steps[{i}].{name}": value for name, value in pstep
                           if name.endswith("_s") and isinstance(value, float)})
        fields["program.record_interval_s"] = program.record_interval_s
    return fields


_POTENTIOSTAT_V = ("end_voltage_v", "dc_voltage_v", "voltages_v")
_CYCLER_V = ("voltage_v", "until_voltage_v", "voltage_min_v", "voltage_max_v")
_CYCLER_A = ("current_a", "current_max_a")


def raw_step_problems(where: str, raw, station: StationConfig) -> list[str]:
    """Durations, potentials and currents of a step that failed its own validation, read from
    the file's plain values, so that one typo does not hide a 1e12 s soak or a 40 A program."""
    problems = []
    cap = station.limits.max_protocol_duration_s

    def walk(value, path: str, key: str) -> None:
        if isinstance(value, dict):
            for k, item in value.items():
                walk(item, f"{path}.{k}", str(k))
            return
        if isinstance(value, list):
            for j, item in enumerate(value):
                walk(item, f"{path}[{j}]", key)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return  # pydantic has named what is not a finite number
        if key.endswith("_s") and value > cap:
            problems.append(f"{path}: {value:g} s is longer than the station's maximum protocol "
                            f"length {cap:g} s (station file: limits.max_protocol_duration_s)")
        elif key in _POTENTIOSTAT_V and abs(value) > station.potentiostat.max_voltage_v:
            problems.extend(potential_problems(path, [value], station))
        elif key in _CYCLER_V and abs(value) > station.cycler.max_voltage_v:
            problems.append(f"{path}: {value} V is beyond the cycler's limit "
                            f"±{station.cycler.max_voltage_v} V")
        elif key in _CYCLER_A and abs(value) > station.cycler.max_current_a:
            problems.append(f"{path}: {value} A is above the cycler's limit "
                            f"{station.cycler.max_current_a} A (station file: cycler.max_current_a)")
    walk(raw, where, "")
    return problems
