"""summarize_cycles against Ah-counting truth of synthetic CCCV records.

Each record's current is the mean current since the previous record, as a cycler logs it (EC-Lab's
<I>); the first record of a step, logged at the instant the step starts, carries its start current.
"""

import math
import time

import numpy as np
import pandas as pd
import pytest

from analysis.cycling import CyclingDataError, prepare_record, summarize_cycles

I_CHARGE_A = 1.0e-3
I_DISCHARGE_A = 0.8e-3
CV_TAU_S = 1200.0
CV_CUTOFF_FRACTION = 0.1
V_CC_START, V_LIMIT = 2.9, 3.4
V_DIS_START, V_DIS_END = 3.3, 2.0
INITIAL_DISCHARGE_S = 1800.0


def _ce(cycle):
    return 0.82 if cycle == 1 else 0.995


def _cc_time_s(cycle):
    return 3000.0 - 12.0 * cycle


def _step(kind, duration_s, n_inner, rng):
    """Sample times of one step: both ends plus n_inner random (irregular) instants."""
    inner = np.sort(rng.uniform(0.0, duration_s, n_inner))
    return kind, duration_s, np.concatenate(([0.0], inner, [duration_s]))


def _mean_since_previous(charge_at, t):
    """Mean current over each interval of ``t`` from the accumulated charge ``charge_at(t)`` (A·s)."""
    q = charge_at(t)
    dt = np.diff(t)
    return np.concatenate(([np.diff(charge_at(np.array([0.0, 1e-9])))[0] / 1e-9], np.diff(q) / dt))


def build_record(n_cycles, seed=0, initial_discharge=True, stop_after_cv_of_last=False):
    """A record of CC charge, CV hold at 3.4 V, rest, CC discharge, rest per cycle; truth in mAh."""
    rng = np.random.default_rng(seed)
    plan = []  # (label cycle, step kind, duration, sample times, cycle number for truth)
    if initial_discharge:
        plan.append((1, *_step("rest", 60.0, 3, rng)))
        plan.append((1, *_step("dis", INITIAL_DISCHARGE_S, 40, rng)))
        plan.append((1, *_step("rest", 300.0, 5, rng)))
    cv_s = CV_TAU_S * math.log(1.0 / CV_CUTOFF_FRACTION)
    truth = {}
    if initial_discharge:
        truth[0] = {"charge": None, "discharge": I_DISCHARGE_A * INITIAL_DISCHARGE_S / 3.6}
    for cycle in range(1, n_cycles + 1):
        cc_s = _cc_time_s(cycle)
        q_cc = I_CHARGE_A * cc_s / 3.6
        q_cv = I_CHARGE_A * CV_TAU_S * (1 - CV_CUTOFF_FRACTION) / 3.6
        q_ch = q_cc + q_cv
        q_dis = _ce(cycle) * q_ch
        truth[cycle] = {"charge": q_ch, "discharge": q_dis, "cv_share": 100 * q_cv / q_ch,
                        "v_charge": (q_cc * (V_CC_START + V_LIMIT) / 2 + q_cv * V_LIMIT) / q_ch,
                        "v_discharge": (V_DIS_START + V_DIS_END) / 2}
        plan.append((cycle, *_step("cc", cc_s, 100, rng)))
        plan.append((cycle, *_step("cv", cv_s, 80, rng)))
        plan.append((cycle, *_step("rest", 600.0, 12, rng)))
        if stop_after_cv_of_last and cycle == n_cycles:
            truth[cycle]["discharge"] = None
            break
        plan.append((cycle, *_step("dis", q_dis * 3.6 / I_DISCHARGE_A, 90, rng)))
        plan.append((cycle, *_step("rest", 600.0, 12, rng)))

    frames, t0 = [], 0.0
    for step_no, (label, kind, duration, t) in enumerate(plan, start=1):
        n = t.size
        if kind == "cc":
            current = np.full(n, I_CHARGE_A)
            voltage = V_CC_START + (V_LIMIT - V_CC_START) * t / duration
            step_type = "CC charge"
        elif kind == "cv":
            current = _mean_since_previous(lambda tt: -CV_TAU_S * I_CHARGE_A * np.exp(-tt / CV_TAU_S), t)
            voltage = V_LIMIT + rng.normal(0.0, 3e-4, n)
            step_type = "CV charge"
        elif kind == "dis":
            current = np.full(n, -I_DISCHARGE_A)
            voltage = V_DIS_START + (V_DIS_END - V_DIS_START) * t / duration
            step_type = "CC discharge"
        else:
            current = rng.normal(0.0, 1e-7, n)  # instrument noise, far below the rest threshold
            voltage = np.full(n, 3.0)
            step_type = "Rest"
        frames.append(pd.DataFrame({"cycle": label, "step": step_no, "step_type": step_type,
                                    "test_time_s": t0 + t, "step_time_s": t, "voltage_v": voltage,
                                    "current_a": current}))
        t0 += duration
    df = pd.concat(frames, ignore_index=True)
    df.insert(0, "record", np.arange(1, len(df) + 1))
    return df, truth


