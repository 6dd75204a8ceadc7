"""DC polarization analysis against synthetic multi-step records with a known sigma_e."""

import math

import numpy as np
import pytest
from scipy.stats import linregress

from analysis.dcpol import DcpolInputError, analyze_dcpol

SIGMA_E = 1e-8  # S/cm
THICKNESS_UM = 1000.0
DIAMETER_MM = 10.0
L_CM = THICKNESS_UM * 1e-4
A_CM2 = math.pi * (DIAMETER_MM / 10) ** 2 / 4
LEVELS_V = (0.1, 0.2, 0.3, 0.4)


def steady_current(voltage_v, thickness_um=THICKNESS_UM, diameter_mm=DIAMETER_MM):
    # 7.85e-9 A at 0.1 V on the 1 mm x 10 mm pellet
    return SIGMA_E * (math.pi * (diameter_mm / 10) ** 2 / 4) * voltage_v / (thickness_um * 1e-4)


def test_truth_is_of_nanoampere_order():
    assert steady_current(0.1) == pytest.approx(7.854e-9, rel=1e-3)


def record(step_s=6 * 3600, dt_s=5.0, offset_a=50e-12, noise=0.015, rest_s=0.0, seed=0, levels_v=LEVELS_V,
           thickness_um=THICKNESS_UM, diameter_mm=DIAMETER_MM):
    """time_s, voltage_v, current_a, step label of a stepped polarization.

    Odd steps decay exponentially (100x the steady current, tau 20 min), even steps as a power law
    (30x, (1 + t/60 s)^-1.5); the current has Gaussian noise of `noise` x the steady current and a
    constant offset. With rest_s > 0 a 0 V rest follows each step.
    """
    rng = np.random.default_rng(seed)
    times, volts, amps, labels = [], [], [], []
    start = 0.0
    for k, level in enumerate(levels_v):
        t = np.arange(0.0, step_s, dt_s)
        i_ss = steady_current(level, thickness_um, diameter_mm)
        transient = 100 * i_ss * np.exp(-t / 1200) if k % 2 == 0 else 30 * i_ss * (1 + t / 60) ** -1.5
        times.append(start + t)
        volts.append(level + rng.normal(0.0, 5e-4, t.size))
        amps.append(i_ss + transient + offset_a + rng.normal(0.0, noise * abs(i_ss), t.size))
        labels.append(np.full(t.size, k + 1))
        start += step_s
        if rest_s:
            t = np.arange(0.0, rest_s, dt_s)
            times.append(start + t)
            volts.append(rng.normal(0.0, 5e-4, t.size))
            amps.append(-5 * i_ss * np.exp(-t / 600) + offset_a + rng.normal(0.0, noise * abs(i_ss), t.size))
            labels.append(np.full(t.size, -(k + 1)))
            start += rest_s
    return tuple(np.concatenate(column) for column in (times, volts, amps, labels))


