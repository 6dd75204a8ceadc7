"""Behaviour of the simulated cell: OCV curves, CC/CV/rest steps, records, temperature and loading."""
import math

import numpy as np
import pytest

from instruments.sim.cell import (CellConfigError, CellModel, CellStepError, StepTrace, cell_constants_for,
                                  paper_cell, paper_cell_names)
from instruments.sim.ocv_curves import nacro2_ocv_v, sn_ocv_v


def make(name="full_15mg", seed=0, **sim):
    cell = paper_cell(name)
    cell["sim"].update(sim)
    return CellModel(cell_constants_for(cell), np.random.default_rng(seed))


def c_rate_a(model, rate):
    return rate * model.k.capacity_ah


def test_ocv_curves_are_monotonic_and_in_range():
    x = np.linspace(0.0, 1.0, 20001)
    assert np.all(np.diff(nacro2_ocv_v(x)) > 0)
    assert np.all(np.diff(sn_ocv_v(x)) < 0)
    mid = nacro2_ocv_v(np.linspace(0.1, 0.9, 50))
    assert 2.85 < mid.min() and mid.max() < 3.45
    # Sn's multi-plateau shape: flat stretches separated by steps
    assert sn_ocv_v(0.05) - sn_ocv_v(0.2) > 0.15
    assert abs(sn_ocv_v(0.4) - sn_ocv_v(0.5)) < 0.02


def test_full_cell_ocv_differs_in_shape_from_half_cell():
    full, half = make("full_15mg"), make("half_nco_nzc_onbh_15mg")
    n = np.linspace(0.1, 0.9, 9)
    half_v = nacro2_ocv_v(n) - half.k.na9sn4_potential_v
    full_v = nacro2_ocv_v(n) - sn_ocv_v(np.linspace(0.05, 0.55, 9))
    assert np.ptp(half_v - full_v) > 0.1
    assert full.ocv_v(25.0) < half.ocv_v(25.0)


def test_cc_charge_stops_at_the_cutoff_and_counts_charge():
    m = make()
    i = c_rate_a(m, 0.1)
    trace = m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600)
    assert isinstance(trace, StepTrace)
    assert trace.end_reason == "voltage"
    assert trace.voltage_v[-1] == pytest.approx(3.4, abs=0.003)
    assert m.voltage_v == pytest.approx(3.4, abs=1e-3)
    assert np.all(trace.voltage_v[:-1] < 3.4 + 0.003)
    assert trace.time_s[0] == 0 and np.all(np.diff(trace.time_s) > 0)
    assert np.all(np.diff(trace.capacity_ah) > 0) and np.all(np.diff(trace.energy_wh) > 0)
    counted = np.trapezoid(trace.current_a, trace.time_s) / 3600.0
    assert counted == pytest.approx(trace.capacity_ah[-1], rel=1e-9)
    energy = np.trapezoid(trace.current_a * trace.voltage_v, trace.time_s) / 3600.0
    assert energy == pytest.approx(trace.energy_wh[-1], rel=0.01)


def test_cc_discharge_stops_at_lower_cutoff():
    m = make()
    i = c_rate_a(m, 0.1)
    m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600)
    trace = m.run_cc(-i, 25.0, until_voltage_v=1.5, max_duration_s=20 * 3600)
    assert trace.end_reason == "voltage"
    assert trace.voltage_v[-1] == pytest.approx(1.5, abs=0.01)
    assert np.all(trace.current_a < 0)
    assert np.all(np.diff(trace.capacity_ah) > 0)


def test_cc_time_and_capacity_limits():
    m = make()
    i = c_rate_a(m, 0.1)
    by_time = m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=1800.0)
    assert by_time.end_reason == "time" and by_time.time_s[-1] == pytest.approx(1800.0)
    by_cap = m.run_cc(i, 25.0, until_voltage_v=3.4, max_capacity_ah=i * 0.25)
    assert by_cap.end_reason == "capacity" and by_cap.capacity_ah[-1] == pytest.approx(i * 0.25)


def test_cc_already_past_cutoff_ends_at_once():
    m = make()
    trace = m.run_cc(-c_rate_a(m, 0.1), 25.0, until_voltage_v=2.5, max_duration_s=3600)
    assert trace.end_reason == "voltage" and trace.time_s.tolist() == [0.0]
    assert trace.capacity_ah.tolist() == [0.0]


