"""Lin-KK validity test for impedance spectra (after Schönleber et al., Electrochim. Acta 131 (2014) 20).

A spectrum that obeys the Kramers–Kronig relations (linear, causal, stable, stationary) can be
represented by a series resistance, a series inductance, a series capacitance and a chain of M
Voigt (R‖C) elements with fixed, log-spaced time constants. Fitting that chain is a *linear* least
squares problem; the residual of the best chain measures how far the data are from any KK-valid
spectrum. The series capacitance makes the test usable on blocking-electrode spectra, which have no
low-frequency real-axis intercept.

M is chosen by Schönleber's criterion, searched from 3 elements per decade upward: the smallest M for which
    mu = 1 - sum(|R_k| for R_k < 0) / sum(|R_k| for R_k >= 0)
is at or below ``mu_threshold`` (0.85), i.e. the chain has just begun to over-fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.linalg.lapack import dgelsy, dgelsy_lwork

_STEP = 4
# Relative size below which gelsy's rank-revealing QR drops a direction (scipy's lstsq default).
_RANK_CUTOFF = float(np.finfo(float).eps)
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
    if not (np.isfinite(frequency_hz).all() and (frequency_hz > 0).all()):
        raise KramersKronigInputError("frequency_hz must be finite and > 0")
    modulus = np.abs(z)
    if not (np.isfinite(modulus).all() and (modulus > 0).all()):
        raise KramersKronigInputError("impedance must be finite and non-zero")

    omega = 2 * np.pi * frequency_hz
    weight = 1.0 / modulus
    target = np.concatenate([z.real * weight, z.imag * weight])
    series = _series_columns(omega, weight)
    max_m = max(1, min(max_elements, frequency_hz.size - series.shape[1]))

    # Schönleber increments M one by one; stepping by _STEP and then back-filling the last step finds
    # the same first crossing of mu_threshold (unless mu dips and recovers within one step) in about
    # a third of the solves.
    f_min, f_max = float(frequency_hz.min()), float(frequency_hz.max())
    ln_omega_range = (math.log(2 * math.pi * f_min), math.log(2 * math.pi * f_max))
    solve = partial(_fit_chain, omega, weight, target, series, ln_omega_range)
    decades = math.log10(f_max / f_min)
    min_m = min(max_m, frequency_hz.size // 2, max(3, round(_MIN_ELEMENTS_PER_DECADE * decades)))
    coarse = sorted({*range(min_m, max_m, _STEP), max_m})
    for m in coarse:
        mu, residual = solve(m)
        if mu <= mu_threshold:
            break
    if mu <= mu_threshold:
        for earlier in range(max(min_m, m - _STEP + 1), m):
            earlier_mu, earlier_residual = solve(earlier)
            if earlier_mu <= mu_threshold:
                m, mu, residual = earlier, earlier_mu, earlier_residual
                break

    residual_real, residual_imag = residual[: z.size], residual[z.size:]
    both = np.abs(residual)
    return KramersKronigResult(
        residual_pct=float(100 * both.sum() / both.size),
        max_residual_pct=float(100 * both.max()),
        residual_real=residual_real,
        residual_imag=residual_imag,
        n_elements=m,
        mu=mu,
    )


def _series_columns(omega: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted design columns of series R, L and 1/C, real parts stacked over imaginary parts,
    each scaled to unit norm (2N × 3)."""
    columns = np.zeros((2 * omega.size, 3))
    columns[: omega.size, 0] = weight
    columns[omega.size:, 1] = omega * weight
    columns[omega.size:, 2] = -weight / omega
    columns /= np.sqrt((columns * columns).sum(axis=0))
    return columns


def _fit_chain(omega, weight, target, series, ln_omega_range, m):
    """Weighted linear least squares of series R, L, 1/C plus m Voigt elements.

    ``series``: the unit-norm series columns (:func:`_series_columns`); ``ln_omega_range``:
    (ln ω_min, ln ω_max). Works on the real-stacked system (rows: real parts, then imaginary parts,
    each weighted by 1/|Z|) so no complex design is built. Returns (mu, weighted residual of the
    stacked system).
    """
    # τ log-spaced from 1/ω_max to 1/ω_min (one element: at the geometric centre).
    ln_omega_min, ln_omega_max = ln_omega_range
    if m > 1:
        log_tau = -ln_omega_max + (ln_omega_max - ln_omega_min) / (m - 1) * np.arange(m)
    else:
        log_tau = np.array([-0.5 * (ln_omega_min + ln_omega_max)])
    # Columns differ by many decades (omega*L vs 1/(omega*C)); unit-norm columns keep the solve well
    # posed. A Voigt column w/(1 + jωτ) = w(1 − jωτ)/(1 + (ωτ)²) has squared norm Σ w²/(1 + (ωτ)²),
    # so the scaled columns are written directly, without a separate normalisation pass.
    omega_tau = np.outer(omega, np.exp(log_tau))
    real = 1 / (1 + omega_tau * omega_tau)
    inverse_norms = 1 / np.sqrt((weight * weight) @ real)
    n_points, n_series = omega.size, series.shape[1]
    design = np.empty((2 * n_points, n_series + m))
    design[:, :n_series] = series
    np.multiply(real, weight[:, None] * inverse_norms, out=design[:n_points, n_series:])
    np.multiply(omega_tau, design[:n_points, n_series:], out=design[n_points:, n_series:])
    np.negative(design[n_points:, n_series:], out=design[n_points:, n_series:])
    # LAPACK's gelsy (rank-revealing QR, as scipy.linalg.lstsq's "gelsy" driver with its default
    # cutoff eps) is called directly: the wrapper's checks cost more than the solve at this size.
    rows, columns = design.shape
    lwork, _ = dgelsy_lwork(rows, columns, 1, _RANK_CUTOFF)
    _, solution, _, _, info = dgelsy(design, target[:, None], np.zeros((columns, 1), np.int32),
                                     _RANK_CUTOFF, int(lwork))
    if info != 0:
        raise KramersKronigInputError(f"Lin-KK least squares failed (LAPACK gelsy info {info})")
    scaled = solution[:columns, 0]
    # Voigt resistances: the solution for unit-norm columns divided by the column norms.
    voigt_r = scaled[n_series:] * inverse_norms
    # Σ|R| ± ΣR = twice the sum over the positive (negative) elements, without masking.
    total, magnitude = float(voigt_r.sum()), float(np.abs(voigt_r).sum())
    positive, negative = 0.5 * (magnitude + total), 0.5 * (magnitude - total)
    mu = 1.0 - negative / positive if positive > 0 else 0.0
    return float(mu), target - design @ scaled