def minimal(df):
    return df[["test_time_s", "voltage_v", "current_a"]].rename(columns={"test_time_s": "time_s"})


def _by_cycle(result):
    return {entry["cycle"]: entry for entry in result["cycles"]}


def _assert_matches_truth(result, truth, rel=2e-3):
    cycles = _by_cycle(result)
    assert sorted(cycles) == sorted(truth)
    for number, expected in truth.items():
        got = cycles[number]
        if expected["charge"] is None:
            assert got["charge_mah"] is None and got["ce_pct"] is None
        else:
            assert got["charge_mah"] == pytest.approx(expected["charge"], rel=rel)
            assert got["cv_charge_share_pct"] == pytest.approx(expected["cv_share"], abs=0.2)
            assert got["avg_charge_voltage_v"] == pytest.approx(expected["v_charge"], abs=2e-3)
        if expected["discharge"] is None:
            assert got["discharge_mah"] is None and got["ce_pct"] is None
        else:
            assert got["discharge_mah"] == pytest.approx(expected["discharge"], rel=rel)
            if number >= 1:
                assert got["avg_discharge_voltage_v"] == pytest.approx(expected["v_discharge"], abs=2e-3)
        if expected["charge"] is not None and expected["discharge"] is not None:
            assert got["ce_pct"] == pytest.approx(100 * _ce(number), abs=0.15)


def test_full_columns_match_ah_counting_truth():
    df, truth = build_record(6)
    result = summarize_cycles(df, mass_mg=11.78, area_cm2=0.785)
    _assert_matches_truth(result, truth)
    assert result["ice_pct"] == pytest.approx(82.0, abs=0.15)
    assert result["mean_ce_pct"] == pytest.approx(99.5, abs=0.1)
    expected = 100 * truth[6]["discharge"] / truth[1]["discharge"]
    assert result["retention_pct"] == pytest.approx(expected, abs=0.2)
    assert result["reference_cycle"] == 1
    first = _by_cycle(result)[1]
    assert first["charge_mah_per_g"] == pytest.approx(truth[1]["charge"] / 0.01178, rel=2e-3)
    assert first["discharge_mah_per_cm2"] == pytest.approx(truth[1]["discharge"] / 0.785, rel=2e-3)


def test_discharge_before_first_charge_is_cycle_zero_even_when_labelled_cycle_one():
    df, truth = build_record(2)
    assert (df.loc[df["step_type"] == "CC discharge", "cycle"].iloc[0]) == 1
    zero = _by_cycle(summarize_cycles(df))[0]
    assert zero["charge_mah"] is None and zero["ce_pct"] is None and zero["cv_charge_share_pct"] is None
    assert zero["discharge_mah"] == pytest.approx(truth[0]["discharge"], rel=1e-3)


@pytest.mark.parametrize("variant", ["minimal", "cccv_step", "uninformative_step_type"])
def test_cycles_and_cv_share_without_cycle_labels_or_cv_steps(variant):
    df, truth = build_record(4, seed=3)
    if variant == "minimal":
        df = minimal(df)
    elif variant == "cccv_step":
        # A combined CCCV step: CC and CV share one step number and label; CV must be found from V and I.
        df = df.drop(columns=["cycle"])
        df.loc[df["step_type"] == "CV charge", "step"] -= 1
        df["step_type"] = df["step_type"].replace({"CC charge": "CCCV_Chg", "CV charge": "CCCV_Chg"})
    else:
        df = df.assign(step_type=df["step_type"].replace({"CC charge": "Charge", "CV charge": "Charge"}))
    _assert_matches_truth(summarize_cycles(df), truth)


