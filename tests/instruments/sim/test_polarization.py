"""DC loads of the simulated potentiostat: LSV composite cells and the blocking pellet under DC
polarization (instruments/sim/polarization.py through SimLab)."""
import time

import numpy as np
import pytest

from instruments.sim.lab import SimLab
from instruments.sim.polarization import LinearCircuitResponse, PolarizationInputError, RCCircuit

SCAN_RATE = 50e-6
THRESHOLD = 10e-6
HOUR = 3600.0


def sweep(cell, end_v, rate=SCAN_RATE, step_v=0.001, temperature_c=25.0):
    """(E, j in A/cm²) of one sweep from the cell's OCV to end_v, sampled every step_v."""
    ocv = cell.rest_potential_v(temperature_c)
    n = int(round(abs(end_v - ocv) / step_v)) + 1
    e = np.linspace(ocv, end_v, n)
    t = np.abs(e - ocv) / rate
    return e, cell.current_response(t, e, temperature_c) / cell.area_cm2


def baseline(e, j, ocv, skip=0.02, span=0.3):
    """Straight line through the early part of the sweep (as the LSV analysis does)."""
    sel = (np.abs(e - ocv) >= skip) & (np.abs(e - ocv) <= skip + span)
    return np.polyfit(e[sel], j[sel], 1)


def step_pellet(levels, step_s=6 * HOUR, dt=10.0, temperature_c=25.0, pellet=None):
    """Current of a fresh 1 mm × 10 mm pellet held at each level for step_s, sampled every dt;
    the level changes abruptly (two samples at the boundary time)."""
    pellet = pellet or SimLab().mount_pellet(1000.0, 10.0)
    ts, es = [], []
    for k, level in enumerate(levels):
        t = k * step_s + np.arange(0.0, step_s + dt / 2, dt)
        ts.append(t)
        es.append(np.full(t.shape, level))
    t, e = np.concatenate(ts), np.concatenate(es)
    return pellet, t, pellet.current_response(t, e, temperature_c)


# --- open-circuit potentials ----------------------------------------------------------------------
def test_open_circuit_potentials_and_no_current_at_rest():
    lab = SimLab()
    cell = lab.mount_lsv_cell("oxidation", 0.785, 8.9)
    assert 1.0 <= lab.rest_potential_v() <= 1.5
    t = np.linspace(0.0, 600.0, 61)
    assert np.all(lab.current_response(t, np.full(t.shape, cell.rest_potential_v(25.0))) == 0.0)
    assert lab.mount_pellet(1000.0, 10.0) is lab.load
    assert lab.rest_potential_v() == 0.0


def test_polarization_overrides_reach_the_loads():
    lab = SimLab(sim={"polarization": {"lsv_open_circuit_v": 1.1, "lsv_onset_v": 2.5}})
    cell = lab.mount_lsv_cell("oxidation", 0.785, 8.9)
    assert lab.rest_potential_v() == 1.1
    assert cell.faradaic_current_a(2.5) / cell.area_cm2 == pytest.approx(THRESHOLD, rel=1e-6)
    with pytest.raises(ValueError, match="unknown constant"):
        SimLab(sim={"polarization": {"lsv_ocv": 1.0}})
    with pytest.raises(ValueError, match="same length"):
        SimLab(sim={"polarization": {"dc_transient_time_constants_s": [10.0]}})


# --- LSV ---------------------------------------------------------------------------------------------
def test_oxidation_onset_at_2p2_v_above_the_background():
    cell = SimLab().mount_lsv_cell("oxidation", 0.785, 8.9)
    e, j = sweep(cell, 5.0)
    slope, offset = baseline(e, j, cell.rest_potential_v(25.0))
    background = slope * e + offset
    assert np.all(np.abs(background[e <= 2.3]) < 3e-6)  # a few µA/cm² at most, below the threshold
    excess = j - background
    k = int(np.argmax(excess > THRESHOLD))
    onset = np.interp(THRESHOLD, excess[k - 1:k + 1], e[k - 1:k + 1])
    assert onset == pytest.approx(2.2, abs=0.02)
    assert np.all(excess[e < 2.1] < 0.5 * THRESHOLD)
    assert 0.5e-3 < j[-1] < 10e-3  # mA/cm² by 5 V: film-limited, not an exponential runaway


def test_reduction_sweep_stays_below_threshold():
    cell = SimLab().mount_lsv_cell("reduction", 0.785, 8.9)
    e, j = sweep(cell, -0.1)
    assert e[-1] == pytest.approx(-0.1)
    assert np.all(np.abs(j) < 0.1 * THRESHOLD)
    assert j[-1] < 0  # cathodic background and leak, nothing faradaic


