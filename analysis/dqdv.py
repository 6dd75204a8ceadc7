"""Differential capacity dQ/dV of the constant-current part of one half cycle.

Method (research/analysis.md §4.6): sort the samples by voltage and average the capacity of samples
that share a voltage (ADC quantisation), interpolate Q(V) linearly onto a uniform voltage grid spanning
the data, take finite differences between neighbouring grid points (reported at the interval
midpoints), then smooth with a Gaussian of the given FWHM using reflecting edges. Differences plus a
reflecting, normalised kernel conserve the area: the sum of dQ/dV × step equals the capacity between
the lowest and highest voltage. The result is not normalised by area or mass.

Sign: charge curves are positive, discharge curves negative, whatever the sign convention of the
capacity passed in. CV holds and rests must be excluded (dQ/dV is unbounded where V is constant);
``dqdv_for_cycle`` does that from a cycling record.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from analysis.cycling import CHARGE, DISCHARGE, CyclingDataError, prepare_record

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_DIRECTIONS = {"charge": CHARGE, "discharge": DISCHARGE}


class DqdvInputError(ValueError):
    """The data cannot give a dQ/dV curve; the message says which input and why."""


def dqdv(voltage_v, capacity_ah, grid_step_v: float = 0.002, smoothing_fwhm_v: float | None = 0.01,
         direction: str | None = None) -> dict:
    """dQ/dV (Ah/V) of one constant-current half cycle.

    voltage_v, capacity_ah: samples in time order (V, Ah); capacity cumulative within the half cycle,
        either sign convention.
    grid_step_v: requested voltage grid spacing (V, > 0, typically 0.001–0.005); the grid spans the
        data exactly, so the step used (returned) is at most this.
    smoothing_fwhm_v: FWHM (V) of the Gaussian smoothing; 0 or None for none.
    direction: 'charge' (positive result) or 'discharge' (negative result); None infers it from the
        voltage: rising over the samples means charge.

    Returns {"voltage_v": grid midpoints, "dqdv_ah_per_v", "direction", "grid_step_v",
    "smoothing_fwhm_v", "capacity_ah": |Q(V_max) - Q(V_min)|}.
    """
    voltage = np.asarray(voltage_v, dtype=float).ravel()
    capacity = np.asarray(capacity_ah, dtype=float).ravel()
    if voltage.size != capacity.size:
        raise DqdvInputError(f"voltage_v has {voltage.size} samples but capacity_ah has {capacity.size}")
    if not (np.isfinite(voltage).all() and np.isfinite(capacity).all()):
        raise DqdvInputError("voltage_v and capacity_ah must be finite")
    if not grid_step_v > 0:
        raise DqdvInputError(f"grid_step_v must be > 0 V, got {grid_step_v!r}")
    if smoothing_fwhm_v is not None and not smoothing_fwhm_v >= 0:
        raise DqdvInputError(f"smoothing_fwhm_v must be >= 0 V or None, got {smoothing_fwhm_v!r}")
    if direction is None:
        if voltage.size < 2:
            raise DqdvInputError("need at least 2 samples to infer the direction")
        direction = "charge" if voltage[-1] >= voltage[0] else "discharge"
    if direction not in _DIRECTIONS:
        raise DqdvInputError(f"direction must be 'charge', 'discharge' or None, got {direction!r}")

    distinct_v, inverse = np.unique(voltage, return_inverse=True)
    if distinct_v.size < 3:
        raise DqdvInputError(f"need at least 3 distinct voltages, got {distinct_v.size}")
    mean_q = np.bincount(inverse, weights=capacity) / np.bincount(inverse)

    n_points = int(np.ceil((distinct_v[-1] - distinct_v[0]) / grid_step_v)) + 1
    grid = np.linspace(distinct_v[0], distinct_v[-1], n_points)
    step = float(grid[1] - grid[0])
    q_on_grid = np.interp(grid, distinct_v, mean_q)
    # Oriented so that the capacity grows along the voltage axis; the sign is put back per direction.
    span = q_on_grid[-1] - q_on_grid[0]
    orientation = 1.0 if span >= 0 else -1.0
    derivative = orientation * np.diff(q_on_grid) / step
    if smoothing_fwhm_v:
        derivative = gaussian_filter1d(derivative, sigma=smoothing_fwhm_v / _FWHM_PER_SIGMA / step,
                                       mode="reflect", truncate=4.0)
    if direction == "discharge":
        derivative = -derivative
    return {
        "voltage_v": 0.5 * (grid[:-1] + grid[1:]),
        "dqdv_ah_per_v": derivative,
        "direction": direction,
        "grid_step_v": step,
        "smoothing_fwhm_v": float(smoothing_fwhm_v or 0.0),
        "capacity_ah": float(abs(span)),
    }


def dqdv_for_cycle(df: pd.DataFrame, cycle: int, half: str = "charge", grid_step_v: float = 0.002,
                   smoothing_fwhm_v: float | None = 0.01, rest_current_a: float | None = None) -> dict:
    """dQ/dV of the CC samples of one half cycle of a cycling record (rests and CV excluded).

    df: cycling record as accepted by ``analysis.cycling.summarize_cycles``; cycle numbered as there.
    half: 'charge' or 'discharge'. Other arguments as in ``dqdv``. Returns ``dqdv``'s dict plus
    "cycle" and "half"; capacity_ah is the Ah-counted CC capacity of that half cycle.
    """
    if half not in _DIRECTIONS:
        raise DqdvInputError(f"half must be 'charge' or 'discharge', got {half!r}")
    try:
        record = prepare_record(df, rest_current_a=rest_current_a)
    except CyclingDataError as exc:
        raise DqdvInputError(str(exc)) from exc
    selected = (record.cycle == cycle) & (record.state == _DIRECTIONS[half]) & ~record.is_cv
    if not selected.any():
        raise DqdvInputError(f"cycle {cycle} has no constant-current {half} samples")
    result = dqdv(record.voltage_v[selected], np.cumsum(record.charge_ah[selected]),
                  grid_step_v=grid_step_v, smoothing_fwhm_v=smoothing_fwhm_v, direction=half)
    result["capacity_ah"] = float(abs(record.charge_ah[selected].sum()))
    result.update(cycle=int(cycle), half=half)
    return result
