"""The station a run drives: the instruments from the factory, the operator, and the station-level
actions every step kind shares (chamber set point, safe state).

Procedures only see this object, so they run unchanged on real or simulated instruments: which of
the two is decided once, by ``instruments.station.open_instruments`` from the station file.
"""
from __future__ import annotations

import logging

from instruments.station import open_instruments
from procedures.operator import Operator, UnattendedOperator

log = logging.getLogger(__name__)


class InstrumentUnreachable(RuntimeError):
    """An instrument a protocol needs could not be opened or did not identify itself; nothing
    was commanded and nothing stored."""


class Station:
    """``config``: the validated station file; ``operator``: who answers requests (default: nobody,
    so a step that needs a person fails clearly); ``instruments``: a prebuilt instrument set
    (default: built from ``config`` by the factory)."""

    def __init__(self, config, operator: Operator | None = None, instruments=None) -> None:
        self.config = config
        self.instruments = instruments if instruments is not None else open_instruments(config)
        self.operator = operator or UnattendedOperator()

    @property
    def clock(self):
        return self.instruments.clock

    @property
    def simulated(self) -> bool:
        return self.instruments.simulated

    @property
    def identities(self) -> dict:
        return self.instruments.identities

    @property
    def chamber(self):
        return self.instruments.chamber

    @property
    def chamber_monitor(self):
        """The shared chamber's monitor on a station with positions (None elsewhere)."""
        return getattr(self.instruments, "chamber_monitor", None)

    @property
    def potentiostat(self):
        return self.instruments.potentiostat

    @property
    def cycler(self):
        return self.instruments.cycler

    @property
    def cycler_poll_interval_s(self) -> float:
        return self.instruments.cycler_poll_interval_s

    def ask_operator(self, message: str, kind: str = "confirm") -> None:
        """Ask the operator, abortably (the run's abort ends the wait)."""
        self.operator.request(message, kind=kind, clock=self.clock)

    def cell_on_potentiostat(self) -> bool:
        """Whether the potentiostat can reach the cycler's cell now: wired (simulated lab), never
        (``cell_eis = "none"``), or once the operator has moved the leads."""
        reachable = self.instruments.cell_reachable_by_potentiostat()
        if reachable is None:
            self.ask_operator("Connect the cell's leads to the potentiostat channel "
                              f"{self.config.potentiostat.channel} for EIS (the cycler is resting).",
                              kind="move_leads")
            return True
        return reachable

    def set_chamber(self, setpoint_c: float) -> None:
        """Set point with the alarm limits at the chamber's range, then CONSTANT mode."""
        cfg = self.config.chamber
        self.chamber.hold_temperature(setpoint_c, upper_c=cfg.max_temperature_c,
                                      lower_c=cfg.min_temperature_c)

    def prepare(self, protocol) -> None:
        """Tell the instruments what is mounted (the simulated lab builds its models from it)."""
        sample = {**protocol.sample.model_dump(), "area_cm2": protocol.sample.area_cm2}
        cell = protocol.cell.model_dump() if protocol.cell is not None else None
        self.instruments.mount(sample, cell)

    def open_for(self, protocol, mount: bool = True) -> None:
        """Mount ``protocol``'s sample (unless it is mounted already: a resumed run) and open and
        identify every instrument it talks to, before anything is stored: InstrumentUnreachable
        names each one that does not answer (all are tried)."""
        from instruments.clock import Aborted
        from procedures.steps import instruments_used
        try:
            if mount:
                self.prepare(protocol)
        except Exception as exc:  # noqa: BLE001 - e.g. a simulated load the lab does not know
            raise InstrumentUnreachable(f"the sample cannot be mounted, nothing was run or stored: "
                                        f"{type(exc).__name__}: {exc}") from None
        problems = []
        for name in instruments_used(protocol, self.config):
            try:
                getattr(self, name)
            except Aborted:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the transport raised, said plainly
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        if problems:
            raise InstrumentUnreachable("the station's instruments did not answer, nothing was run "
                                        "or stored: " + "; ".join(problems))

    def snapshot(self) -> dict:
        position = getattr(self.instruments, "position", None)  # a campaign's cell position
        return {"config": self.config.model_dump(mode="json"), "simulated": self.simulated,
                "identities": dict(self.identities),
                **({"position": self.instruments.name} if position is not None else {})}

    def safe_state(self) -> list[str]:
        """Stop the potentiostat channel and the cycler, chamber to standby (or the safe set point).

        Each instrument is tried even if another fails; failures are returned, not raised, so a
        run that is already failing still records why and what could not be made safe.
        """
        problems = []
        opened = self.instruments.opened()
        for name, action in (("potentiostat", lambda p: p.stop()), ("cycler", lambda c: c.stop()),
                             ("chamber", lambda c: c.safe_state(self.config.chamber.safe_temperature_c))):
            if name not in opened:
                continue
            try:
                action(opened[name])
            except Exception as exc:  # noqa: BLE001 - every instrument gets its chance
                problems.append(f"{name} not made safe: {type(exc).__name__}: {exc}")
        for p in problems:
            log.error(p)
        return problems

    def close(self) -> None:
        self.instruments.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
