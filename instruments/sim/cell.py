"""A solid-state sodium cell as the cycler (and the potentiostat's EIS) sees it.

One physical model for the paper's cells (PAPER.md): a NaCrO2 composite cathode against a Sn anode
(full cell, sodium-limited), a Na9Sn4 counter electrode (half cell, sodium reservoir), or a
Na9Sn4 | o-NBH | Na9Sn4 symmetric cell. Terminal voltage

    V = U_NaCrO2(n + δc) − U_anode(y + δa) + I·R(T)            (+ u, symmetric cells: V = I·R + u)

- U: open-circuit curves of ocv_curves.py; n is the cathode's desodiated fraction, y the Sn's
  sodiated fraction; I > 0 charges.
- R(T) = [separator + composite cathode + anode interface + contact] / area. The separator and the
  cathode's ionic path follow the electrolyte's σ(T) (σT Arrhenius, o-NBH-Q: 4.6 mS/cm at 30 °C,
  Ea 0.49 eV); the composite is a transmission line of ionic resistance L·τ/(ε·σ) and charge-transfer
  resistance, whose DC value is sqrt(R_ion·R_ct)·coth(ν), ν = sqrt(R_ion/R_ct).
- δc, δa: solid-state diffusion in the active particles. The surface-minus-mean composition of a
  sphere under a constant flux, from Crank's series, Δ(t) = ṅ·τ_D·[1/15 − (2/3)·Σ exp(−μk²t/τ_D)/μk²]
  (tan μk = μk), kept as six first-order modes plus the instant remainder, so piecewise-constant
  currents are exact superpositions. τ_D = R²/D is Arrhenius. In the cathode the flux is multiplied by
  the transmission line's reaction non-uniformity ν·coth(ν) (the separator side of a thick or cold
  composite works harder), which is what makes thick cathodes and cold discharges reach the cut-off
  early.
- Side reactions: on the first charge a fraction of the current oxidises the electrolyte at the
  cathode (charge without desodiation) and a fraction of the sodium reaching Sn is trapped there
  (the full cells' 70–81 % ICE); later charges lose a smaller fraction the same way (CE, fade of a
  sodium-limited cell); the cathode loses active material in proportion to charge throughput.

CC and rest steps are solved in closed form on a time grid (numpy, no loop per point); CV steps are
integrated semi-implicitly with growing steps (a loop per integration step, a few hundred per hold).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from instruments.sim.ocv_curves import NA9SN4_POTENTIAL_V, nacro2_ocv_v, slope, sn_ocv_v
from instruments.sim.pellet import K_B_EV

SECONDS_PER_HOUR = 3600.0
REFERENCE_TEMPERATURE_C = 25.0

# Roots of tan μ = μ: the decay rates μk²/τ_D of the diffusion modes of a sphere.
_MU = np.array([4.493409457909064, 7.725251836937707, 10.904121659428899,
                14.066193912831473, 17.220755271930768, 20.371302959287561])
_MU2 = _MU ** 2
_MODE_WEIGHT = (2.0 / 3.0) / _MU2
# Σ over all roots of 1/μk² is 1/10, so the steady surface excess is ṅτ/15; the modes left out decay
# within τ/500 and are taken as instant.
_INSTANT_WEIGHT = 1.0 / 15.0 - float(_MODE_WEIGHT.sum())

# Composite thickness vs NaCrO2 loading, PAPER.md: 123, 217, 310 µm at 15, 30, 45 mg/cm².
_LOADING_MG_PER_CM2 = (15.0, 30.0, 45.0)
_THICKNESS_UM = (123.0, 217.0, 310.0)

KINDS = ("full", "half", "symmetric")
ANODES = ("Sn", "Na9Sn4")


class CellConfigError(ValueError):
    """A cell section or override names an unknown constant or holds a value out of range."""


class CellStepError(ValueError):
    """A step's arguments cannot be simulated (e.g. no condition would ever end it)."""


