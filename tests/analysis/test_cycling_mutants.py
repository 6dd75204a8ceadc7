"""analysis/cycling.py behaviour that the mutation run of issue 13 found unchecked by test_cycling.py:
the step-label vocabulary, the signed arrays prepare_record returns, the words of its notes and
errors, the voltage sign check's majority rule and the counter cross-check's figures."""

import math

import numpy as np
import pandas as pd
import pytest

from analysis.cycling import (CyclingDataError, _step_direction, _step_kind, cycle_statistics, prepare_record,
                              summarize_cycles)
from tests.analysis.test_cycling import _varying_ce_record, _with_landt_capacity, build_record

NO_SIGN_NOTE = ("current_a carries no sign (one sign on charge and discharge steps alike): its sign was taken "
                "from the step_type labels")
REVERSED_NOTE = ("current_a is negative on charge steps and positive on discharge steps (discharge-positive "
                 "convention, by the step_type labels): sign reversed")


# --- step labels ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("label, kind, direction", [
    ("Rest", "rest", 0.0),
    ("Open circuit", "rest", 0.0),           # words run together once spaces are squashed
    ("Open_Circuit_Voltage", "rest", 0.0),
    ("OCV", "rest", 0.0),
    ("CC_Chg", "cc", 1.0),                   # Landt
    ("CC_DChg", "cc", -1.0),
    ("CV_Chg", "cv", 1.0),
    ("Constant Current", "cc", None),        # EC-Lab / Arbin control-mode names, no direction
    ("Galvanostatic", "cc", None),
    ("Constant voltage", "cv", None),
    ("Potentiostatic", "cv", None),
    ("CCCV_Chg", "detect", 1.0),             # a combined step: CV is found from V and I
    ("Charge", "detect", 1.0),
    ("Discharge", "detect", -1.0),
    ("Step 3", "detect", None),
])
def test_step_labels_are_read_by_kind_and_direction(label, kind, direction):
    assert _step_kind(label) == kind
    if direction is None:
        assert math.isnan(_step_direction(label))
    else:
        assert _step_direction(label) == direction


# --- the sign of the current, as prepare_record returns it -----------------------------------------------

def _labelled_with_steps():
    signed, _ = _varying_ce_record(labels=True)
    return signed.assign(step=(signed["step_type"] != signed["step_type"].shift()).cumsum())


@pytest.mark.parametrize("with_steps", [False, True])
@pytest.mark.parametrize("logged", ["unsigned", "negative magnitude"])
def test_a_current_without_sign_is_signed_by_the_labels_in_the_prepared_record(logged, with_steps):
    signed = _labelled_with_steps() if with_steps else _varying_ce_record(labels=True)[0]
    magnitude = signed["current_a"].abs()
    record_in = signed.assign(current_a=magnitude if logged == "unsigned" else -magnitude)
    record = prepare_record(record_in)
    assert record.current_a == pytest.approx(signed["current_a"].to_numpy(), abs=0)
    assert record.notes == (NO_SIGN_NOTE,)
    assert record.charge_ah == pytest.approx(prepare_record(signed).charge_ah, rel=1e-12, abs=1e-15)
    result = summarize_cycles(record_in)
    assert result["warnings"] == [NO_SIGN_NOTE]
    assert [c["discharge_mah"] for c in result["cycles"]] == pytest.approx([0.8, 0.96, 0.99, 0.999], rel=1e-12)


def test_a_discharge_positive_current_is_reversed_in_the_prepared_record():
    signed = _labelled_with_steps()
    record = prepare_record(signed.assign(current_a=-signed["current_a"]))
    assert record.current_a == pytest.approx(signed["current_a"].to_numpy(), abs=0)
    assert record.notes == (REVERSED_NOTE,)


