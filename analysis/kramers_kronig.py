"""Lin-KK validity test for impedance spectra (after Schönleber et al., Electrochim. Acta 131 (2014) 20).

A spectrum that obeys the Kramers–Kronig relations (linear, causal, stable, stationary) can be
represented by a series resistance, a series inductance, a series capacitance and a chain of M
Voigt (R‖C) elements with fixed, log-spaced time constants. Fitting that chain is a *linear* least
squares problem; the residual of the best chain measures how far the data are from any KK-valid
spectrum. The series capacitance makes the test usable on blocking-electrode spectra, which have no
low-frequency real-axis intercept.

M is chosen by Schönleber's criterion, searched from 3 elements per decade upward: the smallest M for which
    mu = 1 - sum(|R_k| for R_k < 0) / sum(|R_k| for R_k >= 0)
falls below ``mu_threshold`` (0.85), i.e. the chain has just begun to over-fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.linalg import lstsq

_STEP = 4
# With fewer Voigt elements than this, mu can fall below the threshold without any over-fitting
# (a blocking spectrum with one arc and a spike needs negative elements at M = 3), so the search
# for M starts here.
_MIN_ELEMENTS_PER_DECADE = 3


class KramersKronigInputError(ValueError):
    """Frequencies and impedances that cannot be tested (shape, sign or finiteness)."""


@dataclass(frozen=True)
class KramersKronigResult:
    """Outcome of a Lin-KK test.

    residual_pct: mean over all points of |real| and |imaginary| residual, each relative to |Z| at
        that point, in percent (typical: about the noise level, 0.1–1 %, for valid data).
    max_residual_pct: largest single relative residual, percent.
    residual_real, residual_imag: relative residuals per point (fraction of |Z|), data order.
    n_elements: number of Voigt elements used; mu: the over-fit measure at that number.
    """

    residual_pct: float
    max_residual_pct: float
    residual_real: np.ndarray
    residual_imag: np.ndarray
    n_elements: int
    mu: float


def lin_kk(
    frequency_hz,
    z,
    *,
    mu_threshold: float = 0.85,
    max_elements: int = 50,
) -> KramersKronigResult:
    """Lin-KK test with series R, L and C; ``z`` is the complex impedance in ohm (any order).

    Needs at least 5 points with positive, finite frequencies and finite non-zero impedance.
    """
    frequency_hz = np.asarray(frequency_hz, dtype=float)
    z = np.asarray(z, dtype=complex)
    if frequency_hz.ndim != 1 or frequency_hz.shape != z.shape:
        raise KramersKronigInputError("frequency_hz and z must be 1-D arrays of the same length")
    if frequency_hz.size < 5:
        raise KramersKronigInputError(f"Lin-KK needs at least 5 points, got {frequency_hz.size}")
    if not (np.all(np.isfinite(frequency_hz)) and np.all(frequency_hz > 0)):
        raise KramersKronigInputError("frequency_hz must be finite and > 0")
    modulus = np.abs(z)
    if not (np.all(np.isfinite(z)) and np.all(modulus > 0)):
        raise KramersKronigInputError("impedance must be finite and non-zero")

    omega = 2 * np.pi * frequency_hz
    weight = 1.0 / modulus
    fixed = _series_columns(omega)
    max_m = max(1, min(max_elements, frequency_hz.size - fixed.shape[1]))

    # Schönleber increments M one by one; stepping by _STEP and then back-filling the last step finds
    # the same first crossing of mu_threshold (unless mu dips and recovers within one step) in about
    # a third of the solves.
    solve = partial(_fit_chain, omega, z, weight, fixed)
    decades = math.log10(frequency_hz.max() / frequency_hz.min())
    min_m = min(max_m, frequency_hz.size // 2, max(3, round(_MIN_ELEMENTS_PER_DECADE * decades)))
    coarse = sorted({*range(min_m, max_m, _STEP), max_m})
    for m in coarse:
        mu, fitted = solve(m)
        if mu <= mu_threshold:
            break
    if mu <= mu_threshold:
        for earlier in range(max(min_m, m - _STEP + 1), m):
            earlier_mu, earlier_fitted = solve(earlier)
            if earlier_mu <= mu_threshold:
                m, mu, fitted = earlier, earlier_mu, earlier_fitted
                break

    residual_real = (z.real - fitted.real) * weight
    residual_imag = (z.imag - fitted.imag) * weight
    both = np.abs(np.concatenate([residual_real, residual_imag]))
    return KramersKronigResult(
        residual_pct=float(100 * both.mean()),
        max_residual_pct=float(100 * both.max()),
        residual_real=residual_real,
        residual_imag=residual_imag,
        n_elements=m,
        mu=mu,
    )


def _series_columns(omega: np.ndarray) -> np.ndarray:
    """Complex design columns of series R, L and 1/C (unit coefficients)."""
    return np.stack([np.ones_like(omega, dtype=complex), 1j * omega, 1 / (1j * omega)], axis=1)


def _fit_chain(omega, z, weight, fixed, m):
    """Weighted linear least squares of series R, L, 1/C plus m Voigt elements -> (mu, fitted Z)."""
    log_tau = np.linspace(-math.log(omega.max()), -math.log(omega.min()), m) if m > 1 else \
        np.array([-0.5 * math.log(omega.min() * omega.max())])
    voigt = 1 / (1 + 1j * np.outer(omega, np.exp(log_tau)))
    design = np.concatenate([fixed, voigt], axis=1)
    stacked = np.concatenate([design.real, design.imag]) * np.concatenate([weight, weight])[:, None]
    target = np.concatenate([z.real * weight, z.imag * weight])
    # Columns differ by many decades (omega*L vs 1/(omega*C)); unit-norm columns keep lstsq well posed.
    norms = np.sqrt(np.einsum("ij,ij->j", stacked, stacked))
    norms[norms == 0] = 1.0
    solution, *_ = lstsq(stacked / norms, target, lapack_driver="gelsy", check_finite=False)
    coefficients = solution / norms
    voigt_r = coefficients[fixed.shape[1]:]
    positive = np.sum(voigt_r[voigt_r >= 0])
    negative = -np.sum(voigt_r[voigt_r < 0])
    mu = 1.0 - negative / positive if positive > 0 else 0.0
    return float(mu), design @ coefficients
