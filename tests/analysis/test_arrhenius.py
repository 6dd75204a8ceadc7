"""Arrhenius fits in the σT form against synthetic σ(T) with known Ea and the paper's two points."""

import math

import numpy as np
import pytest
from scipy.stats import linregress

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
    weighted = fit_arrhenius(t_c, sigma, stderr, weighted=True)
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
    ([25, -273.15], [1e-3, 2e-3], None, r"temperature_c must be above −273.15 °C; index 1"),
    ([25, 35], [1e-3, 0.0], None, r"sigma_s_per_cm must be > 0; index 1"),
    ([25, 35], [1e-3, 2e-3], [1e-5, 0.0], r"sigma_stderr must be > 0; index 1"),
    ([25, 35], [1e-3, 2e-3], [1e-5, float("nan")], "sigma_stderr: non-finite value at index 1"),
    ([25, 35], [1e-3, "high"], None, "sigma_s_per_cm: not numeric"),
    ([25, 35], [1e-3, float("inf")], None, "sigma_s_per_cm: non-finite value at index 1"),
])
def test_bad_input_is_refused_with_location(t_c, sigma, stderr, message):
    with pytest.raises(ArrheniusInputError, match=message):
        fit_arrhenius(t_c, sigma, stderr)


def test_result_is_json_friendly():
    fit = fit_arrhenius([0, 10, 20], [1e-4, 2e-4, 3.5e-4])
    for value in fit.values():
        assert value is None or isinstance(value, (float, int, str))
        assert not (isinstance(value, float) and not math.isfinite(value))


# Uneven temperatures (as a real series is), σ with 5 % scatter, and standard errors that differ
# by a factor 100 between points, as the fit errors of clean and of noisy spectra do.
SERIES_T_C = np.array([-15.0, -10.0, 0.0, 10.0, 25.0, 30.0, 40.0, 55.0, 70.0])
SERIES_REL_STDERR = np.array([0.002, 0.2, 0.01, 0.05, 0.002, 0.1, 0.02, 0.005, 0.15])


def scattered_series(seed=3, ea_ev=0.45, prefactor=5.0e7, scatter=0.05):
    rng = np.random.default_rng(seed)
    sigma = sigma_t_law(SERIES_T_C, ea_ev, prefactor) * np.exp(rng.normal(0, scatter, SERIES_T_C.size))
    return SERIES_T_C, sigma, sigma * SERIES_REL_STDERR


def test_default_fit_is_ordinary_least_squares_on_ln_sigma_t_whatever_the_stderr():
    t_c, sigma, stderr = scattered_series()
    t_k = t_c + 273.15
    line = linregress(1 / t_k, np.log(sigma * t_k))
    fit = fit_arrhenius(t_c, sigma, stderr)
    assert fit["weighted"] is False
    assert fit["ea_ev"] == pytest.approx(-line.slope * K_B, rel=1e-12)
    assert fit["ea_stderr_ev"] == pytest.approx(line.stderr * K_B, rel=1e-9)
    assert fit["r2"] == pytest.approx(line.rvalue**2, rel=1e-12)
    assert fit["prefactor_s_k_per_cm"] == pytest.approx(math.exp(line.intercept), rel=1e-9)
    assert (fit["t_min_c"], fit["t_max_c"], fit["n_points"]) == (-15.0, 70.0, 9)
    # The standard errors of σ do not move the default fit.
    assert fit == fit_arrhenius(t_c, sigma)


def test_weighted_fit_on_request_is_the_weighted_least_squares_line():
    t_c, sigma, stderr = scattered_series()
    t_k = t_c + 273.15
    x, y = 1 / t_k, np.log(sigma * t_k)
    weight = (sigma / stderr) ** 2  # 1 / var(ln σ)
    # Independent formulation: the design-matrix solution and its covariance, s² (AᵀWA)⁻¹.
    design = np.column_stack([np.ones_like(x), x])
    root_w = np.sqrt(weight)
    coef, *_ = np.linalg.lstsq(design * root_w[:, None], y * root_w, rcond=None)
    residual = y - design @ coef
    s2 = np.sum(weight * residual**2) / (x.size - 2)
    covariance = s2 * np.linalg.inv(design.T @ (design * weight[:, None]))
    y_mean = np.sum(weight * y) / np.sum(weight)
    r2 = 1 - np.sum(weight * residual**2) / np.sum(weight * (y - y_mean) ** 2)

    fit = fit_arrhenius(t_c, sigma, stderr, weighted=True)
    assert fit["weighted"] is True
    assert fit["ea_ev"] == pytest.approx(-coef[1] * K_B, rel=1e-9)
    assert fit["ea_stderr_ev"] == pytest.approx(math.sqrt(covariance[1, 1]) * K_B, rel=1e-7)
    assert fit["prefactor_s_k_per_cm"] == pytest.approx(math.exp(coef[0]), rel=1e-7)
    assert fit["r2"] == pytest.approx(r2, rel=1e-12)
    # Only relative errors matter: the stderr is rescaled by the residual scatter.
    assert fit_arrhenius(t_c, sigma, 7 * stderr, weighted=True) == pytest.approx(fit)
    # The weights matter here: the weighted line follows the precise points, is 12 meV off the
    # unweighted one and, judged by its own weights, flatters itself with a higher R² (issue 8).
    unweighted = fit_arrhenius(t_c, sigma)
    assert abs(fit["ea_ev"] - unweighted["ea_ev"]) > 0.01
    assert fit["ea_stderr_ev"] < 0.5 * unweighted["ea_stderr_ev"]
    assert fit["r2"] > unweighted["r2"] + 0.001