def test_plain_cc_charge_has_no_cv_share():
    df, _ = build_record(2, initial_discharge=False)
    df = minimal(df[df["step_type"] != "CV charge"])
    for entry in summarize_cycles(df)["cycles"]:
        assert entry["cv_charge_share_pct"] == 0.0


def test_incomplete_last_cycle_is_left_out_of_retention_and_mean_ce():
    df, truth = build_record(4, stop_after_cv_of_last=True)
    result = summarize_cycles(df)
    _assert_matches_truth(result, truth)
    last = _by_cycle(result)[4]
    assert last["discharge_mah"] is None and last["ce_pct"] is None and last["discharge_mah_per_cm2"] is None
    assert last["charge_mah"] == pytest.approx(truth[4]["charge"], rel=2e-3)
    expected = 100 * truth[3]["discharge"] / truth[1]["discharge"]
    assert result["retention_pct"] == pytest.approx(expected, abs=0.2)
    assert result["mean_ce_pct"] == pytest.approx(99.5, abs=0.1)


def test_reference_cycle_and_missing_reference():
    df, truth = build_record(5)
    assert summarize_cycles(df, reference_cycle=2)["retention_pct"] == pytest.approx(
        100 * truth[5]["discharge"] / truth[2]["discharge"], abs=0.2)
    assert summarize_cycles(df, reference_cycle=9)["retention_pct"] is None


def test_single_cycle_has_ice_but_no_mean_ce():
    df, _ = build_record(1, initial_discharge=False)
    result = summarize_cycles(df)
    assert [entry["cycle"] for entry in result["cycles"]] == [1]
    assert result["ice_pct"] == pytest.approx(82.0, abs=0.15)
    assert result["mean_ce_pct"] is None
    assert result["retention_pct"] == pytest.approx(100.0)


def test_unknown_values_are_none_never_nan():
    df, _ = build_record(3, stop_after_cv_of_last=True)
    result = summarize_cycles(df)  # no mass, no area
    for entry in result["cycles"]:
        for key in ("charge_mah_per_g", "discharge_mah_per_g", "charge_mah_per_cm2", "discharge_mah_per_cm2"):
            assert entry[key] is None
        for value in entry.values():
            assert value is None or (isinstance(value, (int, float)) and math.isfinite(value))


def _sparse_record():
    """1 mA charge logged every 60 s to 1200 s; the discharge (-1 mA) starts at 1240 s, inside the
    logging interval that ends at 1260 s, whose record holds the interval's mean current."""
    t = np.arange(0.0, 1801.0, 60.0)
    step_start = np.where(t <= 1200.0, 0.0, 1240.0)
    charge = t <= 1200.0
    current = np.where(charge, 1e-3, -1e-3)
    current[t == 1260.0] = (1e-3 * 40.0 - 1e-3 * 20.0) / 60.0
    return pd.DataFrame({
        "test_time_s": t, "step_time_s": t - step_start, "step": np.where(charge, 1, 2),
        "step_type": np.where(charge, "CC charge", "CC discharge"),
        "voltage_v": np.where(charge, 3.0 + t / 1200.0, 4.0 - (t - 1240.0) / 1200.0),
        "current_a": current,
    })


