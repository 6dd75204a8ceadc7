"""Cycle-by-cycle capacity, coulombic efficiency and retention of a galvanostatic (CCCV) cycler record.

Conventions
-----------
* Current is positive on charge, negative on discharge (the canonical record convention). Where the
  record has ``step_type`` labels that name a direction (charge / discharge), the labels decide: an
  unsigned current, or one signed the other way throughout, takes its sign from them; a current that
  agrees with the labels on some rows and contradicts them on others is refused. Without such labels
  ``summarize_cycles`` checks the sign against the voltage (a battery's voltage rises on charge) and
  refuses a record whose half cycles mostly say the opposite.
* ``current_a`` of a record is the mean current since the previous record (what EC-Lab's ``<I>`` and
  a cycler's Ah counter mean), so the charge of the interval that ends at record k is
  ``I_k · (t_k − t_(k−1))``: capacities are sums of these rectangles, the way the instrument counts,
  not a trapezoid that would lend half of every boundary interval to the neighbouring step. The
  interval belongs to record k's run (records sharing one state — charge, discharge or rest —, one
  step and one cycle); rest records count nothing.
* With a ``step_time_s`` column, a record that opens a step less than one interval after the step
  began (``step_time_s`` < the interval) shares the interval: the old run keeps its last current
  until the step change, the new run the rest of the interval's charge. An invalid ``step_time_s``
  (negative, or longer than the interval) leaves the whole interval to the new run.
* The instrument's own charge counter, when the record has one, is used instead of current × time:
  ``dq_ah`` is the signed charge (Ah) since the previous record (EC-Lab's ``dq``, ``(Q-Qo)``
  differences); without it, ``capacity_ah`` with ``step`` is taken as a counter that restarts at each
  step and counts magnitudes (Landt's capacity), unless it decreases inside a step. Current × time is
  computed as a cross-check: a half cycle where the two differ by more than
  ``COUNTER_MISMATCH_FRACTION`` carries a warning naming both values, and beyond
  ``COUNTER_UNUSABLE_FRACTION`` (a placeholder column, a wrong unit) current × time is reported.
* A cycle is one charge followed by its discharge (cathode half cells and full cells are charged
  first), so CE = Q_discharge / Q_charge of the same cycle. Cycle k is the k-th charge and the
  discharge after it; cycle 0 exists only for a discharge before the first charge. Without a
  ``cycle`` column a new cycle starts at every charge that follows a discharge (or opens the record);
  with one, its labels must follow this convention: a charge labelled 0 or below (a 0-based vendor
  numbering such as EC-Lab's ``cycle number``) or a cycle whose discharge precedes its charge is
  refused, never renumbered silently.
* A cycle whose CE exceeds ``CE_IMPLAUSIBLE_PCT`` carries a warning naming the likely causes.

Accepted columns: ``test_time_s`` (or ``time_s``), ``voltage_v``, ``current_a``; optional ``cycle``,
``step``, ``step_type``, ``step_time_s``, ``dq_ah``, ``capacity_ah``. ``energy_wh`` is ignored: the
energy is recomputed from the charge and the voltage.
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
# A cycle whose discharge exceeds its charge by more than this cannot be a battery's own cycle.
CE_IMPLAUSIBLE_PCT = 105.0
# Instrument counter and current × time of one half cycle may differ by rounding of the logged
# current (EC-Lab logs <I> as float32) and by a logged instantaneous I instead of the mean; more than
# this means one of them is not what it claims to be.
COUNTER_MISMATCH_FRACTION = 0.005
# Further apart than this, the "counter" is a placeholder or in the wrong unit: current × time counts.
COUNTER_UNUSABLE_FRACTION = 0.05
# Voltage changes (V) over a half cycle smaller than this say nothing about the current's sign.
SIGN_CHECK_MIN_DV_V = 0.002


class CyclingDataError(ValueError):
    """A cycling record cannot be analysed; the message names the column and the row."""


@dataclass(frozen=True)
class PreparedRecord:
    """A cycling record reduced to aligned numpy arrays, one entry per sample, in time order.

    ``charge_ah`` and ``energy_wh`` hold the charge (Ah) and energy (Wh) attributed to each sample
    (the interval that ends at it, less what a step change inside that interval leaves to the previous
    run, plus what the next record's interval leaves to it); summing them over a set of samples gives
    that set's capacity. Both are signed like the current. ``charge_ah`` comes from the instrument's
    counter (``dq_ah``) when the record has one, else from current × time; ``integral_ah`` is always
    current × time, attributed the same way, for the cross-check. ``notes`` says how the sign of the
    current was established when it was not taken as given.
    """

    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    state: np.ndarray
    cycle: np.ndarray
    is_cv: np.ndarray
    charge_ah: np.ndarray
    energy_wh: np.ndarray
    integral_ah: np.ndarray
    has_counter: bool = False
    labelled_direction: bool = False
    notes: tuple[str, ...] = ()


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


def _squash(label: str) -> str:
    return re.sub(r"[\s_\-/]", "", str(label).lower())


def _step_kind(step_type: str) -> str:
    """Classify a step-type label as 'cv', 'cc', 'rest' or 'detect' (a combined CCCV step or a label
    that says nothing about the control mode)."""
    squashed = _squash(step_type)
    if "cccv" in squashed:
        return "detect"
    if "rest" in squashed or "opencircuit" in squashed or squashed == "ocv":
        return "rest"
    if "cv" in squashed or "constantvoltage" in squashed or "potentiostatic" in squashed:
        return "cv"
    if "cc" in squashed or "constantcurrent" in squashed or "galvanostatic" in squashed:
        return "cc"
    return "detect"


def _step_direction(step_type: str) -> float:
    """+1 for a label that says charge, -1 discharge, 0 rest, NaN for one that names no direction."""
    squashed = _squash(step_type)
    if _step_kind(step_type) == "rest":
        return 0.0
    if "dis" in squashed or "dchg" in squashed:
        return -1.0
    if "chg" in squashed or "charg" in squashed:
        return 1.0
    return float("nan")


def _signed_by_labels(df: pd.DataFrame, current_a: np.ndarray, direction: np.ndarray,
                      rest_current_a: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """The current signed as the step labels say, or CyclingDataError where the two disagree on some
    rows and agree on others (neither the current nor the labels can then be trusted). The first
    record of a step is not compared: its interval may hold the end of the previous step."""
    labels = df["step_type"].astype(str).to_numpy()
    opens_step = np.concatenate(([True], labels[1:] != labels[:-1]))
    if "step" in df.columns:
        step = df["step"].to_numpy()
        opens_step[1:] |= step[1:] != step[:-1]
    known = np.isin(direction, (-1.0, 1.0)) & (np.abs(current_a) > rest_current_a) & ~opens_step
    if not known.any():
        return current_a, ()
    sign = np.sign(current_a[known])
    stated = direction[known]
    if np.all(sign == stated):
        return current_a, ()
    both_directions = np.any(stated > 0) and np.any(stated < 0)
    if both_directions and (np.all(sign > 0) or np.all(sign < 0)):
        signed = np.where(np.isin(direction, (-1.0, 1.0)), direction * np.abs(current_a), current_a)
        return signed, ("current_a carries no sign (one sign on charge and discharge steps alike): "
                        "its sign was taken from the step_type labels",)
    if np.all(sign == -stated):
        return -current_a, ("current_a is negative on charge steps and positive on discharge steps "
                            "(discharge-positive convention, by the step_type labels): sign reversed",)
    rows = np.flatnonzero(known)
    agree = sign == stated
    first_bad = rows[int(np.argmin(agree))]
    label = df["step_type"].iloc[first_bad]
    raise CyclingDataError(
        f"the sign of current_a contradicts step_type on some rows and agrees on others (first "
        f"contradiction at row {df.index[first_bad]!r}: current {current_a[first_bad]:.6g} A in a "
        f"{label!r} step; {int(np.sum(~agree))} of {agree.size} rows): the sign convention cannot be "
        "established"
    )


def _cycle_labels(df: pd.DataFrame, state: np.ndarray) -> np.ndarray:
    charge_rows = np.flatnonzero(state == CHARGE)
    first_charge = int(charge_rows[0]) if charge_rows.size else state.size
    if "cycle" not in df.columns:
        # A cycle starts at a charge sample whose previous non-rest sample was not a charge.
        active = np.flatnonzero(state != REST)
        previous_active = np.zeros(state.size, dtype=np.int64)
        previous_active[active[1:]] = state[active[:-1]]
        starts = (state == CHARGE) & (previous_active != CHARGE)
        return np.cumsum(starts)

    cycle = _finite_column(df, "cycle")
    if np.any(cycle != np.round(cycle)):
        row = df.index[int(np.argmax(cycle != np.round(cycle)))]
        raise CyclingDataError(f"column 'cycle' of the cycling record is not an integer at row {row!r}")
    cycle = cycle.astype(np.int64)
    late = np.zeros(state.size, dtype=bool)
    late[first_charge:] = state[first_charge:] != REST
    if np.any(late & (cycle <= 0)):
        k = int(np.argmax(late & (cycle <= 0)))
        raise CyclingDataError(
            f"column 'cycle' numbers a charge or a discharge after the first charge {cycle[k]} "
            f"(row {df.index[k]!r}), but cycle 0 is reserved for the discharge before the first charge "
            "and cycle k is the k-th charge with the discharge after it; a 0-based numbering such as "
            "EC-Lab's 'cycle number' must be mapped (+1 when the record starts with a charge), not taken "
            "as is"
        )
    cycle[:first_charge] = np.where(state[:first_charge] == DISCHARGE, 0, cycle[:first_charge])
    active = np.flatnonzero(late)
    if active.size:
        labels, states = cycle[active], state[active]
        seen_discharge = pd.Series(states == DISCHARGE).groupby(labels).cummax().to_numpy()
        discharged_before = np.concatenate(([False], seen_discharge[:-1] & (labels[1:] == labels[:-1])))
        opens_with_discharge = np.concatenate(([True], labels[1:] != labels[:-1])) & (states == DISCHARGE)
        bad = ((states == CHARGE) & discharged_before) | opens_with_discharge
        if bad.any():
            k = int(np.argmax(bad))
            raise CyclingDataError(
                f"column 'cycle' does not follow 'a charge, then its discharge' at row "
                f"{df.index[active[k]]!r} (cycle {labels[k]} "
                + ("opens with a discharge" if opens_with_discharge[k] else "has a charge after its discharge")
                + "): a vendor numbering with another cycle definition must be mapped, not taken as is"
            )
    return cycle


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


def _per_step_counter_ah(df: pd.DataFrame, state: np.ndarray) -> np.ndarray | None:
    """Per-record charge from a counter that restarts at every step and counts magnitudes (Landt's
    capacity): its increase since the previous record of the step, signed by the record's state; None
    where it decreases inside a step (then it is not such a counter)."""
    capacity = _finite_column(df, "capacity_ah")
    step = df["step"].to_numpy()
    opens_step = np.concatenate(([True], step[1:] != step[:-1]))
    increase = np.where(opens_step, capacity, np.diff(capacity, prepend=0.0))
    if np.any(increase < 0):
        return None
    return increase * state


def _attribute(interval_ah: np.ndarray, first_ah: float, old_ah: np.ndarray) -> np.ndarray:
    """Per-record charge: each interval to the record that ends it, less the part ``old_ah`` that
    a step change inside it leaves to the record before."""
    charge = np.empty(interval_ah.size + 1)
    charge[0] = first_ah
    charge[1:] = interval_ah - old_ah
    charge[:-1] += old_ah
    return charge


def prepare_record(df: pd.DataFrame, rest_current_a: float | None = None,
                   cv_voltage_tolerance_v: float = DEFAULT_CV_VOLTAGE_TOLERANCE_V) -> PreparedRecord:
    """Label every sample with state, cycle and CV membership and attribute charge to it.

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
    counter_ah = _finite_column(df, "dq_ah") if "dq_ah" in df.columns else None
    per_step_counter = counter_ah is None and {"capacity_ah", "step"} <= set(df.columns)
    dt = np.diff(time_s)
    if np.any(dt < 0):
        row = df.index[int(np.argmax(dt < 0)) + 1]
        raise CyclingDataError(f"column '{time_name}' of the cycling record goes backwards at row {row!r}")

    if rest_current_a is None:
        rest_current_a = DEFAULT_REST_CURRENT_FRACTION * float(np.max(np.abs(current_a)))
    elif not rest_current_a >= 0:
        raise CyclingDataError(f"rest_current_a must be >= 0 A, got {rest_current_a!r}")

    step_kind = None
    notes: tuple[str, ...] = ()
    labelled_direction = False
    if "step_type" in df.columns:
        labels = df["step_type"].astype(str)
        uniques = labels.unique()
        kinds = {label: _step_kind(label) for label in uniques}
        directions = {label: _step_direction(label) for label in uniques}
        step_kind = labels.map(kinds).to_numpy()
        direction = labels.map(directions).to_numpy(dtype=float)
        labelled_direction = bool(np.isin(direction, (-1.0, 1.0)).any())
        current_a, notes = _signed_by_labels(df, current_a, direction, rest_current_a)
        if counter_ah is not None and notes:
            counter_ah = np.sign(current_a) * np.abs(counter_ah)
    state = np.where(np.abs(current_a) > rest_current_a, np.sign(current_a), 0).astype(np.int64)
    if step_kind is not None:
        # A step's label outranks the sign of a record whose interval straddles the step change.
        state = np.where(np.isin(direction, (-1.0, 1.0)), direction, state).astype(np.int64)
        state[step_kind == "rest"] = REST

    cycle = _cycle_labels(df, state)

    is_cv = _detect_cv(cycle, state, voltage_v, current_a, cv_voltage_tolerance_v)
    if step_kind is not None:
        is_cv = np.where(step_kind == "detect", is_cv, step_kind == "cv") & (state == CHARGE)

    new_run = (state[1:] != state[:-1]) | (cycle[1:] != cycle[:-1])
    if "step" in df.columns:
        step = df["step"].to_numpy()
        new_run |= step[1:] != step[:-1]

    # The part of an interval that a step change inside it leaves to the old run, at the old run's
    # last current: only where step_time_s says the step began after the previous record.
    old_s = np.zeros(dt.size)
    if "step_time_s" in df.columns:
        since_step_start = _finite_column(df, "step_time_s")[1:]
        valid = new_run & (since_step_start >= 0) & (since_step_start <= dt)
        old_s = np.where(valid, dt - since_step_start, 0.0)
    old_ah = current_a[:-1] * old_s / 3600.0

    if per_step_counter:
        counter_ah = _per_step_counter_ah(df, state)
        if counter_ah is not None:
            # A per-step counter holds only the new step's part of an interval that a step change
            # splits; the old step's part comes from the old current, as without a counter.
            counter_ah[1:] += old_ah
    integral_ah = _attribute(current_a[1:] * dt / 3600.0, 0.0, old_ah)
    if counter_ah is None:
        interval_ah, first_ah, charge_ah = current_a[1:] * dt / 3600.0, 0.0, integral_ah
    else:
        interval_ah, first_ah = counter_ah[1:], float(counter_ah[0])
        charge_ah = _attribute(interval_ah, first_ah, old_ah)
    # Energy of an interval inside a run at its mean voltage; the parts of a boundary interval at the
    # voltage of the run each belongs to (the previous record's voltage may be a relaxed rest).
    energy_wh = np.empty(time_s.size)
    energy_wh[0] = first_ah * voltage_v[0]
    energy_wh[1:] = (interval_ah - old_ah) * np.where(new_run, voltage_v[1:],
                                                      0.5 * (voltage_v[1:] + voltage_v[:-1]))
    energy_wh[:-1] += old_ah * voltage_v[:-1]

    return PreparedRecord(time_s=time_s, voltage_v=voltage_v, current_a=current_a, state=state,
                          cycle=cycle, is_cv=is_cv, charge_ah=charge_ah, energy_wh=energy_wh,
                          integral_ah=integral_ah, has_counter=counter_ah is not None,
                          labelled_direction=labelled_direction, notes=notes)


def _check_sign_by_voltage(record: PreparedRecord) -> None:
    """Refuse a record whose half cycles mostly contradict 'a battery's voltage rises on charge'."""
    active = np.flatnonzero(record.state != REST)
    if active.size < 2:
        return
    states = record.state[active]
    cycles = record.cycle[active]
    starts = np.concatenate(([True], (states[1:] != states[:-1]) | (cycles[1:] != cycles[:-1])))
    first = active[starts]
    last = active[np.concatenate((np.flatnonzero(starts)[1:] - 1, [active.size - 1]))]
    rise = record.voltage_v[last] - record.voltage_v[first]
    telling = np.abs(rise) > SIGN_CHECK_MIN_DV_V
    contradict = int(np.sum(telling & (np.sign(rise) != record.state[first])))
    agree = int(np.sum(telling)) - contradict
    if contradict > agree:
        raise CyclingDataError(
            f"the sign of current_a contradicts the voltage: in {contradict} of {contradict + agree} half "
            "cycles the voltage falls while the current is positive or rises while it is negative, but a "
            "battery's voltage rises on charge and current_a must be positive on charge. The record looks "
            "discharge-positive: negate current_a, or give step_type labels that say charge/discharge"
        )


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


_ABSENT_HALF = {"charge_ah": None, "energy_wh": None, "cv_ah": None, "integral_ah": None}


def _counted_ah(cycle: int, half: str, sums: dict, has_counter: bool) -> tuple[float, list[str]]:
    """The half cycle's charge (Ah, signed): the instrument's counter, with a warning where it differs
    from current × time by more than COUNTER_MISMATCH_FRACTION; current × time where the counter is
    off by more than COUNTER_UNUSABLE_FRACTION (a placeholder or a unit error, not a counter)."""
    if not has_counter:
        return sums["charge_ah"], []
    counted, integrated = abs(sums["charge_ah"]), abs(sums["integral_ah"])
    difference = abs(counted - integrated) / max(counted, integrated, 1e-15)
    if difference <= COUNTER_MISMATCH_FRACTION:
        return sums["charge_ah"], []
    usable = difference <= COUNTER_UNUSABLE_FRACTION
    return (sums["charge_ah"] if usable else sums["integral_ah"]), [
        f"cycle {cycle} {half}: the instrument's charge counter gives {counted * 1e3:.6g} mAh but current × "
        f"time gives {integrated * 1e3:.6g} mAh ({difference:.2%} apart); "
        + ("the counter is reported" if usable else "current × time is reported")]


def summarize_cycles(df: pd.DataFrame, mass_mg: float | None = None, area_cm2: float | None = None,
                     reference_cycle: int = 1, rest_current_a: float | None = None,
                     cv_voltage_tolerance_v: float = DEFAULT_CV_VOLTAGE_TOLERANCE_V) -> dict:
    """Per-cycle capacities, CE, CV share and average voltages of a cycling record, plus ICE, mean CE and
    capacity retention.

    df: cycling record (see module docstring for columns), current in A, positive on charge, each
        record's current the mean since the previous record.
    mass_mg: active cathode mass (mg, > 0) for mAh/g; area_cm2: electrode area (cm², > 0) for mAh/cm².
    reference_cycle: cycle whose discharge is 100 % retention (1, or the first after formation).
    rest_current_a, cv_voltage_tolerance_v: see ``prepare_record``.

    Returns {"cycles": [...], "ice_pct", "mean_ce_pct", "retention_pct", "reference_cycle",
    "warnings"}. Each cycle entry holds cycle, charge_mah, discharge_mah, ce_pct (discharge / charge ×
    100), charge_mah_per_cm2, discharge_mah_per_cm2, charge_mah_per_g, discharge_mah_per_g,
    cv_charge_share_pct (charge passed in CV / all charge × 100), avg_charge_voltage_v and
    avg_discharge_voltage_v (∫V dQ / Q). A half cycle that is absent is None, as is everything derived
    from it. ICE is the CE of cycle 1; mean_ce_pct averages the CE of cycles 2 and up; retention_pct is
    the discharge of the last cycle with both halves over that of ``reference_cycle`` × 100. None where
    unknown. A discharge still in progress at the end of the record counts as it stands. ``warnings``
    lists, in words, how the current's sign was established if not as given, cycles with CE above
    ``CE_IMPLAUSIBLE_PCT``, and half cycles where the instrument's counter and current × time disagree.

    Raises CyclingDataError for a record that cannot be analysed, including one whose current sign
    cannot be established (see the module docstring).
    """
    mass_g = _positive_or_none(mass_mg, "mass_mg")
    mass_g = None if mass_g is None else mass_g / 1000.0
    area = _positive_or_none(area_cm2, "area_cm2")
    record = prepare_record(df, rest_current_a=rest_current_a, cv_voltage_tolerance_v=cv_voltage_tolerance_v)
    if not record.labelled_direction:
        _check_sign_by_voltage(record)

    active = record.state != REST
    halves = pd.DataFrame({
        "cycle": record.cycle[active],
        "state": record.state[active],
        "charge_ah": record.charge_ah[active],
        "energy_wh": record.energy_wh[active],
        "cv_ah": np.where(record.is_cv, record.charge_ah, 0.0)[active],
        "integral_ah": record.integral_ah[active],
    }).groupby(["cycle", "state"]).sum().to_dict("index")

    warnings = list(record.notes)
    cycles = []
    for cycle in sorted({cycle for cycle, _ in halves}):
        entry = {"cycle": int(cycle)}
        for half, state in (("charge", CHARGE), ("discharge", DISCHARGE)):
            sums = halves.get((cycle, state), _ABSENT_HALF)
            q_mah = None
            if sums["charge_ah"] is not None:
                charge_ah, mismatch = _counted_ah(int(cycle), half, sums, record.has_counter)
                q_mah = abs(charge_ah) * 1000.0
                warnings += mismatch
            entry[f"{half}_mah"] = q_mah
            entry[f"{half}_mah_per_cm2"] = _ratio(q_mah, area)
            entry[f"{half}_mah_per_g"] = _ratio(q_mah, mass_g)
            entry[f"avg_{half}_voltage_v"] = _ratio(sums["energy_wh"], sums["charge_ah"])
            if state == CHARGE:
                entry["cv_charge_share_pct"] = _ratio(sums["cv_ah"], sums["charge_ah"], 100.0)
        entry["ce_pct"] = _ratio(entry["discharge_mah"], entry["charge_mah"], 100.0)
        if entry["ce_pct"] is not None and entry["ce_pct"] > CE_IMPLAUSIBLE_PCT:
            warnings.append(
                f"cycle {cycle}: CE {entry['ce_pct']:.2f} % exceeds {CE_IMPLAUSIBLE_PCT:g} %: more charge came "
                "out than went in; check the current's sign convention, a charge step missing from the "
                "record, or a discharge that continues an earlier cycle's")
        cycles.append(entry)

    return cycle_statistics(cycles, reference_cycle, warnings)


def cycle_statistics(cycles: list[dict], reference_cycle: int = 1, warnings: list[str] = ()) -> dict:
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
        "warnings": list(warnings),
    }
