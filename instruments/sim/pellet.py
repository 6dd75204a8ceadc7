"""An ion-conducting pellet between ion-blocking electrodes, as the potentiostat sees it.

Z(f) = jωL_lead + [R_b ‖ CPE_b] (+ [R_gb ‖ CPE_gb]) + CPE_electrode, with R_b = L/(σ(T)·A) and the
bulk CPE set so that its effective capacitance is the geometric one, ε0·εr·A/L. σ(T) follows the
σT Arrhenius form, calibrated by default to o-NBH-Q (PAPER.md): 4.6 mS/cm at 30 °C and 0.3 mS/cm
at −10 °C, which fixes Ea ≈ 0.49 eV. Every constant can be overridden from station.toml.
Under DC (polarization) the pellet is the Hebb–Wagner circuit of instruments/sim/polarization.py.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from instruments.sim.polarization import BlockingPelletPolarization, PolarizationConstants
from analysis.physics import BOLTZMANN_EV_PER_K, VACUUM_PERMITTIVITY_F_PER_CM, disc_area_cm2

K_B_EV = BOLTZMANN_EV_PER_K
EPS0_F_PER_CM = VACUUM_PERMITTIVITY_F_PER_CM


def arrhenius_sigma_t(t1_c: float, sigma1: float, t2_c: float, sigma2: float) -> tuple[float, float]:
    """(Ea in eV, prefactor A in S·K/cm) of σT = A·exp(−Ea/kT) through two points."""
    t1, t2 = t1_c + 273.15, t2_c + 273.15
    ea = K_B_EV * math.log(sigma1 * t1 / (sigma2 * t2)) / (1.0 / t2 - 1.0 / t1)
    return ea, sigma1 * t1 * math.exp(ea / (K_B_EV * t1))


@dataclass
class PelletConstants:
    """Electrical constants of the simulated pellet (defaults: o-NBH-Q, acetylene-black electrodes).

    sigma_ref_s_per_cm at ref_temperature_c and sigma_low_s_per_cm at low_temperature_c fix the σT
    Arrhenius law (unless ea_ev is given, which then replaces the low point). Grain boundary: a
    second arc with R_gb = gb_resistance_ratio·R_b and its own activation energy; off (0) by default.
    """

    sigma_ref_s_per_cm: float = 4.6e-3
    ref_temperature_c: float = 30.0
    sigma_low_s_per_cm: float = 0.3e-3
    low_temperature_c: float = -10.0
    ea_ev: float | None = None
    relative_permittivity: float = 10.0
    bulk_cpe_n: float = 0.95
    gb_resistance_ratio: float = 0.0
    gb_ea_ev: float = 0.55
    gb_capacitance_f: float = 2e-10
    gb_cpe_n: float = 0.85
    electrode_q_f_s_n: float = 2e-6
    electrode_cpe_n: float = 0.88
    lead_inductance_h: float = 1e-7
    lead_resistance_ohm: float = 0.0
    noise_pct: float = 0.3
    electronic_sigma_s_per_cm: float = 1e-8
    aging_per_day: float = 0.0


class PelletModel:
    """Impedance and DC polarization current of a pellet of given geometry at a given temperature.

    ``polarization`` sets the DC (Hebb–Wagner) transient; defaults when None.
    """

    def __init__(self, constants: PelletConstants | None = None, thickness_um: float = 1000.0,
                 diameter_mm: float = 10.0, polarization: PolarizationConstants | None = None) -> None:
        self.k = constants or PelletConstants()
        if thickness_um <= 0 or diameter_mm <= 0:
            raise ValueError("pellet thickness and diameter must be positive")
        self.thickness_cm = thickness_um * 1e-4
        self.area_cm2 = disc_area_cm2(diameter_mm)
        if self.k.ea_ev is None:
            self.ea_ev, self.prefactor = arrhenius_sigma_t(
                self.k.ref_temperature_c, self.k.sigma_ref_s_per_cm,
                self.k.low_temperature_c, self.k.sigma_low_s_per_cm)
        else:
            self.ea_ev = self.k.ea_ev
            t_ref = self.k.ref_temperature_c + 273.15
            self.prefactor = self.k.sigma_ref_s_per_cm * t_ref * math.exp(self.ea_ev / (K_B_EV * t_ref))
        self.dc = BlockingPelletPolarization(self, polarization)

    def sigma_s_per_cm(self, temperature_c: float, age_days: float = 0.0) -> float:
        """Bulk ionic conductivity in S/cm at ``temperature_c`` after ``age_days`` at room temperature."""
        t = temperature_c + 273.15
        sigma = self.prefactor / t * math.exp(-self.ea_ev / (K_B_EV * t))
        return sigma * max(0.0, 1.0 - self.k.aging_per_day * age_days)

    def bulk_resistance_ohm(self, temperature_c: float, age_days: float = 0.0) -> float:
        return self.thickness_cm / (self.sigma_s_per_cm(temperature_c, age_days) * self.area_cm2)

    def gb_resistance_ohm(self, temperature_c: float, age_days: float = 0.0) -> float:
        if self.k.gb_resistance_ratio <= 0:
            return 0.0
        t, t_ref = temperature_c + 273.15, self.k.ref_temperature_c + 273.15
        r_ref = self.k.gb_resistance_ratio * self.bulk_resistance_ohm(self.k.ref_temperature_c, age_days)
        return r_ref * (t / t_ref) * math.exp(self.k.gb_ea_ev / K_B_EV * (1.0 / t - 1.0 / t_ref))

    def geometric_capacitance_f(self) -> float:
        return EPS0_F_PER_CM * self.k.relative_permittivity * self.area_cm2 / self.thickness_cm

    def total_resistance_ohm(self, temperature_c: float, age_days: float = 0.0) -> float:
        """The real-axis intercept at the foot of the electrode spike (what σ_total is made from)."""
        return (self.k.lead_resistance_ohm + self.bulk_resistance_ohm(temperature_c, age_days)
                + self.gb_resistance_ohm(temperature_c, age_days))

    def electronic_resistance_ohm(self) -> float:
        """DC resistance of the electronic leak between blocking electrodes, Ω."""
        return self.thickness_cm / (self.k.electronic_sigma_s_per_cm * self.area_cm2)

    def rest_potential_v(self, temperature_c: float) -> float:
        """Open-circuit voltage of the symmetric blocking cell: 0 V."""
        return 0.0

    def current_response(self, t_s, e_v, temperature_c: float) -> np.ndarray:
        """DC current (A) for applied voltages ``e_v`` (V) at clock times ``t_s`` (s), chunk after
        contiguous chunk (see BlockingPelletPolarization); the pellet is taken as un-aged."""
        return self.dc.current_response(t_s, e_v, temperature_c)

    def impedance(self, frequency_hz, temperature_c, age_days: float = 0.0) -> np.ndarray:
        """Noise-free complex impedance in Ω at each frequency (temperature may be per frequency)."""
        f = np.asarray(frequency_hz, dtype=float)
        temps = np.broadcast_to(np.asarray(temperature_c, dtype=float), f.shape)
        w = 2 * np.pi * f
        jw = 1j * w
        z = self.k.lead_resistance_ohm + jw * self.k.lead_inductance_h
        rb = np.array([self.bulk_resistance_ohm(t, age_days) for t in temps.ravel()]).reshape(f.shape)
        z = z + _r_parallel_cpe(rb, _q_for_capacitance(self.geometric_capacitance_f(), rb,
                                                        self.k.bulk_cpe_n), self.k.bulk_cpe_n, jw)
        if self.k.gb_resistance_ratio > 0:
            rgb = np.array([self.gb_resistance_ohm(t, age_days) for t in temps.ravel()]).reshape(f.shape)
            q = _q_for_capacitance(self.k.gb_capacitance_f, rgb, self.k.gb_cpe_n)
            z = z + _r_parallel_cpe(rgb, q, self.k.gb_cpe_n, jw)
        # The electronic leak shunts the blocking electrodes: it closes the spike at very low f.
        z_el = 1.0 / (self.k.electrode_q_f_s_n * jw ** self.k.electrode_cpe_n)
        r_e = self.electronic_resistance_ohm()
        z = z + z_el * r_e / (z_el + r_e)
        return z

    def measured_impedance(self, frequency_hz, temperature_c, rng: np.random.Generator,
                           age_days: float = 0.0) -> np.ndarray:
        """Impedance with relative Gaussian noise of ``noise_pct`` % of |Z| on each component."""
        z = self.impedance(frequency_hz, temperature_c, age_days)
        scale = np.abs(z) * self.k.noise_pct / 100.0
        return z + scale * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))


def _q_for_capacitance(c_eff_f, r_ohm, n: float):
    """CPE Q whose Brug effective capacitance with R is c_eff: C = (R^(1−n)·Q)^(1/n)."""
    return np.asarray(c_eff_f) ** n / np.asarray(r_ohm) ** (1.0 - n)


def _r_parallel_cpe(r, q, n, jw):
    return r / (1.0 + r * q * jw ** n)
