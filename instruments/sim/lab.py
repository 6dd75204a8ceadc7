"""The simulated lab: one virtual clock, one chamber's air, one sample, one load on the channel.

A station with many positions has one SimLab per position (instruments/sim/multi.py), all on
one clock, each with its own sample thermal model following its chamber's air.

Simulators of the chamber, the potentiostat and the cycler all read the same lab, so what the
potentiostat measures follows the temperature the chamber simulator produced, with the sample's
thermal lag in between. Constants come from station.toml's [sim] section (plain dicts here, so
that instruments never import config).
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from instruments.sim.clock import VirtualClock
from instruments.sim.faults import FaultInjector
from instruments.sim.pellet import PelletConstants, PelletModel
from instruments.sim.polarization import LsvCell, PolarizationConstants
from instruments.sim.thermal import ThermalConstants, ThermalModel

SECONDS_PER_DAY = 86400.0


def _constants(cls, overrides: dict | None, where: str):
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"sim.{where}: unknown constant(s) {unknown}; known: {sorted(known)}")
    return cls(**overrides)


def thermal_constants(sim: dict) -> ThermalConstants:
    return _constants(ThermalConstants, sim.get("thermal"), "thermal")


class SimLab:
    """Shared state of the simulated station.

    ``load`` is whatever sits on the potentiostat channel (a PelletModel for EIS and DC
    polarization of electrolytes, an LsvCell for stability-window sweeps);
    ``mounted_at`` is the clock time the sample was mounted, from which its age is counted.
    """

    def __init__(self, clock: VirtualClock | None = None, sim: dict | None = None,
                 thermal: ThermalModel | None = None, seed_offset: int = 0) -> None:
        sim = dict(sim or {})
        self.clock = clock or VirtualClock()
        self.seed = int(sim.get("seed", 0))
        # Positions of one station draw from their own streams: what one cell measures does not
        # depend on how many others run beside it.
        self.rng = np.random.default_rng([self.seed, seed_offset] if seed_offset else self.seed)
        self.thermal = thermal or ThermalModel(self.clock, thermal_constants(sim))
        self.pellet_constants = _constants(PelletConstants, sim.get("pellet"), "pellet")
        self.cell_overrides = dict(sim.get("cell") or {})
        self.polarization_overrides = dict(sim.get("polarization") or {})
        self.polarization_constants = _constants(PolarizationConstants, self.polarization_overrides,
                                                 "polarization")
        self.faults = dict(sim.get("faults") or {})
        self.injectors: dict[str, FaultInjector] = {}
        self.load = None
        self.cell = None
        self.mounted_at = self.clock.now()

    def fault_injector(self, instrument: str, table: dict | None = None) -> FaultInjector:
        """The transport-fault injector of ``instrument`` (one per lab, so its counts cover the
        whole run); ``table`` overrides the lab's ``faults[instrument]`` when first asked."""
        if instrument not in self.injectors:
            self.injectors[instrument] = FaultInjector(
                instrument, self.faults.get(instrument) if table is None else table, self.seed)
        return self.injectors[instrument]

    def mount_pellet(self, thickness_um: float, diameter_mm: float) -> PelletModel:
        """Put a blocking-electrode pellet of the sample's geometry on the potentiostat channel."""
        self.load = PelletModel(self.pellet_constants, thickness_um, diameter_mm, self.polarization_constants)
        self.mounted_at = self.clock.now()
        return self.load

    def mount_lsv_cell(self, direction: str, area_cm2: float = 0.785,
                       loading_mg_per_cm2: float = 8.9) -> LsvCell:
        """Put a Na9Sn4 | o-NBH | composite cell on the channel: ``direction`` "oxidation" (o-NBH +
        carbon 7:3) or "reduction" (o-NBH + stainless steel 1:1); area in cm², o-NBH loading of the
        composite in mg/cm². The separator's σ(T) and σe come from the pellet constants."""
        if not area_cm2 > 0:
            raise ValueError(f"mount_lsv_cell: area_cm2 must be > 0, got {area_cm2!r}")
        k = self.polarization_constants
        separator = PelletModel(self.pellet_constants, k.lsv_separator_thickness_um,
                                20.0 * math.sqrt(area_cm2 / math.pi), k)
        self.load = LsvCell(direction, area_cm2, loading_mg_per_cm2, separator, k)
        self.mounted_at = self.clock.now()
        return self.load

    def sample_temperature_c(self) -> float:
        return self.thermal.sample_c()

    def age_days(self) -> float:
        return (self.clock.now() - self.mounted_at) / SECONDS_PER_DAY

    # --- what the potentiostat channel sees --------------------------------------------------
    def _require_load(self, what: str):
        if self.load is None:
            raise RuntimeError(f"simulated lab: nothing is mounted on the potentiostat channel ({what})")
        return self.load

    def measure_impedance(self, frequency_hz) -> np.ndarray:
        """Noisy complex impedance (Ω) of the load at the sample's present temperature."""
        load = self._require_load("impedance")
        return load.measured_impedance(np.asarray(frequency_hz, float), self.sample_temperature_c(),
                                       self.rng, self.age_days())

    def current_response(self, t_s, e_v) -> np.ndarray:
        """True current (A, positive = oxidation at the working electrode) for applied potentials
        ``e_v`` at clock times ``t_s``; called with successive, contiguous chunks."""
        load = self._require_load("current")
        return load.current_response(np.asarray(t_s, float), np.asarray(e_v, float),
                                     self.sample_temperature_c())

    def rest_potential_v(self) -> float:
        """Open-circuit potential of the working electrode vs the reference, V."""
        return float(self._require_load("open-circuit potential").rest_potential_v(
            self.sample_temperature_c()))

    def mount_cell(self, cell_section: dict):
        """Put the protocol's cell on the cycler channel (and, for its EIS, on the potentiostat).

        ``cell_section`` is the protocol's validated [cell] section as a dict; the keys that only
        the procedure uses (cut-offs, the die diameter) are not model constants.
        """
        from instruments.sim.cell import CellConstants, CellModel, cell_constants_for
        known = {f.name for f in dataclasses.fields(CellConstants)} | {"sim"}
        section = {k: v for k, v in cell_section.items() if k in known and v is not None}
        self.cell = CellModel(cell_constants_for(section, self.cell_overrides), self.rng)
        self.load = self.cell
        self.mounted_at = self.clock.now()
        return self.cell