def test_converged_steps_recover_sigma_e_from_the_slope():
    time, voltage, current, _ = record()
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["method"] == "slope"
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    assert 0 < result["sigma_e_stderr_s_per_cm"] < 0.02 * SIGMA_E
    assert result["t_e"] is None
    assert [s["voltage_v"] for s in result["steps"]] == pytest.approx(LEVELS_V, abs=2e-3)
    for step, level in zip(result["steps"], LEVELS_V):
        assert step["converged"] is True
        assert step["drift_per_h"] < 0.01
        assert step["duration_s"] == pytest.approx(6 * 3600, abs=10)
        assert step["steady_current_a"] == pytest.approx(steady_current(level) + 50e-12, rel=0.01)
        assert step["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)


def test_slope_ignores_a_current_offset_that_biases_each_step():
    offset_a = 1e-9  # 13 % of the 0.1 V steady current
    time, voltage, current, _ = record(offset_a=offset_a, seed=1)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["method"] == "slope"
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    assert result["offset_a"] == pytest.approx(offset_a, rel=0.2)
    first = result["steps"][0]
    assert first["sigma_e_s_per_cm"] > 1.1 * SIGMA_E  # the single-step I/V ratio misses
    for step in result["steps"]:
        # Each step's bias is exactly the offset's share: offset * L / (V * A).
        bias = step["sigma_e_s_per_cm"] - SIGMA_E
        expected = offset_a * L_CM / (step["voltage_v"] * A_CM2)
        assert bias == pytest.approx(expected, rel=0.15)


def test_short_steps_are_not_converged_but_sigma_is_still_reported():
    time, voltage, current, _ = record(step_s=900.0)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert [s["converged"] for s in result["steps"]] == [False] * 4
    assert result["method"] == "last_values"
    assert result["sigma_e_s_per_cm"] is not None
    assert math.isfinite(result["sigma_e_s_per_cm"])


def test_long_but_still_decaying_steps_fail_the_drift_criterion():
    # tau = 20 min, 100x: over the last hour of 2.5 h the current still falls by about 100 %/h;
    # the power-law steps drift by about 1.5 %/h.
    time, voltage, current, _ = record(step_s=2.5 * 3600)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert not any(s["converged"] for s in result["steps"])
    exponential_steps = result["steps"][0::2]
    assert all(s["drift_per_h"] > 0.5 for s in exponential_steps)
    loose = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM,
                          drift_criterion_per_h=2.0)
    assert all(s["converged"] for s in loose["steps"])


def test_rests_between_steps_are_ignored_and_step_column_agrees():
    time, voltage, current, labels = record(rest_s=1800.0, seed=2)
    by_voltage = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    by_label = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, step=labels)
    for result in (by_voltage, by_label):
        assert len(result["steps"]) == 4
        assert len(result["ignored_segments"]) == 4
        assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    starts_v = [s["start_s"] for s in by_voltage["steps"]]
    starts_l = [s["start_s"] for s in by_label["steps"]]
    assert starts_v == pytest.approx(starts_l, abs=15.0)


def test_voltage_spikes_do_not_split_steps():
    time, voltage, current, _ = record(seed=3)
    voltage[[100, 5000, 9000]] += 0.3
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert len(result["steps"]) == 4


def test_transference_number_and_two_point_stderr():
    time, voltage, current, labels = record()
    keep = labels <= 2
    result = analyze_dcpol(time[keep], voltage[keep], current[keep], THICKNESS_UM, DIAMETER_MM,
                           sigma_ion_s_per_cm=4.6e-3)
    assert result["method"] == "slope"
    assert result["sigma_e_stderr_s_per_cm"] is None
    assert result["t_e"] == pytest.approx(SIGMA_E / 4.6e-3, rel=0.05)


def test_single_step_gives_the_ratio():
    time, voltage, current, labels = record(offset_a=0.0)
    keep = labels == 3
    result = analyze_dcpol(time[keep], voltage[keep], current[keep], THICKNESS_UM, DIAMETER_MM)
    assert result["method"] == "ratio"
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    assert result["sigma_e_stderr_s_per_cm"] is None
    assert result["offset_a"] is None


def test_dense_record_is_fast():
    time, voltage, current, _ = record(dt_s=0.5)  # 43 200 samples per step
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"thickness_um": 0.0}, "thickness_um must be > 0"),
        ({"diameter_mm": -1.0}, "diameter_mm must be > 0"),
        ({"current_a": np.zeros(5)}, "same length"),
        ({"time_s": np.zeros(200)}, "time_s does not advance"),
        ({"time_s": np.r_[np.arange(100.0), np.arange(100.0)]}, "must not decrease; it does at sample 100"),
        ({"voltage_v": np.zeros(200)}, "no voltage step found"),
        ({"step": np.zeros(7)}, "one label per sample"),
    ],
)
def test_bad_input_is_refused(change, message):
    args = {"time_s": np.arange(200.0), "voltage_v": np.full(200, 0.1),
            "current_a": np.full(200, 1e-9), "thickness_um": THICKNESS_UM,
            "diameter_mm": DIAMETER_MM}
    args.update(change)
    with pytest.raises(DcpolInputError, match=message):
        analyze_dcpol(**args)


