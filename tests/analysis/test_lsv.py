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


def sweep(start_v, end_v, onset_v=TRUE_ONSET_V, dt_s=10.0, noise_a_per_cm2=0.3e-6, seed=0, *,
          scan_rate_v_per_s=SCAN_RATE_V_PER_S, capacitive_a_per_cm2=None, leak_a_per_cm2_per_v=1e-7,
          tafel_v=TAFEL_V, area_cm2=AREA_CM2, voltage_noise_v=1e-4):
    """Times, voltages and currents of a sweep: capacitive background plus a Tafel rise.

    The faradaic current density is THRESHOLD * exp(+-(V - onset_v) / tafel_v), so it equals the
    default threshold exactly at onset_v; it saturates at 1 mA/cm2 (ohmic limit). The background is
    the capacitive current (default C*dV/dt with C = 2 mF, about 1 % of the threshold at 50 uV/s)
    plus a leak that grows linearly with the potential swept.
    """
    rng = np.random.default_rng(seed)
    sign = 1.0 if end_v > start_v else -1.0
    n = int(abs(end_v - start_v) / scan_rate_v_per_s / dt_s) + 1
    time = np.arange(n) * dt_s
    voltage = start_v + sign * scan_rate_v_per_s * time
    if capacitive_a_per_cm2 is None:
        capacitive_a_per_cm2 = 2e-3 * scan_rate_v_per_s / area_cm2
    leak = leak_a_per_cm2_per_v * (voltage - start_v)
    density = sign * capacitive_a_per_cm2 + leak + rng.normal(0.0, noise_a_per_cm2, n)
    if onset_v is not None:
        tafel = THRESHOLD * np.exp(sign * (voltage - onset_v) / tafel_v)
        density += sign * tafel / (1 + tafel / 1e-3)
    measured_v = voltage + rng.normal(0.0, voltage_noise_v, n)
    return time, measured_v, density * area_cm2


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


def test_background_comparable_to_the_threshold_is_subtracted_as_a_sloped_line():
    """8 uA/cm2 of capacitive current (a carbon composite's large capacitance) and a leak growing by
    8 uA/cm2 per V, on a 6 mm electrode: unsubtracted, or subtracted as a flat line, the background
    alone would cross the 10 uA/cm2 threshold about a volt before the true onset."""
    area = math.pi * 0.6**2 / 4
    time, voltage, current = sweep(1.2, 5.0, onset_v=3.0, capacitive_a_per_cm2=8e-6,
                                   leak_a_per_cm2_per_v=8e-6, area_cm2=area)
    result = analyze_lsv(voltage, current, area, time_s=time)
    assert result["onset_threshold_v"] == pytest.approx(3.0, abs=0.005)
    assert result["onset_tangent_v"] == pytest.approx(3.0 + TAFEL_V * (math.log(5) - 1), abs=0.005)
    assert result["baseline_slope_a_per_cm2_per_v"] == pytest.approx(8e-6, rel=0.03)
    assert result["baseline_j_at_start_a_per_cm2"] == pytest.approx(8e-6, abs=0.1e-6)
    assert result["baseline_window_v"] == pytest.approx([1.22, 1.52], abs=2e-3)
    assert result["baseline_method"] == "Theil-Sen line through binned medians of the early scan"
    assert result["stable_range_v"] == [result["start_v"], result["onset_threshold_v"]]


def test_reduction_onset_is_placed_to_a_few_millivolts_under_a_strong_background():
    # A reduction threshold applied at half or twice its value would move the onset by
    # b*ln 2 = 28 mV on this 40 mV Tafel rise.
    time, voltage, current = sweep(1.2, -0.1, onset_v=0.3, capacitive_a_per_cm2=8e-6,
                                   leak_a_per_cm2_per_v=8e-6)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time)
    assert result["direction"] == "reduction"
    assert result["onset_threshold_v"] == pytest.approx(0.3, abs=0.005)
    assert result["onset_tangent_v"] == pytest.approx(0.3 - TAFEL_V * (math.log(5) - 1), abs=0.005)
    assert result["tangent_point_v"] == pytest.approx(0.3 - TAFEL_V * math.log(5), abs=0.01)
    # The baseline window lies 20 to 320 mV below the start; the background falls with V.
    assert result["baseline_window_v"] == pytest.approx([0.88, 1.18], abs=2e-3)
    assert result["baseline_slope_a_per_cm2_per_v"] == pytest.approx(8e-6, rel=0.03)
    assert result["baseline_j_at_start_a_per_cm2"] == pytest.approx(-8e-6, abs=0.1e-6)
    assert result["stable_range_v"] == [result["onset_threshold_v"], result["start_v"]]
    assert result["scan_rate_v_per_s"] == pytest.approx(SCAN_RATE_V_PER_S, rel=1e-3)