@dataclass
class CellConstants:
    """Every physical parameter of one simulated cell (units in the names; defaults: the paper's
    NCO/NZC/o-NBH composite, o-NBH-Q separator, 25 °C reference for Arrhenius terms)."""

    # --- what the cell is (a protocol's [cell] section) ---
    kind: str = "full"                               # "full" | "half" | "symmetric"
    anode: str = "Sn"                                # "Sn" (full) | "Na9Sn4" (half, symmetric)
    area_cm2: float = 0.785                          # electrode area, cm² (10 mm die)
    cathode_loading_mg_per_cm2: float = 15.0         # NaCrO2 per electrode area, mg/cm²
    active_mass_mg: float | None = None              # NaCrO2 mass, mg (None: loading × area)
    specific_capacity_mah_per_g: float = 120.0       # NaCrO2 practical capacity, mAh/g (1 C)
    # --- geometry and transport ---
    cathode_thickness_um: float | None = None        # composite thickness, µm (None: from loading)
    cathode_tortuosity: float = 3.46                 # ionic tortuosity τ of the composite (NCO/NZC/o-NBH)
    cathode_electrolyte_fraction: float = 0.30       # ε, electrolyte volume fraction of the composite
    separator_thickness_um: float = 580.0            # o-NBH separator pellet, µm
    electrolyte_sigma_ref_s_per_cm: float = 4.6e-3   # σ of the electrolyte at the reference T, S/cm
    electrolyte_ref_temperature_c: float = 30.0      # °C
    electrolyte_ea_ev: float = 0.49                  # σT = A·exp(−Ea/kT), eV
    cathode_charge_transfer_ohm_mg: float = 1500.0   # R_ct × active mass at 25 °C, Ω·mg
    cathode_charge_transfer_ea_ev: float = 0.45      # eV
    cathode_diffusion_time_s: float = 13600.0        # τ_D = R²/D of NaCrO2 particles at 25 °C, s
    cathode_diffusion_ea_ev: float = 0.33            # eV
    contact_ohm_cm2: float = 50.0                    # cell-specific interface/contact ASR at 25 °C, Ω·cm²
    contact_ea_ev: float = 0.34                      # eV
    # --- anode ---
    anode_np_ratio: float = 1.35                     # Sn capacity / NaCrO2 capacity (N:P)
    anode_diffusion_time_s: float = 14600.0          # τ_D of Sn particles at 25 °C, s
    anode_diffusion_ea_ev: float = 0.26              # eV
    anode_interface_ohm_cm2: float = 10.0            # anode | electrolyte ASR at 25 °C, Ω·cm²
    anode_interface_ea_ev: float = 0.45              # eV
    na9sn4_potential_v: float = NA9SN4_POTENTIAL_V   # Na9Sn4 vs Na, V
    initial_cathode_desodiated_frac: float = 0.01    # n of the as-made cathode
    initial_anode_sodiated_frac: float = 0.002       # y of the as-made Sn
    # --- first cycle, side reactions, fade ---
    first_charge_trap_frac: float = 0.25             # of the Na reaching Sn on the first charge, trapped
    trap_frac: float = 0.0015                        # the same on every later charge (CE, fade)
    first_charge_side_reaction_frac: float = 0.02    # of the first charge's current, electrolyte oxidation
    side_reaction_frac: float = 0.0                  # the same on later charges
    cathode_fade_per_cycle_frac: float = 0.0         # active NaCrO2 lost per full-capacity charge
    # --- symmetric Na9Sn4 cells ---
    symmetric_interface_ohm_cm2: float = 30.0        # each Na9Sn4 | o-NBH interface at 25 °C, Ω·cm²
    symmetric_interface_growth_per_mah_per_cm2: float = 0.002   # relative growth per mAh/cm² passed
    symmetric_relaxation_ohm_cm2: float = 15.0       # slow interfacial (stripping/plating) term, Ω·cm²
    symmetric_relaxation_time_s: float = 600.0       # its time constant, s
    # --- measurement ---
    voltage_noise_v: float = 5e-4                    # Gaussian noise on recorded voltage, V (1σ)
    double_layer_f_per_cm2: float = 5e-6             # interfacial capacitance for EIS arcs, F/cm²
    cpe_n: float = 0.85                              # CPE exponent of those arcs
    lead_inductance_h: float = 1e-7                  # H
    impedance_noise_pct: float = 0.3                 # relative noise on |Z|, %
    interphase_growth_per_day: float = 0.0           # relative contact-ASR growth per day of age

    @property
    def mass_mg(self) -> float:
        return (self.active_mass_mg if self.active_mass_mg is not None
                else self.cathode_loading_mg_per_cm2 * self.area_cm2)

    @property
    def capacity_ah(self) -> float:
        """Nominal (1 C · 1 h) cathode capacity, Ah."""
        return self.mass_mg * self.specific_capacity_mah_per_g * 1e-6

    @property
    def thickness_um(self) -> float:
        if self.cathode_thickness_um is not None:
            return self.cathode_thickness_um
        slope_um, icpt = np.polyfit(_LOADING_MG_PER_CM2, _THICKNESS_UM, 1)
        return float(icpt + slope_um * self.cathode_loading_mg_per_cm2)


_SECTION_INFO_KEYS = ("name", "description")


def cell_constants_for(cell_section: dict, overrides: dict | None = None) -> CellConstants:
    """CellConstants from a protocol's [cell] section (its keys and its optional ``sim`` table of
    constant overrides), then the station's [sim.cell] ``overrides`` on top. ``name`` and
    ``description`` are informational. Raises CellConfigError naming every bad key or value."""
    known = {f.name for f in dataclasses.fields(CellConstants)}
    section = dict(cell_section or {})
    sim_table = dict(section.pop("sim", None) or {})
    for key in _SECTION_INFO_KEYS:
        section.pop(key, None)
    values: dict = {}
    problems: list[str] = []
    for where, table in (("cell", section), ("cell.sim", sim_table), ("sim.cell", dict(overrides or {}))):
        unknown = sorted(set(table) - known)
        if unknown:
            problems.append(f"{where}: unknown key(s) {unknown}")
        values.update({k: v for k, v in table.items() if k in known})
    if problems:
        raise CellConfigError("; ".join(problems) + f"; known: {sorted(known)}")
    constants = CellConstants(**values)
    _validate(constants)
    return constants


