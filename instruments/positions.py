"""A station with cell positions: its shared instruments, and each position's view of them.

A station file with ``[positions]`` names which channels each cell uses and which chamber it sits
in. :class:`PositionStation` holds what the runs share: one clock timeline, the named chambers,
and the potentiostat's one connection (BL_Connect once per device; every channel is driven
through it). :meth:`PositionStation.position` gives one run the instruments of its position, with
the same surface as ``instruments.station.Instruments``, so the runner and the step executors run
unchanged: ``clock`` is the run's own RunClock; ``potentiostat`` is its channel on the shared
connection; ``cycler`` follows its channel's export; ``chamber`` is the shared chamber driver,
and ``chamber_monitor`` the one poller that logs it for all its runs.

A run's safe state stops its own channels only: the chamber belongs to every run in it, and
:meth:`PositionStation.chamber_safe` puts it in its safe state once its last run is done.

``open_position_station(config)`` builds the real station, or the simulated one
(instruments/sim/multi.py) when the station file says ``simulate``.
"""
from __future__ import annotations

import logging
import threading

from instruments.chamber_monitor import ChamberMonitor
from instruments.shared_clock import CallerClock, RunClock, WallTimeline
from instruments.station import InstrumentConfigError

log = logging.getLogger(__name__)


class Serialized:
    """A shared driver used by one thread at a time: every method call and attribute read of
    ``target`` holds one lock. For real instruments, whose runs wait in parallel; a simulated
    station's runs take turns on its timeline and need none (a lock held across a timeline wait
    would stop it)."""

    def __init__(self, target, lock=None) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_lock", lock or threading.RLock())

    def __getattr__(self, name: str):
        with self._lock:
            value = getattr(self._target, name)
        if not callable(value):
            return value

        def locked(*args, **kwargs):
            with self._lock:
                return value(*args, **kwargs)
        return locked

    def __setattr__(self, name: str, value) -> None:
        with self._lock:
            setattr(self._target, name, value)


class SharedReadings:
    """A chamber several runs log: a reading (``temperature_status``, ``alarms``) taken less than
    ``max_age_s`` ago by any run answers the next run too, instead of one more command each (five
    runs logging one chamber every 5 min would otherwise queue five commands, 0.3 s apart, at
    every tick, and as many alarm queries). Any command (a set point, standby) forgets the
    readings; everything else goes to the driver."""

    SHARED = ("temperature_status", "alarms")

    def __init__(self, chamber, clock, max_age_s: float = 1.0) -> None:
        object.__setattr__(self, "_chamber", chamber)
        object.__setattr__(self, "_clock", clock)
        object.__setattr__(self, "_max_age_s", max_age_s)
        object.__setattr__(self, "_readings", {})  # name -> (clock time, reading)

    def _shared(self, name: str):
        now = self._clock.now()
        taken = self._readings.get(name)
        if taken is None or now - taken[0] > self._max_age_s:
            taken = self._readings[name] = (now, getattr(self._chamber, name))
        return taken[1]

    @property
    def temperature_status(self):
        return self._shared("temperature_status")

    @property
    def alarms(self):
        return self._shared("alarms")

    def __getattr__(self, name: str):
        value = getattr(self._chamber, name)
        if not callable(value):
            return value

        def command(*args, **kwargs):
            self._readings.clear()
            return value(*args, **kwargs)
        return command

    def __setattr__(self, name: str, value) -> None:
        self._readings.clear()
        setattr(self._chamber, name, value)


