"""The simulated station: every instrument is its simulator, bound to one SimLab on a virtual clock.

The drivers are the real ones: the chamber driver talks the ESPEC protocol to the chamber
simulator (in process, or over loopback TCP through pyvisa-py), the BioLogic driver calls a fake
EClib with the DLL's calling convention, and the Landt follower reads the text export that the
simulated Landt writes.

What the lab mounts is stated by the protocol, never guessed from its text: a ``[cell]`` section
puts that cell on the cycler (and on the potentiostat for its EIS); otherwise ``[sample.sim]``
says ``load = "pellet"`` (the default, from the sample's thickness and diameter) or
``load = "lsv_composite"`` with its ``direction``.

The station outlives the controlling process as a saved state (instruments/sim/persist.py):
``save_state`` writes the lab, the simulators and the virtual time beside the database, and
``SimulatedInstruments(config, restore_from=path)`` opens the drivers on the restored simulators,
where the interrupted run left them (the potentiostat's firmware still loaded, the Landt's
program running, the chamber at its set point).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab
from instruments.sim.persist import load_state, save_state
from instruments.station import Instruments, InstrumentConfigError


class SimulatedInstruments(Instruments):
    simulated = True

    def __init__(self, config, restore_from: Path | None = None) -> None:
        super().__init__(config)
        self._sim_dir = None
        self._chamber_server = None
        self.state_dir: Path | None = None
        """Where the state and the Landt's export live while a run is stored (set by save_state)."""
        self.simulators: dict = {}
        """The simulators behind the drivers, by role (what a saved state holds)."""
        if restore_from is None:
            self.clock = VirtualClock()
            self.lab = SimLab(self.clock, config.sim.model_dump())
        else:
            self.clock, objects = load_state(Path(restore_from), lambda t: VirtualClock(start=t),
                                             config.sim.offline_time)
            self.lab = objects.pop("lab")
            self.simulators = objects
            self.state_dir = Path(restore_from).parent

    def save_state(self, path: Path) -> None:
        """Save the lab, the simulators opened so far and the virtual time to ``path``; the Landt,
        once opened, writes its export in the same folder."""
        path = Path(path)
        if self.state_dir is None:
            self.state_dir = path.parent
        cycler = self.simulators.get("cycler")
        save_state(path, self.clock.now(), {"lab": self.lab, **self.simulators},
                   cycler.export_path if cycler is not None else None)

    @property
    def cycler_poll_interval_s(self) -> float:
        return self.config.sim.cycler_poll_interval_s

    def cell_reachable_by_potentiostat(self) -> bool:
        return self.lab.cell is not None

    def mount(self, sample: dict, cell: dict | None) -> None:
        mount_on_lab(self.lab, sample, cell)

    def _open_chamber(self):
        from instruments.espec.adapters import open_chamber
        from instruments.espec.simulator import EspecSimulator, serve_tcp
        cfg = self.config.chamber
        # A humidity chamber found with its control power off: every run goes through
        # POWER, ON and HUMI, SOFF as on such a real chamber.
        simulator = self.simulators.get("chamber")
        if simulator is None:
            simulator = EspecSimulator(self.lab, self.clock, min_temperature_c=cfg.min_temperature_c,
                                       max_temperature_c=cfg.max_temperature_c, humidity=True,
                                       powered=False, faults=self.lab.faults.get("chamber", {}))
            self.simulators["chamber"] = simulator
        if self.config.sim.chamber_over_tcp:
            self._chamber_server = serve_tcp(simulator)
            return open_chamber(cfg.model_dump(), self.clock, visa_library="@py", transport="tcp",
                                address=self._chamber_server.resource_name)
        return open_chamber(cfg.model_dump(), self.clock, simulator=simulator)

    def _open_potentiostat(self):
        from instruments.biologic.driver import open_potentiostat
        cfg = self.config.potentiostat.model_dump()
        cfg["poll_interval_s"] = self.config.sim.potentiostat_poll_interval_s
        pot = open_potentiostat(cfg, self.clock, lab=self.lab, dll=self.simulators.get("potentiostat"),
                                memory_bytes=self.config.sim.potentiostat_buffer_bytes)
        self.simulators["potentiostat"] = pot.dll
        return pot

    def _open_cycler(self):
        from instruments.landt.simulator import SimulatedLandt
        if self.lab.cell is None:
            raise InstrumentConfigError("simulated lab: no cell mounted (the protocol has no [cell])")
        landt = self.simulators.get("cycler")
        if landt is not None:
            return landt
        if self.state_dir is not None:
            folder = self.state_dir / "landt"
        else:
            self._sim_dir = tempfile.TemporaryDirectory(prefix="cellbench-landt-")
            folder = Path(self._sim_dir.name)
        export = folder / f"channel{self.config.cycler.channel}.txt"
        landt = SimulatedLandt(self.lab, self.lab.cell, export, self.clock,
                               channel=self.config.cycler.channel)
        self.simulators["cycler"] = landt
        return landt

    def close(self) -> None:
        super().close()
        if self._chamber_server is not None:
            self._chamber_server.close()
            self._chamber_server = None
        if self._sim_dir is not None:
            self._sim_dir.cleanup()
            self._sim_dir = None


def mount_on_lab(lab: SimLab, sample: dict, cell: dict | None) -> None:
    """Put what the protocol states on ``lab``'s channels: its [cell], else its sample's load."""
    if cell is not None:
        lab.mount_cell(cell)
        return
    sim = sample.get("sim") or {}
    load = sim.get("load", "pellet")
    if load == "lsv_composite":
        lab.mount_lsv_cell(sim["direction"], area_cm2=sample["area_cm2"],
                           loading_mg_per_cm2=sample.get("loading_mg_per_cm2") or 8.9)
    elif load == "pellet":
        if sample.get("thickness_um") and sample.get("diameter_mm"):
            lab.mount_pellet(sample["thickness_um"], sample["diameter_mm"])
    else:
        raise InstrumentConfigError(f"sample.sim.load: unknown simulated load {load!r}; "
                                    "expected 'pellet' or 'lsv_composite'")
