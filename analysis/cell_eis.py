"""Ohmic and polarization resistance of a battery cell's impedance spectrum.

A cell spectrum (Nyquist, high to low frequency) shows lead inductance, the real-axis crossing
(ohmic resistance: electrolyte + contacts), one or more depressed arcs (interfaces, charge
transfer), then a diffusion tail. Read off, not fitted, so that it needs no circuit model:

- ``r_ohmic_ohm``: Z' where −Z'' crosses zero going from inductive to capacitive (linear
  interpolation); if the spectrum is capacitive throughout, Z' at the highest frequency (an upper
  bound, flagged by ``ohmic_method``).
- ``r_total_ohm``: Z' at the valley of −Z'' between the last arc and the diffusion tail (the last
  minimum after which −Z'' climbs to the lowest frequency, peaks and valleys standing out by 2 %
  of the arc height; valleys between arcs do not count); without a tail,
  Z' at the lowest frequency: "arc_closed" when −Z'' has fallen below 10 % of the arc's peak
  there, otherwise "lowest_frequency" (a lower bound).
- ``r_polarization_ohm`` = r_total − r_ohmic.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

PROMINENCE = 0.02
CLOSED_FRACTION = 0.1


class CellEisInputError(ValueError):
    """Spectrum arrays that cannot be analysed."""


def analyze_cell_spectrum(frequency_hz, z_real_ohm, z_imag_ohm, area_cm2: float | None = None) -> dict:
    f = np.asarray(frequency_hz, float)
    zr = np.asarray(z_real_ohm, float)
    zi = np.asarray(z_imag_ohm, float)
    if not f.shape == zr.shape == zi.shape or f.ndim != 1:
        raise CellEisInputError("frequency_hz, z_real_ohm and z_imag_ohm must be 1-D and equally long")
    if f.size < 5:
        raise CellEisInputError(f"need at least 5 frequencies, got {f.size}")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(zr)) and np.all(np.isfinite(zi))) or np.any(f <= 0):
        raise CellEisInputError("frequencies must be positive and all values finite")
    order = np.argsort(f)[::-1]
    f, zr, y = f[order], zr[order], -zi[order]

    r_ohmic, ohmic_method = zr[0], "highest_frequency"
    crossing = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))
    if crossing.size:
        k = crossing[0]
        r_ohmic = zr[k] + (zr[k + 1] - zr[k]) * (0 - y[k]) / (y[k + 1] - y[k])
        ohmic_method = "zero_crossing"

    # Peaks and valleys must stand out by PROMINENCE × the arc height, so that noise around
    # −Z'' ≈ 0 at high frequency is not mistaken for an arc.
    start = crossing[0] + 1 if crossing.size else 0
    height = float(np.max(y[start:])) if y[start:].size else 0.0
    r_total, total_method = zr[-1], "lowest_frequency"
    if height > 0:
        peaks, _ = find_peaks(y[start:], prominence=PROMINENCE * height)
        if peaks.size:
            first_peak = start + peaks[0]
            valleys, _ = find_peaks(-y[first_peak:], prominence=PROMINENCE * height)
            # Only a valley after which −Z'' climbs into the low-frequency tail ends the arcs; a
            # valley between two arcs does not (the total includes every arc).
            last = first_peak + valleys[-1] if valleys.size else None
            if last is not None and y[-1] >= y[last] + PROMINENCE * height:
                r_total, total_method = zr[last], "valley"
            elif y[-1] < CLOSED_FRACTION * np.max(y[first_peak:]):
                total_method = "arc_closed"
    result = {"r_ohmic_ohm": float(r_ohmic), "r_total_ohm": float(r_total),
              "r_polarization_ohm": float(r_total - r_ohmic), "ohmic_method": ohmic_method,
              "total_method": total_method}
    if area_cm2:
        result.update(r_ohmic_ohm_cm2=result["r_ohmic_ohm"] * area_cm2,
                      r_polarization_ohm_cm2=result["r_polarization_ohm"] * area_cm2)
    return result