def test_a_shared_switching_instant_between_steps_is_accepted():
    """The last record of one step and the first of the next may carry the same time (to the
    instrument's time quantisation); that is not time running backwards."""
    time, voltage, current, _ = record()
    switch = np.flatnonzero(np.diff(voltage) > 0.05)[0]
    time = time.copy()
    time[switch + 1] = time[switch] - 2e-6
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)


def test_pellet_geometry_other_than_10_mm_by_1_mm():
    # 13 mm die, 0.64 mm thick: sigma = slope * L / A with A = pi d^2 / 4.
    time, voltage, current, _ = record(thickness_um=640.0, diameter_mm=13.0, seed=4)
    result = analyze_dcpol(time, voltage, current, 640.0, 13.0)
    assert result["area_cm2"] == pytest.approx(math.pi * 1.3**2 / 4, rel=1e-12)
    assert result["thickness_cm"] == pytest.approx(0.064, rel=1e-12)
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    for step in result["steps"]:
        expected = step["steady_current_a"] / step["voltage_v"] * 0.064 / (math.pi * 1.3**2 / 4)
        assert step["sigma_e_s_per_cm"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("step_s, method", [(6 * 3600, "slope"), (900.0, "last_values")])
def test_sigma_stderr_and_offset_are_those_of_the_least_squares_line(step_s, method):
    time, voltage, current, _ = record(step_s=step_s, offset_a=1e-9, seed=5)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["method"] == method and result["n_steps_used"] == 4
    line = linregress([s["voltage_v"] for s in result["steps"]], [s["steady_current_a"] for s in result["steps"]])
    assert result["sigma_e_s_per_cm"] == pytest.approx(line.slope * L_CM / A_CM2, rel=1e-9)
    assert result["sigma_e_stderr_s_per_cm"] == pytest.approx(line.stderr * L_CM / A_CM2, rel=1e-9)
    assert result["offset_a"] == pytest.approx(line.intercept, rel=1e-9)


def flat_steps(rng, levels_v=(0.1, 0.2, 0.3, 0.4, 0.5, 0.6), step_s=1200.0, dt_s=10.0, noise_a=2e-10):
    """Steps already steady: current = sigma*A*V/L + white noise (noise_a, A)."""
    t = np.arange(0.0, step_s, dt_s)
    time = np.concatenate([k * step_s + t for k in range(len(levels_v))])
    voltage = np.repeat(levels_v, t.size)
    current = steady_current(voltage) + rng.normal(0.0, noise_a, voltage.size)
    return time, voltage, current


def test_sigma_stderr_is_the_scatter_over_repeated_records():
    """Monte Carlo: over 600 noisy records, the mean of the reported stderr² is the variance of
    sigma_e (the residual scatter of 6 steps, 4 degrees of freedom, estimates it without bias)."""
    rng = np.random.default_rng(12)
    sigmas, variances = [], []
    for _ in range(600):
        result = analyze_dcpol(*flat_steps(rng), THICKNESS_UM, DIAMETER_MM, window_s=600.0,
                               drift_criterion_per_h=1e3)
        assert result["method"] == "slope"
        sigmas.append(result["sigma_e_s_per_cm"])
        variances.append(result["sigma_e_stderr_s_per_cm"] ** 2)
    assert np.mean(sigmas) == pytest.approx(SIGMA_E, rel=0.01)
    assert np.mean(variances) == pytest.approx(np.var(sigmas, ddof=1), rel=0.2)


def test_a_voltage_glitch_longer_than_the_despiking_does_not_split_a_step():
    # Four samples at +0.3 V (a range change) survive the 5-sample median; the step is still one.
    time, voltage, current, _ = record(seed=3)
    voltage = voltage.copy()
    voltage[5000:5004] += 0.3
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert [s["voltage_v"] for s in result["steps"]] == pytest.approx(LEVELS_V, abs=2e-3)
    assert [s["duration_s"] for s in result["steps"]] == pytest.approx([6 * 3600 - 5] * 4)
    assert result["ignored_segments"] == []


def test_a_slowly_set_voltage_is_glued_to_the_step_it_leads_to():
    # The set voltage ramps over 20 s (4 samples, 20 mV each) from one level to the next: the
    # ramp is cut into pieces shorter than 5 samples (the first may be a single sample: the
    # segmentation must still move on), which join the step after them. (A slower ramp leaves
    # pieces of 5 or more samples: short, unconverged steps of their own.)
    time, voltage, current, _ = record(seed=6)
    voltage = voltage.copy()
    for k in (1, 2, 3):
        start = k * 4320
        voltage[start:start + 4] = np.linspace(LEVELS_V[k - 1], LEVELS_V[k], 6)[1:-1]
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert [s["voltage_v"] for s in result["steps"]] == pytest.approx(LEVELS_V, abs=2e-3)
    starts = [s["start_s"] for s in result["steps"]]
    assert starts[0] == 0.0
    for k in (1, 2, 3):
        assert k * 6 * 3600 - 5 < starts[k] <= k * 6 * 3600 + 4 * 5
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)