def test_step_without_end_is_refused():
    m = make("symmetric_na9sn4")
    with pytest.raises(CellStepError):
        m.run_cc(1e-4, 25.0)
    with pytest.raises(CellStepError):
        m.run_cc(0.0, 25.0, max_duration_s=10)


def test_records_follow_interval_and_voltage_change():
    m = make()
    i = c_rate_a(m, 0.1)
    trace = m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600, record_interval_s=120.0,
                     record_dv=0.01)
    gaps = np.diff(trace.time_s)
    assert gaps.max() <= 120.0 + 1e-6
    # somewhere the voltage moved fast enough to trigger a record before the interval
    assert gaps[:-1].min() < 60.0
    dv = np.abs(np.diff(trace.voltage_v))[1:-1]
    assert np.median(dv) < 0.01
    sparse = make().run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600, record_interval_s=1e6,
                           record_dv=0.05)
    # with no time trigger the records are the ~ΔV/dv band crossings (start at ~1 V, end at 3.4 V)
    assert 20 < sparse.time_s.size < 80


def test_cv_current_decays_and_stops():
    m = make("half_nco_nzc_onbh_15mg")
    i = c_rate_a(m, 1 / 3)
    m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=10 * 3600)
    until = c_rate_a(m, 0.05)
    cv = m.run_cv(3.4, 25.0, until_current_a=until, record_interval_s=60.0)
    assert cv.end_reason == "current"
    assert cv.current_a[0] == pytest.approx(i, rel=0.05)
    assert cv.current_a[-1] == pytest.approx(until, rel=0.01)
    assert np.all(np.diff(cv.current_a) < 0)
    assert np.allclose(cv.voltage_v, 3.4, atol=0.003)
    assert np.diff(cv.time_s).max() <= 60.0 + 1e-6
    counted = np.trapezoid(cv.current_a, cv.time_s) / 3600.0
    assert counted == pytest.approx(cv.capacity_ah[-1], rel=0.02)
    again = m.run_cv(3.4, 25.0, until_current_a=until)
    assert again.end_reason == "current" and again.time_s.size == 1


def test_cv_stops_on_time():
    m = make("half_nco_nzc_onbh_15mg")
    m.run_cc(c_rate_a(m, 1 / 3), 25.0, until_voltage_v=3.4, max_duration_s=10 * 3600)
    cv = m.run_cv(3.4, 25.0, until_current_a=1e-9, max_duration_s=900.0)
    assert cv.end_reason == "time" and cv.time_s[-1] == pytest.approx(900.0)


def test_rest_relaxes_towards_ocv():
    m = make("full_45mg")
    i = c_rate_a(m, 0.1)
    m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600)
    rest = m.run_rest(4 * 3600, 25.0, record_interval_s=300.0)
    assert rest.end_reason == "time"
    assert np.all(rest.current_a == 0) and np.all(rest.capacity_ah == 0)
    v = rest.voltage_v
    assert v[0] - v[-1] > 0.02  # the IR drop and the diffusion gradient relax
    assert np.all(np.diff(v) < 0.002)  # monotonic within noise
    assert m.voltage_v == pytest.approx(m.ocv_v(25.0), abs=0.01)
    assert np.diff(rest.time_s).max() <= 300.0 + 1e-6


def first_discharge_mah(name, temperature_c, loading=None):
    cell = paper_cell(name)
    if loading is not None:
        cell["cathode_loading_mg_per_cm2"] = loading
    m = CellModel(cell_constants_for(cell), np.random.default_rng(0))
    i = c_rate_a(m, 0.1)
    m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=30 * 3600)
    d = m.run_cc(-i, temperature_c, until_voltage_v=1.5, max_duration_s=40 * 3600)
    return d.capacity_ah[-1] * 1e3 / m.k.area_cm2, m


def test_colder_discharge_gives_less_capacity():
    caps = [first_discharge_mah("full_45mg", t)[0] for t in (25.0, 0.0, -15.0)]
    assert caps[0] > caps[1] > caps[2]
    assert caps[2] < 0.7 * caps[0]