def test_capacitive_current_follows_the_scan_rate():
    cell_a = SimLab().mount_lsv_cell("oxidation", 0.785, 8.9)
    cell_b = SimLab().mount_lsv_cell("oxidation", 0.785, 8.9)
    e, j_slow = sweep(cell_a, 1.8, rate=SCAN_RATE)
    _, j_fast = sweep(cell_b, 1.8, rate=2 * SCAN_RATE)
    late = e > 1.5
    c_total = cell_a.double_layer_f * (1 + cell_a.k.lsv_pseudo_capacitance_fraction)
    expected = c_total * SCAN_RATE / cell_a.area_cm2
    np.testing.assert_allclose(j_fast[late] - j_slow[late], expected, rtol=1e-3)
    steel = SimLab().mount_lsv_cell("reduction", 0.785, 8.9)
    assert steel.double_layer_f < 0.1 * cell_a.double_layer_f


def test_potential_step_charges_the_electrode_capacitance():
    cell = SimLab().mount_lsv_cell("oxidation", 0.785, 8.9)
    ocv, dv = cell.rest_potential_v(25.0), 0.01
    t = np.concatenate(([0.0, 0.0], np.geomspace(1e-5, 3000.0, 4000)))
    e = np.concatenate(([ocv], np.full(t.size - 1, ocv + dv)))
    i = cell.current_response(t, e, 25.0)
    circuit = cell.circuit(25.0)
    r_now = circuit.series_ohm + 1.0 / sum(1.0 / r for r in circuit.branch_ohm)
    assert i[0] == 0.0
    assert i[1] == pytest.approx(dv / r_now, rel=1e-3)  # finite: limited by the series resistances
    charge = np.trapezoid(i[1:], t[1:])
    leak = circuit.shunt_s * dv * t[-1]  # the separator's electronic leak, 4 % of the total here
    assert charge == pytest.approx(sum(circuit.branch_f) * dv + leak, rel=2e-3)
    assert i[-1] == pytest.approx(circuit.shunt_s * dv, rel=5e-3)  # + 1.5 pA of Tafel current


# --- chunking ---------------------------------------------------------------------------------------
def cut(n, pieces=7, seed=3):
    bounds = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), pieces - 1, replace=False))
    return np.split(np.arange(n), bounds)


def test_lsv_current_does_not_depend_on_chunking():
    ocv = 1.3
    t = np.linspace(0.0, (5.0 - ocv) / SCAN_RATE, 20001)
    e = ocv + SCAN_RATE * t
    whole = SimLab().mount_lsv_cell("oxidation").current_response(t, e, 25.0)
    cell = SimLab().mount_lsv_cell("oxidation")
    parts = np.concatenate([cell.current_response(t[s], e[s], 25.0) for s in cut(t.size)])
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())


