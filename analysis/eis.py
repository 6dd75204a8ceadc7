"""Ionic conductivity from impedance spectra of solid-electrolyte pellets between ion-blocking electrodes.

Equivalent circuit family (all elements in series):

    L  -  R_s  -  [p(R1,CPE1)]  -  [p(R2,CPE2)]  -  CPE_el

L is the lead inductance (H), R_s a real-axis offset (ohm: leads, plus the bulk when the bulk arc lies
above the frequency window), p(R,CPE) a depressed arc Z = R / (1 + R·Q·(jω)^n) and CPE_el the blocking
electrode Z = 1 / (Q·(jω)^n). Candidates with 0, 1 and 2 arcs are fitted (modulus weighting, bounded
Levenberg–Marquardt on log-parameters with the analytic Jacobian, initial guesses read from the
data) and the one with the lowest Bayesian information criterion wins, unless its extra arcs are not
supported by the data.

Arcs are labelled bulk or grain boundary by their effective (Brug) capacitance
C_eff = (R^(1-n)·Q)^(1/n), scaled with the pellet geometry to an apparent relative permittivity
ε_r = C_eff·L/(ε0·A): a bulk arc is the pellet's own dielectric (ε_r up to ``BULK_PERMITTIVITY_MAX``),
a grain-boundary arc is a thin layer, so its apparent ε_r is far larger. Of two arcs the one with
the lower capacitance is the bulk.

R_total is the real-axis intercept where the electrode spike begins (R_s + arcs); σ = L/(R·A). It is
refused (r_total_determinable False, one warning per failed test naming it) only when the data
cannot determine it: the low-frequency side never reaches the electrode spike, the intercept is
not read to R_TOTAL_MAX_RELATIVE_STDERR, the spectrum is scatter (Lin-KK residual above
SCATTER_KK_PCT), or the circuit misfits the data and also disagrees with the model-free reading of
the intercept (a straight line through the spike, extrapolated to the real axis).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg.lapack import dgesdd, dposv
from scipy.signal import find_peaks

from analysis.arrhenius import fit_arrhenius
from analysis.kramers_kronig import lin_kk
from analysis.physics import VACUUM_PERMITTIVITY_F_PER_CM, disc_area_cm2

# Bulk relative permittivities of solid electrolytes are ~5–100 (NASICON, sulfides, hydroborates ~10–30,
# garnets ~50–60); grain-boundary arcs, thin layers across the pellet, show apparent values of
# 10^2–10^5 (Irvine, Sinclair & West 1990). Twice the top of the bulk range separates them.
BULK_PERMITTIVITY_MAX = 200.0
# Without a pellet geometry, arcs are labelled as if on the bench's standard pellet (10 mm × 1 mm).
REFERENCE_DIAMETER_MM = 10.0
REFERENCE_THICKNESS_UM = 1000.0
# Arcs with an electrode-like capacitance are the spike's curvature, not the electrolyte.
ELECTRODE_CAPACITANCE_MIN_F = 1e-7
KK_WARNING_PCT = 1.0
# R_total counts as determined when 3 standard errors stay within the 3 % the bench aims for.
R_TOTAL_MAX_RELATIVE_STDERR = 0.01
# A circuit whose rms residual exceeds Lin-KK's (the noise floor) by more than this factor misses
# a feature of the data (often only the shape of an arc); its R_total then has to agree with the
# model-free spike-line intercept, within SPIKE_INTERCEPT_TOLERANCE.
MODEL_ADEQUACY_FACTOR = 1.5
# The spike line is biased where an arc's tail bends into the spike: on real pellets it differs from
# the published R_total by up to 3.3 % (LAGP, grain-boundary arc merging into the spike).
SPIKE_INTERCEPT_TOLERANCE = 0.05
# A Lin-KK residual this large is not a noisy spectrum but scatter: no intercept can be read.
SCATTER_KK_PCT = 5.0
# Evidence needed before an extra arc is accepted (ΔBIC > 10 is "very strong").
BIC_MARGIN = 10.0
MAX_FUNCTION_EVALUATIONS = 60
# Levenberg–Marquardt settings: relative cost change and relative step length that count as
# converged, gradient tolerance relative to the cost, Marquardt damping at the start (relative to
# diag(JᵀJ)), the damping beyond which no step can lower the cost, and the fraction of the
# predicted reduction a step must achieve to be taken.
_FTOL = 1e-6
_XTOL = 1e-6
_GTOL = 1e-10
_INITIAL_DAMPING = 1e-3
_MAX_DAMPING = 1e16
_ACCEPT_RATIO = 1e-4
# Once an accepted step lowers the cost by less than this fraction, the Gauss–Newton convergence
# test is worth its extra solve.
_NEAR_MINIMUM = 1e-2

ARC_N_BOUNDS = (0.5, 1.0)
ELECTRODE_N_BOUNDS = (0.3, 1.0)


class EisInputError(ValueError):
    """Spectrum or geometry that cannot be analysed; the message names the offending input."""


class EisCsvError(EisInputError):
    """A CSV spectrum file with a missing column or unreadable cell (file, line and column named)."""


@dataclass(frozen=True)
class ParameterEstimate:
    """A fitted circuit parameter and its standard error (None when the data do not constrain it)."""

    value: float
    stderr: float | None


@dataclass(frozen=True)
class SpectrumFit:
    """Result of :func:`fit_spectrum`. Resistances in ohm, capacitances in F.

    model: chosen circuit, e.g. "L-R-CPEel", "L-R-p(Rb,CPEb)-CPEel", "L-R-p(Rgb,CPEgb)-CPEel",
        "L-R-p(Rb,CPEb)-p(Rgb,CPEgb)-CPEel".
    separation: what the resistances mean —
        "total_only": bulk arc above the window, only R_total is known (r_bulk_ohm None);
        "bulk_arc": one bulk arc, no grain-boundary arc (R_bulk = arc diameter);
        "bulk_offset_and_gb_arc": bulk arc above the window, grain-boundary arc visible
            (R_bulk read from the high-frequency intercept, includes lead resistance);
        "bulk_and_gb_arcs": both arcs fitted.
    r_total_determinable: False when the data cannot determine R_total (see the module docstring);
        r_total_ohm is then only the circuit's extrapolation, and a warning names each failed test.
    eps_r_bulk, eps_r_gb: apparent relative permittivities ε_r = C·L/(ε0·A) of the arcs (None
        without a pellet geometry or without that arc).
    parameters: names with units, e.g. "inductance_h", "r_series_ohm", "r_bulk_ohm",
        "q_bulk_s_pow_n_per_ohm", "n_bulk", "r_gb_ohm", ..., "q_electrode_s_pow_n_per_ohm", "n_electrode".
    kk_residual_pct: Lin-KK mean absolute relative residual, percent of |Z|.
    fit_residual_pct: root-mean-square modulus-weighted fit residual, percent of |Z|.
    """

    model: str
    separation: str
    parameters: dict[str, ParameterEstimate]
    r_total_ohm: float
    r_total_stderr_ohm: float | None
    r_total_determinable: bool
    r_bulk_ohm: float | None
    r_bulk_stderr_ohm: float | None
    r_gb_ohm: float | None
    r_gb_stderr_ohm: float | None
    c_bulk_f: float | None
    c_gb_f: float | None
    eps_r_bulk: float | None
    eps_r_gb: float | None
    inductance_h: float
    kk_residual_pct: float
    fit_residual_pct: float
    bic_by_model: dict[str, float]
    warnings: tuple[str, ...] = field(default=())

    def predict(self, frequency_hz) -> np.ndarray:
        """Complex impedance (ohm) of the fitted circuit at ``frequency_hz``."""
        omega = 2 * np.pi * np.asarray(frequency_hz, dtype=float)
        p = {name: estimate.value for name, estimate in self.parameters.items()}
        z = 1j * omega * p["inductance_h"] + p["r_series_ohm"]
        for role in ("bulk", "gb"):
            if f"r_{role}_ohm" in p:
                z = z + _arc(omega, p[f"r_{role}_ohm"], p[f"q_{role}_s_pow_n_per_ohm"], p[f"n_{role}"])
        return z + _cpe(omega, p["q_electrode_s_pow_n_per_ohm"], p["n_electrode"])


def _arc(omega, r, q, n):
    return r / (1 + r * q * (1j * omega) ** n)


def _cpe(omega, q, n):
    return 1 / (q * (1j * omega) ** n)


def brug_capacitance_f(r_ohm: float, q: float, n: float) -> float:
    """Effective capacitance (F) of p(R, CPE): C = (R^(1-n)·Q)^(1/n) (Brug et al. 1984)."""
    return float((r_ohm ** (1 - n) * q) ** (1 / n))


# --------------------------------------------------------------------------- fitting machinery


@dataclass(frozen=True)
class _Spectrum:
    frequency_hz: np.ndarray  # descending
    omega: np.ndarray
    z: np.ndarray
    weight: np.ndarray  # 1/|Z|
    log_jw: np.ndarray  # ln(jω) = ln ω + jπ/2: (jω)^n = exp(n·ln(jω)) costs one complex exp
    weighted_z: np.ndarray  # Z/|Z|, the target of the weighted residual
    weighted_jw: np.ndarray  # jω/|Z|, the inductance column of the weighted Jacobian


@dataclass(frozen=True)
class _Layout:
    """Natural parameter vector x = [L/l_scale, R_s/r_scale, (ln R, ln τ, n) per arc, ln Q_el, n_el].

    An arc is written Z = R / (1 + (jωτ)^n) (so Q = τ^n / R): size and position are then nearly
    independent, and τ can be kept inside the window, which stops arcs wandering off to infinity.
    """

    n_arcs: int
    l_scale: float
    r_scale: float
    ln_tau_bounds: tuple[float, float]

    @property
    def size(self) -> int:
        return 4 + 3 * self.n_arcs

    @cached_property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box for the solver: L, R_s >= 0; arc R from 1e-6 to 1e4 × the R_total estimate;
        τ inside ``ln_tau_bounds``; n inside the arc and electrode ranges."""
        ln_r = math.log(self.r_scale)
        arc_lo = [ln_r - 14, self.ln_tau_bounds[0], ARC_N_BOUNDS[0]]
        arc_hi = [ln_r + 9, self.ln_tau_bounds[1], ARC_N_BOUNDS[1]]
        lower = [0.0, 0.0, *arc_lo * self.n_arcs, math.log(1e-20), ELECTRODE_N_BOUNDS[0]]
        upper = [np.inf, np.inf, *arc_hi * self.n_arcs, math.log(1e4), ELECTRODE_N_BOUNDS[1]]
        return np.array(lower), np.array(upper)