def _validate(k: CellConstants) -> None:
    problems = []
    if k.kind not in KINDS:
        problems.append(f"kind {k.kind!r} is not one of {KINDS}")
    if k.anode not in ANODES:
        problems.append(f"anode {k.anode!r} is not one of {ANODES}")
    elif k.kind == "full" and k.anode != "Sn":
        problems.append("a full cell needs anode 'Sn'")
    elif k.kind in ("half", "symmetric") and k.anode != "Na9Sn4":
        problems.append(f"a {k.kind} cell needs anode 'Na9Sn4'")
    positive = ("area_cm2", "cathode_loading_mg_per_cm2", "specific_capacity_mah_per_g",
                "cathode_tortuosity", "separator_thickness_um", "electrolyte_sigma_ref_s_per_cm",
                "cathode_charge_transfer_ohm_mg", "cathode_diffusion_time_s", "anode_np_ratio",
                "anode_diffusion_time_s", "symmetric_relaxation_time_s", "double_layer_f_per_cm2")
    for name in positive:
        value = getattr(k, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            problems.append(f"{name} = {value!r} must be a positive number")
    for name in ("active_mass_mg", "cathode_thickness_um"):
        value = getattr(k, name)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"{name} = {value!r} must be a positive number (or absent)")
    non_negative = ("electrolyte_ea_ev", "cathode_charge_transfer_ea_ev", "cathode_diffusion_ea_ev",
                    "contact_ohm_cm2", "contact_ea_ev", "anode_diffusion_ea_ev", "anode_interface_ohm_cm2",
                    "anode_interface_ea_ev", "symmetric_interface_ohm_cm2",
                    "symmetric_interface_growth_per_mah_per_cm2", "symmetric_relaxation_ohm_cm2",
                    "voltage_noise_v", "lead_inductance_h", "impedance_noise_pct",
                    "interphase_growth_per_day")
    for name in non_negative:
        value = getattr(k, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            problems.append(f"{name} = {value!r} must be a number >= 0")
    fractions = ("cathode_electrolyte_fraction", "initial_cathode_desodiated_frac",
                 "initial_anode_sodiated_frac", "first_charge_trap_frac", "trap_frac",
                 "first_charge_side_reaction_frac", "side_reaction_frac", "cathode_fade_per_cycle_frac")
    for name in fractions:
        value = getattr(k, name)
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            problems.append(f"{name} = {value!r} must be in [0, 1)")
    if not 0 < k.cpe_n <= 1:
        problems.append(f"cpe_n = {k.cpe_n!r} must be in (0, 1]")
    if problems:
        raise CellConfigError("cell: " + "; ".join(problems))


# --- the paper's cells ------------------------------------------------------------------------

_FULL_CELL_COMMON = {
    "kind": "full", "anode": "Sn", "area_cm2": 0.785, "specific_capacity_mah_per_g": 120.0,
}

# Per-cell physics, calibrated once against PAPER.md (tests/instruments/sim/test_cell_calibration.py
# checks the figures that emerge from them). Units as in CellConstants.
_PAPER_CELLS: dict[str, dict] = {
    "full_15mg": {**_FULL_CELL_COMMON, "cathode_loading_mg_per_cm2": 15.0,
                  "sim": {"anode_np_ratio": 1.35, "contact_ohm_cm2": 5.0,
                          "first_charge_trap_frac": 0.19, "trap_frac": 0.0015}},
    "full_30mg": {**_FULL_CELL_COMMON, "cathode_loading_mg_per_cm2": 30.0,
                  "sim": {"anode_np_ratio": 1.35, "contact_ohm_cm2": 185.0,
                          "first_charge_trap_frac": 0.228, "trap_frac": 0.0015}},
    "full_45mg": {**_FULL_CELL_COMMON, "cathode_loading_mg_per_cm2": 45.0,
                  "sim": {"anode_np_ratio": 1.35, "contact_ohm_cm2": 93.5,
                          "first_charge_trap_frac": 0.186, "trap_frac": 0.0015}},
    "half_nco_nzc_onbh_15mg": {"kind": "half", "anode": "Na9Sn4", "area_cm2": 0.785,
                               "cathode_loading_mg_per_cm2": 15.0, "specific_capacity_mah_per_g": 120.0,
                               "sim": {"contact_ohm_cm2": 5.0, "first_charge_trap_frac": 0.0,
                                       "trap_frac": 0.0, "first_charge_side_reaction_frac": 0.0,
                                       "side_reaction_frac": 0.0005,
                                       "cathode_fade_per_cycle_frac": 0.0006}},
    "symmetric_na9sn4": {"kind": "symmetric", "anode": "Na9Sn4", "area_cm2": 0.785,
                         "cathode_loading_mg_per_cm2": 15.0, "specific_capacity_mah_per_g": 120.0,
                         "sim": {}},
}


def paper_cell(name: str) -> dict:
    """The [cell] section (plain dict, with its ``sim`` table) of one of the paper's cells:
    "full_15mg", "full_30mg", "full_45mg", "half_nco_nzc_onbh_15mg", "symmetric_na9sn4"."""
    if name not in _PAPER_CELLS:
        raise KeyError(f"no paper cell {name!r}; known: {sorted(_PAPER_CELLS)}")
    cell = dict(_PAPER_CELLS[name])
    cell["sim"] = dict(cell["sim"])
    return cell


def paper_cell_names() -> list[str]:
    return sorted(_PAPER_CELLS)


# --- the model ----------------------------------------------------------------------------------

@dataclass
class StepTrace:
    """Records of one cycler step (see notes/cell_api.md)."""

    time_s: np.ndarray        # s since the step started, increasing, starts at 0
    voltage_v: np.ndarray     # V (with measurement noise)
    current_a: np.ndarray     # A, positive on charge
    capacity_ah: np.ndarray   # |charge| passed since the step started, Ah
    energy_wh: np.ndarray     # |energy| since the step started, Wh
    end_reason: str           # "voltage" | "current" | "time" | "capacity"


def _arrhenius(ea_ev: float, temperature_c: float, ref_c: float = REFERENCE_TEMPERATURE_C) -> float:
    """Factor by which an activated resistance or time grows from ref_c to temperature_c."""
    t, t_ref = temperature_c + 273.15, ref_c + 273.15
    return math.exp(ea_ev / K_B_EV * (1.0 / t - 1.0 / t_ref))


@dataclass
class _Kinetics:
    """Temperature-dependent lumped parameters of the cell at one temperature."""

    resistance_ohm: float
    cathode_tau_s: float     # τ_D × reaction non-uniformity
    anode_tau_s: float
    cathode_diffusion_s: float
    anode_diffusion_s: float


class CellModel:
    """State and step responses of one simulated cell; ``rng`` draws the recording noise."""

    def __init__(self, constants: CellConstants, rng: np.random.Generator) -> None:
        _validate(constants)
        self.k = constants
        self.rng = rng
        self.kind = constants.kind
        self.cathode_capacity_ah = constants.capacity_ah
        self.anode_capacity_ah = constants.capacity_ah * constants.anode_np_ratio
        self.n = constants.initial_cathode_desodiated_frac
        self.y = constants.initial_anode_sodiated_frac
        self.zc = np.zeros(_MU.size)
        self.za = np.zeros(_MU.size)
        self.u_v = 0.0
        self.current_a = 0.0
        self.trapped_ah = 0.0
        self.throughput_ah = 0.0
        self.first_charge = True
        self._temperature_c = REFERENCE_TEMPERATURE_C
        self._kinetics_cache: dict[float, _Kinetics] = {}
        self.voltage_v = float(self._terminal(self.n, self.y, 0.0, 0.0, 0.0))

    # --- physics helpers ---------------------------------------------------------------------
    def sigma_s_per_cm(self, temperature_c: float) -> float:
        """Electrolyte conductivity (σT Arrhenius), S/cm."""
        k = self.k
        t, t_ref = temperature_c + 273.15, k.electrolyte_ref_temperature_c + 273.15
        return (k.electrolyte_sigma_ref_s_per_cm * t_ref / t
                * math.exp(-k.electrolyte_ea_ev / K_B_EV * (1.0 / t - 1.0 / t_ref)))

    def resistance_parts_ohm_cm2(self, temperature_c: float) -> dict[str, float]:
        """Area-specific resistances (Ω·cm²) at temperature_c: separator, cathode ionic path and
        charge transfer (transmission line), anode interface, contact; plus ν of the cathode."""
        k = self.k
        sigma = self.sigma_s_per_cm(temperature_c)
        parts = {"separator": k.separator_thickness_um * 1e-4 / sigma}
        if self.kind == "symmetric":
            growth = 1.0 + k.symmetric_interface_growth_per_mah_per_cm2 * self.throughput_ah * 1e3 / k.area_cm2
            parts["interfaces"] = 2.0 * k.symmetric_interface_ohm_cm2 * growth * _arrhenius(
                k.anode_interface_ea_ev, temperature_c)
            return parts
        r_ion = k.thickness_um * 1e-4 * k.cathode_tortuosity / (k.cathode_electrolyte_fraction * sigma)
        r_ct = (k.cathode_charge_transfer_ohm_mg / k.mass_mg * k.area_cm2
                * _arrhenius(k.cathode_charge_transfer_ea_ev, temperature_c))
        nu = math.sqrt(r_ion / r_ct)
        parts["cathode_ionic"] = r_ion
        parts["cathode_charge_transfer"] = r_ct
        parts["cathode"] = math.sqrt(r_ion * r_ct) / math.tanh(nu)
        parts["cathode_nu"] = nu
        parts["anode_interface"] = k.anode_interface_ohm_cm2 * _arrhenius(k.anode_interface_ea_ev, temperature_c)
        parts["contact"] = k.contact_ohm_cm2 * _arrhenius(k.contact_ea_ev, temperature_c)
        return parts

    def _kinetics(self, temperature_c: float) -> _Kinetics:
        key = round(float(temperature_c), 6)
        if self.kind == "symmetric":  # resistance grows with throughput: not cached
            parts = self.resistance_parts_ohm_cm2(temperature_c)
            return _Kinetics((parts["separator"] + parts["interfaces"]) / self.k.area_cm2, 1.0, 1.0, 1.0, 1.0)
        if key not in self._kinetics_cache:
            k = self.k
            parts = self.resistance_parts_ohm_cm2(temperature_c)
            nu = parts["cathode_nu"]
            non_uniformity = nu / math.tanh(nu)
            r_total = parts["separator"] + parts["cathode"] + parts["anode_interface"] + parts["contact"]
            tau_c = k.cathode_diffusion_time_s * _arrhenius(k.cathode_diffusion_ea_ev, temperature_c)
            tau_a = k.anode_diffusion_time_s * _arrhenius(k.anode_diffusion_ea_ev, temperature_c)
            self._kinetics_cache[key] = _Kinetics(r_total / k.area_cm2, tau_c * non_uniformity, tau_a, tau_c, tau_a)
        return self._kinetics_cache[key]

    def _fractions_passed(self, current_a: float) -> tuple[float, float]:
        """(cathode, anode) share of the current that changes the electrodes' composition."""
        if current_a <= 0:
            return 1.0, 1.0
        k = self.k
        side = k.first_charge_side_reaction_frac if self.first_charge else k.side_reaction_frac
        trap = k.first_charge_trap_frac if self.first_charge else k.trap_frac
        return 1.0 - side, 1.0 - trap

    def _rates(self, current_a: float, kin: _Kinetics):
        """d n/dt, d y/dt (1/s) and the steady diffusion drives ṅ·τ (dimensionless) at current_a."""
        fc, fa = self._fractions_passed(current_a)
        ndot = current_a * fc / (SECONDS_PER_HOUR * self.cathode_capacity_ah)
        ydot = current_a * fa / (SECONDS_PER_HOUR * self.anode_capacity_ah) if self.kind == "full" else 0.0
        return ndot, ydot, ndot * kin.cathode_tau_s, ydot * kin.anode_tau_s

    def _anode_ocv(self, y):
        if self.kind == "full":
            return sn_ocv_v(y)
        return np.full(np.shape(y), self.k.na9sn4_potential_v) if np.ndim(y) else self.k.na9sn4_potential_v

    def _terminal(self, n_s, y_s, current_a, resistance_ohm, u_v):
        if self.kind == "symmetric":
            return current_a * resistance_ohm + u_v
        return nacro2_ocv_v(n_s) - self._anode_ocv(y_s) + current_a * resistance_ohm

    def ocv_v(self, temperature_c: float) -> float:
        """Relaxed open-circuit voltage of the cell now, V (no entropic term: T is accepted for the
        interface only)."""
        if self.kind == "symmetric":
            return 0.0
        return float(nacro2_ocv_v(self.n) - self._anode_ocv(self.y))

    # --- closed-form constant-current trajectory ----------------------------------------------
    def _trajectory(self, current_a: float, kin: _Kinetics, t):
        """Arrays n, y, zc, za, u and V at times t (s) under constant current from the present state."""
        t = np.asarray(t, dtype=float)
        ndot, ydot, drive_c, drive_a = self._rates(current_a, kin)
        n = self.n + ndot * t
        y = self.y + ydot * t
        if self.kind == "symmetric":
            k = self.k
            u_ss = current_a * k.symmetric_relaxation_ohm_cm2 / k.area_cm2 * _arrhenius(
                k.anode_interface_ea_ev, self._temperature_c)
            u = u_ss + (self.u_v - u_ss) * np.exp(-t / k.symmetric_relaxation_time_s)
            v = current_a * kin.resistance_ohm + u
            return n, y, None, None, u, v
        decay_c = np.exp(-np.outer(t, _MU2 / kin.cathode_diffusion_s))
        zc = _MODE_WEIGHT * drive_c + (self.zc - _MODE_WEIGHT * drive_c) * decay_c
        n_s = n + zc.sum(axis=1) + _INSTANT_WEIGHT * drive_c
        if self.kind == "full":
            decay_a = np.exp(-np.outer(t, _MU2 / kin.anode_diffusion_s))
            za = _MODE_WEIGHT * drive_a + (self.za - _MODE_WEIGHT * drive_a) * decay_a
            y_s = y + za.sum(axis=1) + _INSTANT_WEIGHT * drive_a
        else:
            za, y_s = None, y
        v = self._terminal(n_s, y_s, current_a, kin.resistance_ohm, 0.0)
        return n, y, zc, za, None, v

    def _commit(self, current_a: float, kin: _Kinetics, t_end: float, voltage_v: float) -> None:
        n, y, zc, za, u, _ = self._trajectory(current_a, kin, np.array([t_end]))
        self.n, self.y = float(n[0]), float(y[0])
        if zc is not None:
            self.zc = zc[0].copy()
        if za is not None:
            self.za = za[0].copy()
        if u is not None:
            self.u_v = float(u[0])
        self._account(current_a, abs(current_a) * t_end / SECONDS_PER_HOUR)
        self.current_a = current_a
        self.voltage_v = float(voltage_v)

    def _account(self, current_a: float, charge_ah: float) -> None:
        """Bookkeeping after charge_ah passed at the sign of current_a: trapped sodium, throughput,
        cathode fade."""
        self.throughput_ah += charge_ah
        if current_a > 0 and self.kind != "symmetric":
            _, fa = self._fractions_passed(current_a)
            self.trapped_ah += charge_ah * (1.0 - fa) if self.kind == "full" else 0.0
            loss = self.k.cathode_fade_per_cycle_frac * charge_ah / self.k.capacity_ah
            self.cathode_capacity_ah *= (1.0 - loss)

    def _physical_limit_s(self, current_a: float) -> float:
        """Time (s) until an electrode's mean composition reaches empty or full at current_a."""
        if self.kind == "symmetric" or current_a == 0:
            return math.inf
        ndot, ydot, _, _ = self._rates(current_a, self._kinetics(self._temperature_c))
        limits = [(1.0 - self.n) / ndot if ndot > 0 else self.n / -ndot]
        if self.kind == "full":
            limits.append((1.0 - self.y) / ydot if ydot > 0 else self.y / -ydot)
        return max(0.0, min(limits))

    # --- steps --------------------------------------------------------------------------------
    def run_cc(self, current_a: float, temperature_c: float, *, until_voltage_v: float | None = None,
               max_duration_s: float = math.inf, max_capacity_ah: float | None = None,
               record_interval_s: float = 60.0, record_dv: float = 0.005) -> StepTrace:
        """Constant current (A, > 0 charges) at temperature_c until the voltage reaches
        until_voltage_v (≥ on charge, ≤ on discharge), max_duration_s or max_capacity_ah passes."""
        _check_step_args(record_interval_s=record_interval_s, record_dv=record_dv, max_duration_s=max_duration_s)
        current_a = float(current_a)
        if current_a == 0:
            raise CellStepError("run_cc: current_a must not be 0 (use run_rest)")
        self._temperature_c = float(temperature_c)
        if current_a < 0:
            self.first_charge = False  # the first discharge closes the formation charge
        kin = self._kinetics(temperature_c)
        ends = {"time": max_duration_s}
        if max_capacity_ah is not None:
            if max_capacity_ah < 0:
                raise CellStepError(f"run_cc: max_capacity_ah = {max_capacity_ah} must be >= 0")
            ends["capacity"] = max_capacity_ah * SECONDS_PER_HOUR / abs(current_a)
        limit_s = self._physical_limit_s(current_a)
        horizon = min(min(ends.values()), limit_s)
        if not math.isfinite(horizon):
            raise CellStepError("run_cc: the step has no finite end (give max_duration_s or max_capacity_ah)")
        sign = 1.0 if current_a > 0 else -1.0

        def crossed(v):
            return sign * (v - until_voltage_v) >= 0 if until_voltage_v is not None else np.zeros(np.shape(v), bool)

        grid = _time_grid(horizon, record_interval_s)
        v = self._trajectory(current_a, kin, grid)[-1]
        hit = np.flatnonzero(crossed(v))
        if hit.size:
            j = hit[0]
            t_end = 0.0 if j == 0 else _refine_crossing(
                lambda t: self._trajectory(current_a, kin, t)[-1], crossed, grid[j - 1], grid[j])
            reason = "voltage"
        else:
            t_end = horizon
            reason = min(ends, key=ends.get) if min(ends.values()) <= limit_s else "voltage"
        keep = grid < t_end
        t_rec, v_rec = grid[keep], v[keep]
        v_end = float(self._trajectory(current_a, kin, np.array([t_end]))[-1][0])
        idx = _record_indices(t_rec, v_rec, record_interval_s, record_dv, log=False)
        t_all = np.append(t_rec, t_end) if t_end > 0 or t_rec.size == 0 else t_rec
        v_all = np.append(v_rec, v_end) if t_end > 0 or t_rec.size == 0 else v_rec
        energy = _cumulative_energy_wh(t_all, v_all * current_a)
        sel = np.append(idx, t_all.size - 1) if t_all.size > 1 else np.array([0])
        sel = np.unique(sel)
        t_out = t_all[sel]
        trace = StepTrace(
            time_s=t_out,
            voltage_v=v_all[sel] + self._noise(sel.size),
            current_a=np.full(sel.size, current_a),
            capacity_ah=abs(current_a) * t_out / SECONDS_PER_HOUR,
            energy_wh=energy[sel],
            end_reason=reason)
        self._commit(current_a, kin, t_end, v_end)
        return trace

    def run_rest(self, duration_s: float, temperature_c: float, *, record_interval_s: float = 60.0) -> StepTrace:
        """Open circuit for duration_s; diffusion gradients and the interfacial term relax."""
        _check_step_args(record_interval_s=record_interval_s, max_duration_s=duration_s)
        if not math.isfinite(duration_s):
            raise CellStepError("run_rest: duration_s must be finite")
        self._temperature_c = float(temperature_c)
        kin = self._kinetics(temperature_c)
        t_all = _time_grid(duration_s, record_interval_s)
        v_all = self._trajectory(0.0, kin, t_all)[-1]
        sel = np.unique(np.append(_record_indices(t_all, v_all, record_interval_s, None, log=False),
                                  t_all.size - 1))
        trace = StepTrace(time_s=t_all[sel], voltage_v=v_all[sel] + self._noise(sel.size),
                          current_a=np.zeros(sel.size), capacity_ah=np.zeros(sel.size),
                          energy_wh=np.zeros(sel.size), end_reason="time")
        self._commit(0.0, kin, float(duration_s), float(v_all[-1]))
        return trace

    def run_cv(self, voltage_v: float, temperature_c: float, *, until_current_a: float,
               max_duration_s: float = math.inf, record_interval_s: float = 60.0,
               record_di_frac: float = 0.05) -> StepTrace:
        """Hold voltage_v until |I| <= until_current_a (at once if already below) or max_duration_s."""
        _check_step_args(record_interval_s=record_interval_s, max_duration_s=max_duration_s)
        if until_current_a <= 0 and not math.isfinite(max_duration_s):
            raise CellStepError("run_cv: until_current_a must be > 0 unless max_duration_s is finite")
        if not 0 < record_di_frac < 1:
            raise CellStepError(f"run_cv: record_di_frac = {record_di_frac} must be in (0, 1)")
        self._temperature_c = float(temperature_c)
        kin = self._kinetics(temperature_c)
        times, currents, charges = [0.0], [], [0.0]
        i_now = self._cv_current(voltage_v, kin, 0.0)
        currents.append(i_now)
        t, h, reason = 0.0, 1.0, "time"
        h_max = max(1.0, min(record_interval_s, 600.0))
        if abs(i_now) <= until_current_a:
            reason = "current"
        else:
            while t < max_duration_s:
                step = min(h, max_duration_s - t, _next_boundary(t, record_interval_s) - t)
                state = self._cv_state()
                i_next = self._cv_step(voltage_v, kin, step, i_now)
                if abs(i_next) <= until_current_a:
                    # land on the cut-off: shorten the step in proportion to the current's fall
                    self._cv_restore(state)
                    frac = (abs(i_now) - until_current_a) / max(abs(i_now) - abs(i_next), 1e-30)
                    step = max(step * frac, 1e-6)
                    i_next = self._cv_step(voltage_v, kin, step, i_now)
                    reason = "current"
                t += step
                charges.append(charges[-1] + 0.5 * (i_now + i_next) * step / SECONDS_PER_HOUR)
                times.append(t)
                currents.append(i_next)
                i_now = i_next
                if reason == "current":
                    break
                h = min(h * 1.4, h_max)
        t_all = np.array(times)
        i_all = np.array(currents)
        q_all = np.abs(np.array(charges))
        energy = _cumulative_energy_wh(t_all, voltage_v * i_all)
        sel = np.unique(np.append(_record_indices(t_all, np.abs(i_all), record_interval_s,
                                                  -math.log(1.0 - record_di_frac), log=True),
                                  t_all.size - 1))
        self.current_a = float(i_all[-1])
        self.voltage_v = float(voltage_v)
        return StepTrace(time_s=t_all[sel], voltage_v=voltage_v + self._noise(sel.size),
                         current_a=i_all[sel], capacity_ah=q_all[sel], energy_wh=energy[sel],
                         end_reason=reason)

    # --- CV integration ------------------------------------------------------------------------
    def _cv_state(self):
        return (self.n, self.y, self.zc.copy(), self.za.copy(), self.u_v, self.trapped_ah,
                self.throughput_ah, self.cathode_capacity_ah)

    def _cv_restore(self, state) -> None:
        (self.n, self.y, self.zc, self.za, self.u_v, self.trapped_ah,
         self.throughput_ah, self.cathode_capacity_ah) = state

    def _cv_current(self, voltage_v: float, kin: _Kinetics, step_s: float, guess_a: float = 0.0) -> float:
        """Current that holds voltage_v after an implicit step of step_s from the present state."""
        current = guess_a
        for _ in range(4):  # Newton on the (mildly non-linear) OCV; the rest of the system is linear
            v, dv_di = self._implicit_voltage(current, kin, step_s)
            change = (v - voltage_v) / dv_di
            current -= change
            if abs(change) <= 1e-7 * abs(current) + 1e-15:
                break
        return float(current)

    def _implicit_voltage(self, current_a: float, kin: _Kinetics, step_s: float):
        """Terminal voltage after an implicit (backward Euler) step at current_a, and dV/dI."""
        if self.kind == "symmetric":
            r_u, a = self._symmetric_relaxation(step_s)
            u = (self.u_v + a * r_u * current_a) / (1 + a)
            return current_a * kin.resistance_ohm + u, kin.resistance_ohm + r_u * a / (1 + a)
        cathode, anode = self._implicit_electrodes(current_a, kin, step_s)
        u_c, du_c = _value_and_slope(nacro2_ocv_v, cathode[0])
        v = u_c + current_a * kin.resistance_ohm
        dv_di = du_c * cathode[1] + kin.resistance_ohm
        if anode is not None:
            u_a, du_a = _value_and_slope(sn_ocv_v, anode[0])
            v -= u_a
            dv_di -= du_a * anode[1]
        else:
            v -= self.k.na9sn4_potential_v
        return v, dv_di

    def _implicit_electrodes(self, current_a: float, kin: _Kinetics, step_s: float):
        """(surface, d surface/dI, filling, modes) of the cathode and of the Sn anode (None for a
        half cell) after an implicit step at current_a."""
        fc, fa = self._fractions_passed(current_a)
        cathode = _implicit_electrode(self.n, self.zc, fc, kin.cathode_tau_s, kin.cathode_diffusion_s,
                                      self.cathode_capacity_ah, current_a, step_s)
        anode = None
        if self.kind == "full":
            anode = _implicit_electrode(self.y, self.za, fa, kin.anode_tau_s, kin.anode_diffusion_s,
                                        self.anode_capacity_ah, current_a, step_s)
        return cathode, anode

    def _symmetric_relaxation(self, step_s: float) -> tuple[float, float]:
        """Interfacial relaxation resistance (Ω) of a symmetric cell and its implicit-step weight."""
        k = self.k
        r_u = k.symmetric_relaxation_ohm_cm2 / k.area_cm2 * _arrhenius(k.anode_interface_ea_ev, self._temperature_c)
        return r_u, step_s / k.symmetric_relaxation_time_s

    def _cv_step(self, voltage_v: float, kin: _Kinetics, step_s: float, guess_a: float) -> float:
        """Advance the state by one implicit step at the current that holds voltage_v; return it."""
        current = self._cv_current(voltage_v, kin, step_s, guess_a)
        if self.kind == "symmetric":
            r_u, a = self._symmetric_relaxation(step_s)
            self.u_v = (self.u_v + a * r_u * current) / (1 + a)
        else:
            cathode, anode = self._implicit_electrodes(current, kin, step_s)
            self.n, self.zc = cathode[2], cathode[3]
            if anode is not None:
                self.y, self.za = anode[2], anode[3]
        self._account(current, abs(current) * step_s / SECONDS_PER_HOUR)
        return current

    def _noise(self, size: int) -> np.ndarray:
        if self.k.voltage_noise_v == 0:
            return np.zeros(size)
        return self.rng.normal(0.0, self.k.voltage_noise_v, size)

    # --- impedance ------------------------------------------------------------------------------
    def impedance(self, frequency_hz, temperature_c: float, age_days: float = 0.0) -> np.ndarray:
        """Noise-free complex impedance (Ω) at the present state: lead inductance, separator
        (ohmic HF intercept), contact/anode and cathode arcs (R ‖ CPE), and finite-length Warburg
        tails of the cathode (and Sn) diffusion whose size follows τ_D(T)."""
        k = self.k
        f = np.asarray(frequency_hz, dtype=float)
        jw = 2j * np.pi * f
        parts = self.resistance_parts_ohm_cm2(temperature_c)
        area = k.area_cm2
        growth = 1.0 + k.interphase_growth_per_day * age_days
        q = k.double_layer_f_per_cm2 * area
        z = jw * k.lead_inductance_h + parts["separator"] / area
        if self.kind == "symmetric":
            return z + _r_cpe(parts["interfaces"] * growth / area, q, k.cpe_n, jw)
        z = z + _r_cpe((parts["contact"] * growth + parts["anode_interface"]) / area, q, k.cpe_n, jw)
        z = z + _r_cpe(parts["cathode"] / area, q * 10.0, k.cpe_n, jw)
        kin = self._kinetics(temperature_c)
        z = z + _warburg(slope(nacro2_ocv_v, self.n), kin.cathode_tau_s, self.cathode_capacity_ah, jw)
        if self.kind == "full":
            z = z + _warburg(-slope(sn_ocv_v, self.y), kin.anode_tau_s, self.anode_capacity_ah, jw)
        return z

    def measured_impedance(self, frequency_hz, temperature_c: float, rng: np.random.Generator,
                           age_days: float = 0.0) -> np.ndarray:
        """Impedance with relative Gaussian noise of impedance_noise_pct % of |Z| per component."""
        z = self.impedance(frequency_hz, temperature_c, age_days)
        scale = np.abs(z) * self.k.impedance_noise_pct / 100.0
        return z + scale * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))


