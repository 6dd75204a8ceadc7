"""DC electrochemistry of the simulated loads: what the potentiostat's current follower sees.

Two loads, both built on one exactly integrated linear circuit (``LinearCircuitResponse``):

* the blocking-electrode pellet under DC polarization (Hebb–Wagner): series resistance R_s (bulk +
  grain boundary + leads, from the pellet's σ(T)) in front of the electronic leak R_e = L/(σe·A),
  the acetylene-black double layer (through a small contact resistance) and a few R–C branches that
  stand for the slow ionic polarization of the bulk. Branch k is set by its time constant τ_k and
  by r_k, its initial current relative to the steady electronic current for the same voltage step
  (R_k = R_e/r_k, C_k = τ_k/R_k). The defaults (τ = 10 s, 2 min, 15 min, 2 h; r = 3, 1, 0.3, 0.05)
  make a 0.1 V step drift by ~30 %/h at 20 min, fall below 1 %/h (instantaneous, and over the last
  hour) between 2.5 and 3 h, and settle within 0.3 % of V/R_e after 6 h. The transient follows ΔV
  since the previous level (superposition), so steps up and down both work; an abrupt step is
  limited by R_s (≈ 28 Ω: a mA spike that decays in ~0.1 ms through the double layer).
* the LSV cell Na9Sn4 | o-NBH separator | o-NBH + carbon 7:3 (oxidation) or o-NBH + stainless steel
  1:1 (reduction): the same circuit with R_s = separator (+ leads), the electrode's double-layer
  capacitance behind the composite's ionic path, a slower pseudo-capacitance, the separator's
  electronic leak R = L_sep/(σe·A), and in
  parallel a faradaic oxidation current (decomposition of B12H12²⁻/BH4⁻): Tafel kinetics
  i = i0·exp((E − E0)/b) behind a resistive decomposition-product film R_f, solved in closed form
  with the Wright omega function (i = (b/R_f)·ω(ln(R_f·i0/b) + (E_applied − E0)/b)). The film turns
  the exponential into a resistance-limited rise, a few mA/cm² at 5 V.

Choices (documented defaults, every one overridable from station.toml [sim.polarization]):
* Open-circuit potential of the LSV cells 1.30 V vs Na9Sn4: a blocking composite has no redox
  couple, its rest potential is a poorly defined mixed potential; 1.3 V sits in the middle of the
  1.0–1.5 V range such cells show. The blocking pellet rests at 0 V (symmetric).
* Capacitance: 2.5 F per g of carbon (acetylene black in a solid composite uses a small part of its
  surface) and 0.05 F per g of stainless-steel powder; 30 % more as slow pseudo-capacitance
  (τ = 30 s). At 8.9 mg/cm² of o-NBH the carbon electrode has 12.4 mF/cm² (9.7 mF on 0.785 cm²):
  0.62 µA/cm² of background at 50 µV/s; the steel electrode has 0.58 mF/cm², 0.03 µA/cm².
* Onset: for the reference carbon composite (7:3, 8.9 mg/cm² of o-NBH) the faradaic current
  density reaches 10 µA/cm² at exactly 2.20 V applied (film drop included), Tafel slope
  150 mV/decade, film 800 Ω·cm². The kinetic prefactor scales with the electrode's capacitance (its
  electronically wired interface), so the steel composite oxidizes ~0.2 V later; no faradaic
  reduction current is modelled (Na plating lies below the −0.1 V scan limit); the ≈ 1e-11 A of
  decomposition current at the OCV is balanced by as much constant cathodic current, so that the
  cell is at rest at its OCV.
* Temperature: R_s follows the electrolyte's σ(T) (PelletModel). The electronic leak, the faradaic
  kinetics, the capacitances and the Hebb–Wagner time constants are taken as temperature
  independent: the protocols run these at room temperature and the paper gives no data to set
  their activation energies.
* The faradaic current sees the applied potential through R_f only; the small extra drop of that
  current across R_s (≈ 2 % of the film drop) is neglected so that it stays memoryless and exact.
* The pellet's slow DC branches are not added to its EIS spectrum (pellet.py is unchanged): they act
  below 0.02 Hz and would move the 1 Hz end of the electrode spike by a few %.
* Between two calls the potential is taken to go linearly from the last sample to the next one (the
  channel keeps control); relaxation at open circuit (OCV technique) is not modelled.

Integration: the applied potential is piecewise linear between samples (two samples at the same
time make an abrupt step). The circuit is linear, so in its eigenmodes each state obeys
z_{k+1} = a_k·z_k + c_k with exact a_k, c_k for a linear input; the recursion runs as a
vectorised parallel prefix scan: a 6 h step of 2,160 samples costs about 1 ms, 80,000 samples a
few tens of ms, and the result does not depend on how the waveform is cut into chunks (to
rounding).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Callable

import numpy as np
from scipy.special import wrightomega

if TYPE_CHECKING:
    from instruments.sim.pellet import PelletModel

LN10 = math.log(10.0)
REFERENCE_TEMPERATURE_C = 30.0
# Below this |λh|, expm1(x)/x comes from its Taylor series (truncation error < 1e-18).
SERIES_LIMIT = 1e-4
SCAN_BLOCK = 16


class PolarizationInputError(ValueError):
    """Applied-potential samples or polarization constants that the simulated load cannot use."""


@dataclass
class PolarizationConstants:
    """Constants of the DC loads (section [sim.polarization] of station.toml).

    LSV cell (lsv_*): open_circuit_v (V vs Na9Sn4); separator_thickness_um (µm, > 0);
    composite_resistance_ohm_cm2 (ionic path through the composite to its double layer at 30 °C,
    Ω·cm², > 0; scales with 1/σ(T)); carbon_capacitance_f_per_g, steel_capacitance_f_per_g (F per g
    of the electronic additive, > 0); pseudo_capacitance_fraction (≥ 0) with pseudo_time_constant_s
    (s, > 0); onset_v (V applied) where the reference composite's faradaic current density reaches
    onset_current_density_a_per_cm2 (A/cm², > 0); tafel_slope_v_per_decade (V, > 0);
    film_resistance_ohm_cm2 (Ω·cm², > 0); reference_loading_mg_per_cm2 (o-NBH loading of the
    reference carbon composite, mg/cm², > 0).

    Blocking pellet (dc_*): contact_resistance_ohm (in series with the electrode double layer, Ω,
    > 0); transient_time_constants_s (s, > 0) and transient_amplitude_ratios (≥ 0, initial branch
    current / steady electronic current for the same step), equally long.
    """

    lsv_open_circuit_v: float = 1.30
    lsv_separator_thickness_um: float = 600.0
    lsv_composite_resistance_ohm_cm2: float = 10.0
    lsv_carbon_capacitance_f_per_g: float = 2.5
    lsv_steel_capacitance_f_per_g: float = 0.05
    lsv_pseudo_capacitance_fraction: float = 0.3
    lsv_pseudo_time_constant_s: float = 30.0
    lsv_onset_v: float = 2.2
    lsv_onset_current_density_a_per_cm2: float = 10e-6
    lsv_tafel_slope_v_per_decade: float = 0.150
    lsv_film_resistance_ohm_cm2: float = 800.0
    lsv_reference_loading_mg_per_cm2: float = 8.9
    dc_contact_resistance_ohm: float = 1.0
    dc_transient_time_constants_s: tuple = (10.0, 120.0, 900.0, 7200.0)
    dc_transient_amplitude_ratios: tuple = (3.0, 1.0, 0.3, 0.05)

    def __post_init__(self) -> None:
        self.dc_transient_time_constants_s = tuple(float(x) for x in self.dc_transient_time_constants_s)
        self.dc_transient_amplitude_ratios = tuple(float(x) for x in self.dc_transient_amplitude_ratios)
        if len(self.dc_transient_time_constants_s) != len(self.dc_transient_amplitude_ratios):
            raise PolarizationInputError(
                "sim.polarization: dc_transient_time_constants_s and dc_transient_amplitude_ratios "
                "must have the same length")
        if any(x <= 0 for x in self.dc_transient_time_constants_s):
            raise PolarizationInputError("sim.polarization: dc_transient_time_constants_s must be > 0")
        if any(x < 0 for x in self.dc_transient_amplitude_ratios):
            raise PolarizationInputError("sim.polarization: dc_transient_amplitude_ratios must be >= 0")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("lsv_open_circuit_v", "lsv_onset_v", "lsv_pseudo_capacitance_fraction") \
                    or isinstance(value, tuple):
                continue
            if not value > 0:
                raise PolarizationInputError(f"sim.polarization: {f.name} must be > 0, got {value!r}")
        if self.lsv_pseudo_capacitance_fraction < 0:
            raise PolarizationInputError("sim.polarization: lsv_pseudo_capacitance_fraction must be >= 0")


@dataclass(frozen=True)
class RCCircuit:
    """Series resistance, then in parallel: a shunt conductance and series R–C branches.

    series_ohm > 0; shunt_s ≥ 0 (S); branch_ohm, branch_f: one resistance (Ω, > 0) and one
    capacitance (F, > 0) per branch.
    """

    series_ohm: float
    shunt_s: float
    branch_ohm: tuple
    branch_f: tuple

    def impedance(self, frequency_hz) -> np.ndarray:
        """Complex impedance in Ω at each frequency (Hz)."""
        jw = 2j * np.pi * np.asarray(frequency_hz, float)
        admittance = np.full(jw.shape, self.shunt_s, dtype=complex)
        for r, c in zip(self.branch_ohm, self.branch_f):
            admittance = admittance + jw * c / (1.0 + jw * r * c)
        return self.series_ohm + 1.0 / admittance


class _Modes:
    """Eigenmodes of an RCCircuit, in deviations from the quasi-steady state.

    With capacitor voltages q, C·q' = K·q + b·u where K = −diag(g) + g·gᵀ/G is symmetric negative
    definite (g = 1/R_k, G = 1/R_s + shunt + Σg; u: applied voltage over rest), so y = C^½·q
    diagonalises with eigh: z' = λ·z + β·u. The state kept is d = z + β·u/λ, the distance of each
    mode from where a constant u would leave it: d' = λ·d + (β/λ)·u' and i = G_dc·u + γ·d. Written
    this way a relaxed fast mode contributes exactly nothing, instead of the difference of two large
    numbers (a 28 Ω / 2 µF double layer would otherwise cost five digits of a nA current).
    """

    def __init__(self, circuit: RCCircuit) -> None:
        g = 1.0 / np.asarray(circuit.branch_ohm, float)
        c_half = np.sqrt(np.asarray(circuit.branch_f, float))
        g_total = 1.0 / circuit.series_ohm + circuit.shunt_s + g.sum()
        k = (-np.diag(g) + np.outer(g, g) / g_total) / np.outer(c_half, c_half)
        self.lam, self.vectors = np.linalg.eigh(k)
        self.c_half = c_half
        self.beta = self.vectors.T @ (g / c_half) / (circuit.series_ohm * g_total)
        self.gamma = -self.beta
        self.beta_over_lam = self.beta / self.lam
        self.g_dc = circuit.shunt_s / (1.0 + circuit.series_ohm * circuit.shunt_s)

    def capacitor_voltages(self, d: np.ndarray, u: float) -> np.ndarray:
        return (self.vectors @ (d - self.beta_over_lam * u)) / self.c_half

    def deviations(self, q: np.ndarray, u: float) -> np.ndarray:
        return self.vectors.T @ (self.c_half * q) + self.beta_over_lam * u


def _step_factors(lam: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exp(λh), expm1(λh)/(λh)) per mode (rows) and step (columns), exact to rounding.

    Sampling is nearly always uniform, so the transcendental functions run on the distinct step
    lengths only and are gathered back.
    """
    steps, where = np.unique(h, return_inverse=True)
    x = lam[:, None] * steps[None, :]
    small = np.abs(x) < SERIES_LIMIT
    xs = np.where(small, -1.0, x)
    em1 = np.expm1(xs)
    ratio = np.where(small, 1.0 + x * (0.5 + x * (1.0 / 6.0 + x / 24.0)), em1 / xs)
    decay = np.where(small, 1.0 + x * ratio, em1 + 1.0)
    return decay[:, where], ratio[:, where]