@dataclass
class _Candidate:
    layout: _Layout
    x: np.ndarray
    cost: float  # half the sum of squared weighted residuals (real and imaginary parts)
    # Weighted residual Jacobian in natural parameters, 2N × P: rows are the real and imaginary
    # parts, interleaved (the order does not matter to the covariance).
    jacobian: np.ndarray
    converged: bool
    bic: float = math.inf


def _weighted_residual(x, layout: _Layout, spectrum: _Spectrum):
    """(Z(x) − Z)/|Z| and the intermediate arrays :func:`_weighted_jacobian` reuses.

    ``x`` may be one parameter vector (P) or a stack of them (S × P, residuals S × N), so all
    starts of a model are ranked with one call. All arcs and the electrode CPE share one complex
    exponential, so a call costs a fixed handful of numpy operations whatever the number of arcs.
    """
    k = layout.n_arcs
    log_jw, w = spectrum.log_jw, spectrum.weight
    arcs = x[..., 2: 2 + 3 * k].reshape(*x.shape[:-1], k, 3)
    # Rows 0..k-1: (jωτ)^n = exp(n·ln(jω) + n·ln τ);
    # row k: 1/(Q·(jω)^n_el) = exp(−n_el·ln(jω) − ln Q).
    slope = np.concatenate([arcs[..., 2], -x[..., -1:]], axis=-1)
    offset = np.concatenate([arcs[..., 2] * arcs[..., 1], -x[..., -2:-1]], axis=-1)
    powers = np.exp(slope[..., None] * log_jw + offset[..., None])
    v = powers[..., :k, :]
    denominator = 1 + v
    z_arc = (np.exp(arcs[..., 0])[..., None] * w) / denominator  # weighted arc impedances
    z_el = powers[..., k, :] * w
    residual = ((layout.r_scale * x[..., 1:2]) * w + spectrum.weighted_jw * (layout.l_scale * x[..., 0:1])
                + z_el - spectrum.weighted_z)
    if k:
        residual += z_arc.sum(axis=-2)
    return residual, (arcs, v, denominator, z_arc, z_el)


def _weighted_jacobian(layout: _Layout, spectrum: _Spectrum, parts) -> np.ndarray:
    """Jacobian of the weighted residual at one parameter vector, complex P × N (a row per
    parameter, so each is a contiguous write), from :func:`_weighted_residual`'s intermediates."""
    arcs, v, denominator, z_arc, z_el = parts
    k = layout.n_arcs
    jacobian = np.empty((layout.size, spectrum.log_jw.size), dtype=complex)
    jacobian[0] = spectrum.weighted_jw * layout.l_scale
    jacobian[1] = layout.r_scale * spectrum.weight
    if k:
        common = -z_arc * v / denominator  # ∂Z_arc/∂ln((jωτ)^n)
        jacobian[2: 2 + 3 * k: 3] = z_arc
        jacobian[3: 3 + 3 * k: 3] = common * arcs[:, 2:3]
        jacobian[4: 4 + 3 * k: 3] = common * (spectrum.log_jw + arcs[:, 1:2])
    jacobian[-2] = -z_el
    jacobian[-1] = -z_el * spectrum.log_jw
    return jacobian


def _squared_norm(residual: np.ndarray) -> float:
    return float(np.vdot(residual, residual).real)


def _bounded_step(matrix: np.ndarray, rhs: np.ndarray, x: np.ndarray, lower: list, upper: list):
    """Trial point x + step with matrix·step = rhs, parameters that would leave the box stopped on
    their bound; None when ``matrix`` is not numerically positive definite.

    A parameter stepping past a bound is set onto it and the others re-solved given that move
    (clipping alone would keep their steps, computed for a move the bound forbids, and in a
    correlated valley such as R_s against a bulk arc above the window that step is then rejected
    again and again). Each pass fixes at least one more parameter, so there are at most P passes.
    ``matrix`` (JᵀJ + λ·D) is symmetric positive definite: Cholesky (LAPACK posv) solves it; a
    failed factorisation (rounding on a nearly flat direction) asks the caller for more damping.
    """
    fixed: list[int] = []
    while True:
        _, step, info = dposv(matrix, rhs)
        if info != 0:
            return None
        trial = x + step
        outside = [i for i, (value, lo, hi) in enumerate(zip(trial.tolist(), lower, upper))
                   if (value < lo or value > hi) and i not in fixed]
        if not outside:
            return np.minimum(np.maximum(trial, lower), upper) if fixed else trial
        move = np.minimum(np.maximum(trial[outside], [lower[i] for i in outside]),
                          [upper[i] for i in outside]) - x[outside]
        rhs = rhs - matrix[:, outside] @ move
        matrix = matrix.copy()
        matrix[outside, :] = 0.0
        matrix[:, outside] = 0.0
        matrix[outside, outside] = 1.0
        rhs[outside] = move
        fixed += outside