_SLOPE_DX = 1e-5


def _implicit_electrode(fill, modes, fraction, tau_s, diffusion_s, capacity_ah, current_a, step_s):
    """One electrode after an implicit (backward Euler) step at current_a (A) of step_s (s):
    (surface filling, its derivative by the current, mean filling, diffusion modes)."""
    per_amp = fraction / (SECONDS_PER_HOUR * capacity_ah)        # filling per A·s
    drive = per_amp * tau_s
    g = step_s * _MU2 / diffusion_s
    new_modes = (modes + g * _MODE_WEIGHT * drive * current_a) / (1 + g)
    new_fill = fill + per_amp * step_s * current_a
    surface = new_fill + new_modes.sum() + _INSTANT_WEIGHT * drive * current_a
    slope = per_amp * step_s + (g * _MODE_WEIGHT * drive / (1 + g)).sum() + _INSTANT_WEIGHT * drive
    return surface, slope, new_fill, new_modes


def _value_and_slope(curve, x: float) -> tuple[float, float]:
    """An OCV curve's value at x and its central-difference slope (V per unit fraction), one call."""
    x = min(max(float(x), 2 * _SLOPE_DX), 1.0 - 2 * _SLOPE_DX)
    lo, mid, hi = curve(np.array([x - _SLOPE_DX, x, x + _SLOPE_DX]))
    return float(mid), float((hi - lo) / (2 * _SLOPE_DX))