def test_dc_steps_do_not_depend_on_chunking():
    levels = [0.1, 0.3, 0.2]
    _, t, whole = step_pellet(levels, step_s=2 * HOUR)
    pellet = SimLab().mount_pellet(1000.0, 10.0)
    e = np.repeat(levels, t.size // len(levels))
    parts = np.concatenate([pellet.current_response(t[s], e[s], 25.0) for s in cut(t.size)])
    np.testing.assert_allclose(parts, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())
    pellet2 = SimLab().mount_pellet(1000.0, 10.0)
    # a chunk boundary inside the abrupt step: between the two samples at the same time
    k = int(t.size // len(levels))
    split = np.concatenate([pellet2.current_response(t[:k], e[:k], 25.0),
                            pellet2.current_response(t[k:], e[k:], 25.0)])
    np.testing.assert_allclose(split, whole, rtol=1e-12, atol=1e-12 * np.abs(whole).max())


# --- DC polarization --------------------------------------------------------------------------------
def test_steady_current_is_v_over_r_e():
    pellet, t, i = step_pellet([0.1])
    i_e = 0.1 / pellet.electronic_resistance_ohm()
    assert i_e == pytest.approx(7.854e-9, rel=1e-3)  # 1 mm, 10 mm, σe = 1e-8 S/cm
    assert i[-1] == pytest.approx(i_e, rel=0.01)
    assert i[-1] > i_e


def test_drift_falls_below_one_percent_per_hour_within_three_hours():
    _, t, i = step_pellet([0.1], dt=10.0)
    per_h = -np.gradient(i, t) * HOUR / i

    def at(seconds):
        return int(round(seconds / 10.0))

    assert per_h[at(20 * 60)] > 0.01
    assert per_h[at(3 * HOUR)] < 0.01
    window = (i[at(2 * HOUR)] - i[at(3 * HOUR)]) / i[at(3 * HOUR)]  # the protocol's criterion
    assert window < 0.01
    early_window = (i[at(1 * HOUR)] - i[at(2 * HOUR)]) / i[at(2 * HOUR)]
    assert early_window > 0.01


def test_transient_scales_with_the_step_and_superposes():
    p1, t, i1 = step_pellet([0.1])
    _, _, i2 = step_pellet([0.2])
    r_e = p1.electronic_resistance_ohm()
    np.testing.assert_allclose(i2 - 0.2 / r_e, 2 * (i1 - 0.1 / r_e), rtol=1e-9)
    # up to 0.2 V, then down to 0.1 V = (0 -> 0.2 at 0) + (0 -> -0.1 at 6 h)
    _, _, i_ud = step_pellet([0.2, 0.1])
    _, _, i_hold = step_pellet([0.2, 0.2])
    _, _, i_down = step_pellet([0.0, -0.1])
    scale = np.abs(i_ud).max()
    np.testing.assert_allclose(i_ud, i_hold + i_down, rtol=1e-9, atol=1e-12 * scale)
    n = i1.size
    after = i_ud[n:] - 0.1 / r_e
    np.testing.assert_allclose(after, -(i1 - 0.1 / r_e), atol=0.01 * 0.1 / r_e)
    assert after[1] < 0  # the down step discharges: current dips below the new steady value
    assert i_ud[-1] == pytest.approx(0.1 / r_e, rel=0.01)


def test_abrupt_step_is_limited_by_the_bulk_resistance():
    pellet, _, i = step_pellet([0.1])
    r_b = pellet.total_resistance_ohm(25.0)
    assert np.isfinite(i[0])
    assert 0.5 * 0.1 / r_b < i[0] < 0.1 / r_b  # R_b plus the electrode contact in series


def test_temperature_moves_the_spike_not_the_steady_current():
    warm, _, i_warm = step_pellet([0.1], temperature_c=30.0)
    cold, _, i_cold = step_pellet([0.1], temperature_c=-10.0)
    assert i_cold[-1] == pytest.approx(i_warm[-1], rel=1e-6)
    assert i_cold[0] / i_warm[0] == pytest.approx(
        (warm.total_resistance_ohm(30.0) + 1.0) / (cold.total_resistance_ohm(-10.0) + 1.0), rel=0.01)


def test_temperature_change_between_chunks_keeps_the_charge():
    t = np.arange(0.0, 2 * HOUR, 10.0)
    e = np.full(t.shape, 0.1)
    ref = SimLab().mount_pellet(1000.0, 10.0).current_response(t, e, 25.0)
    pellet = SimLab().mount_pellet(1000.0, 10.0)
    half = t.size // 2
    mixed = np.concatenate([pellet.current_response(t[:half], e[:half], 25.0),
                            pellet.current_response(t[half:], e[half:], 35.0)])
    # only R_s changes with temperature: a few ppm of the nA current, no jump from lost charge
    np.testing.assert_allclose(mixed, ref, rtol=2e-5)


# --- the linear core and bad input ------------------------------------------------------------------
def test_single_rc_branch_matches_the_closed_form_ramp_response():
    r_s, r, c = 10.0, 90.0, 1e-2  # τ = (r_s + r)·c = 1 s
    resp = LinearCircuitResponse(lambda _t: RCCircuit(r_s, 0.0, (r,), (c,)), 0.0, "test")
    t = np.linspace(0.0, 5.0, 11)
    i = resp.current(t, 0.2 * t, 25.0)  # ramp at 0.2 V/s from rest
    expected = 0.2 * c * (1 - np.exp(-t / ((r_s + r) * c)))
    np.testing.assert_allclose(i, expected, rtol=1e-12, atol=1e-18)


def test_bad_chunks_are_refused():
    pellet = SimLab().mount_pellet(1000.0, 10.0)
    with pytest.raises(PolarizationInputError, match="decrease"):
        pellet.current_response(np.array([0.0, 2.0, 1.0]), np.zeros(3), 25.0)
    with pytest.raises(PolarizationInputError, match="equal length"):
        pellet.current_response(np.array([0.0, 1.0]), np.zeros(3), 25.0)
    pellet.current_response(np.array([0.0, 10.0]), np.zeros(2), 25.0)
    with pytest.raises(PolarizationInputError, match="before the previous chunk"):
        pellet.current_response(np.array([5.0]), np.zeros(1), 25.0)
    assert pellet.current_response(np.array([]), np.array([]), 25.0).size == 0
    with pytest.raises(ValueError, match="direction"):
        SimLab().mount_lsv_cell("sideways", 0.785, 8.9)
    with pytest.raises(ValueError, match="area_cm2"):
        SimLab().mount_lsv_cell("oxidation", 0.0, 8.9)


def test_lsv_cell_impedance_shows_series_resistance_and_capacitance():
    lab = SimLab()
    cell = lab.mount_lsv_cell("oxidation", 0.785, 8.9)
    z = lab.measure_impedance(np.array([1e5, 1e3, 1.0, 1e-3]))
    circuit = cell.circuit(lab.sample_temperature_c())
    assert z[0].real == pytest.approx(circuit.series_ohm + 1 / sum(1 / r for r in circuit.branch_ohm),
                                      rel=0.05)  # above the double layer's corner frequency
    assert z[-1].imag < -10 * abs(z[1])


def test_long_chunks_cost_milliseconds():
    cell = SimLab().mount_lsv_cell("oxidation")
    t = np.linspace(0.0, 74000.0, 80000)
    start = time.perf_counter()
    cell.current_response(t, 1.3 + SCAN_RATE * t, 25.0)
    step_pellet([0.1])
    assert time.perf_counter() - start < 1.0