def _solve(layout: _Layout, x0: np.ndarray, spectrum: _Spectrum) -> _Candidate:
    """Bounded Levenberg–Marquardt on the modulus-weighted residual.

    Marquardt's diagonal scaling makes steps independent of parameter units; a parameter sitting
    on a bound with the gradient pushing it outward is held there (active set) and one that would
    cross a bound stops on it (:func:`_bounded_step`). Damping follows Nielsen's update (fewer
    rejected steps than ×10/÷10); the Jacobian is only formed at accepted points. Converged when
    a step changes the cost by less than ``_FTOL`` of itself, or the undamped Gauss–Newton step
    promises less than that (tested once steps have become small, it saves the confirming
    evaluation), or the step is below ``_XTOL`` of ‖x‖, or the projected gradient vanishes. After
    MAX_FUNCTION_EVALUATIONS evaluations it stops with ``converged`` False: its run time is bounded
    whatever the data. P is at most 10, so per-parameter logic uses Python floats, which cost less
    than numpy calls at that size.
    """
    lower, upper = layout.bounds
    lower_list, upper_list = lower.tolist(), upper.tolist()
    x = np.minimum(np.maximum(x0, lower), upper)
    residual, parts = _weighted_residual(x, layout, spectrum)
    cost = 0.5 * _squared_norm(residual)
    evaluations, converged, near_minimum = 1, False, False
    damping, growth = _INITIAL_DAMPING, 2.0
    scale = np.zeros(layout.size)
    while True:
        jacobian = _weighted_jacobian(layout, spectrum, parts)
        if converged or evaluations >= MAX_FUNCTION_EVALUATIONS:
            break
        # For real parameters and a complex residual, JᵀJ and Jᵀr of the real-stacked system are
        # products of the interleaved (real, imaginary) float views: no stacking copies.
        j_real = jacobian.view(float)
        normal = j_real @ j_real.T
        gradient = j_real @ residual.view(float)
        held = [i for i, (xi, gi, lo, hi)
                in enumerate(zip(x.tolist(), gradient.tolist(), lower_list, upper_list))
                if (xi <= lo and gi > 0) or (xi >= hi and gi < 0)]
        rhs = -gradient
        system = normal
        if held:
            # Decoupled (zero rows and columns, zero right-hand side): their step is exactly 0.
            rhs[held] = 0.0
            system = normal.copy()
            system[held, :] = 0.0
            system[:, held] = 0.0
        if float(np.abs(rhs).max()) <= _GTOL * max(cost, 1e-300):
            converged = True
            break
        if near_minimum and _gauss_newton_converged(system, rhs, held, x, lower_list, upper_list,
                                                    gradient, normal, cost):
            converged = True
            break
        # Moré's rule: the scale only grows, so a parameter whose influence vanishes for a moment
        # cannot take a huge step.
        np.maximum(scale, normal.diagonal(), out=scale)
        diagonal = np.maximum(scale, 1e-30 * float(scale.max()) + 1e-300)
        while True:
            trial = _bounded_step(system + np.diag(damping * diagonal), rhs, x, lower_list, upper_list)
            if trial is not None:
                taken = trial - x
                predicted = _predicted_reduction(taken, gradient, normal)
                trial_residual, trial_parts = _weighted_residual(trial, layout, spectrum)
                evaluations += 1
                trial_cost = 0.5 * _squared_norm(trial_residual)
                reduction = cost - trial_cost if math.isfinite(trial_cost) else -math.inf
                small_step = math.sqrt(taken @ taken) <= _XTOL * (_XTOL + math.sqrt(x @ x))
                if predicted > 0 and reduction > _ACCEPT_RATIO * predicted:
                    ratio = reduction / predicted
                    damping *= max(1 / 3, 1 - (2 * ratio - 1) ** 3)
                    growth = 2.0
                    x, residual, parts, cost = trial, trial_residual, trial_parts, trial_cost
                    converged = (reduction <= _FTOL * (cost + reduction) and ratio > 0.25) or small_step
                    near_minimum = reduction <= _NEAR_MINIMUM * cost and ratio > 0.25
                    break
                # Rejected: shorter, more gradient-like steps until one lowers the cost. A rejected
                # step that is already negligible means no lower cost is reachable from here.
                if small_step:
                    converged = True
                    break
            if damping > _MAX_DAMPING:
                converged = True
                break
            damping, growth = damping * growth, growth * 2
            if evaluations >= MAX_FUNCTION_EVALUATIONS:
                break
    return _Candidate(layout, x, cost, jacobian.view(float).T, converged)


def _gauss_newton_converged(system, rhs, held, x, lower, upper, gradient, normal, cost) -> bool:
    """True when the undamped Gauss–Newton step stays inside the box and promises to lower the cost
    by less than ``_FTOL`` of itself: the minimum is reached within that tolerance. A step that
    would cross a bound, or a singular system, proves nothing (False)."""
    diagonal = np.zeros(x.size)
    diagonal[held] = 1.0  # held parameters have zero rows and columns: keep the matrix regular
    _, step, info = dposv(system + np.diag(diagonal), rhs)
    if info != 0:
        return False
    if any(value < lo or value > hi for value, lo, hi in zip((x + step).tolist(), lower, upper)):
        return False
    return 0.0 <= _predicted_reduction(step, gradient, normal) <= _FTOL * cost


def _predicted_reduction(step: np.ndarray, gradient: np.ndarray, normal: np.ndarray) -> float:
    """Cost reduction the linearised model promises for ``step``: −(gᵀs + ½·sᵀJᵀJs)."""
    return -float(step @ (gradient + 0.5 * (normal @ step)))


@dataclass(frozen=True)
class _Features:
    """Quantities read directly off the spectrum, used as initial guesses."""

    r_total: float
    inductance: float
    spike_start: int  # index (descending frequency) of the -Z'' minimum before the spike
    spike_visible: bool
    spike_intercept: float | None  # real-axis intercept of the straight line through the spike (ohm)
    n_electrode: float
    q_electrode: float
    peaks: tuple[int, ...]  # indices of -Z'' maxima of arcs, by decreasing prominence
    valleys: tuple[int, ...]  # index of the -Z'' minimum between the two most prominent peaks
    clear_arcs: int  # -Z'' maxima inside the window (not at f_max) standing out by > 10 %, at most 2


