"""Electrochemical stability window from a linear sweep voltammogram (LSV).

Cell: Na9Sn4 | solid electrolyte | solid electrolyte + carbon (oxidation scan) or + stainless steel
(reduction scan) working electrode; potentials are those of the working electrode against Na9Sn4 as
recorded, and the current is positive for oxidation at the working electrode. One call analyses one
sweep (from OCV up, or from OCV down).

Method (research/analysis.md section 4.4):

1. Direction: a voltage that rises over the sweep (least-squares slope against sample index) is an
   oxidation scan, a falling one a reduction scan. ``s`` = +1 (oxidation) or -1 (reduction).
2. Smoothing: a running median (removes isolated spikes) followed by a quadratic Savitzky-Golay filter,
   both ``smoothing_v`` wide in potential, applied to the current density and to the voltage.
3. Baseline: the capacitive background C*dV/dt, a nearly constant current with at most a slight slope.
   It is a straight line j_b(V) fitted to the early part of the scan: from ``baseline_skip_v`` past the
   start (skipping the initial charging transient) over ``baseline_span_v``, both capped at a fraction
   of the swept range. The window is cut into consecutive bins; the line is the Theil-Sen fit through
   the bins' median (V, j) points, so noise spikes and a few outlying bins do not move it.
4. Threshold onset: the excess ``s*(j - j_b)`` (positive when current flows in the scan's direction) of
   the smoothed current density must exceed ``threshold_a_per_cm2`` and stay above it for at least
   ``persistence_v`` of further sweep. The onset is the first such crossing, interpolated between
   samples; None when there is none.
5. Tangent onset: the tangent to the smoothed curve where the excess first reaches
   ``tangent_multiple`` x threshold (slope from a straight-line fit over ``smoothing_v`` around that
   point), intersected with the baseline. For a Tafel-like rise j ~ exp(V/b) it lies
   b*(ln(tangent_multiple) - 1) beyond the threshold onset. None when the threshold onset is None or
   the excess never reaches that multiple.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import median_filter
from scipy.signal import savgol_filter
from scipy.stats import theilslopes

from analysis.inputs import as_series, check_positive

BASELINE_MIN_POINTS = 10
# The baseline window spans at most a quarter of the sweep and needs BASELINE_MIN_POINTS samples.
MIN_POINTS = 4 * BASELINE_MIN_POINTS
BASELINE_MAX_BINS = 50


class LsvInputError(ValueError):
    """The sweep data or the analysis parameters cannot be analysed."""


def analyze_lsv(
    voltage_v: ArrayLike,
    current_a: ArrayLike,
    area_cm2: float,
    threshold_a_per_cm2: float = 10e-6,
    time_s: ArrayLike | None = None,
    *,
    smoothing_v: float = 0.01,
    persistence_v: float = 0.02,
    baseline_skip_v: float = 0.02,
    baseline_span_v: float = 0.3,
    tangent_multiple: float = 5.0,
) -> dict[str, Any]:
    """Find the onset of faradaic current in one LSV sweep.

    voltage_v: working-electrode potential (V vs Na9Sn4), in acquisition order.
    current_a: current (A), positive for oxidation at the working electrode.
    area_cm2: working-electrode area (cm2, > 0).
    threshold_a_per_cm2: current density above the baseline that marks the onset (A/cm2, > 0;
        default 10 uA/cm2).
    time_s: optional sample times (s, increasing); only used to report the scan rate.
    smoothing_v, persistence_v, baseline_skip_v, baseline_span_v: potentials (V, > 0) that set the
        smoothing width, how long the excess must stay above the threshold, and the baseline window
        (see the module docstring).
    tangent_multiple: where the tangent is taken, as a multiple of the threshold (> 1).

    Returns a dict with "direction" ("oxidation" | "reduction"), "onset_threshold_v",
    "onset_tangent_v" (V or None), "threshold_a_per_cm2", "start_v", "end_v",
    "scan_rate_v_per_s" (None without time_s), "stable_range_v" ([low, high]: the part of the sweep
    before the onset, or all of it), "baseline_window_v", "baseline_j_at_start_a_per_cm2",
    "baseline_slope_a_per_cm2_per_v", "baseline_method", "tangent_point_v", "tangent_multiple",
    "smoothing_v", "persistence_v". Every number is a float; unknowns are None, never NaN.
    """
    voltage = as_series(voltage_v, "voltage_v", LsvInputError)
    current = as_series(current_a, "current_a", LsvInputError)
    if voltage.size != current.size:
        raise LsvInputError(
            f"voltage_v has {voltage.size} samples but current_a has {current.size}"
        )
    if voltage.size < MIN_POINTS:
        raise LsvInputError(f"an LSV needs at least {MIN_POINTS} samples, got {voltage.size}")
    check_positive(LsvInputError, area_cm2=area_cm2, threshold_a_per_cm2=threshold_a_per_cm2,
                    smoothing_v=smoothing_v, persistence_v=persistence_v,
                    baseline_skip_v=baseline_skip_v, baseline_span_v=baseline_span_v)
    if not tangent_multiple > 1:
        raise LsvInputError(f"tangent_multiple must be > 1, got {tangent_multiple}")
    scan_rate = None if time_s is None else _scan_rate(time_s, voltage)

    n = voltage.size
    sweep_slope = np.polyfit(np.arange(n), voltage, 1)[0]  # V per sample
    sign = 1.0 if sweep_slope > 0 else -1.0
    swept_v = abs(sweep_slope) * (n - 1)
    if swept_v < 2 * smoothing_v:
        raise LsvInputError(
            f"the voltage sweeps only {swept_v:.3g} V; an LSV must cover much more than "
            f"smoothing_v = {smoothing_v} V"
        )

    window = _odd_window(smoothing_v / abs(sweep_slope), n)
    voltage_s = _smooth(voltage, window)
    density = current / area_cm2
    density_s = _smooth(density, window)
    progress = sign * (voltage_s - voltage_s[0])  # V swept so far, increasing along the scan

    baseline_lo, baseline_hi = _baseline_bounds(swept_v, baseline_skip_v, baseline_span_v)
    slope, intercept = _robust_baseline(voltage, density, progress, baseline_lo, baseline_hi)
    excess = sign * (density_s - (intercept + slope * voltage_s))

    onset_index = _persistent_crossing(excess, progress, threshold_a_per_cm2, persistence_v)
    onset_v = tangent_v = tangent_point_v = None
    if onset_index is not None:
        onset_v = _interpolate_crossing(voltage_s, excess, onset_index, threshold_a_per_cm2)
        tangent_v, tangent_point_v = _tangent_onset(
            voltage_s, excess, progress, onset_index, sign,
            tangent_multiple * threshold_a_per_cm2, smoothing_v,
        )

    start_v, end_v = float(voltage_s[0]), float(voltage_s[-1])
    limit_v = end_v if onset_v is None else onset_v
    return {
        "direction": "oxidation" if sign > 0 else "reduction",
        "onset_threshold_v": onset_v,
        "onset_tangent_v": tangent_v,
        "threshold_a_per_cm2": float(threshold_a_per_cm2),
        "start_v": start_v,
        "end_v": end_v,
        "scan_rate_v_per_s": scan_rate,
        "stable_range_v": sorted([start_v, limit_v]),
        "baseline_window_v": sorted(
            [float(voltage_s[0] + sign * baseline_lo), float(voltage_s[0] + sign * baseline_hi)]
        ),
        "baseline_j_at_start_a_per_cm2": float(intercept + slope * start_v),
        "baseline_slope_a_per_cm2_per_v": float(slope),
        "baseline_method": "Theil-Sen line through binned medians of the early scan",
        "tangent_point_v": tangent_point_v,
        "tangent_multiple": float(tangent_multiple),
        "smoothing_v": float(smoothing_v),
        "persistence_v": float(persistence_v),
    }


def _scan_rate(time_s: ArrayLike, voltage: np.ndarray) -> float:
    time = as_series(time_s, "time_s", LsvInputError)
    if time.size != voltage.size:
        raise LsvInputError(f"time_s has {time.size} samples but voltage_v has {voltage.size}")
    steps = np.flatnonzero(np.diff(time) <= 0)
    if steps.size:
        raise LsvInputError(f"time_s must increase; it does not at sample {steps[0] + 1}")
    return float(abs(np.polyfit(time - time[0], voltage, 1)[0]))


def _odd_window(points: float, n: int) -> int:
    # Odd (Savitzky-Golay), at least 5 samples, and at most a quarter of the sweep (n >= MIN_POINTS).
    return min(max(int(round(points)) | 1, 5), (n // 4) | 1)


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    despiked = median_filter(values, size=window, mode="nearest")
    return savgol_filter(despiked, window, polyorder=2)


def _baseline_bounds(swept_v: float, skip_v: float, span_v: float) -> tuple[float, float]:
    # Caps keep the window inside the first part of short sweeps, where no faradaic current is
    # expected; for a 1-4 V sweep the defaults (20 mV skip, 300 mV span) apply unchanged.
    skip = min(skip_v, 0.05 * swept_v)
    span = min(span_v, 0.25 * swept_v)
    return skip, skip + span


def _robust_baseline(
    voltage: np.ndarray, density: np.ndarray, progress: np.ndarray, lo: float, hi: float
) -> tuple[float, float]:
    # The baseline window is the first stretch of the sweep whose progress lies in [lo, hi].
    inside = np.flatnonzero((progress >= lo) & (progress <= hi))
    if inside.size < BASELINE_MIN_POINTS:
        raise LsvInputError(
            f"only {inside.size} samples lie in the baseline window ({lo:.3g} to {hi:.3g} V past "
            f"the start); at least {BASELINE_MIN_POINTS} are needed"
        )
    first, last = inside[0], inside[-1] + 1
    bins = min(BASELINE_MAX_BINS, (last - first) // 5)  # >= 2: the window has >= 10 samples
    per_bin = (last - first) // bins
    stop = first + bins * per_bin
    v_bins = np.median(voltage[first:stop].reshape(bins, per_bin), axis=1)
    j_bins = np.median(density[first:stop].reshape(bins, per_bin), axis=1)
    if np.ptp(v_bins) == 0:
        return 0.0, float(np.median(j_bins))
    slope, intercept, _, _ = theilslopes(j_bins, v_bins)
    return float(slope), float(intercept)


def _persistent_crossing(
    excess: np.ndarray, progress: np.ndarray, threshold: float, persistence_v: float
) -> int | None:
    above = excess > threshold
    edges = np.diff(above.astype(np.int8))
    starts = np.flatnonzero(edges == 1) + 1
    ends = np.flatnonzero(edges == -1) + 1  # exclusive
    if above[0]:
        starts = np.r_[0, starts]
    if above[-1]:
        ends = np.r_[ends, above.size]
    spans = progress[ends - 1] - progress[starts]
    lasting = np.flatnonzero(spans >= persistence_v)
    return int(starts[lasting[0]]) if lasting.size else None


def _interpolate_crossing(
    voltage_s: np.ndarray, excess: np.ndarray, index: int, threshold: float
) -> float:
    if index == 0:
        return float(voltage_s[0])
    e0, e1 = excess[index - 1], excess[index]
    fraction = (threshold - e0) / (e1 - e0)
    return float(voltage_s[index - 1] + fraction * (voltage_s[index] - voltage_s[index - 1]))


def _tangent_onset(
    voltage_s: np.ndarray,
    excess: np.ndarray,
    progress: np.ndarray,
    onset_index: int,
    sign: float,
    level: float,
    smoothing_v: float,
) -> tuple[float | None, float | None]:
    reached = np.flatnonzero(excess[onset_index:] >= level)
    if not reached.size:
        return None, None
    point = onset_index + int(reached[0])
    near = np.flatnonzero(np.abs(progress - progress[point]) <= smoothing_v / 2)
    if near.size < 3:
        near = np.arange(max(point - 2, 0), min(point + 3, progress.size))
    rise, _ = np.polyfit(progress[near], excess[near], 1)
    if not rise > 0:
        return None, float(voltage_s[point])
    # The tangent y = excess[point] + rise * (x - progress[point]) meets the baseline (excess = 0).
    crossing_progress = progress[point] - excess[point] / rise
    return float(voltage_s[0] + sign * crossing_progress), float(voltage_s[point])
