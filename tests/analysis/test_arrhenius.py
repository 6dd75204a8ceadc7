"""Arrhenius fits in the σT form against synthetic σ(T) with known Ea and the paper's two points."""

import math

import numpy as np
import pytest

from analysis.arrhenius import ArrheniusInputError, arrhenius_sigma_s_per_cm, fit_arrhenius

K_B = 8.617333262e-5


def sigma_t_law(t_c, ea_ev, prefactor):
    t_k = np.asarray(t_c, dtype=float) + 273.15
    return prefactor * np.exp(-ea_ev / (K_B * t_k)) / t_k


def test_exact_data_recover_ea_and_prefactor():
    t_c = np.arange(-10, 51, 10)
    fit = fit_arrhenius(t_c, sigma_t_law(t_c, 0.49, 2.0e8))
    assert fit["ea_ev"] == pytest.approx(0.49, abs=1e-9)
    assert fit["prefactor_s_k_per_cm"] == pytest.approx(2.0e8, rel=1e-7)
    assert fit["r2"] == pytest.approx(1.0, abs=1e-12)
    assert fit["ea_stderr_ev"] < 1e-9
    assert (fit["t_min_c"], fit["t_max_c"], fit["n_points"], fit["form"]) == (-10.0, 50.0, 7, "sigma_T")


def test_noisy_data_give_ea_within_its_standard_error():
    rng = np.random.default_rng(42)
    t_c = np.repeat(np.arange(-10, 51, 10), 2)
    sigma = sigma_t_law(t_c, 0.49, 2.0e8) * np.exp(rng.normal(0, 0.03, t_c.size))
    fit = fit_arrhenius(t_c, sigma)
    assert 0 < fit["ea_stderr_ev"] < 0.02
    assert abs(fit["ea_ev"] - 0.49) < 3 * fit["ea_stderr_ev"]
    assert 0.95 < fit["r2"] < 1.0


def test_paper_points_give_049_ev_in_sigma_t_form():
    # σ(30 °C) = 4.6 mS/cm, σ(−10 °C) = 0.3 mS/cm (PAPER.md); two points: no scatter measure.
    fit = fit_arrhenius([30, -10], [4.6e-3, 0.3e-3])
    assert fit["ea_ev"] == pytest.approx(0.49, abs=0.005)
    assert fit["ea_stderr_ev"] is None and fit["r2"] is None
    # The paper's third number: σ(50 °C) ≈ 14 mS/cm.
    sigma_50 = arrhenius_sigma_s_per_cm(50, fit["ea_ev"], fit["prefactor_s_k_per_cm"])
    assert sigma_50 == pytest.approx(14e-3, rel=0.1)


def test_plain_sigma_form_would_give_a_lower_ea():
    fit = fit_arrhenius([30, -10], [4.6e-3, 0.3e-3])
    t_k = np.array([303.15, 263.15])
    slope = np.diff(np.log([4.6e-3, 0.3e-3])) / np.diff(1 / t_k)
    plain_ea = -slope[0] * K_B
    assert plain_ea == pytest.approx(0.47, abs=0.005)
    assert fit["ea_ev"] - plain_ea == pytest.approx(K_B * 283, rel=0.1)


def test_stderr_weighting_discounts_an_uncertain_outlier():
    t_c = np.arange(-10, 51, 10)
    sigma = sigma_t_law(t_c, 0.49, 2.0e8)
    sigma[3] *= 1.5
    stderr = sigma * 0.01
    stderr[3] = sigma[3] * 10
    weighted = fit_arrhenius(t_c, sigma, stderr)
    unweighted = fit_arrhenius(t_c, sigma)
    assert abs(weighted["ea_ev"] - 0.49) < 0.002
    assert abs(unweighted["ea_ev"] - 0.49) > abs(weighted["ea_ev"] - 0.49)


@pytest.mark.parametrize("t_c, sigma, stderr, message", [
    ([25, 25], [1e-3, 2e-3], None, "2 distinct temperatures"),
    ([25, 35], [1e-3, -2e-3], None, r"sigma_s_per_cm must be > 0; index 1"),
    ([25, 35, 45], [1e-3, 2e-3], None, "differ in length"),
    ([25, float("nan")], [1e-3, 2e-3], None, "temperature_c: non-finite value at index 1"),
    ([25, -300], [1e-3, 2e-3], None, "temperature_c must be above"),
    ([25, 35], [1e-3, 2e-3], [1e-5], "sigma_stderr has 1 values"),
])
def test_bad_input_is_refused_with_location(t_c, sigma, stderr, message):
    with pytest.raises(ArrheniusInputError, match=message):
        fit_arrhenius(t_c, sigma, stderr)


def test_result_is_json_friendly():
    fit = fit_arrhenius([0, 10, 20], [1e-4, 2e-4, 3.5e-4])
    for value in fit.values():
        assert value is None or isinstance(value, (float, int, str))
        assert not (isinstance(value, float) and not math.isfinite(value))