def _read_features(spectrum: _Spectrum) -> _Features:
    z, omega = spectrum.z, spectrum.omega
    inductance = max(z.imag[0], 0.0) / omega[0]
    y = -z.imag + omega * inductance  # -Z'' with the lead inductance roughly removed
    modulus = 1 / spectrum.weight
    tolerance = 0.01 * modulus
    # The walk and the spike line touch a few points each: Python floats beat numpy calls there.
    y_list, tolerance_list, real_list = y.tolist(), tolerance.tolist(), z.real.tolist()

    # Walk from the lowest frequency towards higher ones while -Z'' keeps falling: that is the spike.
    i = y.size - 1
    while i > 0 and y_list[i - 1] <= y_list[i] + tolerance_list[i - 1]:
        i -= 1
    spike_start = min(range(i, y.size), key=y_list.__getitem__)  # first minimum, as argmin
    spike_visible = (spike_start < y.size - 2
                     and y_list[-1] > y_list[spike_start] + 3 * tolerance_list[spike_start])

    r_total = real_list[spike_start]
    spike_intercept = None
    n_electrode, q_electrode = 0.8, None
    if spike_visible and y.size - spike_start >= 3:
        # Straight line Z' = slope·(-Z'') + intercept through the spike (closed-form least squares;
        # the spike rises by more than the tolerance, so the -Z'' spread is never zero).
        y_spike, x_spike = y_list[spike_start:], real_list[spike_start:]
        y_mean, x_mean = sum(y_spike) / len(y_spike), sum(x_spike) / len(x_spike)
        slope = (sum((a - y_mean) * (b - x_mean) for a, b in zip(y_spike, x_spike))
                 / sum((a - y_mean) ** 2 for a in y_spike))
        intercept = x_mean - slope * y_mean
        if 0 < intercept <= real_list[spike_start] * 1.2:
            r_total = spike_intercept = intercept
        if slope > 0:
            n_electrode = min(max(2 / math.pi * math.atan(1 / slope), 0.4), 0.98)
        z_el = abs(complex(real_list[-1] - r_total, -y_list[-1]))
        q_electrode = 1 / (z_el * float(omega[-1]) ** n_electrode)
    r_total = max(r_total, 1e-3 * float(modulus.min()))
    if q_electrode is None:
        # No spike seen: a small electrode term, 10 % of R_total at the lowest frequency.
        q_electrode = 1 / (0.1 * r_total * omega[-1] ** n_electrode)

    arc_region = y[: spike_start + 1]
    peaks: tuple[int, ...] = ()
    valleys: tuple[int, ...] = ()
    clear_arcs = 0
    arc_max = max(y_list[: spike_start + 1])
    if arc_region.size >= 3 and arc_max > 0:
        padded = np.concatenate([[-np.inf], arc_region])  # lets a maximum at f_max count as a peak
        found, props = find_peaks(padded, prominence=0.03 * arc_max)
        prominences = props["prominences"].tolist()
        order = sorted(range(len(prominences)), key=prominences.__getitem__, reverse=True)
        peaks = tuple(int(found[j]) - 1 for j in order)
        clear_arcs = min(sum(1 for index, prominence in zip(found.tolist(), prominences)
                             if index > 1 and prominence > 0.1 * arc_max), 2)
        if len(peaks) >= 2:
            a, b = sorted(peaks[:2])
            valleys = (min(range(a, b + 1), key=y_list.__getitem__),)
    return _Features(r_total, inductance, spike_start, bool(spike_visible), spike_intercept, n_electrode,
                     float(q_electrode), peaks, valleys, clear_arcs)


def _arc_guess(r: float, f_apex: float, n: float = 0.9) -> list[float]:
    return [math.log(r), -math.log(2 * np.pi * f_apex), n]


def _starts(layout: _Layout, features: _Features, spectrum: _Spectrum) -> np.ndarray:
    """Initial natural parameter vectors (one per row), all read from the data, inside the bounds."""
    f, z = spectrum.frequency_hz, spectrum.z
    r_tot = features.r_total
    f_max, f_min = f[0], f[-1]
    hf_intercept = float(np.clip(z.real[0], 0.0, 0.9 * r_tot))
    peak_f = [f[p] if p > 0 else 3 * f_max for p in features.peaks]
    head = [features.inductance / layout.l_scale]
    tail = [math.log(features.q_electrode), features.n_electrode]
    slow_apex = max(f[features.spike_start] / 10, f_min)
    starts: list[list[float]] = []
    if layout.n_arcs == 0:
        starts.append([r_tot])
    elif layout.n_arcs == 1:
        apex = peak_f[0] if peak_f else 3 * f_max
        for r_s in (0.01 * r_tot, hf_intercept):
            starts.append([r_s, *_arc_guess(r_tot - r_s, apex)])
        # An arc hidden in what looked like the spike (a slow grain boundary next to a tilted spike).
        starts.append([r_tot, *_arc_guess(r_tot, slow_apex)])
    else:
        starts.append([0.0, *_arc_guess(r_tot, peak_f[0] if peak_f else 3 * f_max),
                       *_arc_guess(r_tot, slow_apex)])
        if features.valleys:
            fast, slow = sorted(peak_f[:2], reverse=True)
            split = float(np.clip(z.real[features.valleys[0]], 0.05 * r_tot, 0.95 * r_tot))
            starts.append([0.0, *_arc_guess(split, fast), *_arc_guess(r_tot - split, slow)])
        apex = peak_f[0] if peak_f else math.sqrt(f_max * f_min)
        # The visible arc plus a faster one mostly above the window ...
        r_fast = max(hf_intercept, 0.1 * r_tot)
        starts.append([0.0, *_arc_guess(r_fast, max(10 * apex, 3 * f_max)), *_arc_guess(r_tot - r_fast, apex)])
        # ... or two overlapping arcs sharing the visible one.
        starts.append([0.0, *_arc_guess(0.5 * r_tot, 5 * apex), *_arc_guess(0.5 * r_tot, apex / 5)])
    vectors = np.array([head + [start[0] / layout.r_scale] + start[1:] + tail for start in starts])
    return np.minimum(np.maximum(vectors, layout.bounds[0]), layout.bounds[1])


def _covariance(candidate: _Candidate, n_residuals: int) -> np.ndarray | None:
    """Parameter covariance s²·(JᵀJ)⁻¹ in natural parameters (pseudo-inverse for flat directions)."""
    dof = n_residuals - candidate.layout.size
    if dof <= 0:
        return None
    # LAPACK gesdd directly: the Jacobian is stored column-major (a transposed C array), which the
    # wrapper takes without a copy, and numpy's checks would cost more than this small SVD.
    _, s, vt, info = dgesdd(candidate.jacobian, compute_uv=1, full_matrices=0)
    if info != 0 or s[0] == 0:
        return None
    keep = s > s[0] * 1e-12
    inverse = (vt[keep].T / s[keep] ** 2) @ vt[keep]
    return inverse * (2 * candidate.cost / dof)


def _propagated_stderr(gradient: np.ndarray, covariance: np.ndarray | None) -> float | None:
    if covariance is None:
        return None
    variance = float(gradient @ covariance @ gradient)
    return math.sqrt(variance) if math.isfinite(variance) and variance >= 0 else None


def _arc_values(candidate: _Candidate):
    """(R, Q, n, τ, column index of ln R) per arc, fastest first."""
    values = candidate.x.tolist()
    arcs = []
    for k in range(candidate.layout.n_arcs):
        ln_r, ln_tau, n = values[2 + 3 * k: 5 + 3 * k]
        r, tau = math.exp(ln_r), math.exp(ln_tau)
        arcs.append((r, tau**n / r, float(n), tau, 2 + 3 * k))
    return sorted(arcs, key=lambda arc: arc[3])


