"""DC polarization analysis against synthetic multi-step records with a known sigma_e."""

import math

import numpy as np
import pytest

from analysis.dcpol import DcpolInputError, analyze_dcpol

SIGMA_E = 1e-8  # S/cm
THICKNESS_UM = 1000.0
DIAMETER_MM = 10.0
L_CM = THICKNESS_UM * 1e-4
A_CM2 = math.pi * (DIAMETER_MM / 10) ** 2 / 4
LEVELS_V = (0.1, 0.2, 0.3, 0.4)


def steady_current(voltage_v):
    return SIGMA_E * A_CM2 * voltage_v / L_CM  # 7.85e-9 A at 0.1 V


def test_truth_is_of_nanoampere_order():
    assert steady_current(0.1) == pytest.approx(7.854e-9, rel=1e-3)


def record(step_s=6 * 3600, dt_s=5.0, offset_a=50e-12, noise=0.015, rest_s=0.0, seed=0):
    """time_s, voltage_v, current_a, step label of a stepped polarization.

    Odd steps decay exponentially (100x the steady current, tau 20 min), even steps as a power law
    (30x, (1 + t/60 s)^-1.5); the current has Gaussian noise of `noise` x the steady current and a
    constant offset. With rest_s > 0 a 0 V rest follows each step.
    """
    rng = np.random.default_rng(seed)
    times, volts, amps, labels = [], [], [], []
    start = 0.0
    for k, level in enumerate(LEVELS_V):
        t = np.arange(0.0, step_s, dt_s)
        i_ss = steady_current(level)
        transient = 100 * i_ss * np.exp(-t / 1200) if k % 2 == 0 else 30 * i_ss * (1 + t / 60) ** -1.5
        times.append(start + t)
        volts.append(level + rng.normal(0.0, 5e-4, t.size))
        amps.append(i_ss + transient + offset_a + rng.normal(0.0, noise * i_ss, t.size))
        labels.append(np.full(t.size, k + 1))
        start += step_s
        if rest_s:
            t = np.arange(0.0, rest_s, dt_s)
            times.append(start + t)
            volts.append(rng.normal(0.0, 5e-4, t.size))
            amps.append(-5 * i_ss * np.exp(-t / 600) + offset_a + rng.normal(0.0, noise * i_ss, t.size))
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