def test_a_burst_that_survives_the_smoothing_is_an_onset_only_if_it_lasts_persistence_v():
    # 15 mV of 30 uA/cm2: wider than the 10 mV smoothing, so the running median keeps it, but
    # shorter than the 20 mV persistence.
    _, voltage, current = sweep(1.2, 5.0, seed=3)
    current[(voltage > 1.800) & (voltage < 1.815)] += 30e-6 * AREA_CM2
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.01)
    assert result["persistence_v"] == 0.02 and result["smoothing_v"] == 0.01
    shorter = analyze_lsv(voltage, current, AREA_CM2, persistence_v=0.01)
    assert shorter["onset_threshold_v"] == pytest.approx(1.80, abs=0.003)
    assert shorter["persistence_v"] == 0.01


def test_a_short_charging_transient_at_the_start_is_not_an_onset():
    # 10 mV of 100 uA/cm2 right at the start (the double layer charging as the sweep begins).
    _, voltage, current = sweep(1.2, 5.0, seed=8)
    current[voltage < 1.21] += 100e-6 * AREA_CM2
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.01)


def test_a_sweep_that_starts_past_the_limit_has_its_onset_at_the_start():
    """Current above threshold from the first sample, and falling, for longer than persistence_v:
    there is no earlier sample to interpolate from, so the onset is the start of the sweep; the
    tangent to a falling current never meets the baseline ahead, so there is no tangent onset."""
    _, voltage, current = sweep(1.2, 5.0, seed=8)
    current = current + 100e-6 * AREA_CM2 * np.exp(-(voltage - 1.2) / 0.015)  # 34 mV above 10 uA
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["onset_threshold_v"] == result["start_v"]
    assert result["stable_range_v"] == [result["start_v"], result["start_v"]]
    assert result["onset_tangent_v"] is None
    assert result["tangent_point_v"] == result["start_v"]


@pytest.mark.parametrize("multiple", [5.0, 10.0])
def test_tangent_onset_on_a_shallow_tafel_rise(multiple):
    # b = 100 mV: the tangent onset lies b*(ln m - 1) past the threshold onset, 61 mV for m = 5,
    # 79 mV for m = 6, 130 mV for m = 10.
    b = 0.1
    _, voltage, current = sweep(1.2, 5.0, onset_v=2.6, tafel_v=b)
    result = analyze_lsv(voltage, current, AREA_CM2, tangent_multiple=multiple)
    assert result["tangent_multiple"] == multiple
    assert result["onset_threshold_v"] == pytest.approx(2.6, abs=0.005)
    assert result["onset_tangent_v"] == pytest.approx(2.6 + b * (math.log(multiple) - 1), abs=0.006)
    assert result["tangent_point_v"] == pytest.approx(2.6 + b * math.log(multiple), abs=0.015)


def test_default_tangent_multiple_is_five():
    _, voltage, current = sweep(1.2, 5.0, onset_v=2.6, tafel_v=0.1)
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["tangent_multiple"] == 5.0
    assert result["onset_tangent_v"] == pytest.approx(2.6 + 0.1 * (math.log(5) - 1), abs=0.006)


@pytest.mark.parametrize("dt_s", [1.0, 0.2])
def test_records_sampled_every_second_or_faster(dt_s):
    time, voltage, current = sweep(1.2, 2.0, onset_v=1.7, dt_s=dt_s, scan_rate_v_per_s=1e-3)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time)
    assert result["scan_rate_v_per_s"] == pytest.approx(1e-3, rel=1e-3)
    assert result["onset_threshold_v"] == pytest.approx(1.7, abs=0.005)


def test_scan_rate_from_epoch_timestamps():
    # Times as an instrument logs them (seconds since 1970): the rate is fitted from the start.
    time, voltage, current = sweep(1.2, 2.0, onset_v=1.7, dt_s=1.0, scan_rate_v_per_s=1e-3)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time + 1.78e9)
    assert result["scan_rate_v_per_s"] == pytest.approx(1e-3, rel=1e-3)