def _arcs_supported(candidate: _Candidate) -> bool:
    """Arcs must be sizeable, relax inside the accepted band (not at its edges) and not be electrode-like."""
    layout = candidate.layout
    arcs = _arc_values(candidate)
    r_total = layout.r_scale * float(candidate.x[1]) + sum(a[0] for a in arcs)
    tau_lo, tau_hi = (math.exp(bound) for bound in layout.ln_tau_bounds)
    for r, q, n, tau, _ in arcs:
        if r < 0.01 * r_total or not (2 * tau_lo < tau < tau_hi / 2):
            return False
        if brug_capacitance_f(r, q, n) >= ELECTRODE_CAPACITANCE_MIN_F:
            return False
    return True


def _prepare(frequency_hz, z_real_ohm, z_imag_ohm) -> _Spectrum:
    arrays = {}
    for name, values in (("frequency_hz", frequency_hz), ("z_real_ohm", z_real_ohm), ("z_imag_ohm", z_imag_ohm)):
        try:
            array = np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError) as error:
            raise EisInputError(f"{name}: not numeric ({error})") from None
        finite = np.isfinite(array)
        if not finite.all():
            raise EisInputError(f"{name}: non-finite value at index {int(np.argmin(finite))}")
        arrays[name] = array
    f, zr, zi = arrays["frequency_hz"], arrays["z_real_ohm"], arrays["z_imag_ohm"]
    if not (f.size == zr.size == zi.size):
        raise EisInputError(
            f"frequency_hz, z_real_ohm, z_imag_ohm differ in length ({f.size}, {zr.size}, {zi.size})")
    if f.size < 8:
        raise EisInputError(f"a spectrum needs at least 8 points, got {f.size}")
    if f.min() <= 0:
        raise EisInputError(f"frequency_hz must be > 0 (index {int(np.flatnonzero(f <= 0)[0])})")
    z = zr + 1j * zi
    modulus = np.abs(z)
    if modulus.min() == 0:
        raise EisInputError(f"impedance is zero at index {int(np.flatnonzero(modulus == 0)[0])}")
    order = np.argsort(-f, kind="stable")
    f, z = f[order], z[order]
    omega = 2 * np.pi * f
    weight = 1 / modulus[order]
    return _Spectrum(f, omega, z, weight, np.log(omega) + 0.5j * np.pi, z * weight, 1j * omega * weight)


def _arc_gain_needed(n_residuals: int) -> float:
    """Factor by which an extra arc (3 parameters) must lower the SSE to gain BIC_MARGIN in BIC."""
    return math.exp((BIC_MARGIN + 3 * math.log(n_residuals)) / n_residuals)


def _costs(xs: np.ndarray, layout, spectrum) -> np.ndarray:
    """Sum of squared weighted residuals for each row of the stack ``xs`` (S × P)."""
    residual, _ = _weighted_residual(xs, layout, spectrum)
    parts = residual.view(float)
    return np.einsum("ij,ij->i", parts, parts)


def _fit_best(n_arcs: int, spectrum: _Spectrum, features: _Features, floor_variance: float) -> _Candidate | None:
    """Best of the data-derived starts for a model with n_arcs arcs (None if too few points).

    Starts are tried from the lowest initial cost; the search stops at the first fit whose residual
    is at the noise floor (``floor_variance`` per degree of freedom, from Lin-KK)."""
    n_residuals = 2 * spectrum.z.size
    omega_max, omega_min = spectrum.omega[0], spectrum.omega[-1]
    # Arcs may relax from 100× above the window to 10× below it; outside that they are an offset
    # or part of the electrode spike.
    ln_tau_bounds = (-math.log(100 * omega_max), math.log(10 / omega_min))
    layout = _Layout(n_arcs, features.r_total / omega_max, features.r_total, ln_tau_bounds)
    if n_residuals - layout.size < 4:
        return None
    starts = _starts(layout, features, spectrum)
    starts = starts[np.argsort(_costs(starts, layout, spectrum), kind="stable")]
    good_enough = floor_variance * (n_residuals - layout.size) * _arc_gain_needed(n_residuals)
    best = None
    for start in starts:
        candidate = _solve(layout, start, spectrum)
        if best is None or candidate.cost < best.cost:
            best = candidate
        if 2 * best.cost <= good_enough:
            break
    sse = max(2 * best.cost, 1e-300)
    best.bic = n_residuals * math.log(sse / n_residuals) + layout.size * math.log(n_residuals)
    return best


def _kk_squared_residual(kk) -> float:
    """Sum of squared relative Lin-KK residuals, real and imaginary parts."""
    return float(kk.residual_real @ kk.residual_real + kk.residual_imag @ kk.residual_imag)


def fit_spectrum(frequency_hz, z_real_ohm, z_imag_ohm, thickness_um=None, diameter_mm=None) -> SpectrumFit:
    """Fit a blocking-electrode spectrum and report R_total, R_bulk, R_gb with standard errors.

    Inputs: frequencies in Hz (> 0, any order), real and imaginary impedance in ohm (imaginary part
    negative for capacitive behaviour), at least 8 points; optionally the pellet thickness (µm) and
    electrode diameter (mm), which scale the arc capacitances to permittivities for the bulk/GB
    labels (both or neither). Raises EisInputError on bad input.

    Models with 0, 1, 2 arcs are tried in turn, starting from the number of arcs with a clear -Z''
    maximum in the window; a model with more arcs replaces the current one only if it lowers the
    BIC by BIC_MARGIN and its arcs are physical (_arcs_supported). Once the current model fits as
    well as the Lin-KK chain (the noise floor), no further arc could pass that test and the search
    stops.
    """
    if (thickness_um is None) != (diameter_mm is None):
        raise EisInputError("give both thickness_um and diameter_mm, or neither "
                            f"(got thickness_um={thickness_um!r}, diameter_mm={diameter_mm!r})")
    geometry = None if thickness_um is None else _pellet_geometry_cm(thickness_um, diameter_mm)
    spectrum = _prepare(frequency_hz, z_real_ohm, z_imag_ohm)
    features = _read_features(spectrum)
    kk = lin_kk(spectrum.frequency_hz, spectrum.z)
    n_residuals = 2 * spectrum.z.size
    # Noise variance left by the Lin-KK chain (M Voigt elements + R, L, C), per degree of freedom.
    kk_variance = _kk_squared_residual(kk) / max(n_residuals - kk.n_elements - 3, 1)

    # Arcs with a clear -Z'' maximum inside the window are certainly there: start from that many.
    # Models with fewer arcs are only a fallback when no larger model is physical.
    visible = features.clear_arcs
    chosen: _Candidate | None = None
    fitted: dict[int, _Candidate] = {}
    for n_arcs in [*range(visible, 3), *range(visible - 1, -1, -1)]:
        if chosen is not None and n_arcs < visible:
            break
        if chosen is not None and (2 * chosen.cost <= kk_variance * (n_residuals - chosen.layout.size)
                                   * _arc_gain_needed(n_residuals)):
            break
        candidate = _fit_best(n_arcs, spectrum, features, kk_variance)
        if candidate is None:
            continue
        fitted[n_arcs] = candidate
        if n_arcs > 0 and not _arcs_supported(candidate):
            continue
        if chosen is None or candidate.bic < chosen.bic - BIC_MARGIN:
            chosen = candidate
    if chosen is None:
        raise EisInputError(f"too few points ({spectrum.z.size}) to fit a spectrum")
    covariance = _covariance(chosen, n_residuals)
    return _summarise(chosen, covariance, spectrum, features, fitted, kk, geometry)


