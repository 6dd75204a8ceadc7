"""Ohmic and polarization resistance read off synthetic cell spectra with known circuits."""
from __future__ import annotations

import numpy as np
import pytest

from analysis.cell_eis import CellEisInputError, analyze_cell_spectrum


def cell_spectrum(r0=20.0, r1=150.0, q1=2e-5, n1=0.85, sigma_w=40.0, inductance=2e-7,
                  f_hi=1e6, f_lo=0.1, noise=0.003, seed=0):
    f = np.logspace(np.log10(f_hi), np.log10(f_lo), 71)
    w = 2 * np.pi * f
    z = r0 + 1j * w * inductance + r1 / (1 + r1 * q1 * (1j * w) ** n1) + sigma_w * (1 - 1j) / np.sqrt(w)
    rng = np.random.default_rng(seed)
    z = z + noise * np.abs(z) * (rng.standard_normal(f.size) + 1j * rng.standard_normal(f.size))
    return f, z.real, z.imag


@pytest.mark.parametrize("r0, r1", [(20.0, 150.0), (5.0, 40.0), (60.0, 900.0)])
def test_ohmic_and_total_resistance(r0, r1):
    result = analyze_cell_spectrum(*cell_spectrum(r0=r0, r1=r1), area_cm2=0.785)
    assert result["ohmic_method"] == "zero_crossing"
    assert result["r_ohmic_ohm"] == pytest.approx(r0, rel=0.05)
    assert result["total_method"] == "valley"
    # The valley sits where the arc meets the diffusion tail: slightly beyond r0 + r1.
    assert result["r_total_ohm"] == pytest.approx(r0 + r1, rel=0.08)
    assert result["r_polarization_ohm_cm2"] == pytest.approx(result["r_polarization_ohm"] * 0.785)


def test_open_arc_gives_a_flagged_lower_bound():
    f, zr, zi = cell_spectrum(r1=5e4, q1=2e-5, f_lo=10.0, sigma_w=0.0)
    result = analyze_cell_spectrum(f, zr, zi)
    assert result["total_method"] == "lowest_frequency"
    assert result["r_total_ohm"] < 20.0 + 5e4


def test_without_inductance_the_highest_frequency_bounds_the_ohmic_resistance():
    f, zr, zi = cell_spectrum(inductance=0.0, f_hi=1e4)
    result = analyze_cell_spectrum(f, zr, zi)
    assert result["ohmic_method"] == "highest_frequency"
    assert result["r_ohmic_ohm"] >= 20.0


def test_bad_input():
    with pytest.raises(CellEisInputError, match="at least 5"):
        analyze_cell_spectrum([1, 2], [1, 2], [1, 2])
    with pytest.raises(CellEisInputError, match="equally long"):
        analyze_cell_spectrum(np.ones(6), np.ones(5), np.ones(6))


def test_noise_near_the_real_axis_is_not_an_arc_and_a_closed_arc_is_read_at_its_end():
    f, zr, zi = cell_spectrum(r0=113.0, r1=870.0, q1=2e-6, sigma_w=0.0, f_lo=0.1, noise=0.004, seed=3)
    result = analyze_cell_spectrum(f, zr, zi)
    assert result["r_ohmic_ohm"] == pytest.approx(113.0, rel=0.05)
    assert result["total_method"] in ("arc_closed", "valley")
    assert result["r_polarization_ohm"] == pytest.approx(870.0, rel=0.05)


def test_two_arcs_count_together_in_the_polarization():
    f = np.logspace(6, -2, 81)
    w = 2 * np.pi * f
    z = (150.0 + 1j * w * 2e-7 + 500.0 / (1 + 500.0 * 3e-6 * (1j * w) ** 0.9)
         + 600.0 / (1 + 600.0 * 3e-5 * (1j * w) ** 0.9) + 30.0 * (1 - 1j) / np.sqrt(w))
    result = analyze_cell_spectrum(f, z.real, z.imag)
    assert result["total_method"] == "valley"
    assert result["r_polarization_ohm"] == pytest.approx(1100.0, rel=0.08)


def test_two_arcs_without_a_tail_are_read_at_the_closed_end():
    f = np.logspace(6, -2, 81)
    w = 2 * np.pi * f
    z = (150.0 + 1j * w * 2e-7 + 500.0 / (1 + 500.0 * 3e-6 * (1j * w) ** 0.9)
         + 600.0 / (1 + 600.0 * 3e-5 * (1j * w) ** 0.9))
    result = analyze_cell_spectrum(f, z.real, z.imag)
    assert result["total_method"] == "arc_closed"
    assert result["r_polarization_ohm"] == pytest.approx(1100.0, rel=0.03)