@pytest.mark.parametrize("onset_v", [2.6, 2.605])
def test_sparse_record_places_onset_and_tangent_to_a_fraction_of_a_sample(onset_v):
    """10 mV between samples, noise-free: the threshold crossing is interpolated between the two
    samples around it (1 mV off at most on this curve; one sample is 10 mV). No other sample lies
    within smoothing_v/2 of the tangent point, so the slope comes from the five nearest samples."""
    b = 0.1
    time, voltage, current = sweep(1.2, 5.0, onset_v=onset_v, tafel_v=b, scan_rate_v_per_s=1e-3,
                                   dt_s=10.0, noise_a_per_cm2=0.0, voltage_noise_v=0.0)
    result = analyze_lsv(voltage, current, AREA_CM2, time_s=time)
    assert result["onset_threshold_v"] == pytest.approx(onset_v, abs=0.0015)
    # The tangent is taken at the first sample where the faradaic current reaches 5x threshold.
    grid = voltage[voltage > onset_v]
    tafel = THRESHOLD * np.exp((grid - onset_v) / b)
    first_sample = grid[np.argmax(tafel / (1 + tafel / 1e-3) >= 5 * THRESHOLD)]
    assert result["tangent_point_v"] == pytest.approx(first_sample, abs=0.001)
    # The tangent to j = t/(1 + t/J), t = T*exp((V - onset)/b), at V_p meets zero at
    # V_p - b*(1 + t_p/J): 61 mV + up to a sample before the ideal b*(ln 5 - 1) past the onset.
    t_p = THRESHOLD * math.exp((first_sample - onset_v) / b)
    assert result["onset_tangent_v"] == pytest.approx(first_sample - b * (1 + t_p / 1e-3), abs=0.002)
    assert result["start_v"] == pytest.approx(1.2, abs=1e-9)
    assert result["end_v"] == pytest.approx(4.99, abs=1e-9)
    assert result["scan_rate_v_per_s"] == pytest.approx(1e-3, rel=1e-9)


def test_persistence_is_measured_from_the_first_to_the_last_sample_above_threshold():
    # Nine samples 10 mV apart (2.00 to 2.08 V) at 40 uA/cm2; the five-sample smoothing widens
    # the plateau by a sample on each side, so the excess is above threshold from the 1.99 V to
    # the 2.09 V sample: 100 mV, an onset for persistence_v = 95 mV, not for 105 mV.
    _, voltage, current = sweep(1.2, 5.0, onset_v=None, scan_rate_v_per_s=1e-3, dt_s=10.0)
    current = current + 40e-6 * AREA_CM2 * ((voltage > 1.995) & (voltage < 2.085))
    assert analyze_lsv(voltage, current, AREA_CM2, persistence_v=0.095)["onset_threshold_v"] == \
        pytest.approx(1.99, abs=0.002)
    assert analyze_lsv(voltage, current, AREA_CM2, persistence_v=0.105)["onset_threshold_v"] is None


def test_smoothing_v_sets_what_the_running_median_removes():
    # A 4 mV burst lasting past a 3 mV persistence: the default 10 mV median removes it, a 2 mV
    # one keeps it.
    _, voltage, current = sweep(1.2, 5.0, seed=3)
    current[(voltage > 1.800) & (voltage < 1.804)] += 30e-6 * AREA_CM2
    wide = analyze_lsv(voltage, current, AREA_CM2, persistence_v=0.003)
    assert wide["onset_threshold_v"] == pytest.approx(TRUE_ONSET_V, abs=0.01)
    narrow = analyze_lsv(voltage, current, AREA_CM2, persistence_v=0.003, smoothing_v=0.002)
    assert narrow["onset_threshold_v"] == pytest.approx(1.800, abs=0.001)
    assert narrow["smoothing_v"] == 0.002


def test_short_sweep_caps_the_baseline_window():
    # 300 mV swept: the skip is capped at 5 % (15 mV) and the span at 25 % (75 mV) of the sweep.
    _, voltage, current = sweep(1.2, 1.5, onset_v=None)
    result = analyze_lsv(voltage, current, AREA_CM2)
    assert result["baseline_window_v"] == pytest.approx([1.215, 1.29], abs=1e-3)
    assert result["onset_threshold_v"] is None