def test_a_charge_only_record_logged_negative_is_called_discharge_positive_not_unsigned():
    # Labels of one direction cannot tell an unsigned current from a reversed one: only a current
    # that is negative where the labels say charge is evidence, and it reads as a reversed convention.
    signed, _ = _varying_ce_record(labels=True)
    charge = signed[signed["time_s"] <= 3600.0]
    result = summarize_cycles(charge.assign(current_a=-charge["current_a"]))
    assert result["warnings"] == [REVERSED_NOTE]
    assert result["cycles"][0]["charge_mah"] == pytest.approx(1.0, rel=1e-12)


def test_the_first_record_of_the_file_is_not_held_against_the_labels():
    # Its interval lies before the record began (here the end of an earlier discharge): like the first
    # record of every step, it is not compared with its label.
    signed, _ = _varying_ce_record(labels=True)
    signed.loc[0, "current_a"] = -1e-3
    result = summarize_cycles(signed)
    assert result["warnings"] == []
    assert result["ice_pct"] == pytest.approx(80.0, rel=1e-12)


def test_a_zero_current_sample_is_no_sign_contradiction_when_rest_current_is_zero():
    signed, _ = _varying_ce_record(labels=True)
    signed.loc[5, "current_a"] = 0.0  # a logged dropout inside the first charge
    result = summarize_cycles(signed, rest_current_a=0.0)
    assert result["warnings"] == []
    assert result["cycles"][0]["charge_mah"] == pytest.approx(0.9, rel=1e-12)


def test_a_sign_contradiction_is_located_and_counted_in_the_error():
    signed, _ = _varying_ce_record(labels=True)
    signed.loc[signed["step_type"] == "CC_DChg", "current_a"] = 1e-3
    signed.loc[30:35, "current_a"] = -1e-3
    with pytest.raises(CyclingDataError) as error:
        summarize_cycles(signed)
    assert str(error.value) == (
        "the sign of current_a contradicts step_type on some rows and agrees on others (first contradiction "
        "at row 23: current 0.001 A in a 'CC_DChg' step; 37 of 80 rows): the sign convention cannot be "
        "established")


# --- the voltage sign check of unlabelled records ----------------------------------------------------------

def _sparse(current_ma, voltage_v):
    return pd.DataFrame({"time_s": 600.0 * np.arange(len(current_ma)), "voltage_v": voltage_v,
                         "current_a": np.asarray(current_ma) * 1e-3})


def test_a_single_half_cycle_of_two_samples_is_checked_against_the_voltage():
    # Positive current while the voltage falls: a discharge logged discharge-positive.
    with pytest.raises(CyclingDataError, match="discharge-positive"):
        summarize_cycles(_sparse([0.0, 1.0, 1.0], [3.5, 3.4, 3.3]))


def test_each_half_cycle_is_judged_by_its_own_first_and_last_sample():
    # Both halves contradict; joined to the next half's samples the charge half would seem to agree.
    with pytest.raises(CyclingDataError, match="in 2 of 2 half cycles"):
        summarize_cycles(_sparse([0.0, -2.0, -2.0, 1.0, 1.0], [3.0, 3.2, 3.4, 3.1, 2.9]))