def _r_cpe(r_ohm: float, q: float, n: float, jw):
    return r_ohm / (1.0 + r_ohm * q * jw ** n)


def _warburg(ocv_slope_v: float, tau_s: float, capacity_ah: float, jw):
    """Finite-length reflective diffusion element equivalent to a sphere of diffusion time tau_s:
    low-frequency resistance slope·τ/(15·Q) and intercalation capacitance Q/slope."""
    tau_w = tau_s / 5.0
    r_w = max(ocv_slope_v, 1e-6) * tau_w / (SECONDS_PER_HOUR * capacity_ah)
    x = np.sqrt(jw * tau_w)
    return r_w / (x * np.tanh(x))


# --- grids and record selection -------------------------------------------------------------------

def _check_step_args(*, record_interval_s: float, max_duration_s: float, record_dv: float | None = None) -> None:
    if not record_interval_s > 0:
        raise CellStepError(f"record_interval_s = {record_interval_s} must be > 0")
    if record_dv is not None and not record_dv > 0:
        raise CellStepError(f"record_dv = {record_dv} must be > 0")
    if not max_duration_s >= 0:
        raise CellStepError(f"duration {max_duration_s} must be >= 0")


_GRID_POINTS = 3000


def _time_grid(horizon_s: float, record_interval_s: float) -> np.ndarray:
    """Times 0..horizon with every multiple of record_interval_s on the grid and at least
    ~_GRID_POINTS points across the step."""
    if horizon_s <= 0:
        return np.zeros(1)
    target = max(horizon_s / _GRID_POINTS, 1e-3)
    per_interval = max(1, math.ceil(record_interval_s / target))
    dt = record_interval_s / per_interval
    count = int(math.floor(horizon_s / dt)) + 1
    grid = np.arange(count) * dt
    if grid[-1] < horizon_s:
        grid = np.append(grid, horizon_s)
    return grid