def test_a_step_with_zero_current_has_no_relative_drift():
    """A step whose current reads exactly 0 (an open contact): its drift relative to the current
    is undefined, so it is None and the step is not converged; the other steps still give sigma."""
    time, voltage, current, labels = record(seed=7)
    current = current.copy()
    current[labels == 2] = 0.0
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    dead = result["steps"][1]
    assert dead["steady_current_a"] == 0.0 and dead["drift_per_h"] is None and dead["converged"] is False
    assert result["n_steps_used"] == 3 and result["method"] == "slope"
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)


def test_sparse_logging_fits_the_tail_through_the_last_three_samples():
    """Logged every 45 min: the last hour holds 2 samples, too few for a line with a scatter, so
    the tail is the last 3 samples (90 min)."""
    time, voltage, current, _ = record(dt_s=2700.0, seed=8)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    for step, level in zip(result["steps"], LEVELS_V):
        assert step["n_points"] == 8
        assert step["tail_s"] == 5400.0
        assert step["duration_s"] == 7 * 2700.0
        t_tail = np.array([-5400.0, -2700.0, 0.0])
        mask = (time >= step["end_s"] - 5400.0) & (time <= step["end_s"])
        expected = np.polyfit(t_tail, current[mask], 1)[1]
        assert step["steady_current_a"] == pytest.approx(expected, rel=1e-9)


def test_tail_is_the_last_window_or_the_last_half_of_a_short_step():
    time, voltage, current, _ = record(seed=9)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, window_s=1800.0)
    assert [s["tail_s"] for s in result["steps"]] == [1800.0] * 4
    assert result["window_s"] == 1800.0 and result["drift_criterion_per_h"] == 0.01
    for step, k in zip(result["steps"], range(4)):
        assert (step["start_s"], step["end_s"], step["n_points"]) == (k * 21600.0, k * 21600.0 + 21595.0, 4320)
    short = analyze_dcpol(*record(step_s=900.0, seed=9)[:3], THICKNESS_UM, DIAMETER_MM)
    assert [s["tail_s"] for s in short["steps"]] == [445.0] * 4  # half of 895 s, on the 5 s grid


@pytest.mark.parametrize("drift_per_h, converged", [(0.005, True), (0.02, False)])
def test_drift_is_the_tail_slope_relative_to_the_steady_current_per_hour(drift_per_h, converged):
    # Noise-free linear tails: I(t) = I_ss * (1 + drift * (t_end - t) / 1 h).
    time, voltage, current, labels = record(noise=0.0, offset_a=0.0, seed=10)
    current = current.copy()
    for k, level in enumerate(LEVELS_V):
        step = labels == k + 1
        to_end_h = (time[step][-1] - time[step]) / 3600
        current[step] = steady_current(level) * (1 + drift_per_h * to_end_h)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    for step, level in zip(result["steps"], LEVELS_V):
        assert step["drift_per_h"] == pytest.approx(drift_per_h, rel=1e-6)
        assert step["steady_current_a"] == pytest.approx(steady_current(level), rel=1e-9)
        assert step["converged"] is converged