def test_a_record_is_refused_only_when_most_half_cycles_contradict():
    # A charge whose voltage falls (a nucleation overpotential relaxing), then a normal discharge: one
    # half cycle against, one for: the record's sign stands.
    entry = summarize_cycles(_sparse([0.0, 1.0, 1.0, -1.0, -1.0], [3.0, 3.2, 3.1, 3.0, 2.8]))["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1200 / 3600, rel=1e-12)


def test_every_cycle_takes_part_in_the_sign_check():
    # The first cycle is signed right; after it the current is logged reversed (a second file from
    # another instrument appended): most half cycles contradict.
    df, _ = _varying_ce_record()
    later = df["time_s"] > 3600.0 + 600.0 + 2880.0 + 600.0
    with pytest.raises(CyclingDataError, match="discharge-positive"):
        summarize_cycles(df.assign(current_a=np.where(later, -df["current_a"], df["current_a"])))


# --- instrument counters -----------------------------------------------------------------------------------

def test_counter_mismatch_is_reported_relative_to_the_larger_of_the_two():
    df = _sparse([0.0, 2.0, 2.0, -1.0, -1.0], [3.0, 3.2, 3.4, 3.1, 2.9])
    integral = df["current_a"].to_numpy() * 600.0 / 3600.0
    counter = integral * np.array([1.0, 1.03, 1.03, 0.97, 0.97])  # 3 % over on charge, under on discharge
    result = summarize_cycles(df.assign(dq_ah=counter))
    assert result["warnings"] == [
        "cycle 1 charge: the instrument's charge counter gives 0.686667 mAh but current × time gives "
        "0.666667 mAh (2.91% apart); the counter is reported",
        "cycle 1 discharge: the instrument's charge counter gives 0.323333 mAh but current × time gives "
        "0.333333 mAh (3.00% apart); the counter is reported",
    ]
    entry = result["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((2.06 / 3, 0.97 / 3), rel=1e-12)


def test_a_per_step_counter_gives_finite_charge_on_every_sample():
    df, _ = build_record(2, seed=11)
    record = prepare_record(_with_landt_capacity(df))
    assert record.has_counter
    assert np.isfinite(record.charge_ah).all() and np.isfinite(record.energy_wh).all()
    rest = record.state == 0
    assert np.all(record.charge_ah[rest] == 0.0)


def test_a_counter_off_by_more_than_five_percent_gives_way_to_current_times_time():
    df = _sparse([0.0, 2.0, 2.0, -1.0, -1.0], [3.0, 3.2, 3.4, 3.1, 2.9])
    integral = df["current_a"].to_numpy() * 600.0 / 3600.0
    result = summarize_cycles(df.assign(dq_ah=integral * np.array([1.0, 1.0, 1.0, 1.2, 1.2])))
    assert result["warnings"] == [
        "cycle 1 discharge: the instrument's charge counter gives 0.4 mAh but current × time gives "
        "0.333333 mAh (16.67% apart); current × time is reported"]
    entry = result["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((2 / 3, 1 / 3), rel=1e-12)


def test_a_half_cycle_that_has_passed_no_charge_yet_is_no_counter_mismatch():
    # The record stops at the instant the first discharge begins: that record carries no charge in
    # either the counter or current × time.
    signed, _ = _varying_ce_record(labels=True)
    stop = signed.index[signed["step_type"] == "CC_DChg"][0]
    df = signed.loc[:stop].assign(dq_ah=lambda d: d["current_a"] * d["time_s"].diff().fillna(0.0) / 3600.0)
    result = summarize_cycles(df)
    assert result["warnings"] == []
    assert result["cycles"][0]["discharge_mah"] == 0.0 and result["cycles"][0]["ce_pct"] == 0.0


# --- records without a charge, and the statistics of chunked runs ------------------------------------------

@pytest.mark.parametrize("labelled", [False, True])
def test_a_discharge_only_record_is_cycle_zero_without_ice(labelled):
    # A charged cell's first (cold) discharge: no charge in the record at all.
    rows = _sparse([0.0, -1.0, -1.0, -1.0], [3.4, 3.2, 3.0, 2.8])
    if labelled:
        rows = rows.assign(step_type=["Rest", "CC_DChg", "CC_DChg", "CC_DChg"])
    record = prepare_record(rows)
    assert record.is_cv.dtype == bool and not record.is_cv.any()
    result = summarize_cycles(rows)
    assert [entry["cycle"] for entry in result["cycles"]] == [0]
    assert result["cycles"][0]["discharge_mah"] == pytest.approx(0.5, rel=1e-12)
    assert result["ice_pct"] is None and result["mean_ce_pct"] is None and result["retention_pct"] is None


def test_cycle_statistics_of_chunks_take_cycle_one_as_the_reference_by_default():
    cycles = summarize_cycles(_varying_ce_record()[0])["cycles"]
    stats = cycle_statistics(cycles)
    assert stats["reference_cycle"] == 1
    assert stats["retention_pct"] == pytest.approx(99.9 / 80.0 * 100, rel=1e-12)
    assert stats["warnings"] == []


# --- refusals of the cycle column and of parameters --------------------------------------------------------

def test_cycle_labels_with_a_charge_after_the_discharge_are_refused():
    # A vendor numbering that puts two charge/discharge pairs under one number (e.g. by test loop).
    df, _ = build_record(2, initial_discharge=False)
    with pytest.raises(CyclingDataError) as error:
        summarize_cycles(df.assign(cycle=1))
    assert str(error.value) == (
        "column 'cycle' does not follow 'a charge, then its discharge' at row 304 (cycle 1 has a charge after "
        "its discharge): a vendor numbering with another cycle definition must be mapped, not taken as is")


@pytest.mark.parametrize("rows, kwargs, message", [
    (1, {}, "cycling record needs at least 2 rows, got 1"),
    (None, {"cv_voltage_tolerance_v": 0.0}, "cv_voltage_tolerance_v must be > 0 V, got 0.0"),
    (None, {"rest_current_a": -1e-6}, "rest_current_a must be >= 0 A, got -1e-06"),
])
def test_records_and_parameters_outside_the_domain_are_refused(rows, kwargs, message):
    df, _ = build_record(1, initial_discharge=False)
    with pytest.raises(CyclingDataError, match=f"^{message}$"):
        summarize_cycles(df.iloc[:rows] if rows else df, **kwargs)


def test_two_records_are_enough_for_a_capacity():
    df = _sparse([0.0, 1.0], [3.0, 3.1])
    entry = summarize_cycles(df)["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(600 / 3600, rel=1e-12) and entry["discharge_mah"] is None


def test_an_unsigned_counter_is_signed_with_the_current():
    signed = _labelled_with_steps()
    dq = signed["current_a"] * signed["time_s"].diff().fillna(0.0) / 3600.0
    reference = prepare_record(signed.assign(dq_ah=dq))
    record = prepare_record(signed.assign(current_a=signed["current_a"].abs(), dq_ah=dq.abs()))
    assert record.has_counter and record.notes == (NO_SIGN_NOTE,)
    assert record.charge_ah == pytest.approx(reference.charge_ah, rel=1e-12, abs=1e-15)
    assert record.charge_ah.min() < 0 < record.charge_ah.max()


@pytest.mark.parametrize("name, value", [("mass_mg", 0.0), ("area_cm2", 0.0), ("area_cm2", -0.5),
                                         ("mass_mg", float("nan"))])
def test_a_normalisation_that_is_not_positive_is_refused_by_name(name, value):
    df, _ = _varying_ce_record()
    with pytest.raises(CyclingDataError, match=rf"^{name} must be a positive number or None, got {value!r}$"):
        summarize_cycles(df, **{name: value})


def test_an_implausible_ce_warning_names_the_likely_causes():
    df, _ = _varying_ce_record()
    in_cycle_2_discharge = (df["time_s"] > 11880.0) & (df["time_s"] <= 15336.0)
    df.loc[in_cycle_2_discharge, "current_a"] *= 1.2
    assert summarize_cycles(df)["warnings"] == [
        "cycle 2: CE 115.20 % exceeds 105 %: more charge came out than went in; check the current's sign "
        "convention, a charge step missing from the record, or a discharge that continues an earlier cycle's"]


def test_a_non_numeric_or_non_finite_column_is_refused_with_its_row():
    df, _ = _varying_ce_record()
    with pytest.raises(CyclingDataError, match=r"^column 'voltage_v' of the cycling record is not numeric: "):
        summarize_cycles(df.assign(voltage_v=df["voltage_v"].astype(object).where(df.index != 7, "3,41")))
    with pytest.raises(CyclingDataError, match=r"^column 'current_a' of the cycling record is not finite at row 12$"):
        summarize_cycles(df.assign(current_a=df["current_a"].where(df.index != 12, np.inf)))


def test_time_going_backwards_is_located_past_repeated_timestamps():
    # Step boundaries repeat a timestamp (rows 10 and 11): only a decrease is refused, at its row.
    df, _ = _varying_ce_record()
    assert df.loc[10, "time_s"] == df.loc[11, "time_s"]
    df.loc[30, "time_s"] = df.loc[29, "time_s"] - 1.0
    with pytest.raises(CyclingDataError, match=r"^column 'time_s' of the cycling record goes backwards at row 30$"):
        summarize_cycles(df)


@pytest.mark.parametrize("keep", ["CC_Chg|CC_DChg|Rest", "CC_Chg|Rest", "CC_DChg|Rest"])
def test_labelled_directions_outrank_the_voltage(keep):
    # With step labels that name a direction, the voltage is not asked: a record whose voltage runs the
    # other way (a mislabelled voltage channel, a cell in reversal) keeps the labels' reading.
    signed, _ = _varying_ce_record(labels=True)
    part = signed[signed["step_type"].str.fullmatch(keep)]
    record = prepare_record(part.assign(voltage_v=6.0 - part["voltage_v"]))
    assert record.labelled_direction is True and record.state.dtype == np.int64
    result = summarize_cycles(part.assign(voltage_v=6.0 - part["voltage_v"]))
    assert result["warnings"] == []


def test_a_rest_label_outranks_a_leakage_current_above_the_threshold():
    signed, _ = _varying_ce_record(labels=True)
    leaking = signed.assign(current_a=np.where(signed["step_type"] == "Rest", 5e-6, signed["current_a"]))
    record = prepare_record(leaking)
    assert np.all(record.state[leaking["step_type"].to_numpy() == "Rest"] == 0)
    entry = summarize_cycles(leaking)["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((1.0, 0.8), rel=1e-12)


# --- a step change inside a logging interval, by hand --------------------------------------------------------

def _step_change_record(first_a, second_a, change_s, labels, voltage, every_s=60.0, end_s=1800.0):
    """Records every ``every_s`` of a step at ``first_a`` that gives way at ``change_s`` to a step at
    ``second_a``; each current the mean since the previous record, as a cycler logs it. A record at
    ``change_s`` itself is the new step's first (``step_time_s`` 0), its interval all old step."""
    t = np.arange(0.0, end_s + every_s / 2, every_s)
    second = t >= change_s
    before = np.clip(change_s - (t - every_s), 0.0, every_s)  # seconds of each interval before the change
    current = (first_a * before + second_a * (every_s - before)) / every_s
    return pd.DataFrame({
        "test_time_s": t, "step_time_s": np.where(second, t - change_s, t), "step": np.where(second, 2, 1),
        "step_type": np.where(second, labels[1], labels[0]), "voltage_v": voltage(t), "current_a": current,
    })


def _charge_then_discharge(change_s=1240.0):
    # 1 mA charge rising from 3.0 V, then -1 mA discharge falling from 4.0 V.
    return _step_change_record(1e-3, -1e-3, change_s, ("CC charge", "CC discharge"),
                               lambda t: np.where(t < change_s, 3.0 + t / 1200.0, 4.0 - (t - change_s) / 1200.0))


def _whole_intervals(v, ends, current_a):
    """Charge (A·s) and energy (A·s·V) of whole 60 s intervals ending at ``ends``, each at the mean of
    the voltages of the two records that bound it."""
    return 60.0 * current_a * len(ends), sum(60.0 * current_a * (v[t - 60.0] + v[t]) / 2 for t in ends)


def test_the_energy_of_a_split_interval_goes_to_each_step_at_its_own_voltage():
    """The average charge and discharge voltages (the figures a user compares between cells) of a record
    whose discharge begins 40 s into a 60 s logging interval, against a hand computation: the interval's
    first 40 s belong to the charge at the charge's last current and voltage, the remaining 20 s to the
    discharge at the voltage of the record that ends the interval; the first record, logged at the
    instant the charge began, has no interval and no energy."""
    df = _charge_then_discharge()
    df.loc[0, "current_a"] = 0.0  # at the instant the charge begins: nothing has flowed yet
    v = dict(zip(df["test_time_s"], df["voltage_v"]))
    charge_as, charge_vas = _whole_intervals(v, np.arange(60.0, 1201.0, 60.0), 1e-3)
    charge_as, charge_vas = charge_as + 40e-3, charge_vas + 40e-3 * v[1200.0]
    discharge_as, discharge_vas = _whole_intervals(v, np.arange(1320.0, 1801.0, 60.0), 1e-3)
    discharge_as, discharge_vas = discharge_as + 20e-3, discharge_vas + 20e-3 * v[1260.0]

    entry = summarize_cycles(df)["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((charge_as / 3.6, discharge_as / 3.6),
                                                                         rel=1e-12)
    assert entry["avg_charge_voltage_v"] == pytest.approx(charge_vas / charge_as, rel=1e-12)
    assert entry["avg_discharge_voltage_v"] == pytest.approx(discharge_vas / discharge_as, rel=1e-12)


def test_a_counter_that_carries_charge_on_the_first_record_counts_it_at_that_voltage():
    """A record cut from a longer run (a chunk, an appended file) opens with a record whose counter
    holds the charge since the record before it, which is not in the file: that charge is the first
    record's, at the first record's voltage; current × time cannot see it, so the cross-check says so."""
    df = _charge_then_discharge()
    dq_ah = df["current_a"] * df["test_time_s"].diff() / 3600.0
    dq_ah.iloc[0] = 1e-3 * 60.0 / 3600.0
    v = dict(zip(df["test_time_s"], df["voltage_v"]))
    charge_as, charge_vas = _whole_intervals(v, np.arange(60.0, 1201.0, 60.0), 1e-3)
    charge_as, charge_vas = charge_as + 40e-3 + 60e-3, charge_vas + 40e-3 * v[1200.0] + 60e-3 * v[0.0]

    result = summarize_cycles(df.assign(dq_ah=dq_ah))
    entry = result["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(charge_as / 3.6, rel=1e-12)
    assert entry["avg_charge_voltage_v"] == pytest.approx(charge_vas / charge_as, rel=1e-12)
    assert result["warnings"] == [
        "cycle 1 charge: the instrument's charge counter gives 0.361111 mAh but current × time gives "
        "0.344444 mAh (4.62% apart); the counter is reported"]


def test_a_record_logged_at_the_instant_its_step_began_leaves_its_whole_interval_to_the_step_before():
    """A cycler logs a record at the start of each step; its mean current is that of the interval
    before, all spent in the old step (step_time_s 0). That interval is the charge's, not the
    discharge's, although the record is labelled discharge."""
    df = _charge_then_discharge(change_s=1260.0)
    assert df.loc[df["test_time_s"] == 1260.0, ["step_time_s", "current_a"]].values.tolist() == [[0.0, 1e-3]]
    entry = summarize_cycles(df)["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((1260 / 3600, 540 / 3600), rel=1e-12)


def test_a_charge_label_outranks_the_sign_of_the_record_that_straddles_the_change():
    """A discharge (cycle 0) followed by a charge that begins 40 s into a 60 s interval: the record that
    ends the interval is labelled charge but its mean current is negative (-1/3 mA). The label makes it
    the charge's first record, so step_time_s splits its interval: 40 s to the discharge, 20 s of
    charge to cycle 1."""
    df = _step_change_record(-1e-3, 1e-3, 1240.0, ("CC discharge", "CC charge"),
                             lambda t: np.where(t < 1240.0, 3.5 - t / 1200.0, 2.5 + (t - 1240.0) / 1200.0))
    assert df.loc[df["test_time_s"] == 1260.0, "current_a"].item() == pytest.approx(-1e-3 / 3, rel=1e-12)
    result = summarize_cycles(df)
    assert result["warnings"] == []
    cycles = {entry["cycle"]: entry for entry in result["cycles"]}
    assert sorted(cycles) == [0, 1]
    assert cycles[0]["discharge_mah"] == pytest.approx(1240 / 3600, rel=1e-12)
    assert cycles[1]["charge_mah"] == pytest.approx(560 / 3600, rel=1e-12)


def test_a_landt_counter_holds_only_the_new_steps_part_of_a_split_interval():
    """Landt's capacity restarts at each step: at the discharge's first record it holds the 20 s of
    discharge only, and the 40 s of charge before the change come from the charge's current. Counted
    this way the record gives the same capacities as current × time, without a mismatch warning."""
    df = _charge_then_discharge()
    capacity_ah = df["step_time_s"] * 1e-3 / 3600.0  # |1 mA| × time since the step began
    result = summarize_cycles(df.assign(capacity_ah=capacity_ah))
    assert result["warnings"] == []
    entry = result["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((1240 / 3600, 560 / 3600), rel=1e-12)


def test_a_cc_to_cv_change_inside_an_interval_is_split_by_step_number():
    """CC and CV steps of one charge share state and cycle; only their step numbers tell them apart.
    The CV hold (0.5 mA) begins 40 s into a 60 s interval: the CV share counts the 20 s after the
    change, not the whole interval at its mean current."""
    df = _step_change_record(1e-3, 0.5e-3, 1240.0, ("CC charge", "CV charge"),
                             lambda t: np.minimum(3.0 + t / 3100.0, 3.4))
    cv_as = 0.5e-3 * (1800.0 - 1240.0)
    charge_as = 1e-3 * 1240.0 + cv_as
    entry = summarize_cycles(df)["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(charge_as / 3.6, rel=1e-12)
    assert entry["cv_charge_share_pct"] == pytest.approx(100.0 * cv_as / charge_as, rel=1e-12)


# --- what prepare_record hands to the other analyses --------------------------------------------------------

def test_a_current_equal_to_rest_current_a_is_rest():
    """rest_current_a is documented as the |current| at or below which a sample is rest: an instrument's
    resolution passed as the threshold must leave a rest logged at exactly that value out of the
    capacities."""
    df, _ = _varying_ce_record()
    trickle = df.assign(current_a=np.where(df["current_a"] == 0.0, 5e-6, df["current_a"]))
    entry = summarize_cycles(trickle, rest_current_a=5e-6)["cycles"][0]
    assert (entry["charge_mah"], entry["discharge_mah"]) == pytest.approx((1.0, 0.8), rel=1e-12)


def test_the_prepared_record_carries_the_test_time_and_integer_states():
    """symmetric.py times each half cycle's plateau from PreparedRecord.time_s (the test time, which
    outranks a plain time column), and the states are the integer CHARGE / REST / DISCHARGE whether the
    current's sign or step labels set them."""
    df, _ = _varying_ce_record()
    both = df.assign(test_time_s=df["time_s"] + 100.0, time_s=0.0)
    record = prepare_record(both)
    assert np.array_equal(record.time_s, df["time_s"].to_numpy() + 100.0)
    assert record.state.dtype == np.int64
    assert set(np.unique(record.state).tolist()) == {-1, 0, 1}


# --- where the cycle column breaks the convention -----------------------------------------------------------

def test_a_cycle_numbering_that_restarts_at_zero_is_refused_at_the_row_where_it_restarts():
    """Two files appended, the second numbered from 0: the refusal names the first row numbered 0 after
    the first charge and the number found there, so the user can find the seam."""
    df, _ = build_record(2, initial_discharge=False)
    row = df.index[df["cycle"] == 2][0]
    with pytest.raises(CyclingDataError) as error:
        summarize_cycles(df.assign(cycle=df["cycle"].where(df["cycle"] != 2, 0)))
    assert str(error.value) == (
        f"column 'cycle' numbers a charge or a discharge after the first charge 0 (row {row}), but cycle 0 "
        "is reserved for the discharge before the first charge and cycle k is the k-th charge with the "
        "discharge after it; a 0-based numbering such as EC-Lab's 'cycle number' must be mapped (+1 when "
        "the record starts with a charge), not taken as is")


def test_a_later_cycle_with_a_charge_after_its_discharge_is_refused():
    """A numbering by test loop can put two charge/discharge pairs under one number in any cycle, not
    only the first: cycle 2 holding what is really cycles 2 and 3 is refused at the second charge."""
    df, _ = build_record(3, initial_discharge=False)
    row = df.index[df["cycle"] == 3][0]
    with pytest.raises(CyclingDataError) as error:
        summarize_cycles(df.assign(cycle=df["cycle"].where(df["cycle"] != 3, 2)))
    assert str(error.value) == (
        f"column 'cycle' does not follow 'a charge, then its discharge' at row {row} (cycle 2 has a charge "
        "after its discharge): a vendor numbering with another cycle definition must be mapped, not taken as is")


# --- the module's bounds, at the scale that matters ---------------------------------------------------------

@pytest.mark.parametrize("counter_factor, warning_ends, reported_factor", [
    (1.004, None, 1.004),                                 # rounding of a float32 <I>, an instantaneous I
    (1.03, "; the counter is reported", 1.03),
    (1.08, "; current × time is reported", 1.0),          # a placeholder or a unit error is not a counter
])
def test_the_counter_cross_check_warns_above_half_a_percent_and_gives_way_above_five(counter_factor, warning_ends,
                                                                                     reported_factor):
    """A counter within 0.5 % of current × time is taken silently, up to 5 % with a warning; beyond that
    it is not a counter and current × time is reported: the charge shown follows the rule."""
    df = _sparse([0.0, 2.0, 2.0], [3.0, 3.2, 3.4])
    integral = df["current_a"].to_numpy() * 600.0 / 3600.0
    result = summarize_cycles(df.assign(dq_ah=integral * counter_factor))
    assert [w[-len(warning_ends):] for w in result["warnings"]] == ([warning_ends] if warning_ends else [])
    assert result["cycles"][0]["charge_mah"] == pytest.approx(2400 / 3600 * reported_factor, rel=1e-12)


def test_a_flat_plateau_drifting_a_millivolt_or_so_is_no_evidence_of_the_sign():
    """A short charge on a two-phase plateau whose voltage relaxes by 1.5 mV (an initial overpotential
    fading) says nothing about the current's sign: the record is analysed, not refused."""
    entry = summarize_cycles(_sparse([0.0, 1.0, 1.0], [3.4, 3.399, 3.3975]))["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1200 / 3600, rel=1e-12)


@pytest.mark.parametrize("rest_a, counted", [(0.7e-6, False), (1.5e-6, True)])
def test_the_default_rest_threshold_is_a_thousandth_of_the_largest_current(rest_a, counted):
    """Without rest_current_a, |I| up to 0.1 % of the record's largest current is rest: an instrument
    offset of 0.07 % of a 1 mA cycling current adds nothing, a 0.15 % trickle after the charge is
    charge."""
    df, _ = _varying_ce_record()
    trickle = df.assign(current_a=np.where(df["current_a"] == 0.0, rest_a, df["current_a"]))
    first = summarize_cycles(trickle)["cycles"][0]
    # Each rest holds ten 60 s intervals; the rest after the charge continues the charge.
    assert first["charge_mah"] == pytest.approx(1.0 + (rest_a * 600.0 / 3.6 if counted else 0.0), rel=1e-12)
