"""The station a run drives: instruments opened on demand from the station file.

With ``simulate`` every instrument is its simulator bound to one SimLab on a virtual clock;
otherwise the same drivers open the real transports named in the station file. Procedures only
see this object, so they run unchanged on either.
"""
from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from config.errors import ConfigError
from instruments.clock import WallClock

log = logging.getLogger(__name__)


def _lsv_direction(composite: str, end_voltage_v: float) -> str:
    """Which simulated composite the sample is: carbon for oxidation, steel for reduction."""
    text = composite.lower()
    if "carbon" in text or "vgcf" in text:
        return "oxidation"
    if "steel" in text or "ss" in text.split():
        return "reduction"
    return "oxidation" if end_voltage_v > 2.0 else "reduction"


def console_prompt(message: str) -> None:
    """Tell the operator what to do; wait for Enter when someone is at the terminal."""
    print(f"\n>>> OPERATOR: {message}", file=sys.stderr, flush=True)
    if sys.stdin is not None and sys.stdin.isatty():
        input(">>> press Enter when done ")


class Station:
    def __init__(self, config) -> None:
        self.config = config
        self.simulated = bool(config.simulate)
        if self.simulated:
            from instruments.sim.clock import VirtualClock
            from instruments.sim.lab import SimLab
            self.clock = VirtualClock()
            self.lab = SimLab(self.clock, config.sim.model_dump())
        else:
            self.clock = WallClock()
            self.lab = None
        self._chamber = None
        self._potentiostat = None
        self._cycler = None
        self._sim_dir = None
        self._chamber_server = None
        self.identities: dict[str, str] = {}
        self.operator_prompt = console_prompt

    # --- instruments, opened on first use ------------------------------------------------------
    @property
    def chamber(self):
        if self._chamber is None:
            from instruments.espec.adapters import open_chamber
            simulator = None
            if self.simulated:
                from instruments.espec.simulator import EspecSimulator
                cfg = self.config.chamber
                # A humidity chamber found with its control power off: every run goes
                # through POWER, ON and HUMI, SOFF as on such a real chamber.
                simulator = EspecSimulator(self.lab, self.clock,
                                           min_temperature_c=cfg.min_temperature_c,
                                           max_temperature_c=cfg.max_temperature_c,
                                           humidity=True, powered=False,
                                           faults=self.lab.faults.get("chamber", {}))
            if simulator is not None and self.config.sim.chamber_over_tcp:
                from instruments.espec.simulator import serve_tcp
                self._chamber_server = serve_tcp(simulator)
                self._chamber = open_chamber(self.config.chamber.model_dump(), self.clock,
                                             visa_library="@py", transport="tcp",
                                             address=self._chamber_server.resource_name)
            else:
                self._chamber = open_chamber(self.config.chamber.model_dump(), self.clock,
                                             simulator=simulator)
            self.identities["chamber"] = str(self._chamber.rom)
        return self._chamber

    @property
    def potentiostat(self):
        if self._potentiostat is None:
            from instruments.biologic.driver import open_potentiostat
            cfg = self.config.potentiostat.model_dump()
            if self.simulated:
                cfg["poll_interval_s"] = self.config.sim.potentiostat_poll_interval_s
            pot = open_potentiostat(cfg, self.clock, lab=self.lab)
            device = pot.connect()
            self._potentiostat = pot
            self.identities["potentiostat"] = (f"{device.model}, firmware {device.firmware_version}, "
                                               f"library {device.library_version}")
        return self._potentiostat

    @property
    def cycler(self):
        if self._cycler is None:
            if self.simulated:
                from instruments.landt.simulator import SimulatedLandt
                if self.lab.cell is None:
                    raise RuntimeError("simulated lab: no cell mounted (the protocol has no [cell])")
                self._sim_dir = tempfile.TemporaryDirectory(prefix="cellbench-landt-")
                export = Path(self._sim_dir.name) / f"channel{self.config.cycler.channel}.txt"
                self._cycler = SimulatedLandt(self.lab, self.lab.cell, export, self.clock,
                                              channel=self.config.cycler.channel)
            else:
                from instruments.landt.driver import LandtCycler
                cfg = self.config.cycler
                if not cfg.export_path:
                    raise ConfigError("station", ["cycler.export_path: required to follow a real Landt "
                                                  "channel (the live text export its software writes)"])
                self._cycler = LandtCycler(cfg.export_path, self.clock, channel=cfg.channel,
                                           poll_interval_s=cfg.poll_interval_s,
                                           start_timeout_s=cfg.start_timeout_s)
            self.identities["cycler"] = self._cycler.name
        return self._cycler

    @property
    def cycler_poll_interval_s(self) -> float:
        return (self.config.sim.cycler_poll_interval_s if self.simulated
                else self.config.cycler.poll_interval_s)

    def cell_on_potentiostat(self) -> bool:
        """Whether the potentiostat can reach the cycler's cell now: in the simulated lab it is
        wired to both; a real station asks the operator to move the leads (or has no cell EIS)."""
        if self.simulated:
            return self.lab.cell is not None
        if self.config.cycler.cell_eis == "none":
            return False
        self.operator_prompt("Connect the cell's leads to the potentiostat channel "
                             f"{self.config.potentiostat.channel} for EIS (the cycler is resting).")
        return True

    # --- helpers used by steps -----------------------------------------------------------------
    def set_chamber(self, setpoint_c: float) -> None:
        """Set point with the alarm limits at the chamber's range, then CONSTANT mode."""
        cfg = self.config.chamber
        self.chamber.hold_temperature(setpoint_c, upper_c=cfg.max_temperature_c,
                                      lower_c=cfg.min_temperature_c)

    def prepare(self, protocol) -> None:
        """Mount the protocol's sample in the simulated lab (a real station has it mounted)."""
        if self.lab is None:
            return
        sample = protocol.sample
        lsv = [s for s in protocol.steps if s.kind == "lsv"]
        if protocol.cell is not None:
            self.lab.mount_cell(protocol.cell.model_dump())
        elif lsv:
            self.lab.mount_lsv_cell(_lsv_direction(sample.composite, lsv[0].end_voltage_v),
                                    area_cm2=sample.area_cm2,
                                    loading_mg_per_cm2=sample.loading_mg_per_cm2 or 8.9)
        elif sample.thickness_um and sample.diameter_mm:
            self.lab.mount_pellet(sample.thickness_um, sample.diameter_mm)

    def snapshot(self) -> dict:
        return {"config": self.config.model_dump(mode="json"), "simulated": self.simulated,
                "identities": dict(self.identities)}

    def safe_state(self) -> list[str]:
        """Stop the potentiostat channel and the cycler, chamber to standby (or the safe set point).

        Each instrument is tried even if another fails; failures are returned, not raised, so a
        run that is already failing still records why and what could not be made safe.
        """
        problems = []
        if self._potentiostat is not None:
            try:
                self._potentiostat.stop()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"potentiostat not stopped: {exc}")
        if self._cycler is not None:
            try:
                self._cycler.stop()
            except Exception as exc:  # noqa: BLE001
                problems.append(f"cycler not stopped: {exc}")
        if self._chamber is not None:
            try:
                self._chamber.safe_state(self.config.chamber.safe_temperature_c)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"chamber not made safe: {exc}")
        for p in problems:
            log.error(p)
        return problems

    def close(self) -> None:
        for name in ("_potentiostat", "_cycler", "_chamber"):
            inst = getattr(self, name)
            if inst is None:
                continue
            try:
                if hasattr(inst, "disconnect"):
                    inst.disconnect()
                else:
                    inst.close()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing %s failed: %s", name.strip("_"), exc)
            setattr(self, name, None)
        if self._chamber_server is not None:
            self._chamber_server.close()
            self._chamber_server = None
        if self._sim_dir is not None:
            self._sim_dir.cleanup()
            self._sim_dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