def test_step_time_splits_an_interval_that_holds_a_step_change():
    entry = summarize_cycles(_sparse_record())["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1240 / 3600, rel=1e-12)
    assert entry["discharge_mah"] == pytest.approx(560 / 3600, rel=1e-12)


def test_without_step_time_the_straddling_interval_belongs_to_its_record():
    # The record's mean current (+1/3 mA over 60 s) nets against the discharge it is labelled with.
    entry = summarize_cycles(_sparse_record().drop(columns="step_time_s"))["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1200 / 3600, rel=1e-12)
    assert entry["discharge_mah"] == pytest.approx((560 - 40) / 3600, rel=1e-12)


@pytest.mark.parametrize("bad_step_time", [-5.0, 75.0])
def test_invalid_step_time_leaves_the_interval_to_the_new_record(bad_step_time):
    df = _sparse_record()
    df.loc[df["test_time_s"] == 1260.0, "step_time_s"] = bad_step_time
    entry = summarize_cycles(df)["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1200 / 3600, rel=1e-12)
    assert entry["discharge_mah"] == pytest.approx(520 / 3600, rel=1e-12)


def test_rectangles_not_trapezoids_on_sparse_records():
    # Three records per half cycle; each current is the mean since the previous record. The trapezoid
    # would lend half of the 600 s interval after the charge's last record to the discharge.
    df = pd.DataFrame({
        "time_s": [0.0, 600.0, 1200.0, 1800.0, 2400.0],
        "voltage_v": [3.0, 3.2, 3.4, 3.1, 2.9],
        "current_a": [0.0, 2e-3, 2e-3, -1e-3, -1e-3],
    })
    entry = summarize_cycles(df)["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(2400 / 3600, rel=1e-12)
    assert entry["discharge_mah"] == pytest.approx(1200 / 3600, rel=1e-12)
    assert entry["ce_pct"] == pytest.approx(50.0, rel=1e-12)


def test_rest_noise_does_not_start_cycles():
    df, truth = build_record(3, seed=7)
    df = minimal(df)
    assert [entry["cycle"] for entry in summarize_cycles(df)["cycles"]] == sorted(truth)


@pytest.mark.parametrize("mutate, message", [
    (lambda df: df.drop(columns="current_a"), "current_a"),
    (lambda df: df.drop(columns="test_time_s"), "time"),
    (lambda df: df.assign(voltage_v=df["voltage_v"].where(df.index != 5)), "voltage_v"),
    (lambda df: df.assign(test_time_s=df["test_time_s"].where(df.index != 8, 0.0)), "backwards"),
])
def test_bad_records_raise_named_errors(mutate, message):
    df, _ = build_record(1)
    with pytest.raises(CyclingDataError, match=message):
        summarize_cycles(mutate(df))


def test_bad_mass_and_cycle_conflict_raise():
    df, _ = build_record(1)
    with pytest.raises(CyclingDataError, match="mass_mg"):
        summarize_cycles(df, mass_mg=-1.0)
    relabelled = df.assign(cycle=df["cycle"] - 1)  # the first real cycle is labelled 0
    with pytest.raises(CyclingDataError, match="cycle 0 is reserved"):
        summarize_cycles(relabelled)


def test_prepare_record_attributes_every_interval_once():
    df, _ = build_record(2, seed=11)
    record = prepare_record(df)
    t, i = df["test_time_s"].to_numpy(), df["current_a"].to_numpy()
    assert record.charge_ah.sum() == pytest.approx(np.sum(i[1:] * np.diff(t)) / 3600, rel=1e-12)


def test_hundred_cycles_summarise_well_under_a_second():
    df, truth = build_record(100, seed=5)
    df = minimal(df)
    assert len(df) > 30_000
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        result = summarize_cycles(df)
        best = min(best, time.perf_counter() - start)
    assert len(result["cycles"]) == 101
    expected = 100 * truth[100]["discharge"] / truth[1]["discharge"]
    assert result["retention_pct"] == pytest.approx(expected, abs=0.3)
    assert best < 0.5, f"summarize_cycles took {best:.3f} s for {len(df)} rows"


# --- issue 13: behaviour the earlier tests left unchecked ---------------------------------------------

def _varying_ce_record(labels=False):
    """Four CC cycles whose CE differs from cycle to cycle (80, 96, 99, 99.9 %), one rest between halves,
    records every 60 s (each current the mean since the previous record; a step's first record, at the
    instant it starts, none); with ``labels`` a step_type column."""
    ce = {1: 0.80, 2: 0.96, 3: 0.99, 4: 0.999}
    rows, t = [], 0.0
    for cycle in range(1, 5):
        for label, current, seconds, v0, v1 in (("CC_Chg", 1e-3, 3600.0, 3.0, 3.5),
                                                ("Rest", 0.0, 600.0, 3.4, 3.4),
                                                ("CC_DChg", -1e-3, 3600.0 * ce[cycle], 3.3, 2.5),
                                                ("Rest", 0.0, 600.0, 2.6, 2.6)):
            times = np.linspace(0.0, seconds, 11)
            for k, tt in enumerate(times):
                rows.append((t + tt, v0 + (v1 - v0) * tt / seconds, current if k else 0.0, label))
            t += seconds
    df = pd.DataFrame(rows, columns=["time_s", "voltage_v", "current_a", "step_type"])
    return (df if labels else df.drop(columns="step_type")), ce


def test_mean_ce_averages_cycles_two_and_up_only():
    df, ce = _varying_ce_record()
    result = summarize_cycles(df)
    by_cycle = _by_cycle(result)
    assert [by_cycle[c]["ce_pct"] for c in (1, 2, 3, 4)] == pytest.approx([100 * ce[c] for c in (1, 2, 3, 4)],
                                                                         rel=1e-9)
    assert result["mean_ce_pct"] == pytest.approx(100 * (0.96 + 0.99 + 0.999) / 3, rel=1e-12)
    assert result["ice_pct"] == pytest.approx(80.0, rel=1e-12)
    assert result["retention_pct"] == pytest.approx(99.9 / 80.0 * 100, rel=1e-12)


def test_mass_and_area_normalisation_is_exact():
    df, _ = _varying_ce_record()
    entry = _by_cycle(summarize_cycles(df, mass_mg=12.5, area_cm2=0.5))[2]
    assert entry["charge_mah_per_g"] == pytest.approx(entry["charge_mah"] / 0.0125, rel=1e-12)
    assert entry["discharge_mah_per_g"] == pytest.approx(entry["discharge_mah"] / 0.0125, rel=1e-12)
    assert entry["discharge_mah_per_cm2"] == pytest.approx(entry["discharge_mah"] / 0.5, rel=1e-12)


def test_rest_current_threshold_is_passed_through():
    df, _ = _varying_ce_record()
    trickle = df.assign(current_a=np.where(df["current_a"] == 0.0, 5e-6, df["current_a"]))
    default = _by_cycle(summarize_cycles(trickle))
    assert default[1]["charge_mah"] > 1.0 + 1e-4  # 5 µA in the rests counts as charge by default
    explicit = _by_cycle(summarize_cycles(trickle, rest_current_a=1e-5))
    assert explicit[1]["charge_mah"] == pytest.approx(1.0, rel=1e-12)
    assert explicit[1]["discharge_mah"] == pytest.approx(0.8, rel=1e-12)


def test_cv_voltage_tolerance_is_passed_through():
    df, truth = build_record(2, seed=3)
    df = minimal(df)
    share = _by_cycle(summarize_cycles(df))[1]["cv_charge_share_pct"]
    assert share == pytest.approx(truth[1]["cv_share"], abs=0.2)
    narrow = _by_cycle(summarize_cycles(df, cv_voltage_tolerance_v=1e-5))[1]["cv_charge_share_pct"]
    assert narrow < share - 10.0  # the hold's 0.3 mV noise leaves the 10 µV window


def test_a_state_change_inside_one_step_number_is_a_run_boundary():
    # One step number for the whole record: the charge/discharge labels alone mark the boundary that
    # step_time_s splits.
    df = _sparse_record().assign(step=1)
    entry = summarize_cycles(df)["cycles"][0]
    assert entry["charge_mah"] == pytest.approx(1240 / 3600, rel=1e-12)
    assert entry["discharge_mah"] == pytest.approx(560 / 3600, rel=1e-12)


def test_non_integer_cycle_label_is_refused():
    df, _ = build_record(1)
    df["cycle"] = df["cycle"].astype(float)
    df.loc[50, "cycle"] = 1.5
    with pytest.raises(CyclingDataError, match="not an integer at row 50"):
        summarize_cycles(df)


# --- sign convention and cycle convention --------------------------------------------------------------

def test_discharge_positive_record_without_labels_is_refused():
    df, _ = _varying_ce_record()
    with pytest.raises(CyclingDataError, match="discharge-positive"):
        summarize_cycles(df.assign(current_a=-df["current_a"]))


def test_unsigned_current_takes_its_sign_from_step_labels():
    signed, _ = _varying_ce_record(labels=True)
    expected = summarize_cycles(signed)
    unsigned = summarize_cycles(signed.assign(current_a=signed["current_a"].abs()))
    assert [c["ce_pct"] for c in unsigned["cycles"]] == pytest.approx([c["ce_pct"] for c in expected["cycles"]])
    assert any("no sign" in w for w in unsigned["warnings"])
    assert not expected["warnings"]


def test_discharge_positive_current_with_labels_is_reversed_with_a_warning():
    signed, _ = _varying_ce_record(labels=True)
    flipped = summarize_cycles(signed.assign(current_a=-signed["current_a"]))
    assert flipped["ice_pct"] == pytest.approx(80.0, rel=1e-12)
    assert any("discharge-positive" in w for w in flipped["warnings"])


def test_current_contradicting_labels_on_some_rows_is_refused():
    signed, _ = _varying_ce_record(labels=True)
    signed.loc[signed["step_type"] == "CC_DChg", "current_a"] = 1e-3  # discharges now read positive...
    signed.loc[30:35, "current_a"] = -1e-3                           # ...and part of a charge negative
    with pytest.raises(CyclingDataError, match="contradicts step_type"):
        summarize_cycles(signed)


def test_zero_based_cycle_labels_are_refused_not_shifted():
    df, _ = build_record(2, initial_discharge=False)
    with pytest.raises(CyclingDataError, match="EC-Lab's 'cycle number' must be mapped"):
        summarize_cycles(df.assign(cycle=df["cycle"] - 1))


def test_discharge_then_charge_cycle_labels_are_refused():
    # A vendor whose cycle is 'discharge, then charge' labels the first charge with the discharge
    # before it: cycle 1 would open with a discharge.
    df, _ = build_record(2, initial_discharge=True)
    relabelled = df.assign(cycle=np.where(df["step_type"] == "CC discharge", df["cycle"] + 1, df["cycle"]))
    with pytest.raises(CyclingDataError, match="cycle 2 opens with a discharge"):
        summarize_cycles(relabelled)


def test_implausible_ce_warns_by_cycle():
    longer, _ = _varying_ce_record()
    in_cycle_2_discharge = (longer["time_s"] > 11880.0) & (longer["time_s"] <= 15336.0)
    longer.loc[in_cycle_2_discharge, "current_a"] *= 1.2
    result = summarize_cycles(longer)
    assert _by_cycle(result)[2]["ce_pct"] > 105.0
    assert [w.split(":")[0] for w in result["warnings"]] == ["cycle 2"]


def _with_landt_capacity(df):
    """The record with Landt's per-step capacity: the exact charge since the step began (Ah, magnitude)."""
    capacity = np.zeros(len(df))
    for _, rows in df.groupby("step", sort=False):
        t = rows["test_time_s"].to_numpy() - rows["test_time_s"].iloc[0]
        if rows["step_type"].iloc[0] == "CV charge":
            capacity[rows.index] = I_CHARGE_A * CV_TAU_S * (1 - np.exp(-t / CV_TAU_S)) / 3600
        elif rows["step_type"].iloc[0] != "Rest":
            capacity[rows.index] = np.abs(rows["current_a"].iloc[-1]) * t / 3600
    return df.assign(capacity_ah=capacity)


def test_landt_per_step_capacity_is_the_counter():
    df, truth = build_record(3, seed=2)
    # Logged as instantaneous samples (not interval means): current × time misses the CV decay...
    instantaneous = df.assign(current_a=np.where(df["step_type"] == "CV charge",
                                                 I_CHARGE_A * np.exp(-df["step_time_s"] / CV_TAU_S),
                                                 df["current_a"]))
    rectangles = _by_cycle(summarize_cycles(instantaneous))
    assert abs(rectangles[2]["charge_mah"] / truth[2]["charge"] - 1) > 2e-3
    # ...which the instrument's own per-step capacity does not.
    counted = summarize_cycles(_with_landt_capacity(instantaneous))
    assert _by_cycle(counted)[2]["charge_mah"] == pytest.approx(truth[2]["charge"], rel=1e-9)
    assert any(w.startswith("cycle 2 charge") and "counter is reported" in w for w in counted["warnings"])


def test_a_capacity_that_falls_inside_a_step_is_not_a_counter():
    df, truth = build_record(2, seed=4)
    broken = _with_landt_capacity(df)
    broken.loc[broken["step_type"] == "CC charge", "capacity_ah"] *= -1.0
    _assert_matches_truth(summarize_cycles(broken), truth)