def test_ignored_segments_say_what_and_why():
    time, voltage, current, labels = record(rest_s=1800.0, seed=2)
    keep = labels != 4
    labels = labels[keep].copy()
    # A label run of 2 samples at 0.3 V: too short to be a step.
    labels[np.flatnonzero(labels == 3)[:2]] = 99
    result = analyze_dcpol(time[keep], voltage[keep], current[keep], THICKNESS_UM, DIAMETER_MM, step=labels)
    rests = [s for s in result["ignored_segments"] if s["reason"] == "rest (|V| below voltage_tolerance_v)"]
    short = [s for s in result["ignored_segments"] if s["reason"] == "fewer than 3 samples"]
    assert len(rests) == 4 and len(short) == 1
    assert all(abs(s["voltage_v"]) < 0.02 for s in rests)
    assert rests[0]["start_s"] == 6 * 3600.0 and rests[0]["end_s"] == 6 * 3600.0 + 1795.0
    assert short[0]["voltage_v"] == pytest.approx(0.3, abs=2e-3)
    assert short[0]["end_s"] - short[0]["start_s"] == 5.0
    assert len(result["steps"]) == 3


def test_three_samples_make_a_step():
    time = np.arange(9.0)
    voltage = np.repeat([0.1, 0.2, 0.3], 3)
    current = steady_current(voltage)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, step=np.repeat([1, 2, 3], 3))
    assert [s["n_points"] for s in result["steps"]] == [3, 3, 3]
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=1e-9)
    with pytest.raises(DcpolInputError, match="need at least 3 samples, got 2"):
        analyze_dcpol(time[:2], voltage[:2], current[:2], THICKNESS_UM, DIAMETER_MM)


@pytest.mark.parametrize("backwards_s, accepted", [(0.8e-3, True), (1.05e-3, False)])
def test_time_ties_are_tolerated_to_a_millisecond(backwards_s, accepted):
    time, voltage, current, _ = record()
    time = time.copy()
    time[4320] = time[4319] - backwards_s
    if accepted:
        assert analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)["method"] == "slope"
    else:
        with pytest.raises(DcpolInputError, match="must not decrease; it does at sample 4320"):
            analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)


def test_repeated_level_gives_the_ratio_of_its_steps():
    # Two converged steps both at 0.2 V (a repeat after a rest): no slope, the mean I/V ratio.
    time, voltage, current, _ = record(levels_v=(0.2, 0.2), rest_s=1800.0, offset_a=0.0, seed=11)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert len(result["steps"]) == 2 and result["method"] == "ratio"
    expected = np.mean([s["sigma_e_s_per_cm"] for s in result["steps"]])
    assert result["sigma_e_s_per_cm"] == pytest.approx(expected, rel=1e-12)
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    assert result["offset_a"] is None and result["sigma_e_stderr_s_per_cm"] is None


def test_voltage_tolerance_sets_what_is_one_step_and_what_is_a_rest():
    # Steps 5 mV apart: one level for the default 20 mV tolerance, four for 2.5 mV.
    levels = (0.100, 0.105, 0.110, 0.115)
    time, voltage, current, _ = record(levels_v=levels, noise=0.005, seed=12)
    merged = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert len(merged["steps"]) == 1 and merged["method"] == "ratio"
    fine = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, voltage_tolerance_v=0.0025)
    assert [s["voltage_v"] for s in fine["steps"]] == pytest.approx(levels, abs=2e-3)
    assert fine["method"] == "slope"
    assert fine["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.1)
    # With a 0.15 V tolerance every level is a rest.
    with pytest.raises(DcpolInputError, match=r"every segment is a rest \(\|V\| < 0.15 V\)"):
        analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, voltage_tolerance_v=0.15)