def _linear_recurrence(a: np.ndarray, c: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """z[:, k+1] = a[:, k]·z[:, k] + c[:, k] for every row, returned for k+1 = 1..n.

    A prefix scan of the affine maps z ↦ a·z + c, vectorised: Hillis–Steele passes inside blocks of
    SCAN_BLOCK samples, the same recursively over the blocks' end states, then one pass to fill in.
    Only products of factors in [0, 1] occur, so fast decaying modes underflow harmlessly to zero.
    """
    m, n = a.shape
    if n <= SCAN_BLOCK:
        a, c = _block_scan(a.copy(), c.copy())
        return a * z0[:, None] + c
    blocks = -(-n // SCAN_BLOCK)
    pad = ((0, 0), (0, blocks * SCAN_BLOCK - n))
    a = np.pad(a, pad, constant_values=1.0).reshape(m, blocks, SCAN_BLOCK)
    c = np.pad(c, pad).reshape(m, blocks, SCAN_BLOCK)
    a, c = _block_scan(a, c)
    ends = _linear_recurrence(a[:, :, -1], c[:, :, -1], z0)
    starts = np.concatenate((z0[:, None], ends[:, :-1]), axis=1)
    return (a * starts[:, :, None] + c).reshape(m, -1)[:, :n]


def _block_scan(a: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In place along the last axis: (a, c)[k] becomes the composition of the maps 0..k."""
    n = a.shape[-1]
    offset = 1
    while offset < n:
        c[..., offset:] = a[..., offset:] * c[..., :-offset] + c[..., offset:]
        a[..., offset:] = a[..., offset:] * a[..., :-offset]
        offset *= 2
    return a, c


class LinearCircuitResponse:
    """Current through an RCCircuit driven by a piecewise-linear voltage, chunk after chunk.

    ``circuit_at(temperature_c)`` gives the circuit at a temperature; ``rest_v`` is the applied
    potential at which every capacitor is at rest. The state (modal deviations, last sample) carries
    over between calls; before the first call the circuit rests at ``rest_v``, so a first sample
    away from it is an abrupt step at that sample's time.
    """

    def __init__(self, circuit_at: Callable[[float], RCCircuit], rest_v: float, what: str) -> None:
        self.circuit_at = circuit_at
        self.rest_v = float(rest_v)
        self.what = what
        self._modes_key: float | None = None
        self._modes: _Modes | None = None
        self._d: np.ndarray | None = None
        self._last_t: float | None = None
        self._last_u = 0.0

    def _modes_at(self, temperature_c: float) -> _Modes:
        if self._modes is None or temperature_c != self._modes_key:
            modes = _Modes(self.circuit_at(temperature_c))
            if self._modes is None:
                self._d = np.zeros(modes.lam.size)
            else:
                q = self._modes.capacitor_voltages(self._d, self._last_u)
                self._d = modes.deviations(q, self._last_u)
            self._modes, self._modes_key = modes, temperature_c
        return self._modes

    def current(self, t_s: np.ndarray, e_v: np.ndarray, temperature_c: float) -> np.ndarray:
        """Current in A at each sample time for the applied potentials ``e_v`` (V)."""
        t, e = _check_chunk(t_s, e_v, self.what)
        if t.size == 0:
            return np.zeros(0)
        if self._last_t is not None and t[0] < self._last_t:
            raise PolarizationInputError(
                f"{self.what}: chunk starts at t = {t[0]!r} s, before the previous chunk's last sample "
                f"at {self._last_t!r} s; current_response needs contiguous, increasing chunks")
        modes = self._modes_at(float(temperature_c))
        u = e - self.rest_v
        h = np.diff(t, prepend=t[0] if self._last_t is None else self._last_t)
        du = np.diff(u, prepend=self._last_u)
        decay, ratio = _step_factors(modes.lam, h)
        d = _linear_recurrence(decay, modes.beta_over_lam[:, None] * (du * ratio), self._d)
        self._d = d[:, -1].copy()
        self._last_t, self._last_u = float(t[-1]), float(u[-1])
        return modes.g_dc * u + modes.gamma @ d


def _check_chunk(t_s, e_v, what: str) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t_s, float)
    e = np.asarray(e_v, float)
    if t.ndim != 1 or t.shape != e.shape:
        raise PolarizationInputError(f"{what}: t_s and e_v must be 1-D arrays of equal length, "
                                     f"got shapes {t.shape} and {e.shape}")
    if not (np.isfinite(t).all() and np.isfinite(e).all()):
        raise PolarizationInputError(f"{what}: t_s and e_v must be finite")
    if t.size > 1 and np.any(np.diff(t) < 0):
        k = int(np.argmax(np.diff(t) < 0))
        raise PolarizationInputError(f"{what}: sample times decrease at index {k + 1} "
                                     f"({t[k]!r} s -> {t[k + 1]!r} s)")
    return t, e


class BlockingPelletPolarization:
    """DC current of a pellet between ion-blocking electrodes (Hebb–Wagner polarization).

    Rests at 0 V; the steady current is V/R_e with R_e = pellet.electronic_resistance_ohm().
    """

    def __init__(self, pellet: "PelletModel", constants: PolarizationConstants | None = None) -> None:
        self.pellet = pellet
        self.k = constants or PolarizationConstants()
        self._response = LinearCircuitResponse(self.circuit, 0.0, "blocking pellet")

    def circuit(self, temperature_c: float) -> RCCircuit:
        """The pellet's DC equivalent circuit at ``temperature_c`` (°C)."""
        r_e = self.pellet.electronic_resistance_ohm()
        ratios = self.k.dc_transient_amplitude_ratios
        taus = self.k.dc_transient_time_constants_s
        branch_ohm = [self.k.dc_contact_resistance_ohm] + [r_e / r for r in ratios if r > 0]
        branch_f = [self.pellet.k.electrode_q_f_s_n] + [tau * r / r_e for tau, r in zip(taus, ratios) if r > 0]
        return RCCircuit(self.pellet.total_resistance_ohm(temperature_c), 1.0 / r_e,
                         tuple(branch_ohm), tuple(branch_f))

    def current_response(self, t_s, e_v, temperature_c: float) -> np.ndarray:
        return self._response.current(t_s, e_v, temperature_c)


class LsvCell:
    """Na9Sn4 | o-NBH | o-NBH + additive composite, for linear sweep voltammetry.

    direction: "oxidation" (o-NBH + carbon 7:3) or "reduction" (o-NBH + stainless steel 1:1);
    area_cm2 (> 0); loading_mg_per_cm2: o-NBH in the composite (> 0); electrolyte: a PelletModel of
    the separator (its σ(T), σe and EIS noise/lead constants are used).
    """

    ADDITIVE_PER_ELECTROLYTE = {"oxidation": 3.0 / 7.0, "reduction": 1.0}

    def __init__(self, direction: str, area_cm2: float, loading_mg_per_cm2: float,
                 electrolyte: "PelletModel", constants: PolarizationConstants | None = None) -> None:
        if direction not in self.ADDITIVE_PER_ELECTROLYTE:
            raise PolarizationInputError(f"LSV cell: direction must be 'oxidation' or 'reduction', "
                                         f"got {direction!r}")
        if not (area_cm2 > 0 and loading_mg_per_cm2 > 0):
            raise PolarizationInputError(f"LSV cell: area_cm2 and loading_mg_per_cm2 must be > 0, got "
                                         f"{area_cm2!r} and {loading_mg_per_cm2!r}")
        self.k = k = constants or PolarizationConstants()
        self.direction = direction
        self.area_cm2 = float(area_cm2)
        self.loading_mg_per_cm2 = float(loading_mg_per_cm2)
        self.electrolyte = electrolyte
        self.double_layer_f = self._capacitance_f_per_cm2(direction, loading_mg_per_cm2) * area_cm2
        reference_f = self._capacitance_f_per_cm2("oxidation", k.lsv_reference_loading_mg_per_cm2) * area_cm2
        j_onset = k.lsv_onset_current_density_a_per_cm2
        self.film_ohm = k.lsv_film_resistance_ohm_cm2 / area_cm2
        self.tafel_b_v = k.lsv_tafel_slope_v_per_decade / LN10
        # i0 at E0: the reference composite carries j_onset at onset_v applied, film drop included.
        self.e0_v = k.lsv_onset_v - self.film_ohm * j_onset * area_cm2
        self.i0_a = j_onset * area_cm2 * self.double_layer_f / reference_f
        self._response = LinearCircuitResponse(self.circuit, k.lsv_open_circuit_v, f"LSV cell ({direction})")

    def _capacitance_f_per_cm2(self, direction: str, loading_mg_per_cm2: float) -> float:
        per_g = (self.k.lsv_carbon_capacitance_f_per_g if direction == "oxidation"
                 else self.k.lsv_steel_capacitance_f_per_g)
        return per_g * loading_mg_per_cm2 * self.ADDITIVE_PER_ELECTROLYTE[direction] * 1e-3

    def _ionic_scale(self, temperature_c: float) -> float:
        return (self.electrolyte.sigma_s_per_cm(REFERENCE_TEMPERATURE_C)
                / self.electrolyte.sigma_s_per_cm(temperature_c))

    def circuit(self, temperature_c: float) -> RCCircuit:
        """The cell's linear equivalent circuit (without the faradaic branch) at ``temperature_c``."""
        k = self.k
        separator_cm = k.lsv_separator_thickness_um * 1e-4
        series = separator_cm / (self.electrolyte.sigma_s_per_cm(temperature_c) * self.area_cm2)
        series += self.electrolyte.k.lead_resistance_ohm
        leak = self.electrolyte.k.electronic_sigma_s_per_cm * self.area_cm2 / separator_cm
        r_dl = k.lsv_composite_resistance_ohm_cm2 / self.area_cm2 * self._ionic_scale(temperature_c)
        branch_ohm, branch_f = [r_dl], [self.double_layer_f]
        if k.lsv_pseudo_capacitance_fraction > 0:
            c_pseudo = k.lsv_pseudo_capacitance_fraction * self.double_layer_f
            branch_ohm.append(k.lsv_pseudo_time_constant_s / c_pseudo)
            branch_f.append(c_pseudo)
        return RCCircuit(series, leak, tuple(branch_ohm), tuple(branch_f))

    def rest_potential_v(self, temperature_c: float) -> float:
        """Open-circuit potential, V vs Na9Sn4 (temperature independent)."""
        return self.k.lsv_open_circuit_v

    def faradaic_current_a(self, e_v) -> np.ndarray:
        """Net faradaic current (A, + = oxidation) at applied potentials ``e_v`` (V vs Na9Sn4).

        The decomposition current minus its (≈ 1e-11 A) value at the open-circuit potential: that
        much cathodic current balances it at rest, which is what makes the OCV a mixed potential.
        """
        return self._decomposition_a(np.asarray(e_v, float)) - self._decomposition_a(self.k.lsv_open_circuit_v)

    def _decomposition_a(self, e_v):
        b, r = self.tafel_b_v, self.film_ohm
        return (b / r) * wrightomega(math.log(r * self.i0_a / b) + (e_v - self.e0_v) / b).real

    def current_response(self, t_s, e_v, temperature_c: float) -> np.ndarray:
        """True current (A, + = oxidation) at the sample times for the applied potentials."""
        capacitive = self._response.current(t_s, e_v, temperature_c)
        return capacitive + self.faradaic_current_a(e_v)

    def impedance(self, frequency_hz, temperature_c: float) -> np.ndarray:
        """Noise-free impedance (Ω) at rest: the linear circuit plus lead inductance; the faradaic
        branch is open at the rest potential."""
        f = np.asarray(frequency_hz, float)
        return self.circuit(temperature_c).impedance(f) + 2j * np.pi * f * self.electrolyte.k.lead_inductance_h

    def measured_impedance(self, frequency_hz, temperature_c: float, rng: np.random.Generator,
                           age_days: float = 0.0) -> np.ndarray:
        """Impedance with the electrolyte's relative noise (noise_pct of |Z| per component); the cell
        is not aged (``age_days`` is accepted for the load interface and ignored)."""
        z = self.impedance(frequency_hz, temperature_c)
        scale = np.abs(z) * self.electrolyte.k.noise_pct / 100.0
        return z + scale * (rng.standard_normal(z.shape) + 1j * rng.standard_normal(z.shape))