def relative_permittivity(capacitance_f: float, length_cm: float, area_cm2: float) -> float:
    """Apparent relative permittivity ε_r = C·L/(ε0·A) of a capacitance across a pellet."""
    return capacitance_f * length_cm / (VACUUM_PERMITTIVITY_F_PER_CM * area_cm2)


def _label_arcs(arcs, geometry):
    """Roles ("bulk"/"gb") for the fitted arcs, the arcs in that order, and warnings.

    ``geometry``: (length_cm, area_cm2) of the pellet, or None (then the reference pellet, with a
    warning). One arc is bulk when its apparent ε_r is at most BULK_PERMITTIVITY_MAX, else grain
    boundary; of two arcs, the lower capacitance is the bulk.
    """
    warnings = []
    if not arcs:
        return [], arcs, warnings
    if geometry is None:
        geometry = _pellet_geometry_cm(REFERENCE_THICKNESS_UM, REFERENCE_DIAMETER_MM)
        warnings.append(f"no pellet geometry given: bulk/GB labels assume a {REFERENCE_DIAMETER_MM:g} mm × "
                        f"{REFERENCE_THICKNESS_UM / 1000:g} mm pellet")
    arcs = sorted(arcs, key=lambda arc: brug_capacitance_f(*arc[:3]))
    eps_r = relative_permittivity(brug_capacitance_f(*arcs[0][:3]), *geometry)
    if len(arcs) == 1:
        return ["bulk" if eps_r <= BULK_PERMITTIVITY_MAX else "gb"], arcs, warnings
    if eps_r > BULK_PERMITTIVITY_MAX:
        warnings.append(f"both arcs have grain-boundary-like permittivities (lower one ε_r = {eps_r:.3g} > "
                        f"{BULK_PERMITTIVITY_MAX:g}); bulk/GB labels uncertain")
    if arcs[0][3] > arcs[1][3]:
        warnings.append("the arc with the lower capacitance (labelled bulk) relaxes more slowly than the other; "
                        "bulk/GB labels uncertain")
    return ["bulk", "gb"], arcs, warnings


def _summarise(chosen, covariance, spectrum, features, candidates, kk, geometry) -> SpectrumFit:
    layout, x = chosen.layout, chosen.x
    warnings: list[str] = []
    stderr = np.sqrt(np.clip(np.diagonal(covariance), 0, None)).tolist() if covariance is not None else None

    def estimate(value, column, log_scaled, scale=1.0):
        if stderr is None or not math.isfinite(stderr[column]):
            return ParameterEstimate(float(value), None)
        return ParameterEstimate(float(value), float((value if log_scaled else scale) * stderr[column]))

    r_series = layout.r_scale * float(x[1])
    inductance = layout.l_scale * float(x[0])
    parameters = {
        "inductance_h": estimate(inductance, 0, False, layout.l_scale),
        "r_series_ohm": estimate(r_series, 1, False, layout.r_scale),
    }
    arcs = _arc_values(chosen)
    gradient_total = np.zeros(layout.size)
    gradient_total[1] = layout.r_scale
    for r, _, _, _, column in arcs:
        gradient_total[column] = r
    r_total = r_series + sum(arc[0] for arc in arcs)
    r_total_stderr = _propagated_stderr(gradient_total, covariance)

    roles, arcs, role_warnings = _label_arcs(arcs, geometry)
    warnings += role_warnings
    resistances: dict[str, tuple[float, float | None]] = {}
    capacitances: dict[str, float] = {}
    for role, (r, q, n, arc_tau, column) in zip(roles, arcs):
        parameters[f"r_{role}_ohm"] = estimate(r, column, True)
        # ln Q = n·ln τ − ln R
        gradient_q = np.zeros(layout.size)
        gradient_q[column: column + 3] = [-q, n * q, math.log(arc_tau) * q]
        parameters[f"q_{role}_s_pow_n_per_ohm"] = ParameterEstimate(
            float(q), _propagated_stderr(gradient_q, covariance))
        parameters[f"n_{role}"] = estimate(n, column + 2, False)
        resistances[role] = (r, parameters[f"r_{role}_ohm"].stderr)
        capacitances[role] = brug_capacitance_f(r, q, n)
    q_el = math.exp(x[-2])
    parameters["q_electrode_s_pow_n_per_ohm"] = estimate(q_el, layout.size - 2, True)
    parameters["n_electrode"] = estimate(x[-1], layout.size - 1, False)

    # R_bulk is the real-axis point where the grain-boundary arc starts: R_total − R_gb. When the
    # bulk arc is only partly inside the window its own R trades off against R_s, but their sum
    # (what is reported) stays well determined. Lead resistance is included, as in R_total.
    gradient_bulk = gradient_total.copy()
    for role, arc in zip(roles, arcs):
        if role == "gb":
            gradient_bulk[arc[4]] = 0.0
    r_bulk = (r_total - resistances["gb"][0] if "gb" in resistances else r_total,
              _propagated_stderr(gradient_bulk, covariance))
    if not roles:
        separation, model = "total_only", "L-R-CPEel"
        r_bulk = None
    elif roles == ["bulk"]:
        separation, model = "bulk_arc", "L-R-p(Rb,CPEb)-CPEel"
    elif roles == ["gb"]:
        separation, model = "bulk_offset_and_gb_arc", "L-R-p(Rgb,CPEgb)-CPEel"
        if r_bulk[1] is None or r_bulk[0] < 3 * r_bulk[1]:
            warnings.append("high-frequency intercept indistinguishable from zero: R_bulk unknown")
            r_bulk = None
    else:
        separation, model = "bulk_and_gb_arcs", "L-R-p(Rb,CPEb)-p(Rgb,CPEgb)-CPEel"
    r_gb = resistances.get("gb")

    refusals = _r_total_refusals(chosen, spectrum, features, r_total, r_total_stderr, kk)
    warnings += refusals
    if not refusals and features.spike_intercept is not None and _misfits(chosen, spectrum, kk):
        warnings.append(f"circuit misfits the arc shapes (rms residual {_rms(chosen, spectrum):.2%} against "
                        f"Lin-KK {_kk_rms(kk, spectrum):.2%}); R_total agrees with the spike-line intercept "
                        f"{features.spike_intercept:.6g} ohm")
    if not chosen.converged:
        warnings.append(f"fit stopped at the evaluation limit ({MAX_FUNCTION_EVALUATIONS})")

    if kk.residual_pct > KK_WARNING_PCT:
        warnings.append(f"Kramers-Kronig residual {kk.residual_pct:.2g} % exceeds {KK_WARNING_PCT:g} %: "
                        "data may be non-stationary, non-linear or noisy")
    names = {0: "L-R-CPEel", 1: "L-R-p(R1,CPE1)-CPEel", 2: "L-R-p(R1,CPE1)-p(R2,CPE2)-CPEel"}
    return SpectrumFit(
        model=model,
        separation=separation,
        parameters=parameters,
        r_total_ohm=float(r_total),
        r_total_stderr_ohm=r_total_stderr,
        r_total_determinable=not refusals,
        r_bulk_ohm=None if r_bulk is None else float(r_bulk[0]),
        r_bulk_stderr_ohm=None if r_bulk is None else r_bulk[1],
        r_gb_ohm=None if r_gb is None else float(r_gb[0]),
        r_gb_stderr_ohm=None if r_gb is None else r_gb[1],
        c_bulk_f=capacitances.get("bulk"),
        c_gb_f=capacitances.get("gb"),
        eps_r_bulk=None if geometry is None or "bulk" not in capacitances
        else relative_permittivity(capacitances["bulk"], *geometry),
        eps_r_gb=None if geometry is None or "gb" not in capacitances
        else relative_permittivity(capacitances["gb"], *geometry),
        inductance_h=float(inductance),
        kk_residual_pct=kk.residual_pct,
        fit_residual_pct=100 * _rms(chosen, spectrum),
        bic_by_model={names[k]: c.bic for k, c in candidates.items()},
        warnings=tuple(warnings),
    )


