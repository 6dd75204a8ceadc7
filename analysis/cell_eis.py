"""Ohmic and polarization resistance of a battery cell's impedance spectrum.

A cell spectrum (Nyquist, high to low frequency) shows lead inductance, the real-axis crossing
(ohmic resistance: electrolyte + contacts), one or more depressed arcs (interfaces, charge
transfer), then a diffusion tail. Read off, not fitted, so that it needs no circuit model:

- ``r_ohmic_ohm``: Z' where −Z'' crosses zero going from inductive to capacitive (linear
  interpolation); if the spectrum is capacitive throughout, Z' at the highest frequency (an upper
  bound, flagged by ``ohmic_method``).
- ``r_total_ohm``: Z' at the valley of −Z'' between the arcs and the diffusion tail (the first
  local minimum of −Z'' after its first local maximum, on a lightly smoothed curve); if the arcs
  do not close within the window, Z' at the lowest frequency (a lower bound, ``total_method``).
- ``r_polarization_ohm`` = r_total − r_ohmic.
"""
from __future__ import annotations

import numpy as np


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

    smooth = np.convolve(np.pad(y, 1, mode="edge"), np.ones(3) / 3, mode="valid")
    start = crossing[0] + 1 if crossing.size else 0
    r_total, total_method = zr[-1], "lowest_frequency"
    peaks = [i for i in range(max(start, 1), len(smooth) - 1)
             if smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1]]
    if peaks:
        valleys = [i for i in range(peaks[0] + 1, len(smooth) - 1)
                   if smooth[i] <= smooth[i - 1] and smooth[i] < smooth[i + 1]]
        if valleys:
            r_total, total_method = zr[valleys[0]], "valley"
    result = {"r_ohmic_ohm": float(r_ohmic), "r_total_ohm": float(r_total),
              "r_polarization_ohm": float(r_total - r_ohmic), "ohmic_method": ohmic_method,
              "total_method": total_method}
    if area_cm2:
        result.update(r_ohmic_ohm_cm2=result["r_ohmic_ohm"] * area_cm2,
                      r_polarization_ohm_cm2=result["r_polarization_ohm"] * area_cm2)
    return result