def test_a_sweep_must_cover_twice_the_smoothing_width():
    _, voltage, current = sweep(1.2, 1.225, onset_v=None, dt_s=2.0)  # 25 mV, 250 samples
    assert analyze_lsv(voltage, current, AREA_CM2)["onset_threshold_v"] is None
    _, voltage, current = sweep(1.2, 1.219, onset_v=None, dt_s=2.0)
    with pytest.raises(LsvInputError, match="sweeps only 0.019 V"):
        analyze_lsv(voltage, current, AREA_CM2)


def test_baseline_window_needs_ten_samples_and_a_record_forty():
    voltage = 1.2 + 0.01 * np.arange(40)  # noise-free, 10 mV apart
    current = np.full(40, 1e-7)
    # Window from 15 mV past the start: to 110 mV holds the 10 samples 20..110 mV, to 100 mV 9.
    result = analyze_lsv(voltage, current, AREA_CM2, baseline_skip_v=0.015, baseline_span_v=0.095)
    assert result["baseline_window_v"] == pytest.approx([1.215, 1.31])
    with pytest.raises(LsvInputError, match="only 9 samples lie in the baseline window"):
        analyze_lsv(voltage, current, AREA_CM2, baseline_skip_v=0.015, baseline_span_v=0.085)
    with pytest.raises(LsvInputError, match="at least 40 samples, got 39"):
        analyze_lsv(voltage[:39], current[:39], AREA_CM2)


def test_a_baseline_window_inside_one_voltage_step_gives_a_flat_baseline():
    """A staircase record (20 mV steps, as some instruments log a sweep) with a baseline window
    narrower than a step: every bin has the same potential, a line through them has no slope (a
    Theil-Sen fit would divide by zero), so the baseline is the bins' median current."""
    voltage = 1.2 + 0.02 * np.floor(np.arange(4000) / 40)  # 2 V in 100 steps of 40 samples
    current = np.full(voltage.size, 3e-6 * AREA_CM2) + 1e-6 * AREA_CM2 * (np.arange(voltage.size) % 2)
    current[voltage > 2.5] += 50e-6 * AREA_CM2
    result = analyze_lsv(voltage, current, AREA_CM2, baseline_skip_v=0.015, baseline_span_v=0.01)
    assert result["baseline_slope_a_per_cm2_per_v"] == 0.0
    assert result["baseline_j_at_start_a_per_cm2"] == pytest.approx(3.5e-6, abs=0.6e-6)
    assert result["onset_threshold_v"] == pytest.approx(2.5, abs=0.02)


@pytest.mark.parametrize("name", ["smoothing_v", "persistence_v", "baseline_skip_v", "baseline_span_v"])
def test_potential_parameters_must_be_positive(name):
    _, voltage, current = sweep(1.2, 2.0, onset_v=None)
    with pytest.raises(LsvInputError, match=f"{name} must be > 0, got 0"):
        analyze_lsv(voltage, current, AREA_CM2, **{name: 0.0})


def test_tangent_multiple_must_exceed_one():
    _, voltage, current = sweep(1.2, 2.5, onset_v=2.0)
    with pytest.raises(LsvInputError, match="tangent_multiple must be > 1, got 1"):
        analyze_lsv(voltage, current, AREA_CM2, tangent_multiple=1.0)
    assert analyze_lsv(voltage, current, AREA_CM2, tangent_multiple=1.5)["tangent_multiple"] == 1.5


@pytest.mark.parametrize("name", ["voltage_v", "time_s"])
def test_non_finite_voltage_or_time_is_named(name):
    time, voltage, current = sweep(1.2, 2.0, onset_v=None)
    args = {"voltage_v": voltage, "current_a": current, "area_cm2": AREA_CM2, "time_s": time}
    args[name] = args[name].copy()
    args[name][5] = np.inf
    with pytest.raises(LsvInputError, match=f"{name} has a non-finite value at sample 5"):
        analyze_lsv(**args)


def test_result_has_every_documented_field():
    time, voltage, current = sweep(1.2, 2.5, onset_v=2.0)
    assert set(analyze_lsv(voltage, current, AREA_CM2, time_s=time)) == {
        "direction", "onset_threshold_v", "onset_tangent_v", "threshold_a_per_cm2", "start_v", "end_v",
        "scan_rate_v_per_s", "stable_range_v", "baseline_window_v", "baseline_j_at_start_a_per_cm2",
        "baseline_slope_a_per_cm2_per_v", "baseline_method", "tangent_point_v", "tangent_multiple",
        "smoothing_v", "persistence_v"}