def _refine_crossing(voltage_at, crossed, t_lo: float, t_hi: float) -> float:
    """Earliest time in (t_lo, t_hi] at which crossed(voltage) holds, to (t_hi−t_lo)/4096."""
    for _ in range(2):
        t = np.linspace(t_lo, t_hi, 65)
        hit = np.flatnonzero(crossed(voltage_at(t)))
        j = hit[0] if hit.size else t.size - 1
        t_lo, t_hi = t[max(j - 1, 0)], t[j]
    return float(t_hi)


def _record_indices(t: np.ndarray, signal: np.ndarray, interval_s: float, delta: float | None, *, log: bool):
    """Indices of the points to record: the first, each grid point on a multiple of interval_s, and
    each point where the signal has moved to another band of width delta (in log for currents)
    counted from its starting value."""
    if t.size == 0:
        return np.zeros(0, dtype=int)
    tick = np.floor(t / interval_s + 1e-9)
    keep = np.zeros(t.size, dtype=bool)
    keep[0] = True
    keep[1:] |= tick[1:] != tick[:-1]
    if delta is not None:
        s = np.log(np.maximum(signal, 1e-30)) if log else signal
        band = np.floor((s - s[0]) / delta)
        keep[1:] |= band[1:] != band[:-1]
    return np.flatnonzero(keep)


def _next_boundary(t: float, interval_s: float) -> float:
    return (math.floor(t / interval_s + 1e-9) + 1) * interval_s


def _cumulative_energy_wh(t: np.ndarray, power_w: np.ndarray) -> np.ndarray:
    if t.size < 2:
        return np.zeros(t.size)
    p = np.abs(power_w)
    return np.concatenate(([0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(t)))) / SECONDS_PER_HOUR
