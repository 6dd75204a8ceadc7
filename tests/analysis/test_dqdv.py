"""dQ/dV against a synthetic half cycle with known plateaus (a sum of tanh steps in Q(V))."""

import numpy as np
import pandas as pd
import pytest
from scipy.signal import find_peaks

from analysis.dqdv import DqdvInputError, dqdv, dqdv_for_cycle

PLATEAUS_V = (3.00, 3.20)
PLATEAU_AH = (0.6e-3, 0.4e-3)
WIDTH_V = 0.012
V_LOW, V_HIGH = 2.8, 3.4
HYSTERESIS_V = 0.05
I_A = 0.2e-3


def q_of_v(voltage_v):
    """Cumulative charge (Ah) at voltage V: a tanh step per plateau plus a small sloping background."""
    v = np.asarray(voltage_v, dtype=float)
    steps = sum(a * 0.5 * (1 + np.tanh((v - v0) / WIDTH_V)) for v0, a in zip(PLATEAUS_V, PLATEAU_AH))
    return steps + 0.1e-3 * (v - V_LOW) / (V_HIGH - V_LOW)


_DENSE_V = np.linspace(V_LOW, V_HIGH, 200_001)
_DENSE_Q = q_of_v(_DENSE_V)
CC_CAPACITY_AH = float(_DENSE_Q[-1] - _DENSE_Q[0])


def v_of_q(q_ah):
    return np.interp(q_ah, _DENSE_Q, _DENSE_V)


def cc_charge_samples(n=2500, seed=0, quantum_v=1e-4):
    """Irregularly timed CC charge samples (V quantised like an ADC) and their capacity."""
    rng = np.random.default_rng(seed)
    q = np.sort(rng.uniform(_DENSE_Q[0], _DENSE_Q[-1], n))
    q = np.concatenate(([_DENSE_Q[0]], q, [_DENSE_Q[-1]]))
    voltage = np.round(v_of_q(q) / quantum_v) * quantum_v
    return voltage, q - q[0]


def two_highest_peaks(result):
    y = np.abs(result["dqdv_ah_per_v"])
    peaks, props = find_peaks(y, prominence=0.05 * y.max())
    top = peaks[np.argsort(props["prominences"])[-2:]]
    return np.sort(result["voltage_v"][top])


@pytest.mark.parametrize("grid_step_v", [0.001, 0.002, 0.005])
def test_area_and_peaks_are_stable_under_grid_changes(grid_step_v):
    voltage, capacity = cc_charge_samples()
    result = dqdv(voltage, capacity, grid_step_v=grid_step_v)
    assert result["direction"] == "charge"
    assert result["grid_step_v"] <= grid_step_v
    assert np.all(np.diff(result["voltage_v"]) > 0)
    area = np.trapezoid(result["dqdv_ah_per_v"], result["voltage_v"])
    assert area == pytest.approx(CC_CAPACITY_AH, rel=0.02)
    np.testing.assert_allclose(two_highest_peaks(result), PLATEAUS_V, atol=0.005)
    assert result["capacity_ah"] == pytest.approx(CC_CAPACITY_AH, rel=1e-3)


def test_discharge_is_negative_whatever_the_capacity_sign():
    voltage, capacity = cc_charge_samples(seed=1)
    voltage, capacity = voltage[::-1], capacity[-1] - capacity[::-1]  # discharged capacity counts up
    counted_up = dqdv(voltage, capacity)
    counted_down = dqdv(voltage, -capacity, direction="discharge")
    assert counted_up["direction"] == "discharge"
    assert np.all(counted_up["dqdv_ah_per_v"] <= 1e-12)
    np.testing.assert_allclose(counted_up["dqdv_ah_per_v"], counted_down["dqdv_ah_per_v"])
    assert np.trapezoid(counted_up["dqdv_ah_per_v"], counted_up["voltage_v"]) == pytest.approx(
        -CC_CAPACITY_AH, rel=0.02)


def test_quantised_duplicates_give_no_spikes():
    voltage, capacity = cc_charge_samples(quantum_v=1e-3)  # many samples share a voltage
    result = dqdv(voltage, capacity, grid_step_v=0.001, smoothing_fwhm_v=0.01)
    analytic_peak = max(a / (2 * WIDTH_V) for a in PLATEAU_AH)
    assert np.all(np.isfinite(result["dqdv_ah_per_v"]))
    assert result["dqdv_ah_per_v"].max() < 1.2 * analytic_peak


