"""How the chamber driver is connected: the in-process simulator adapter and ``open_chamber``.

``SimulatorAdapter`` puts the simulator behind a pymeasure Adapter that passes the exact text,
terminators included, so a simulated run exercises the driver's real formatting, framing,
parsing, OK/NA checks and pacing. ``open_chamber`` turns the station file's ``[chamber]``
section into a connected EspecChamber on the transport it names.
"""
from __future__ import annotations

from collections.abc import Mapping

from pymeasure.adapters import Adapter

from instruments.clock import Clock
from instruments.espec.driver import EspecChamber
from instruments.espec.simulator import TERMINATOR, EspecSimulator, SimulatedDisconnect

ESPEC_TCP_PORT = 57732
CHAMBER_FIELDS = ("driver", "transport", "address", "rs485_address", "baud_rate", "timeout_s",
                  "command_interval_s", "min_temperature_c", "max_temperature_c",
                  "safe_temperature_c", "power_off_when_safe")
TRANSPORTS = ("serial", "rs485", "tcp")


class SimulatorAdapter(Adapter):
    """A pymeasure Adapter whose far end is an in-process EspecSimulator.

    Writes append the CR LF terminator and go through the simulator's line framing; reads take
    one CR LF terminated reply. A command the simulator does not answer makes the next read
    fail like a serial timeout (TimeoutError), without waiting. A connection the simulator drops
    refuses every write (ConnectionResetError) until ``reopen()``, as a lost socket does.
    """

    def __init__(self, simulator: EspecSimulator, **kwargs) -> None:
        super().__init__(**kwargs)
        self.simulator = simulator
        self._session = simulator.session()
        self._received = ""

    def _write(self, command: str, **kwargs) -> None:
        if self._session is None:
            raise ConnectionResetError("the connection to the simulated chamber was dropped")
        try:
            self._received += self._session.feed(command + TERMINATOR)
        except SimulatedDisconnect:
            self._session = None
            raise ConnectionResetError("the simulated chamber dropped the connection") from None

    def reopen(self) -> None:
        """Connect again (a new session; what the old one held is gone)."""
        self._session = self.simulator.session()
        self._received = ""

    def _read(self, **kwargs) -> str:
        reply, terminator, rest = self._received.partition(TERMINATOR)
        if not terminator:
            raise TimeoutError("the simulated chamber sent no reply")
        self._received = rest
        return reply

    def flush_read_buffer(self) -> None:
        self._received = ""

    def __repr__(self) -> str:
        return "<SimulatorAdapter ESPEC>"


def chamber_settings(config: Mapping | None = None, **fields) -> dict:
    """The chamber section as a dict with defaults filled in; unknown keys raise ValueError.

    Accepts ``ChamberConfig.model_dump()``, a plain dict from the station file, or keywords.
    """
    settings = {"driver": "espec", "transport": "serial", "address": "", "rs485_address": None,
                "baud_rate": 9600, "timeout_s": 3.0, "command_interval_s": 0.3,
                "min_temperature_c": -40.0, "max_temperature_c": 150.0,
                "safe_temperature_c": None, "power_off_when_safe": False}
    given = {**dict(config or {}), **fields}
    unknown = sorted(set(given) - set(CHAMBER_FIELDS))
    if unknown:
        raise ValueError(f"chamber: unknown setting(s) {unknown}; known: {list(CHAMBER_FIELDS)}")
    settings.update(given)
    if settings["driver"] != "espec":
        raise ValueError(f"chamber.driver: {settings['driver']!r} is not 'espec'")
    if settings["transport"] not in TRANSPORTS:
        raise ValueError(f"chamber.transport: {settings['transport']!r} is not one of {TRANSPORTS}")
    if settings["transport"] == "rs485" and settings["rs485_address"] is None:
        raise ValueError("chamber.rs485_address: transport 'rs485' needs an address (1-16)")
    return settings


def resource_name(settings: Mapping) -> str:
    """The VISA resource for the chamber section: the address as given, or for TCP a bare
    ``host`` or ``host:port`` made into ``TCPIP0::host::port::SOCKET`` (default port 57732)."""
    address = str(settings["address"]).strip()
    transport = settings["transport"]
    if not address:
        raise ValueError("chamber.address: required to reach a real chamber "
                         "(e.g. 'ASRL/dev/ttyUSB0::INSTR', 'COM3', 'TCPIP0::host::57732::SOCKET')")
    is_tcp_resource = address.upper().startswith("TCPIP")
    if transport == "tcp":
        if "::" not in address:
            host, _, port = address.partition(":")
            return f"TCPIP0::{host}::{port or ESPEC_TCP_PORT}::SOCKET"
        if not (is_tcp_resource and address.upper().endswith("::SOCKET")):
            raise ValueError(f"chamber.address: {address!r} is not a TCP socket resource "
                             "(TCPIP0::host::57732::SOCKET) as transport 'tcp' needs")
        return address
    if is_tcp_resource:
        raise ValueError(f"chamber.address: {address!r} is a network address but transport is "
                         f"{transport!r}; set transport = 'tcp'")
    return address


def open_chamber(config: Mapping | None = None, clock: Clock | None = None,
                 simulator: EspecSimulator | None = None, *, visa_library: str = "",
                 **fields) -> EspecChamber:
    """Connect to the chamber the station file describes.

    :param config: the ``[chamber]`` section (dict or ``ChamberConfig.model_dump()``); keyword
        ``fields`` override it.
    :param clock: paces the commands (default wall clock).
    :param simulator: if given, talk to it in process instead of opening ``address``.
    :param visa_library: pyvisa backend ("" = default, "@py" = pyvisa-py).

    The station's maximum temperature is checked against the chamber's own (``TYPE?``) before
    the driver is returned.
    """
    settings = chamber_settings(config, **fields)
    if simulator is not None:
        adapter = SimulatorAdapter(simulator)
        connection = {}
    else:
        adapter = resource_name(settings)
        connection = {"visa_library": visa_library}
    chamber = EspecChamber(
        adapter, clock=clock,
        min_temperature_c=settings["min_temperature_c"],
        max_temperature_c=settings["max_temperature_c"],
        command_interval_s=settings["command_interval_s"],
        rs485_address=settings["rs485_address"] if settings["transport"] == "rs485" else None,
        safe_temperature_c=settings["safe_temperature_c"],
        power_off_when_safe=settings["power_off_when_safe"],
        timeout_s=settings["timeout_s"], baud_rate=settings["baud_rate"], **connection)
    try:
        chamber.check_range()
    except Exception:
        chamber.close()
        raise
    return chamber