class PositionStation:
    """The shared instruments of a station with positions (real ones; see SimulatedPositionStation)."""

    simulated = False

    def __init__(self, config, timeline=None) -> None:
        self.config = config
        self.timeline = timeline or WallTimeline()
        self.caller_clock = CallerClock(self.timeline)
        self.chambers: dict[str, object] = {}
        self.monitors: dict[str, ChamberMonitor] = {}
        self.identities: dict[str, str] = {}
        self._potentiostat = None

    def run_clock(self, name: str) -> RunClock:
        return RunClock(self.timeline, name)

    # --- shared instruments (opened from a thread that takes part in the timeline) -------------
    def open_shared(self, positions) -> None:
        """Open the chambers and the potentiostat connection that ``positions`` use."""
        for name in positions:
            position = self.config.positions[name]
            if position.chamber is not None and position.chamber not in self.chambers:
                chamber = self._open_chamber(position.chamber, self.config.chambers[position.chamber])
                self.chambers[position.chamber] = SharedReadings(chamber, self.timeline)
                self.monitors[position.chamber] = ChamberMonitor(self.chambers[position.chamber],
                                                                 self.timeline, position.chamber)
                self.identities[f"chamber {position.chamber}"] = str(chamber.rom)
            if position.channel_of("potentiostat") is not None and self._potentiostat is None:
                device = self._open_potentiostat(position.channel_of("potentiostat"))
                info = device.connect()
                self._potentiostat = device
                self.identities["potentiostat"] = (f"{info.model}, firmware {info.firmware_version}, "
                                                   f"library {info.library_version}")

    def chamber_safe(self, name: str) -> str | None:
        """The chamber to its safe state (standby or its safe set point); a failure is returned."""
        chamber = self.chambers.get(name)
        if chamber is None:
            return None
        try:
            chamber.safe_state(self.config.chambers[name].safe_temperature_c)
        except Exception as exc:  # noqa: BLE001 - reported with the campaign, not raised
            return f"chamber {name} not made safe: {type(exc).__name__}: {exc}"
        return None

    def position(self, name: str, clock: RunClock) -> "PositionInstruments":
        return PositionInstruments(self, name, clock)

    def close(self) -> None:
        for name, chamber in list(self.chambers.items()):
            try:
                chamber.close()
            except Exception as exc:  # noqa: BLE001 - closing the others matters more
                log.warning("closing chamber %s failed: %s", name, exc)
        self.chambers.clear()
        self.monitors.clear()
        if self._potentiostat is not None:
            try:
                self._potentiostat.disconnect()
            except Exception as exc:  # noqa: BLE001
                log.warning("closing the potentiostat failed: %s", exc)
            self._potentiostat = None

    # --- what differs between real and simulated stations ---------------------------------------
    def _open_chamber(self, name: str, cfg):
        from instruments.espec.adapters import open_chamber
        return Serialized(open_chamber(cfg.model_dump(), self.caller_clock))

    def _open_potentiostat(self, channel: int):
        from instruments.biologic.driver import open_potentiostat
        cfg = {**self.config.potentiostat.model_dump(), "channel": channel}
        device = open_potentiostat(cfg, self.caller_clock)
        device.dll = Serialized(device.dll)  # every channel's calls go through one library
        return device

    def potentiostat_channel(self, position: str, channel: int, clock):
        if self._potentiostat is None:
            raise InstrumentConfigError("the potentiostat connection is not open")
        return self._potentiostat.channel_on_connection(channel, clock=clock)

    def open_cycler(self, position: str, channel: int, clock):
        from instruments.landt.driver import LandtCycler
        cfg = self.config.cycler
        if not cfg.export_path:
            raise InstrumentConfigError("cycler.export_path: required to follow a real Landt channel "
                                        "(the live text export its software writes)")
        return LandtCycler(cfg.export_path.replace("{channel}", str(channel)), clock, channel=channel,
                           poll_interval_s=cfg.poll_interval_s, start_timeout_s=cfg.start_timeout_s)

    def cycler_poll_interval_s(self) -> float:
        return self.config.cycler.poll_interval_s

    def mount(self, position: str, sample: dict, cell: dict | None) -> None:
        """A real station's cells are mounted by hand: nothing to do."""

    def cell_reachable_by_potentiostat(self, position: str) -> bool | None:
        if self.config.positions[position].channel_of("potentiostat") is None:
            return False
        return None if self.config.cycler.cell_eis == "prompt" else False


class PositionInstruments:
    """One run's instruments: its position's channels, its chamber, its clock."""

    def __init__(self, station: PositionStation, name: str, clock: RunClock) -> None:
        self.station = station
        self.name = name
        self.position = station.config.positions[name]
        self.clock = clock
        self.simulated = station.simulated
        self.identities = dict(station.identities)
        self._potentiostat = None
        self._cycler = None

    @property
    def chamber(self):
        if self.position.chamber is None:
            raise InstrumentConfigError(f"position {self.name!r} is in no chamber: a step that "
                                        "needs the chamber cannot run there")
        return self.station.chambers[self.position.chamber]

    @property
    def chamber_monitor(self):
        """The monitor that reads this position's chamber for every run in it (None on the bench)."""
        return self.station.monitors.get(self.position.chamber)

    def _channel(self, instrument: str) -> int:
        number = self.position.channel_of(instrument)
        if number is None:
            raise InstrumentConfigError(f"position {self.name!r} has no {instrument} channel "
                                        f"(its channels: {self.position.channels})")
        return number

    @property
    def potentiostat(self):
        if self._potentiostat is None:
            self._potentiostat = self.station.potentiostat_channel(
                self.name, self._channel("potentiostat"), self.clock)
        return self._potentiostat

    @property
    def cycler(self):
        if self._cycler is None:
            self._cycler = self.station.open_cycler(self.name, self._channel("cycler"), self.clock)
            self.identities["cycler"] = self._cycler.name
        return self._cycler

    @property
    def cycler_poll_interval_s(self) -> float:
        return self.station.cycler_poll_interval_s()

    def cell_reachable_by_potentiostat(self) -> bool | None:
        return self.station.cell_reachable_by_potentiostat(self.name)

    def mount(self, sample: dict, cell: dict | None) -> None:
        self.station.mount(self.name, sample, cell)

    def opened(self) -> dict:
        """The run's own instruments: the shared chamber is the station's to make safe."""
        return {name: inst for name, inst in (("potentiostat", self._potentiostat),
                                              ("cycler", self._cycler)) if inst is not None}

    def close(self) -> None:
        for name in ("_potentiostat", "_cycler"):
            inst = getattr(self, name)
            if inst is None:
                continue
            closer = getattr(inst, "disconnect", None) or getattr(inst, "close", None)
            try:
                if closer is not None:
                    closer()
            except Exception as exc:  # noqa: BLE001 - closing the other matters more
                log.warning("closing %s of position %s failed: %s", name.strip("_"), self.name, exc)
            setattr(self, name, None)


def open_position_station(config) -> PositionStation:
    """The shared instruments of a station with positions: simulated when ``config.simulate``."""
    if config.simulate:
        from instruments.sim.multi import SimulatedPositionStation
        return SimulatedPositionStation(config)
    return PositionStation(config)
