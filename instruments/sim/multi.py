"""The simulated station with cell positions: one virtual timeline, a SimLab per position.

Each chamber is an ESPEC simulator driving one ChamberAir; each position in it has its own
sample thermal model following that air (a position on the bench follows the room). Each
position's SimLab carries what its protocol mounts; the potentiostat is one simulated EClib whose
channels each measure their position's lab; each cycler channel is a simulated Landt writing its
own export. The drivers are the real ones, as in instruments/sim/station.py.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from instruments.positions import PositionStation
from instruments.shared_clock import SharedVirtualTimeline
from instruments.sim.lab import SimLab, thermal_constants
from instruments.sim.station import mount_on_lab
from instruments.sim.thermal import ChamberAir, ThermalModel
from instruments.station import InstrumentConfigError


class SimulatedPositionStation(PositionStation):
    simulated = True

    def __init__(self, config) -> None:
        super().__init__(config, SharedVirtualTimeline())
        sim = config.sim.model_dump()
        constants = thermal_constants(sim)
        self.airs = {name: ChamberAir(self.timeline, constants) for name in config.chambers}
        self.labs: dict[str, SimLab] = {}
        for k, (name, position) in enumerate(config.positions.items(), start=1):
            thermal = (self.airs[position.chamber].add_sample() if position.chamber is not None
                       else ThermalModel(self.timeline, constants))
            self.labs[name] = SimLab(self.timeline, sim, thermal=thermal, seed_offset=k)
        self.device_lab = SimLab(self.timeline, sim)  # the instrument's own noise
        self._sim_dir = tempfile.TemporaryDirectory(prefix="cellbench-landt-")

    def _open_chamber(self, name: str, cfg):
        from instruments.espec.adapters import open_chamber
        from instruments.espec.simulator import EspecSimulator
        simulator = EspecSimulator(self.airs[name], min_temperature_c=cfg.min_temperature_c,
                                   max_temperature_c=cfg.max_temperature_c, humidity=True,
                                   powered=False, faults=self.config.sim.faults.get("chamber", {}))
        return open_chamber(cfg.model_dump(), self.caller_clock, simulator=simulator)

    def _open_potentiostat(self, channel: int):
        from instruments.biologic.driver import open_potentiostat
        cfg = {**self.config.potentiostat.model_dump(), "channel": channel,
               "poll_interval_s": self.config.sim.potentiostat_poll_interval_s}
        channel_labs = {p.channel_of("potentiostat"): self.labs[name]
                        for name, p in self.config.positions.items()
                        if p.channel_of("potentiostat") is not None}
        return open_potentiostat(cfg, self.caller_clock, lab=self.device_lab, channel_labs=channel_labs,
                                 memory_bytes=self.config.sim.potentiostat_buffer_bytes)

    def open_cycler(self, position: str, channel: int, clock):
        from instruments.landt.simulator import SimulatedLandt
        lab = self.labs[position]
        if lab.cell is None:
            raise InstrumentConfigError(f"simulated lab: no cell mounted on position {position!r} "
                                        "(the protocol has no [cell])")
        export = Path(self._sim_dir.name) / f"channel{channel}.txt"
        return SimulatedLandt(lab, lab.cell, export, clock, channel=channel)

    def cycler_poll_interval_s(self) -> float:
        return self.config.sim.cycler_poll_interval_s

    def mount(self, position: str, sample: dict, cell: dict | None) -> None:
        mount_on_lab(self.labs[position], sample, cell)

    def cell_reachable_by_potentiostat(self, position: str) -> bool:
        return (self.config.positions[position].channel_of("potentiostat") is not None
                and self.labs[position].cell is not None)

    def close(self) -> None:
        super().close()
        self._sim_dir.cleanup()
