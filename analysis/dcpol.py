"""Electronic conductivity from DC polarization (Hebb-Wagner, ion-blocking electrodes).

A pellet between ion-blocking electrodes is held at a few constant voltages (default protocol 0.1,
0.2, 0.3, 0.4 V). At each step the current decays from an ionic charging transient to a steady
electronic current (nA for sigma_e ~ 1e-8 S/cm on a 1 mm x 10 mm pellet). The analysis
(research/analysis.md section 4.3):

1. Segmentation: steps are the runs of a constant set voltage, found from the voltage column (a change
   larger than ``voltage_tolerance_v`` starts a new step; a 5-sample running median first removes
   spikes) or, when given, from runs of equal values of a step column. Segments whose voltage is
   within ``voltage_tolerance_v`` of 0 V (rests, depolarisation) and segments with fewer than 3 samples
   are not steps; they are listed under "ignored_segments".
2. Tail of each step: its last ``window_s`` seconds, or its last half when the step is shorter.
   A straight line I = a + b*t is fitted to the tail. The steady current is that line at the step's end;
   the drift is |b| / |I_steady| in 1/h. A step is converged when it lasted at least ``window_s`` and
   its drift is below ``drift_criterion_per_h`` (default 1 %/h over the last hour).
3. sigma_e from the I-V slope: ordinary least squares of steady current against voltage over the
   converged steps, sigma_e = slope * L / A (L thickness in cm, A = pi d^2 / 4 in cm^2). A constant
   current offset (instrument zero, leakage) only moves the intercept, which is reported as
   "offset_a". Its standard error comes from the regression (None with 2 points). With fewer than 2
   converged steps the same regression runs over every step's last value ("last_values"); with a
   single voltage level (every step within ``voltage_tolerance_v`` of the others) there is no
   slope and sigma_e is the mean of the per-step I/V ratios ("ratio"), which, unlike the slope,
   includes any current offset.
4. Per step, sigma_e = I_steady / V * L / A (biased by any offset: offset * L / (V * A)).
   t_e = sigma_e / sigma_ion when sigma_ion is given.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.ndimage import median_filter

from analysis.inputs import as_series, check_positive
from analysis.physics import disc_area_cm2

SECONDS_PER_HOUR = 3600.0
MIN_STEP_POINTS = 3
DESPIKE_SAMPLES = 5
LEVEL_SAMPLES = 5


class DcpolInputError(ValueError):
    """The DC polarization records or parameters cannot be analysed."""


TIME_TIE_S = 1e-3


def analyze_dcpol(
    time_s: ArrayLike,
    voltage_v: ArrayLike,
    current_a: ArrayLike,
    thickness_um: float,
    diameter_mm: float,
    drift_criterion_per_h: float = 0.01,
    window_s: float = 3600.0,
    sigma_ion_s_per_cm: float | None = None,
    step: ArrayLike | None = None,
    *,
    voltage_tolerance_v: float = 0.02,
) -> dict[str, Any]:
    """Steady currents and electronic conductivity of a multi-step DC polarization record.

    time_s: sample times (s, strictly increasing). voltage_v: applied/measured cell voltage (V).
    current_a: cell current (A). thickness_um: pellet thickness (um, > 0). diameter_mm: electrode
    diameter (mm, > 0). drift_criterion_per_h: largest relative drift of a converged step (1/h, > 0).
    window_s: length of the tail judged for convergence (s, > 0). sigma_ion_s_per_cm: ionic
    conductivity (S/cm, > 0) for t_e, optional. step: optional step label per sample (any values;
    each run of equal labels is one step). voltage_tolerance_v: voltage change that starts a new step
    when segmenting from the voltage, and the |V| below which a segment is a rest (V, > 0).

    Returns {"steps": [per-step dicts], "sigma_e_s_per_cm", "sigma_e_stderr_s_per_cm", "t_e",
    "method" ("slope" | "last_values" | "ratio"), "offset_a", "n_steps_used", "ignored_segments",
    "area_cm2", "thickness_cm", "drift_criterion_per_h", "window_s"}. Each step dict has "voltage_v",
    "steady_current_a", "converged", "drift_per_h", "duration_s", "start_s", "end_s", "tail_s",
    "n_points", "sigma_e_s_per_cm". Numbers are floats; unknowns are None, never NaN.
    """
    time = as_series(time_s, "time_s", DcpolInputError)
    voltage = as_series(voltage_v, "voltage_v", DcpolInputError)
    current = as_series(current_a, "current_a", DcpolInputError)
    if not time.size == voltage.size == current.size:
        raise DcpolInputError(
            f"time_s, voltage_v and current_a must have the same length, got "
            f"{time.size}, {voltage.size}, {current.size}"
        )
    if time.size < MIN_STEP_POINTS:
        raise DcpolInputError(f"need at least {MIN_STEP_POINTS} samples, got {time.size}")
    # A step's last record and the next step's first share the switching instant, up to the
    # instrument's time quantisation: a tie within TIME_TIE_S is not a time going backwards.
    backwards = np.flatnonzero(np.diff(time) < -TIME_TIE_S)
    if backwards.size:
        raise DcpolInputError(f"time_s must not decrease; it does at sample {backwards[0] + 1}")
    if not np.ptp(time) > 0:
        raise DcpolInputError("time_s does not advance: all samples at the same time")
    check_positive(DcpolInputError, thickness_um=thickness_um, diameter_mm=diameter_mm,
                    drift_criterion_per_h=drift_criterion_per_h, window_s=window_s,
                    voltage_tolerance_v=voltage_tolerance_v)
    if sigma_ion_s_per_cm is not None:
        check_positive(DcpolInputError, sigma_ion_s_per_cm=sigma_ion_s_per_cm)

    thickness_cm = thickness_um * 1e-4
    area_cm2 = disc_area_cm2(diameter_mm)
    geometry_cm = thickness_cm / area_cm2

    if step is None:
        bounds = _segments_from_voltage(voltage, voltage_tolerance_v)
    else:
        bounds = _segments_from_labels(step, time.size)

    steps: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    for first, stop in bounds:
        level = float(np.median(voltage[first + (stop - first) // 2:stop]))
        if stop - first < MIN_STEP_POINTS or abs(level) < voltage_tolerance_v:
            reason = "rest (|V| below voltage_tolerance_v)" if abs(level) < voltage_tolerance_v \
                else f"fewer than {MIN_STEP_POINTS} samples"
            ignored.append({"start_s": float(time[first]), "end_s": float(time[stop - 1]),
                            "voltage_v": level, "reason": reason})
            continue
        result = _steady_state(time[first:stop], current[first:stop], window_s,
                               drift_criterion_per_h)
        result["voltage_v"] = level
        result["sigma_e_s_per_cm"] = result["steady_current_a"] / level * geometry_cm
        steps.append(result)
    if not steps:
        raise DcpolInputError(
            f"no voltage step found: every segment is a rest (|V| < {voltage_tolerance_v} V) "
            f"or shorter than {MIN_STEP_POINTS} samples"
        )

    converged = [s for s in steps if s["converged"]]
    used, method = (converged, "slope") if len(converged) >= 2 else (steps, "last_values")
    sigma, stderr, offset, method = _conductance_fit(used, method, geometry_cm, voltage_tolerance_v)
    return {
        "steps": [_ordered_step(s) for s in steps],
        "sigma_e_s_per_cm": sigma,
        "sigma_e_stderr_s_per_cm": stderr,
        "t_e": None if sigma_ion_s_per_cm is None else sigma / sigma_ion_s_per_cm,
        "method": method,
        "offset_a": offset,
        "n_steps_used": len(used),
        "ignored_segments": ignored,
        "area_cm2": area_cm2,
        "thickness_cm": thickness_cm,
        "drift_criterion_per_h": float(drift_criterion_per_h),
        "window_s": float(window_s),
    }


def _segments_from_voltage(voltage: np.ndarray, tolerance_v: float) -> list[tuple[int, int]]:
    """[first, stop) index ranges of constant set voltage."""
    despiked = median_filter(voltage, size=DESPIKE_SAMPLES, mode="nearest")
    bounds: list[tuple[int, int]] = []
    first = 0
    # One pass per step (a handful), each vectorised: the step's level is the median of its first
    # samples, and it ends at the first sample that leaves level +- tolerance. On a fast ramp even
    # the first sample may be off that median: a piece has at least one sample, or this never ends.
    while first < voltage.size:
        level = np.median(despiked[first:first + LEVEL_SAMPLES])
        leaves = np.flatnonzero(np.abs(despiked[first:] - level) > tolerance_v)
        stop = voltage.size if not leaves.size else first + max(int(leaves[0]), 1)
        bounds.append((first, stop))
        first = stop
    return _merge_equal_levels(despiked, bounds, tolerance_v)


def _merge_equal_levels(
    voltage: np.ndarray, bounds: list[tuple[int, int]], tolerance_v: float
) -> list[tuple[int, int]]:
    # A slow change of the set voltage is cut into short pieces, and a glitch longer than the
    # despiking cuts a step in three; glue a short piece to the piece after it, and neighbours at
    # the same level, again after each glue (the glued piece may now match the one before), so a
    # step is one segment.
    merged: list[tuple[int, int]] = []
    for piece in bounds:
        merged.append(piece)
        while len(merged) > 1 and _one_step(voltage, merged[-2], merged[-1], tolerance_v):
            (first, _), (_, stop) = merged[-2], merged.pop()
            merged[-1] = (first, stop)
    return merged


def _one_step(voltage: np.ndarray, earlier: tuple[int, int], later: tuple[int, int], tolerance_v: float) -> bool:
    if earlier[1] - earlier[0] < LEVEL_SAMPLES:
        return True
    level_change = np.median(voltage[later[0]:later[1]]) - np.median(voltage[earlier[0]:earlier[1]])
    return abs(level_change) <= tolerance_v


def _segments_from_labels(step: ArrayLike, n: int) -> list[tuple[int, int]]:
    labels = np.asarray(step)
    if labels.ndim != 1 or labels.size != n:
        raise DcpolInputError(f"step must be one label per sample ({n}), got shape {labels.shape}")
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    edges = np.r_[0, changes, n]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _steady_state(
    time: np.ndarray, current: np.ndarray, window_s: float, criterion_per_h: float
) -> dict[str, Any]:
    duration = float(time[-1] - time[0])
    tail_s = window_s if duration >= window_s else duration / 2
    tail = time >= time[-1] - tail_s
    if np.count_nonzero(tail) < MIN_STEP_POINTS:
        tail[-MIN_STEP_POINTS:] = True
    t_tail = time[tail] - time[-1]  # the fit's intercept is the current at the step's end
    slope, steady = np.polyfit(t_tail, current[tail], 1)
    drift = abs(slope) * SECONDS_PER_HOUR / abs(steady) if steady != 0 else None
    return {
        "steady_current_a": float(steady),
        "converged": bool(duration >= window_s and drift is not None and drift < criterion_per_h),
        "drift_per_h": None if drift is None else float(drift),
        "duration_s": duration,
        "start_s": float(time[0]),
        "end_s": float(time[-1]),
        "tail_s": float(-t_tail[0]),
        "n_points": int(time.size),
    }


def _conductance_fit(
    steps: list[dict[str, Any]], method: str, geometry_cm: float, tolerance_v: float
) -> tuple[float, float | None, float | None, str]:
    """sigma_e, its standard error, the current offset (A) and the method actually used."""
    volts = np.array([s["voltage_v"] for s in steps])
    amps = np.array([s["steady_current_a"] for s in steps])
    # Steps repeated at one set voltage differ only by the voltage noise: a slope through them
    # would be the current noise divided by the voltage noise.
    if np.ptp(volts) <= tolerance_v:
        return float(np.mean(amps / volts) * geometry_cm), None, None, "ratio"
    spread = np.sum((volts - volts.mean()) ** 2)
    slope = np.sum((volts - volts.mean()) * (amps - amps.mean())) / spread
    offset = amps.mean() - slope * volts.mean()
    stderr = None
    if len(steps) >= 3:
        residual = amps - (offset + slope * volts)
        stderr = float(math.sqrt(np.sum(residual**2) / (len(steps) - 2) / spread) * geometry_cm)
    return float(slope * geometry_cm), stderr, float(offset), method


def _ordered_step(step: dict[str, Any]) -> dict[str, Any]:
    keys = ("voltage_v", "steady_current_a", "converged", "drift_per_h", "sigma_e_s_per_cm",
            "duration_s", "start_s", "end_s", "tail_s", "n_points")
    return {key: step[key] for key in keys}
