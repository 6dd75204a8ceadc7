"""Physical formulas used in more than one place: each one written once.

Units are in the names: a diameter in mm gives an area in cm², a thickness in µm a length in cm.
"""
from __future__ import annotations

import math

VACUUM_PERMITTIVITY_F_PER_CM = 8.8541878128e-14
BOLTZMANN_EV_PER_K = 8.617333262e-5
ZERO_C_IN_K = 273.15


def disc_area_cm2(diameter_mm: float) -> float:
    """Area of a disc (pellet, electrode) of the given diameter: π d² / 4, d in cm."""
    diameter_cm = diameter_mm / 10.0
    return math.pi * diameter_cm * diameter_cm / 4.0


def conductivity_s_per_cm(resistance_ohm: float, thickness_um: float, area_cm2: float) -> float:
    """σ = L / (R·A) of a sample of thickness L between two electrodes of area A."""
    return (thickness_um * 1e-4) / (resistance_ohm * area_cm2)
