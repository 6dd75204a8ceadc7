"""Open-circuit potentials of the simulated cells' electrodes, as smooth monotonic functions.

Each curve is a sum of logistic steps (the phase plateaus), a small Nernst-like log term and two
hyperbolic walls at the ends of the composition range, so every curve is strictly monotonic,
vectorised over numpy arrays, and runs away at an empty or full electrode (so a cut-off voltage is
always reached). Potentials are in volts vs Na/Na+; compositions are fractions 0–1 of the practical
capacity (NaCrO2: 120 mAh/g; Sn: 845 mAh/g, i.e. Sn → Na15Sn4).

- NaCrO2 (desodiated fraction n; 0 = as made): about 2.9 V at the start, the characteristic
  ~2.9–3.0 V plateau to n ≈ 0.48, a step to a gently rising ~3.3–3.45 V region, then a steep rise
  above n ≈ 0.95 (the 3.4 V vs Na9Sn4 cut-off keeps the cathode below it).
- Sn (sodiated fraction y; 0 = pristine Sn): the multi-plateau sodiation curve, ~0.45 V
  (Sn → NaSn3, y < 0.09), ~0.2 V (→ NaSn, y < 0.27), ~0.1 V (→ Na9Sn4, y < 0.6), ~0.05 V (→ Na15Sn4).
- Na9Sn4 counter electrode: a flat 0.15 V (it is a large sodium reservoir in the paper's half and
  symmetric cells).
"""
from __future__ import annotations

import numpy as np

NA9SN4_POTENTIAL_V = 0.18
_EDGE = 1e-6
_WALL_V = 1e-3


def _logistic(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _clip(x):
    return np.clip(x, _EDGE, 1.0 - _EDGE)


def nacro2_ocv_v(n):
    """NaCrO2 potential vs Na (V) at desodiated fraction ``n`` (0–1, clipped to the open interval)."""
    n = _clip(np.asarray(n, dtype=float))
    return (2.92 + 0.08 * n
            + 0.30 * _logistic((n - 0.48) / 0.025)
            + 0.10 * _logistic((n - 0.80) / 0.07)
            + 0.16 * _logistic((n - 0.955) / 0.012)
            + 0.02 * np.log(n / (1.0 - n))
            + _WALL_V * (1.0 / (1.0 - n) - 1.0 / n))


def sn_ocv_v(y):
    """Sn potential vs Na (V) at sodiated fraction ``y`` of 845 mAh/g (0–1, clipped)."""
    y = _clip(np.asarray(y, dtype=float))
    return (0.05
            + 0.05 * _logistic((0.60 - y) / 0.012)
            + 0.10 * _logistic((0.27 - y) / 0.012)
            + 0.20 * _logistic((0.09 - y) / 0.012)
            + 0.015 * np.log((1.0 - y) / y)
            + _WALL_V * (1.0 / y - 1.0 / (1.0 - y)))


def slope(curve, x, dx: float = 1e-5):
    """Central-difference derivative dU/dx of an OCV curve (V per unit fraction)."""
    x = float(np.clip(x, 2 * dx, 1.0 - 2 * dx))
    return float((curve(x + dx) - curve(x - dx)) / (2 * dx))
