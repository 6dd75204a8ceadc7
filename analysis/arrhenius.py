"""Arrhenius fit of ionic conductivity in the σT form: σ·T = A·exp(−Ea / (k_B·T)).

Fitted by ordinary least squares as a straight line ln(σT) = ln A − (Ea/k_B)·(1/T), T in K
(weighted by the points' standard errors only on request). The σT form is the usual one for
ionic conductors; the plain σ form gives an Ea about k_B·T̄ lower.
"""

from __future__ import annotations

import math

import numpy as np
from analysis.physics import BOLTZMANN_EV_PER_K, ZERO_C_IN_K

ZERO_CELSIUS_K = ZERO_C_IN_K
# Spread of ln(σT) below which it is taken as constant: the rounding of a float64 logarithm is
# below 1e-13 at any magnitude, and an Ea of 1e-8 eV over 20 K already spreads it by 1e-7.
FLAT_LN_SIGMA_T = 1e-10


class ArrheniusInputError(ValueError):
    """Temperatures or conductivities that cannot be fitted; the message names the input and index."""


def fit_arrhenius(temperature_c, sigma_s_per_cm, sigma_stderr=None, *, weighted: bool = False) -> dict:
    """Fit σT = A·exp(−Ea/k_B T) to conductivities (S/cm) at temperatures (°C).

    By default an ordinary least-squares line through ln(σT) against 1/T (T in K): every point
    counts alike, R² is that of the line, and Ea's standard error comes from the residual scatter.
    Weighting by the fits' own standard errors is only done on request: the fit errors of clean
    spectra are far smaller than the real scatter between temperatures, so a weighted line follows
    the few most precise points and its R² says nothing about the others.

    sigma_stderr (S/cm, optional, same length, > 0): standard errors of σ; checked when given,
    used only with weighted=True, which then weights each point by (σ/σ_stderr)² (the standard
    error of ln σ is σ_stderr/σ); Ea's standard error is still scaled by the residual scatter,
    as with unknown absolute errors, and R² is the weighted one. Needs ≥ 2 distinct temperatures.

    Returns {"ea_ev", "ea_stderr_ev", "prefactor_s_k_per_cm", "r2", "t_min_c", "t_max_c", "n_points",
    "form": "sigma_T", "weighted"}. With exactly two points the line passes through both:
    ea_stderr_ev and r2 are None (nothing measures the scatter; R² = 1 would say nothing); r2 is
    also None when ln(σT) does not vary at all (Ea = 0: there is no variance to explain).
    """
    t_c = _as_array("temperature_c", temperature_c)
    sigma = _as_array("sigma_s_per_cm", sigma_s_per_cm)
    if t_c.size != sigma.size:
        raise ArrheniusInputError(
            f"temperature_c and sigma_s_per_cm differ in length ({t_c.size} vs {sigma.size})")
    _require(t_c > -ZERO_CELSIUS_K, "temperature_c", "above −273.15 °C", t_c)
    _require(sigma > 0, "sigma_s_per_cm", "> 0", sigma)
    if np.unique(t_c).size < 2:
        raise ArrheniusInputError("an Arrhenius fit needs at least 2 distinct temperatures")
    if sigma_stderr is not None:
        stderr = _as_array("sigma_stderr", sigma_stderr)
        if stderr.size != sigma.size:
            raise ArrheniusInputError(f"sigma_stderr has {stderr.size} values, expected {sigma.size}")
        _require(stderr > 0, "sigma_stderr", "> 0", stderr)
    elif weighted:
        raise ArrheniusInputError("weighted=True needs sigma_stderr, the standard errors of σ")

    t_k = t_c + ZERO_CELSIUS_K
    x = 1.0 / t_k
    y = np.log(sigma * t_k)
    weight = (sigma / stderr) ** 2 if weighted else np.ones_like(x)

    x_mean = np.average(x, weights=weight)
    y_mean = np.average(y, weights=weight)
    sxx = np.sum(weight * (x - x_mean) ** 2)
    slope = np.sum(weight * (x - x_mean) * (y - y_mean)) / sxx
    intercept = y_mean - slope * x_mean
    residual = y - (intercept + slope * x)

    if t_c.size == 2:
        ea_stderr, r2 = None, None
    else:
        dof = t_c.size - 2
        scatter = np.sum(weight * residual**2) / dof
        ea_stderr = float(BOLTZMANN_EV_PER_K * math.sqrt(scatter / sxx))
        r2 = _r_squared(y, y_mean, residual, weight)

    return {
        "ea_ev": float(-slope * BOLTZMANN_EV_PER_K),
        "ea_stderr_ev": ea_stderr,
        "prefactor_s_k_per_cm": float(math.exp(intercept)),
        "r2": r2,
        "t_min_c": float(t_c.min()),
        "t_max_c": float(t_c.max()),
        "n_points": int(t_c.size),
        "form": "sigma_T",
        "weighted": bool(weighted),
    }


def _r_squared(y: np.ndarray, y_mean: float, residual: np.ndarray, weight: np.ndarray) -> float | None:
    # A ln(σT) constant to rounding (Ea = 0) leaves no variance to explain: the ratio of two
    # rounding errors is not an R².
    if np.ptp(y) <= FLAT_LN_SIGMA_T:
        return None
    total = np.sum(weight * (y - y_mean) ** 2)
    return float(1 - np.sum(weight * residual**2) / total)


def arrhenius_sigma_s_per_cm(temperature_c, ea_ev: float, prefactor_s_k_per_cm: float):
    """σ (S/cm) from a σT-form Arrhenius law at temperature_c (°C)."""
    t_k = np.asarray(temperature_c, dtype=float) + ZERO_CELSIUS_K
    return prefactor_s_k_per_cm * np.exp(-ea_ev / (BOLTZMANN_EV_PER_K * t_k)) / t_k


def _as_array(name: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as error:
        raise ArrheniusInputError(f"{name}: not numeric ({error})") from None
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ArrheniusInputError(f"{name}: non-finite value at index {int(bad[0])}")
    return array


def _require(condition: np.ndarray, name: str, rule: str, values: np.ndarray) -> None:
    bad = np.flatnonzero(~condition)
    if bad.size:
        raise ArrheniusInputError(f"{name} must be {rule}; index {int(bad[0])} is {values[bad[0]]!r}")