def _rms(chosen, spectrum) -> float:
    """Root-mean-square modulus-weighted fit residual (fraction of |Z|)."""
    return math.sqrt(2 * chosen.cost / (2 * spectrum.z.size))


def _kk_rms(kk, spectrum) -> float:
    return math.sqrt(_kk_squared_residual(kk) / (2 * spectrum.z.size))


def _misfits(chosen, spectrum, kk) -> bool:
    """True when the circuit leaves more than the noise floor (Lin-KK's residual) unexplained."""
    return _rms(chosen, spectrum) > MODEL_ADEQUACY_FACTOR * _kk_rms(kk, spectrum) + 5e-4


def _r_total_refusals(chosen, spectrum, features, r_total, r_total_stderr, kk) -> list[str]:
    """One warning per failed test of whether the data determine R_total; empty when they do.

    Each names its test in brackets: [spike not reached], [scatter], [intercept uncertain],
    [intercept disagrees]. A circuit that misfits the arcs is only refused when its R_total also
    disagrees with the model-free spike-line intercept.
    """
    refusals = []
    # One frequency: Python complex arithmetic, the same formulas as _arc and _cpe.
    jw_min = 1j * float(spectrum.omega[-1])
    arcs_imag = sum(-(r / (1 + r * q * jw_min**n)).imag for r, q, n, _, _ in _arc_values(chosen))
    electrode_imag = -(1 / (math.exp(chosen.x[-2]) * jw_min ** float(chosen.x[-1]))).imag
    f_min = float(spectrum.frequency_hz[-1])
    if not features.spike_visible:
        refusals.append(f"R_total not determinable [spike not reached]: -Z'' does not rise into an "
                        f"electrode spike down to the lowest frequency, {f_min:g} Hz")
    elif arcs_imag > 0.05 * r_total or electrode_imag < arcs_imag:
        refusals.append(f"R_total not determinable [spike not reached]: at the lowest frequency, {f_min:g} Hz, "
                        f"the fitted arcs still give -Z'' = {arcs_imag:.4g} ohm (R_total {r_total:.6g} ohm)")
    if kk.residual_pct > SCATTER_KK_PCT:
        refusals.append(f"R_total not determinable [scatter]: Lin-KK residual {kk.residual_pct:.3g} % exceeds "
                        f"{SCATTER_KK_PCT:g} %, the data are not an impedance spectrum")
    if r_total_stderr is None or r_total_stderr > R_TOTAL_MAX_RELATIVE_STDERR * r_total:
        spread = "unknown" if r_total_stderr is None else f"{r_total_stderr:.4g} ohm"
        refusals.append(f"R_total not determinable [intercept uncertain]: standard error {spread} exceeds "
                        f"{R_TOTAL_MAX_RELATIVE_STDERR:.0%} of R_total {r_total:.6g} ohm")
    if _misfits(chosen, spectrum, kk):
        intercept = features.spike_intercept
        if intercept is None or abs(r_total - intercept) > SPIKE_INTERCEPT_TOLERANCE * r_total:
            reading = ("no straight spike to extrapolate" if intercept is None
                       else f"the spike-line intercept is {intercept:.6g} ohm")
            refusals.append(f"R_total not determinable [intercept disagrees]: the circuit misfits (rms "
                            f"{_rms(chosen, spectrum):.2%} against Lin-KK {_kk_rms(kk, spectrum):.2%}) and "
                            f"its R_total {r_total:.6g} ohm is not confirmed: {reading} (tolerance "
                            f"{SPIKE_INTERCEPT_TOLERANCE:.0%})")
    return refusals


# --------------------------------------------------------------------------- conductivity


def _pellet_geometry_cm(thickness_um: float, diameter_mm: float) -> tuple[float, float]:
    for name, value in (("thickness_um", thickness_um), ("diameter_mm", diameter_mm)):
        if value is None or not np.isfinite(value) or value <= 0:
            raise EisInputError(f"{name} must be a finite number > 0, got {value!r}")
    return thickness_um * 1e-4, disc_area_cm2(diameter_mm)


def _conductivity(r_ohm, r_stderr, length_cm, area_cm2):
    if r_ohm is None or r_ohm <= 0:
        return None, None
    sigma = length_cm / (r_ohm * area_cm2)
    return sigma, (None if r_stderr is None else sigma * r_stderr / r_ohm)


