"""Cycle-by-cycle capacity, coulombic efficiency and retention of a galvanostatic (CCCV) cycler record.

Conventions
-----------
* Current is positive on charge, negative on discharge (the canonical record convention).
* Capacities come from Ah-counting: trapezoidal integration of current over time inside every run of
  records that share one state (charge, discharge or rest), one step and one cycle label. CC and CV
  charge both count; rest records count nothing.
* Where two neighbouring records belong to different runs, the time between them is split: with a
  ``step_time_s`` column the new step owns ``step_time_s`` of the later record (the time since its step
  began) at that record's current, and the old run owns the remainder at its last current; without it
  the interval is halved. Records logged at both ends of every step (the usual cycler behaviour) make
  the split exact; otherwise the error is at most half a logging interval of current per step change.
* A cycle is one charge followed by its discharge (cathode half cells and full cells are charged
  first), so CE = Q_discharge / Q_charge of the same cycle. Without a ``cycle`` column a new cycle
  starts at every charge that follows a discharge (or opens the record); with one, its labels are used.
  Either way a discharge before the first charge is cycle 0, which has no charge and no CE.

Accepted columns: ``test_time_s`` (or ``time_s``), ``voltage_v``, ``current_a``; optional ``cycle``,
``step``, ``step_type``, ``step_time_s``. Other canonical columns (``capacity_ah``, ``energy_wh``) are
ignored: the instrument's counters reset per step and differ between cyclers, so this module
recomputes everything from current and time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

CHARGE = 1
REST = 0
DISCHARGE = -1

# Below this fraction of the largest |current| in the record a sample counts as rest, so that
# instrument noise around zero during rests neither adds capacity nor starts spurious half cycles.
DEFAULT_REST_CURRENT_FRACTION = 1e-3
# Without CV steps in ``step_type``, a charge sample is a CV sample when its voltage is within this of
# the cycle's highest charge voltage...
DEFAULT_CV_VOLTAGE_TOLERANCE_V = 0.005
# ...in a run of such samples where the current falls at least this fraction below the cycle's largest
# charge current, which keeps a plain CC charge that merely ends at its cut-off voltage out.
CV_CURRENT_DROP_FRACTION = 0.02


class CyclingDataError(ValueError):
    """A cycling record cannot be analysed; the message names the column and the row."""


@dataclass(frozen=True)
class PreparedRecord:
    """A cycling record reduced to aligned numpy arrays, one entry per sample, in time order.

    ``charge_ah`` and ``energy_wh`` hold the charge (Ah) and energy (Wh) that Ah-counting attributes to
    each sample (the integral over the interval that ends at it, plus its share of a boundary interval);
    summing them over a set of samples gives that set's capacity. Both are signed like the current.
    """

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    state: np.ndarray
    cycle: np.ndarray
    is_cv: np.ndarray
    charge_ah: np.ndarray
    energy_wh: np.ndarray


def _time_column(df: pd.DataFrame) -> str:
    for name in ("test_time_s", "time_s"):
        if name in df.columns:
            return name
    raise CyclingDataError(
        "cycling record needs a time column 'test_time_s' or 'time_s'; columns are "
        f"{list(df.columns)}"
    )


def _finite_column(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise CyclingDataError(f"cycling record has no column '{name}'; columns are {list(df.columns)}")
    try:
        values = df[name].to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise CyclingDataError(f"column '{name}' of the cycling record is not numeric: {exc}") from exc
    bad = ~np.isfinite(values)
    if bad.any():
        row = df.index[int(np.argmax(bad))]
        raise CyclingDataError(f"column '{name}' of the cycling record is not finite at row {row!r}")
    return values


def _step_kind(step_type: str) -> str:
    """Classify a step-type label as 'cv', 'cc', 'rest' or 'detect' (a combined CCCV step or a label
    that says nothing about the control mode)."""
    squashed = re.sub(r"[\s_\-/]", "", str(step_type).lower())
    if "cccv" in squashed:
        return "detect"
    if "rest" in squashed or "opencircuit" in squashed or squashed == "ocv":
        return "rest"
    if "cv" in squashed or "constantvoltage" in squashed or "potentiostatic" in squashed:
        return "cv"
    if "cc" in squashed or "constantcurrent" in squashed or "galvanostatic" in squashed:
        return "cc"
    return "detect"


def _cycle_labels(df: pd.DataFrame, state: np.ndarray) -> np.ndarray:
    charge_rows = np.flatnonzero(state == CHARGE)
    first_charge = int(charge_rows[0]) if charge_rows.size else state.size
    if "cycle" in df.columns:
        cycle = _finite_column(df, "cycle")
        if np.any(cycle != np.round(cycle)):
            row = df.index[int(np.argmax(cycle != np.round(cycle)))]
            raise CyclingDataError(f"column 'cycle' of the cycling record is not an integer at row {row!r}")
        cycle = cycle.astype(np.int64)
        early_discharge = np.zeros(state.size, dtype=bool)
        early_discharge[:first_charge] = state[:first_charge] == DISCHARGE
        if early_discharge.any() and np.any(cycle[first_charge:] <= 0):
            row = df.index[first_charge + int(np.argmax(cycle[first_charge:] <= 0))]
            raise CyclingDataError(
                "column 'cycle' numbers a cycle after the first charge 0 or below (row "
                f"{row!r}), but cycle 0 is reserved for the discharge before the first charge"
            )
        cycle[early_discharge] = 0
        return cycle
    # A cycle starts at a charge sample whose previous non-rest sample was not a charge.
    active = np.flatnonzero(state != REST)
    previous_active = np.zeros(state.size, dtype=np.int64)
    previous_active[active[1:]] = state[active[:-1]]
    starts = (state == CHARGE) & (previous_active != CHARGE)
    return np.cumsum(starts)


def _detect_cv(cycle: np.ndarray, state: np.ndarray, voltage_v: np.ndarray, current_a: np.ndarray,
               tolerance_v: float) -> np.ndarray:
    """CV samples of each cycle's charge: consecutive charge samples within ``tolerance_v`` of the
    cycle's highest charge voltage, in a run where the current decays; the first sample of the run
    closes the CC phase (the interval ending at it was spent reaching the limit)."""
    charging = state == CHARGE
    if not charging.any():
        return np.zeros(state.size, dtype=bool)
    frame = pd.DataFrame({"cycle": cycle[charging], "v": voltage_v[charging], "i": current_a[charging]})
    by_cycle = frame.groupby("cycle", sort=False)
    at_limit = frame["v"].to_numpy() >= by_cycle["v"].transform("max").to_numpy() - tolerance_v
    decayed = at_limit & (frame["i"].to_numpy() <= (1.0 - CV_CURRENT_DROP_FRACTION)
                          * by_cycle["i"].transform("max").to_numpy())
    cycles = frame["cycle"].to_numpy()
    previous_at_limit = np.concatenate(([False], at_limit[:-1] & (cycles[1:] == cycles[:-1])))
    run_start = at_limit & ~previous_at_limit
    run = np.cumsum(run_start)
    run_decays = pd.Series(decayed).groupby(run).transform("any").to_numpy()
    is_cv = np.zeros(state.size, dtype=bool)
    is_cv[charging] = at_limit & ~run_start & run_decays
    return is_cv


def prepare_record(df: pd.DataFrame, rest_current_a: float | None = None,
                   cv_voltage_tolerance_v: float = DEFAULT_CV_VOLTAGE_TOLERANCE_V) -> PreparedRecord:
    """Label every sample with state, cycle and CV membership and attribute Ah-counted charge to it.

    rest_current_a: |current| (A) at or below which a sample is rest; default 0.1 % of the record's
        largest |current|. A ``step_type`` containing 'rest' also marks rest.
    cv_voltage_tolerance_v: window (V, > 0) below a cycle's highest charge voltage; consecutive charge
        samples inside it, in a run where the current decays by more than 2 %, are CV (the run's first
        sample ends the CC phase). Used only where ``step_type`` does not say CC or CV (no column, a
        combined 'CCCV' step, or an uninformative label).
    """
    if not isinstance(df, pd.DataFrame):
        raise CyclingDataError(f"cycling record must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) < 2:
        raise CyclingDataError(f"cycling record needs at least 2 rows, got {len(df)}")
    if not cv_voltage_tolerance_v > 0:
        raise CyclingDataError(f"cv_voltage_tolerance_v must be > 0 V, got {cv_voltage_tolerance_v!r}")
    time_name = _time_column(df)
    time_s = _finite_column(df, time_name)
    voltage_v = _finite_column(df, "voltage_v")
    current_a = _finite_column(df, "current_a")
    dt = np.diff(time_s)
    if np.any(dt < 0):
        row = df.index[int(np.argmax(dt < 0)) + 1]
        raise CyclingDataError(f"column '{time_name}' of the cycling record goes backwards at row {row!r}")

    if rest_current_a is None:
        rest_current_a = DEFAULT_REST_CURRENT_FRACTION * float(np.max(np.abs(current_a)))
    elif not rest_current_a >= 0:
        raise CyclingDataError(f"rest_current_a must be >= 0 A, got {rest_current_a!r}")
    state = np.where(np.abs(current_a) > rest_current_a, np.sign(current_a), 0).astype(np.int64)

    step_kind = None
    if "step_type" in df.columns:
        labels = df["step_type"].astype(str)
        kinds = {label: _step_kind(label) for label in labels.unique()}
        step_kind = labels.map(kinds).to_numpy()
        state[step_kind == "rest"] = REST

    cycle = _cycle_labels(df, state)

    is_cv = _detect_cv(cycle, state, voltage_v, current_a, cv_voltage_tolerance_v)
    if step_kind is not None:
        is_cv = np.where(step_kind == "detect", is_cv, step_kind == "cv") & (state == CHARGE)

    new_run = (state[1:] != state[:-1]) | (cycle[1:] != cycle[:-1])
    if "step" in df.columns:
        step = df["step"].to_numpy()
        new_run |= step[1:] != step[:-1]

    if "step_time_s" in df.columns:
        since_step_start = _finite_column(df, "step_time_s")[1:]
        owned_by_new = np.where((since_step_start >= 0) & (since_step_start <= dt), since_step_start, dt / 2)
    else:
        owned_by_new = dt / 2
    owned_by_new = np.where(new_run, owned_by_new, 0.0)
    owned_by_old = np.where(new_run, dt - owned_by_new, 0.0)

    power_w = voltage_v * current_a
    charge_ah = np.zeros(time_s.size)
    energy_wh = np.zeros(time_s.size)
    for target, quantity in ((charge_ah, current_a), (energy_wh, power_w)):
        trapezoid = 0.5 * (quantity[:-1] + quantity[1:]) * dt
        target[1:] += np.where(new_run, quantity[1:] * owned_by_new, trapezoid) / 3600.0
        target[:-1] += quantity[:-1] * owned_by_old / 3600.0

    return PreparedRecord(time_s=time_s, voltage_v=voltage_v, current_a=current_a, state=state,
                          cycle=cycle, is_cv=is_cv, charge_ah=charge_ah, energy_wh=energy_wh)


def _positive_or_none(value: float | None, name: str) -> float | None:
    if value is None:
        return None
    if not (isinstance(value, (int, float, np.floating, np.integer)) and np.isfinite(value) and value > 0):
        raise CyclingDataError(f"{name} must be a positive number or None, got {value!r}")
    return float(value)


def _ratio(numerator: float | None, denominator: float | None, scale: float = 1.0) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(numerator / denominator * scale)


_ABSENT_HALF = {"charge_ah": None, "energy_wh": None, "cv_ah": None}


def summarize_cycles(df: pd.DataFrame, mass_mg: float | None = None, area_cm2: float | None = None,
                     reference_cycle: int = 1, rest_current_a: float | None = None,
                     cv_voltage_tolerance_v: float = DEFAULT_CV_VOLTAGE_TOLERANCE_V) -> dict:
    """Per-cycle capacities, CE, CV share and average voltages of a cycling record, plus ICE, mean CE and
    capacity retention.

    df: cycling record (see module docstring for columns), current in A, positive on charge.
    mass_mg: active cathode mass (mg, > 0) for mAh/g; area_cm2: electrode area (cm², > 0) for mAh/cm².
    reference_cycle: cycle whose discharge is 100 % retention (1, or the first after formation).
    rest_current_a, cv_voltage_tolerance_v: see ``prepare_record``.

    Returns {"cycles": [...], "ice_pct", "mean_ce_pct", "retention_pct", "reference_cycle"}. Each cycle
    entry holds cycle, charge_mah, discharge_mah, ce_pct (discharge / charge × 100),
    charge_mah_per_cm2, discharge_mah_per_cm2, charge_mah_per_g, discharge_mah_per_g,
    cv_charge_share_pct (charge passed in CV / all charge × 100), avg_charge_voltage_v and
    avg_discharge_voltage_v (∫V dQ / Q). A half cycle that is absent is None, as is everything derived
    from it. ICE is the CE of cycle 1; mean_ce_pct averages the CE of cycles 2 and up; retention_pct is
    the discharge of the last cycle with both halves over that of ``reference_cycle`` × 100. None where
    unknown. A discharge still in progress at the end of the record counts as it stands.
    """
    mass_g = _positive_or_none(mass_mg, "mass_mg")
    mass_g = None if mass_g is None else mass_g / 1000.0
    area = _positive_or_none(area_cm2, "area_cm2")
    record = prepare_record(df, rest_current_a=rest_current_a, cv_voltage_tolerance_v=cv_voltage_tolerance_v)

    active = record.state != REST
    halves = pd.DataFrame({
        "cycle": record.cycle[active],
        "state": record.state[active],
        "charge_ah": record.charge_ah[active],
        "energy_wh": record.energy_wh[active],
        "cv_ah": np.where(record.is_cv, record.charge_ah, 0.0)[active],
    }).groupby(["cycle", "state"]).sum().to_dict("index")

    cycles = []
    for cycle in sorted({cycle for cycle, _ in halves}):
        entry = {"cycle": int(cycle)}
        for half, state in (("charge", CHARGE), ("discharge", DISCHARGE)):
            sums = halves.get((cycle, state), _ABSENT_HALF)
            q_mah = None if sums["charge_ah"] is None else abs(sums["charge_ah"]) * 1000.0
            entry[f"{half}_mah"] = q_mah
            entry[f"{half}_mah_per_cm2"] = _ratio(q_mah, area)
            entry[f"{half}_mah_per_g"] = _ratio(q_mah, mass_g)
            entry[f"avg_{half}_voltage_v"] = _ratio(sums["energy_wh"], sums["charge_ah"])
            if state == CHARGE:
                entry["cv_charge_share_pct"] = _ratio(sums["cv_ah"], sums["charge_ah"], 100.0)
        entry["ce_pct"] = _ratio(entry["discharge_mah"], entry["charge_mah"], 100.0)
        cycles.append(entry)

    return cycle_statistics(cycles, reference_cycle)


def cycle_statistics(cycles: list[dict], reference_cycle: int = 1) -> dict:
    """ICE, mean CE and retention of per-cycle entries (as ``summarize_cycles`` makes them, in
    cycle order); returns the summary dict with ``cycles`` included. Used on a whole record, and
    on the cycles of a long run summarised chunk by chunk."""
    by_number = {entry["cycle"]: entry for entry in cycles}
    complete = [entry for entry in cycles if entry["cycle"] >= 1 and entry["ce_pct"] is not None]
    later_ce = [entry["ce_pct"] for entry in complete if entry["cycle"] >= 2]
    reference = by_number.get(reference_cycle)
    retention = None
    if complete and reference is not None:
        retention = _ratio(complete[-1]["discharge_mah"], reference["discharge_mah"], 100.0)
    return {
        "cycles": cycles,
        "ice_pct": by_number[1]["ce_pct"] if 1 in by_number else None,
        "mean_ce_pct": float(np.mean(later_ce)) if later_ce else None,
        "retention_pct": retention,
        "reference_cycle": reference_cycle,
    }
