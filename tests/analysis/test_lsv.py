"""LSV onset analysis against synthetic sweeps with a known onset."""

import math

import numpy as np
import pytest

from analysis.lsv import LsvInputError, analyze_lsv

AREA_CM2 = math.pi * 1.0**2 / 4
SCAN_RATE_V_PER_S = 50e-6
TRUE_ONSET_V = 2.2
TAFEL_V = 0.04  # natural-log Tafel scale: current x e per 40 mV
THRESHOLD = 10e-6


def sweep(start_v, end_v, onset_v=TRUE_ONSET_V, dt_s=10.0, noise_a_per_cm2=0.3e-6, seed=0):
    """Times, voltages and currents of a 50 uV/s sweep: capacitive background plus a Tafel rise.

    The faradaic current density is THRESHOLD * exp(+-(V - onset_v) / TAFEL_V), so it equals the
    default threshold exactly at onset_v; it saturates at 1 mA/cm2 (ohmic limit).
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if end_v > start_v else -1.0
    n = int(abs(end_v - start_v) / SCAN_RATE_V_PER_S / dt_s) + 1
    time = np.arange(n) * dt_s
    voltage = start_v + sign * SCAN_RATE_V_PER_S * time
    capacitive = sign * 2e-3 * SCAN_RATE_V_PER_S / AREA_CM2  # C*dV/dt with C = 2 mF
    leak = 1e-7 * (voltage - start_v)  # the slight slope of a real background
    density = capacitive + leak + rng.normal(0.0, noise_a_per_cm2, n)
    if onset_v is not None:
        tafel = THRESHOLD * np.exp(sign * (voltage - onset_v) / TAFEL_V)
        density += sign * tafel / (1 + tafel / 1e-3)
    measured_v = voltage + rng.normal(0.0, 1e-4, n)
    return time, measured_v, density * AREA_CM2


def test_oxidation_onset_found_by_threshold_and_tangent():
    time, voltage, current = sweep(1.2, 5.0)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time)
    assert result["direction"] == "oxidation"
    assert result["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.05)
    # For j ~ exp(V/b), the tangent at 5x threshold meets the baseline at onset + b(ln 5 - 1).
    expected_tangent = TRUE_ONSET_V + TAFEL_V * (math.log(5) - 1)
    assert result["onset_tangent_v"] == pytest.approx(expected_tangent, abs=0.02)
    assert result["threshold_a_per_cm2"] == THRESHOLD
    assert result["scan_rate_v_per_s"] == pytest.approx(SCAN_RATE_V_PER_S, rel=1e-3)
    assert result["start_v"] == pytest.approx(1.2, abs=0.005)
    assert result["end_v"] == pytest.approx(5.0, abs=0.005)
    assert result["stable_range_v"] == [result["start_v"], result["onset_threshold_v"]]
    baseline_at_start = 2e-3 * SCAN_RATE_V_PER_S / AREA_CM2
    assert result["baseline_j_at_start_a_per_cm2"] == pytest.approx(baseline_at_start, abs=5e-8)


def test_reduction_scan_without_faradaic_current_has_no_onset():
    time, voltage, current = sweep(1.2, -0.1, onset_v=None)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time)
    assert result["direction"] == "reduction"
    assert result["onset_threshold_v"] is None
    assert result["onset_tangent_v"] is None
    assert result["threshold_a_per_cm2"] == THRESHOLD
    assert result["stable_range_v"] == [result["end_v"], result["start_v"]]


def test_reduction_onset_uses_cathodic_sign():
    _, voltage, current = sweep(1.2, -0.1, onset_v=0.3)
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["direction"] == "reduction"
    assert result["onset_threshold_v"] == pytest.approx(0.3, abs=0.05)
    assert result["onset_tangent_v"] < result["onset_threshold_v"]
    assert result["scan_rate_v_per_s"] is None


def test_anodic_current_on_a_reduction_scan_is_not_an_onset():
    _, voltage, current = sweep(1.2, -0.1, onset_v=None)
    current = current + 50e-6 * AREA_CM2 * (voltage < 0.5)  # oxidation current: wrong sign
    assert analyze_lsv(voltage, current, AREA_CM2)["onset_threshold_v"] is None


def test_threshold_parameter_moves_the_onset():
    _, voltage, current = sweep(1.2, 5.0)
    result = analyze_lsv(voltage, current, AREA_CM2, threshold_a_per_cm2=100e-6)
    # Ten times the threshold is reached b*ln(10) later on the Tafel rise.
    expected = TRUE_ONSET_V + TAFEL_V * math.log(10)
    assert result["onset_threshold_v"] == pytest.approx(expected, abs=0.02)
    assert result["threshold_a_per_cm2"] == 100e-6


def test_threshold_never_reached_gives_none_and_still_reports_threshold():
    _, voltage, current = sweep(1.2, 5.0)
    result = analyze_lsv(voltage, current, AREA_CM2, threshold_a_per_cm2=5e-3)
    assert result["onset_threshold_v"] is None
    assert result["onset_tangent_v"] is None
    assert result["threshold_a_per_cm2"] == 5e-3


def test_noise_spikes_and_short_bursts_do_not_trigger():
    _, voltage, current = sweep(1.2, 5.0, seed=3)
    rng = np.random.default_rng(4)
    quiet = np.flatnonzero(voltage < 2.0)
    spikes = rng.choice(quiet, 40, replace=False)
    current[spikes] += 200e-6 * AREA_CM2
    # A 5 mV burst (10 samples) above threshold: shorter than the 20 mV persistence.
    burst = np.flatnonzero((voltage > 1.80) & (voltage < 1.805))
    current[burst] += 30e-6 * AREA_CM2
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.05)


def test_spikes_on_a_flat_reduction_scan_do_not_create_an_onset():
    _, voltage, current = sweep(1.2, -0.1, onset_v=None, seed=5)
    rng = np.random.default_rng(6)
    spikes = rng.choice(voltage.size, 60, replace=False)
    current[spikes] -= 500e-6 * AREA_CM2
    assert analyze_lsv(voltage, current, AREA_CM2)["onset_threshold_v"] is None


def test_persistent_step_above_threshold_is_an_onset():
    _, voltage, current = sweep(1.2, 5.0, onset_v=None)
    current = current + 15e-6 * AREA_CM2 * (voltage > 3.0)
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == pytest.approx(3.0, abs=0.01)


def test_results_contain_no_nan():
    _, voltage, current = sweep(1.2, 5.0)
    for value in analyze_lsv(voltage, current, AREA_CM2).values():
        if isinstance(value, float):
            assert math.isfinite(value)


def test_dense_sweep_is_fast_and_agrees():
    _, voltage, current = sweep(1.2, 5.0, dt_s=1.0)  # 76 000 samples, a real record's size
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.05)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"area_cm2": 0.0}, "area_cm2"),
        ({"threshold_a_per_cm2": -1e-6}, "threshold_a_per_cm2"),
        ({"current_a": np.zeros(10)}, "current_a has 10"),
        ({"voltage_v": np.full(400, 1.5), "current_a": np.zeros(400)}, "sweeps only"),
        ({"time_s": np.zeros(400)}, "time_s must increase"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    voltage = np.linspace(1.0, 2.0, 400)
    args = {"voltage_v": voltage, "current_a": np.zeros(400), "area_cm2": AREA_CM2}
    args.update(kwargs)
    with pytest.raises(LsvInputError, match=message):
        analyze_lsv(**args)


def test_nan_in_current_is_refused():
    voltage = np.linspace(1.0, 2.0, 400)
    current = np.zeros(400)
    current[17] = np.nan
    with pytest.raises(LsvInputError, match="current_a has a non-finite value at sample 17"):
        analyze_lsv(voltage, current, AREA_CM2)