def _clean(value):
    """float or None (never NaN/inf), for JSON-friendly result dicts."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def analyze_spectrum(frequency_hz, z_real_ohm, z_imag_ohm, thickness_um, diameter_mm,
                     temperature_c=None, label="") -> dict:
    """Conductivity of one pellet spectrum.

    Geometry: thickness in µm, electrode diameter in mm (σ = L/(R·A), A = π·d²/4). Returns a dict with
    "file" (= label), "temperature_c", "model", "r_total_ohm", "r_bulk_ohm", "sigma_total_s_per_cm",
    "sigma_bulk_s_per_cm", "kk_residual_pct", plus stderr keys, "r_gb_ohm", "c_bulk_f", "c_gb_f",
    "eps_r_bulk", "eps_r_gb" (apparent relative permittivities of the arcs), "inductance_h",
    "separation", "r_total_determinable", "fit_residual_pct" and "warnings" (one per failed
    R_total test, naming it). Unknown values are None; r_total_ohm and σ_total are None when R_total
    is not determinable. Uncertainties come from the fit covariance only (geometry errors not
    included).
    """
    length_cm, area_cm2 = _pellet_geometry_cm(thickness_um, diameter_mm)
    fit = fit_spectrum(frequency_hz, z_real_ohm, z_imag_ohm, thickness_um, diameter_mm)
    return _result_dict(fit, length_cm, area_cm2, temperature_c, label)


def _result_dict(fit: SpectrumFit, length_cm, area_cm2, temperature_c, label) -> dict:
    r_total = fit.r_total_ohm if fit.r_total_determinable else None
    r_total_stderr = fit.r_total_stderr_ohm if fit.r_total_determinable else None
    sigma_total, sigma_total_stderr = _conductivity(r_total, r_total_stderr, length_cm, area_cm2)
    sigma_bulk, sigma_bulk_stderr = _conductivity(fit.r_bulk_ohm, fit.r_bulk_stderr_ohm, length_cm, area_cm2)
    return {
        "file": label,
        "temperature_c": _clean(temperature_c),
        "model": fit.model,
        "r_total_ohm": _clean(r_total),
        "r_bulk_ohm": _clean(fit.r_bulk_ohm),
        "sigma_total_s_per_cm": _clean(sigma_total),
        "sigma_bulk_s_per_cm": _clean(sigma_bulk),
        "kk_residual_pct": _clean(fit.kk_residual_pct),
        "r_total_stderr_ohm": _clean(r_total_stderr),
        "r_bulk_stderr_ohm": _clean(fit.r_bulk_stderr_ohm),
        "r_gb_ohm": _clean(fit.r_gb_ohm),
        "sigma_total_stderr_s_per_cm": _clean(sigma_total_stderr),
        "sigma_bulk_stderr_s_per_cm": _clean(sigma_bulk_stderr),
        "c_bulk_f": _clean(fit.c_bulk_f),
        "c_gb_f": _clean(fit.c_gb_f),
        "eps_r_bulk": _clean(fit.eps_r_bulk),
        "eps_r_gb": _clean(fit.eps_r_gb),
        "inductance_h": _clean(fit.inductance_h),
        "separation": fit.separation,
        "r_total_determinable": fit.r_total_determinable,
        "fit_residual_pct": _clean(fit.fit_residual_pct),
        "warnings": list(fit.warnings),
    }


# --------------------------------------------------------------------------- series and files

_SPECTRUM_COLUMNS = ("frequency_hz", "z_real_ohm", "z_imag_ohm")


def _spectrum_fields(spectrum, index: int):
    """(frequency, z_real, z_imag, temperature_c, label) from a dict or DataFrame."""
    where = f"spectrum {index}"
    if isinstance(spectrum, pd.DataFrame):
        missing = [c for c in _SPECTRUM_COLUMNS if c not in spectrum.columns]
        if missing:
            raise EisInputError(f"{where}: missing column(s) {missing}")
        temperature = spectrum["temperature_c"].mean() if "temperature_c" in spectrum.columns else None
        label = spectrum.attrs.get("label", spectrum["label"].iloc[0] if "label" in spectrum.columns else "")
        arrays = [spectrum[c].to_numpy() for c in _SPECTRUM_COLUMNS]
    elif isinstance(spectrum, dict):
        missing = [c for c in _SPECTRUM_COLUMNS if c not in spectrum]
        if missing:
            raise EisInputError(f"{where}: missing key(s) {missing}")
        temperature = spectrum.get("temperature_c")
        if temperature is not None and np.ndim(temperature) > 0:
            temperature = float(np.mean(temperature))
        label = spectrum.get("label", "")
        arrays = [spectrum[c] for c in _SPECTRUM_COLUMNS]
    else:
        raise EisInputError(f"{where}: expected a dict or DataFrame, got {type(spectrum).__name__}")
    return (*arrays, temperature, str(label if label is not None else ""))


def analyze_eis_series(spectra, thickness_um, diameter_mm) -> dict:
    """Analyse spectra of one pellet at several temperatures and fit σ(T).

    ``spectra``: dicts or DataFrames with frequency_hz, z_real_ohm, z_imag_ohm, temperature_c (°C,
    scalar or constant column) and label. Returns {"spectra": [analyze_spectrum dicts], "arrhenius":
    {"total": fit_arrhenius dict or None, "bulk": fit_arrhenius dict or None} or None (neither)};
    each Arrhenius fit (ordinary least squares on ln(σT) vs 1/T) needs ≥ 2 distinct temperatures
    with a known conductivity of its kind, so the bulk one does not depend on the total. A spectrum
    that cannot be fitted (too few points, non-finite values) gets an entry with None values and an
    "error" message; a spectrum without the required keys/columns, or bad geometry, raises
    EisInputError.
    """
    length_cm, area_cm2 = _pellet_geometry_cm(thickness_um, diameter_mm)
    results = []
    for index, spectrum in enumerate(spectra):
        f, zr, zi, temperature, label = _spectrum_fields(spectrum, index)
        try:
            fit = fit_spectrum(f, zr, zi, thickness_um, diameter_mm)
        except EisInputError as error:
            # One unusable spectrum (too short, NaN) must not cost the run its other temperatures.
            results.append(_unfitted_dict(f"spectrum {index} ({label or 'no label'}): {error}",
                                          temperature, label))
            continue
        results.append(_result_dict(fit, length_cm, area_cm2, temperature, label))
    fits = {which: _arrhenius_of(results, f"sigma_{which}") for which in ("total", "bulk")}
    arrhenius = fits if any(fits.values()) else None
    return {"spectra": results, "arrhenius": arrhenius}


def _unfitted_dict(error: str, temperature_c, label) -> dict:
    keys = ("model", "r_total_ohm", "r_bulk_ohm", "sigma_total_s_per_cm", "sigma_bulk_s_per_cm",
            "kk_residual_pct", "r_total_stderr_ohm", "r_bulk_stderr_ohm", "r_gb_ohm",
            "sigma_total_stderr_s_per_cm", "sigma_bulk_stderr_s_per_cm", "c_bulk_f", "c_gb_f",
            "eps_r_bulk", "eps_r_gb", "inductance_h", "separation", "fit_residual_pct")
    return {"file": label, "temperature_c": _clean(temperature_c), **dict.fromkeys(keys),
            "r_total_determinable": False, "warnings": [error], "error": error}


def _arrhenius_of(results, prefix: str):
    """Ordinary least squares on ln(σT) against 1/T over the spectra with a known conductivity and
    temperature: the fit standard errors measure how well each circuit fits, not the scatter of σ
    between temperatures, so they do not weight it. None below 2 distinct temperatures."""
    usable = [r for r in results if r["temperature_c"] is not None and r[f"{prefix}_s_per_cm"] is not None]
    if len({r["temperature_c"] for r in usable}) < 2:
        return None
    return fit_arrhenius([r["temperature_c"] for r in usable], [r[f"{prefix}_s_per_cm"] for r in usable])


def read_eis_csv(path) -> pd.DataFrame:
    """Read a spectrum CSV with columns frequency_hz, z_real_ohm, z_imag_ohm [, temperature_c].

    Other columns are ignored; blank lines are skipped. Raises EisCsvError naming the file, line and
    column of a missing column or a cell that is not a finite number.
    """
    path = Path(path)
    required = list(_SPECTRUM_COLUMNS)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise EisCsvError(f"{path}, line {line}: unreadable, not UTF-8 text ({error.reason})") from None
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
    except csv.Error as error:
        raise EisCsvError(f"{path}, line {reader.line_num}: unreadable ({error})") from None
    if not rows:
        raise EisCsvError(f"{path}: empty file, expected a header with {', '.join(required)}")
    header_line, header = rows[0]
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise EisCsvError(f"{path}, line {header_line}: missing column(s) {', '.join(missing)}")
    wanted = required + (["temperature_c"] if "temperature_c" in header else [])
    positions = {name: header.index(name) for name in wanted}
    data: dict[str, list[float]] = {name: [] for name in wanted}
    for number, row in rows[1:]:
        for name, position in positions.items():
            cell = row[position].strip() if position < len(row) else ""
            try:
                value = float(cell)
            except ValueError:
                raise EisCsvError(
                    f"{path}, line {number}, column {name}: {cell!r} is not a number") from None
            if not math.isfinite(value):
                raise EisCsvError(f"{path}, line {number}, column {name}: {cell!r} is not a finite number")
            data[name].append(value)
    if not data["frequency_hz"]:
        raise EisCsvError(f"{path}: no data rows after the header on line {header_line}")
    frame = pd.DataFrame(data)
    frame.attrs["label"] = path.name
    return frame