def test_thicker_cathode_uses_less_of_its_capacity():
    fractions = []
    for loading in (15.0, 30.0, 45.0):
        cap, m = first_discharge_mah("full_45mg", 25.0, loading=loading)
        fractions.append(cap / (m.k.capacity_ah * 1e3 / m.k.area_cm2))
    assert fractions[0] > fractions[1] > fractions[2]


def test_resistance_follows_electrolyte_conductivity():
    m = make("full_45mg")
    assert m.sigma_s_per_cm(30.0) == pytest.approx(4.6e-3, rel=1e-9)
    ratio = m.sigma_s_per_cm(30.0) / m.sigma_s_per_cm(-10.0)
    assert ratio == pytest.approx(4.6 / 0.3, rel=0.1)
    r25, r0 = (m.resistance_parts_ohm_cm2(t) for t in (25.0, 0.0))
    assert r0["separator"] / r25["separator"] == pytest.approx(
        m.sigma_s_per_cm(25.0) / m.sigma_s_per_cm(0.0))
    thin = make("full_15mg").resistance_parts_ohm_cm2(25.0)
    assert thin["cathode_ionic"] < r25["cathode_ionic"]


def test_deterministic_with_seeded_rng():
    def run(seed):
        m = make(seed=seed)
        i = c_rate_a(m, 0.1)
        return m.run_cc(i, 25.0, until_voltage_v=3.4, max_duration_s=20 * 3600).voltage_v
    a, b, c = run(3), run(3), run(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    noise = a - c
    assert 0.0002 < np.std(noise) / math.sqrt(2) < 0.001


def test_symmetric_cell_polarisation():
    m = make("symmetric_na9sn4")
    area = m.k.area_cm2
    i = 0.2e-3 * area
    up = m.run_cc(i, 25.0, max_duration_s=5 * 3600)
    down = m.run_cc(-i, 25.0, max_duration_s=5 * 3600)
    assert up.end_reason == "time" and up.capacity_ah[-1] * 1e3 / area == pytest.approx(1.0)
    assert 0.005 < up.voltage_v[-1] < 0.05 and -0.05 < down.voltage_v[-1] < -0.005
    cold = make("symmetric_na9sn4").run_cc(i, -10.0, max_duration_s=3600)
    assert cold.voltage_v[-1] > 3 * up.voltage_v[-1]
    for _ in range(20):
        m.run_cc(i, 25.0, max_duration_s=5 * 3600)
        last = m.run_cc(-i, 25.0, max_duration_s=5 * 3600)
    assert abs(last.voltage_v[-1]) > abs(down.voltage_v[-1])  # the interfaces grow slowly


def test_impedance_grows_in_the_cold():
    m = make("full_45mg")
    f = np.logspace(6, -2, 30)
    z25 = m.impedance(f, 25.0)
    z15 = m.impedance(f, -15.0)
    assert z15[0].real > 5 * z25[0].real  # ohmic intercept of the electrolyte
    assert np.all(z25.imag < 0.05 * np.abs(z25) + 1.0)
    assert z15[-1].real > z25[-1].real
    noisy = m.measured_impedance(f, 25.0, np.random.default_rng(0))
    assert np.allclose(noisy, z25, rtol=0.03)


def test_config_merging_and_errors():
    k = cell_constants_for(paper_cell("full_30mg"), {"voltage_noise_v": 0.0})
    assert k.kind == "full" and k.cathode_loading_mg_per_cm2 == 30.0 and k.voltage_noise_v == 0.0
    assert k.capacity_ah == pytest.approx(30 * 0.785 * 120e-6)
    assert k.thickness_um == pytest.approx(217.0, abs=2.0)
    with pytest.raises(CellConfigError, match="bogus"):
        cell_constants_for({"kind": "full", "anode": "Sn", "bogus": 1})
    with pytest.raises(CellConfigError, match="anode"):
        cell_constants_for({"kind": "full", "anode": "Na9Sn4"})
    with pytest.raises(CellConfigError, match="first_charge_trap_frac"):
        cell_constants_for({"kind": "full", "anode": "Sn", "sim": {"first_charge_trap_frac": 1.5}})
    assert set(paper_cell_names()) == {"full_15mg", "full_30mg", "full_45mg", "half_nco_nzc_onbh_15mg",
                                       "symmetric_na9sn4"}
    with pytest.raises(KeyError):
        paper_cell("nope")