def test_reverse_polarity_gives_the_same_sigma():
    time, voltage, current, _ = record(levels_v=tuple(-v for v in LEVELS_V), seed=13)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, sigma_ion_s_per_cm=4.6e-3)
    assert result["method"] == "slope"
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=0.02)
    assert result["t_e"] == pytest.approx(result["sigma_e_s_per_cm"] / 4.6e-3, rel=1e-12)


@pytest.mark.parametrize("change, message", [
    ({"drift_criterion_per_h": 0.0}, "drift_criterion_per_h must be > 0"),
    ({"window_s": -1.0}, "window_s must be > 0"),
    ({"voltage_tolerance_v": 0.0}, "voltage_tolerance_v must be > 0"),
    ({"sigma_ion_s_per_cm": 0.0}, "sigma_ion_s_per_cm must be > 0"),
    ({"voltage_v": np.r_[np.full(199, 0.1), np.nan]}, "voltage_v has a non-finite value at sample 199"),
    ({"current_a": np.r_[np.full(199, 1e-9), np.inf]}, "current_a has a non-finite value at sample 199"),
    ({"time_s": np.r_[np.arange(199.0), np.nan]}, "time_s has a non-finite value at sample 199"),
])
def test_bad_parameters_are_named(change, message):
    args = {"time_s": np.arange(200.0), "voltage_v": np.full(200, 0.1),
            "current_a": np.full(200, 1e-9), "thickness_um": THICKNESS_UM,
            "diameter_mm": DIAMETER_MM}
    args.update(change)
    with pytest.raises(DcpolInputError, match=message):
        analyze_dcpol(**args)


def test_three_steps_have_a_standard_error():
    # n - 2 = 1 degree of freedom is enough for a scatter.
    time, voltage, current, _ = record(levels_v=(0.1, 0.2, 0.3), seed=14)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    line = linregress([s["voltage_v"] for s in result["steps"]], [s["steady_current_a"] for s in result["steps"]])
    assert result["n_steps_used"] == 3
    assert result["sigma_e_stderr_s_per_cm"] == pytest.approx(line.stderr * L_CM / A_CM2, rel=1e-9)


def test_a_short_settling_piece_at_the_start_joins_the_first_step():
    # The set voltage needs 4 samples to settle at the start of the record: one step, from t = 0.
    time, voltage, current, labels = record(seed=15)
    keep = labels == 1
    time, voltage, current = time[keep], voltage[keep].copy(), current[keep]
    voltage[:4] += 0.06
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert len(result["steps"]) == 1 and result["ignored_segments"] == []
    assert result["steps"][0]["start_s"] == 0.0 and result["steps"][0]["n_points"] == 4320


def test_a_step_exactly_one_window_long_is_judged_on_all_of_it():
    rng = np.random.default_rng(16)
    time, voltage, current = flat_steps(rng, noise_a=0.0)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM, window_s=1190.0)
    assert [s["duration_s"] for s in result["steps"]] == [1190.0] * 6
    assert [s["tail_s"] for s in result["steps"]] == [1190.0] * 6
    assert all(s["converged"] for s in result["steps"])
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=1e-9)


def test_defaults_are_reported():
    time, voltage, current, _ = record(step_s=900.0, seed=17)
    result = analyze_dcpol(time, voltage, current, THICKNESS_UM, DIAMETER_MM)
    assert result["window_s"] == 3600.0 and result["drift_criterion_per_h"] == 0.01


def test_three_samples_within_half_a_second_are_a_record():
    result = analyze_dcpol([0.0, 0.2, 0.4], [0.2] * 3, [steady_current(0.2)] * 3, THICKNESS_UM, DIAMETER_MM)
    assert result["method"] == "ratio" and result["steps"][0]["n_points"] == 3
    assert result["sigma_e_s_per_cm"] == pytest.approx(SIGMA_E, rel=1e-9)