def test_weighted_fit_needs_the_standard_errors():
    with pytest.raises(ArrheniusInputError, match="weighted=True needs sigma_stderr"):
        fit_arrhenius([0, 10, 20], [1e-4, 2e-4, 3.5e-4], weighted=True)


def test_ols_stderr_is_the_scatter_of_ea_over_repeated_experiments():
    """Monte Carlo: Ea's standard deviation over 2000 simulated series is the analytic
    k_B·s/√Sxx, and the mean of the reported stderr² is its square (unbiased with n − 2)."""
    rng = np.random.default_rng(2024)
    t_c, scatter = SERIES_T_C, 0.05
    truth = sigma_t_law(t_c, 0.45, 5.0e7)
    x = 1 / (t_c + 273.15)
    analytic = K_B * scatter / math.sqrt(np.sum((x - x.mean()) ** 2))
    fits = [fit_arrhenius(t_c, truth * np.exp(rng.normal(0, scatter, t_c.size))) for _ in range(2000)]
    ea = np.array([f["ea_ev"] for f in fits])
    stderr = np.array([f["ea_stderr_ev"] for f in fits])
    assert abs(ea.mean() - 0.45) < 4 * analytic / math.sqrt(ea.size)
    assert ea.std(ddof=1) == pytest.approx(analytic, rel=0.06)
    assert np.mean(stderr**2) == pytest.approx(analytic**2, rel=0.06)


def test_r2_is_the_share_of_variance_explained():
    t_c = np.array([0.0, 20.0, 40.0, 60.0])
    sigma = sigma_t_law(t_c, 0.4, 1e7)
    sigma[1] *= 1.2
    t_k = t_c + 273.15
    y = np.log(sigma * t_k)
    fit = fit_arrhenius(t_c, sigma)
    predicted = np.log(fit["prefactor_s_k_per_cm"]) - fit["ea_ev"] / (K_B * t_k)
    expected = 1 - np.sum((y - predicted) ** 2) / np.sum((y - y.mean()) ** 2)
    assert fit["r2"] == pytest.approx(expected, rel=1e-12)
    assert 0.99 < fit["r2"] < 0.9999


def test_constant_sigma_t_has_zero_ea_and_no_r2():
    """σT the same at every temperature (Ea = 0): ln σT varies only by rounding, so the ratio that
    R² is made of would be noise over noise; r2 is None, not a random number."""
    t_c = np.array([0.0, 20.0, 40.0, 60.0])
    for sigma_t in (3.0, 1.0, 1e-6):  # ln σT > 0, ≈ 0 (rounding both ways), < 0
        fit = fit_arrhenius(t_c, sigma_t / (t_c + 273.15))
        assert fit["ea_ev"] == pytest.approx(0.0, abs=1e-12)
        assert fit["ea_stderr_ev"] == pytest.approx(0.0, abs=1e-12)
        assert fit["r2"] is None
        assert fit["prefactor_s_k_per_cm"] == pytest.approx(sigma_t, rel=1e-12)
    # A real, if tiny, temperature dependence still has its R².
    tiny = fit_arrhenius(t_c, sigma_t_law(t_c, 1e-7, 3.0))
    assert tiny["ea_ev"] == pytest.approx(1e-7, rel=1e-4)
    assert tiny["r2"] == pytest.approx(1.0, abs=1e-6)


def test_column_vectors_are_read_as_series():
    t_c, sigma, _ = scattered_series()
    assert fit_arrhenius(t_c[:, None], sigma) == fit_arrhenius(t_c, sigma)


def test_curve_in_sigma_t_form():
    sigma = arrhenius_sigma_s_per_cm([-10.0, 50.0], 0.5, 1e8)
    t_k = np.array([263.15, 323.15])
    assert sigma == pytest.approx(1e8 * np.exp(-0.5 / (K_B * t_k)) / t_k, rel=1e-12)