def test_unsmoothed_derivative_is_exactly_conservative():
    voltage, capacity = cc_charge_samples()
    result = dqdv(voltage, capacity, smoothing_fwhm_v=0)
    area = result["dqdv_ah_per_v"].sum() * result["grid_step_v"]
    assert area == pytest.approx(result["capacity_ah"], rel=1e-9)


def cccv_record(seed=0):
    """Rest, CC charge along q_of_v to 3.4 V, CV hold, rest, CC discharge with hysteresis, rest."""
    rng = np.random.default_rng(seed)
    parts, t0 = [], 0.0

    def add(duration_s, n, current_fn, voltage_fn):
        nonlocal t0
        t = np.concatenate(([0.0], np.sort(rng.uniform(0, duration_s, n)), [duration_s]))
        parts.append(pd.DataFrame({"time_s": t0 + t, "voltage_v": voltage_fn(t), "current_a": current_fn(t)}))
        t0 += duration_s

    cc_s = CC_CAPACITY_AH * 3600 / I_A
    add(300, 5, lambda t: 0 * t, lambda t: np.full(t.size, V_LOW))
    add(cc_s, 1500, lambda t: np.full(t.size, I_A), lambda t: v_of_q(_DENSE_Q[0] + I_A * t / 3600))
    add(7200, 200, lambda t: I_A * np.exp(-t / 1800), lambda t: np.full(t.size, V_HIGH))
    add(600, 10, lambda t: 0 * t, lambda t: np.full(t.size, 3.35))
    add(cc_s, 1500, lambda t: np.full(t.size, -I_A),
        lambda t: v_of_q(_DENSE_Q[-1] - I_A * t / 3600) - HYSTERESIS_V)
    add(600, 10, lambda t: 0 * t, lambda t: np.full(t.size, 2.9))
    return pd.concat(parts, ignore_index=True)


def test_dqdv_for_cycle_uses_only_the_cc_part():
    df = cccv_record()
    charge = dqdv_for_cycle(df, 1, "charge")
    discharge = dqdv_for_cycle(df, 1, "discharge", grid_step_v=0.001)
    assert (charge["cycle"], charge["half"]) == (1, "charge")
    # the CV hold at 3.4 V passes about 0.5 mAh more, which would show up as a spike at 3.4 V
    assert charge["capacity_ah"] == pytest.approx(CC_CAPACITY_AH, rel=0.01)
    area = np.trapezoid(charge["dqdv_ah_per_v"], charge["voltage_v"])
    assert area == pytest.approx(CC_CAPACITY_AH, rel=0.02)
    assert charge["dqdv_ah_per_v"][-20:].max() < 0.1 * charge["dqdv_ah_per_v"].max()
    np.testing.assert_allclose(two_highest_peaks(charge), PLATEAUS_V, atol=0.005)
    assert np.trapezoid(discharge["dqdv_ah_per_v"], discharge["voltage_v"]) == pytest.approx(
        -CC_CAPACITY_AH, rel=0.02)
    np.testing.assert_allclose(two_highest_peaks(discharge), np.array(PLATEAUS_V) - HYSTERESIS_V, atol=0.005)


@pytest.mark.parametrize("call, message", [
    (lambda: dqdv([3.0, 3.0, 3.0], [0, 1, 2]), "distinct voltages"),
    (lambda: dqdv([3.0, 3.1, 3.2], [0, 1]), "samples"),
    (lambda: dqdv([3.0, 3.1, 3.2], [0, 1, 2], direction="up"), "direction"),
    (lambda: dqdv([3.0, 3.1, 3.2], [0, 1, 2], grid_step_v=0), "grid_step_v"),
    (lambda: dqdv([3.0, np.nan, 3.2], [0, 1, 2]), "finite"),
    (lambda: dqdv_for_cycle(cccv_record(), 7), "cycle 7"),
    (lambda: dqdv_for_cycle(cccv_record(), 1, "both"), "half"),
])
def test_bad_input_raises_named_errors(call, message):
    with pytest.raises(DqdvInputError, match=message):
        call()
