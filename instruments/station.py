"""The instruments of a station, built from the station file by one factory.

``open_instruments(config)`` returns the real instruments (drivers on their transports) or, when
the station file says ``simulate``, the simulated ones of ``instruments/sim``. Both offer the same
surface, so procedures never know which they drive:

- ``clock``: the Clock every wait goes through (wall time, or the simulated lab's virtual time);
- ``chamber``, ``potentiostat``, ``cycler``: the drivers, opened on first use;
- ``mount(sample, cell)``: what sits on the channels. A real station has the sample mounted by
  hand, so this only records it; the simulated lab builds its models from the protocol's
  ``[sample]``/``[cell]`` sections and their ``sim`` tables;
- ``identities``, ``close()``.

Instruments never import config: the station file arrives as its validated model, read by duck
typing, and a protocol's sections as plain dicts.
"""
from __future__ import annotations

import logging

from instruments.clock import WallClock

log = logging.getLogger(__name__)


class InstrumentConfigError(ValueError):
    """The station file lacks what is needed to reach an instrument; names the setting."""


class Instruments:
    """What a station's instruments share: lazy opening, identities, closing."""

    simulated = False

    def __init__(self, config) -> None:
        self.config = config
        self.clock = WallClock()
        self.identities: dict[str, str] = {}
        self._chamber = None
        self._potentiostat = None
        self._cycler = None

    @property
    def chamber(self):
        if self._chamber is None:
            self._chamber = self._open_chamber()
            self.identities["chamber"] = str(self._chamber.rom)
        return self._chamber

    @property
    def potentiostat(self):
        if self._potentiostat is None:
            pot = self._open_potentiostat()
            device = pot.connect()
            self._potentiostat = pot
            self.identities["potentiostat"] = (f"{device.model}, firmware {device.firmware_version}, "
                                               f"library {device.library_version}")
        return self._potentiostat

    @property
    def cycler(self):
        if self._cycler is None:
            self._cycler = self._open_cycler()
            self.identities["cycler"] = self._cycler.name
        return self._cycler

    def opened(self) -> dict:
        """The instruments opened so far, by role."""
        return {name: inst for name, inst in (("potentiostat", self._potentiostat),
                                              ("cycler", self._cycler), ("chamber", self._chamber))
                if inst is not None}

    @property
    def cycler_poll_interval_s(self) -> float:
        return self.config.cycler.poll_interval_s

    def cell_reachable_by_potentiostat(self) -> bool | None:
        """True when the potentiostat is wired to the cycler's cell, False when it never is,
        None when an operator must move the leads."""
        return None if self.config.cycler.cell_eis == "prompt" else False

    def mount(self, sample: dict, cell: dict | None) -> None:
        """A real station's sample is mounted by hand: nothing to do."""

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
            except Exception as exc:  # noqa: BLE001 - closing the others matters more
                log.warning("closing %s failed: %s", name.strip("_"), exc)
            setattr(self, name, None)

    def _open_chamber(self):
        raise NotImplementedError

    def _open_potentiostat(self):
        raise NotImplementedError

    def _open_cycler(self):
        raise NotImplementedError


class RealInstruments(Instruments):
    """The instruments named in the station file, on their transports."""

    def _open_chamber(self):
        from instruments.espec.adapters import open_chamber
        return open_chamber(self.config.chamber.model_dump(), self.clock)

    def _open_potentiostat(self):
        from instruments.biologic.driver import open_potentiostat
        return open_potentiostat(self.config.potentiostat.model_dump(), self.clock)

    def _open_cycler(self):
        from instruments.landt.driver import LandtCycler
        cfg = self.config.cycler
        if not cfg.export_path:
            raise InstrumentConfigError("cycler.export_path: required to follow a real Landt channel "
                                        "(the live text export its software writes)")
        return LandtCycler(cfg.export_path, self.clock, channel=cfg.channel,
                           poll_interval_s=cfg.poll_interval_s, start_timeout_s=cfg.start_timeout_s)


def open_instruments(config, restore_from=None) -> Instruments:
    """The station's instruments: simulated when ``config.simulate``, real otherwise.
    ``restore_from``: a simulated station's saved state (instruments/sim/persist.py) to go on
    from; a real station's instruments are where they are, and it is not used."""
    if config.simulate:
        from instruments.sim.station import SimulatedInstruments
        return SimulatedInstruments(config, restore_from=restore_from)
    return RealInstruments(config)


def saved_state_error():
    """The error a saved simulated-station state raises when it is missing or unreadable."""
    from instruments.sim.persist import SimStateError
    return SimStateError
