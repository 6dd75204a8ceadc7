"""Overpotential per half cycle of a symmetric cell (protocol 5: Na9Sn4 | o-NBH | Na9Sn4 at
±0.2 mA/cm², 5 h per half cycle).

Both electrodes are the same, so the cell voltage during a half cycle is the overpotential of the
whole cell (bulk and interfaces); it is positive while current flows one way ("charge", I > 0) and
negative the other way. Half cycles and cycles are numbered as in ``analysis.cycling``: a cycle is a
positive half followed by a negative half; a negative half before the first positive one is cycle 0.

Methods (``method``):
* 'plateau_mean' (default): time-weighted mean of |V| between 10 % and 90 % of the half cycle's
  duration (``plateau_window``), which skips the capacitive/concentration transient at the current
  reversal and any spike at the end.
* 'midpoint': |V| at half the half cycle's duration (linear interpolation between samples).
* 'max': the largest |V| in the half cycle (the value often quoted for dendrite/contact failure).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.cycling import CHARGE, CyclingDataError, prepare_record

METHODS = ("plateau_mean", "midpoint", "max")


class SymmetricInputError(ValueError):
    """The symmetric-cell record or an option is unusable; the message says which."""


def _time_weighted_mean(time_s: np.ndarray, values: np.ndarray, start_s: float, stop_s: float) -> float:
    inside = (time_s > start_s) & (time_s < stop_s)
    t = np.concatenate(([start_s], time_s[inside], [stop_s]))
    ends = np.interp([start_s, stop_s], time_s, values)
    y = np.concatenate(([ends[0]], values[inside], [ends[1]]))
    return float(np.trapezoid(y, t) / (stop_s - start_s))


def _half_overpotential(time_s: np.ndarray, abs_voltage_v: np.ndarray, method: str,
                        window: tuple[float, float]) -> float:
    start, duration = time_s[0], time_s[-1] - time_s[0]
    if method == "max":
        return float(abs_voltage_v.max())
    if duration <= 0:
        return float(abs_voltage_v.mean())
    if method == "midpoint":
        return float(np.interp(start + 0.5 * duration, time_s, abs_voltage_v))
    return _time_weighted_mean(time_s, abs_voltage_v, start + window[0] * duration,
                               start + window[1] * duration)


def symmetric_overpotential(df: pd.DataFrame, method: str = "plateau_mean",
                            plateau_window: tuple[float, float] = (0.1, 0.9),
                            rest_current_a: float | None = None) -> dict:
    """Overpotential (V, >= 0) of each half cycle of a symmetric-cell record.

    df: record with test_time_s (or time_s), voltage_v, current_a and optionally cycle/step/step_type.
    method: 'plateau_mean', 'midpoint' or 'max' (module docstring).
    plateau_window: fractions (0 <= start < stop <= 1) of the half-cycle duration averaged by
        'plateau_mean'.
    rest_current_a: see ``analysis.cycling.prepare_record``.

    Returns {"method", "cycles": [{"cycle", "overpotential_charge_v", "overpotential_discharge_v",
    "overpotential_mean_v"}]}; a missing half is None and so is the mean of the two.
    """
    if method not in METHODS:
        raise SymmetricInputError(f"method must be one of {METHODS}, got {method!r}")
    start, stop = plateau_window
    if not 0 <= start < stop <= 1:
        raise SymmetricInputError(
            f"plateau_window must satisfy 0 <= start < stop <= 1, got {plateau_window!r}")
    try:
        record = prepare_record(df, rest_current_a=rest_current_a)
    except CyclingDataError as exc:
        raise SymmetricInputError(str(exc)) from exc

    active = np.flatnonzero(record.state != 0)
    halves = pd.Series(active).groupby([record.cycle[active], record.state[active]]).indices
    by_cycle: dict[int, dict] = {}
    for (cycle, state), positions in halves.items():
        rows = active[positions]
        value = _half_overpotential(record.time_s[rows], np.abs(record.voltage_v[rows]), method,
                                    (start, stop))
        entry = by_cycle.setdefault(int(cycle), {"cycle": int(cycle), "overpotential_charge_v": None,
                                                 "overpotential_discharge_v": None})
        key = "overpotential_charge_v" if state == CHARGE else "overpotential_discharge_v"
        entry[key] = value

    cycles = []
    for cycle in sorted(by_cycle):
        entry = by_cycle[cycle]
        charge, discharge = entry["overpotential_charge_v"], entry["overpotential_discharge_v"]
        both = charge is not None and discharge is not None
        entry["overpotential_mean_v"] = (charge + discharge) / 2 if both else None
        cycles.append(entry)
    return {"method": method, "cycles": cycles}
