"""A simulated ESPEC chamber speaking the real ASCII protocol, in process or on a loopback socket.

It behaves like a benchtop as its communication manual describes it: a temperature-only chamber
(SU series, the default) or, with ``humidity=True``, a temperature and humidity one (SH series):

==============================  =================================================================
``ROM?``                        ``rom`` (default names the simulator: SU-SIM or SH-SIM)
``TYPE?``                       ``T,S2,<max>`` (temperature only) or ``T,T,S2,<max>`` (wet bulb)
``MON?``                        ``<PV>,<RH>,<mode>,<alarm count>`` (RH empty without humidity)
``TEMP?``                       ``<PV>,<SP>,<upper>,<lower>``
``HUMI?``                       ``<RH>,<SP>|OFF,<upper>,<lower>``; ``NA:CONT NOT READY-1`` without
``MODE?`` / ``MODE?, DETAIL``   mode word (OFF, STANDBY, CONSTANT)
``ALARM?``                      ``<count>[,code...]``
``CONSTANT SET?, TEMP|HUMI``    ``<SP>,ON`` / ``<SP>,ON|OFF``
``PRGM MON?``                   ``NA:CONT NOT READY-2`` (no program runs: none are stored)
``TEMP, S.. [H..] [L..]``       ``OK``; ``NA:PARA ERR`` if malformed, ``NA:DATA OUT OF RANGE``
                                outside [min, max] or if lower ≤ set point ≤ upper would not hold
``HUMI, S<n>`` / ``HUMI, SOFF``  humidity set point (control on) / humidity control off
``POWER, ON|OFF``               control power: ON from OFF goes to STANDBY, OFF is the OFF mode
``MODE, CONSTANT|STANDBY|OFF``  ``OK``; CONSTANT and STANDBY need control power
                                (``NA:CHB NOT READY`` in OFF); ``MODE, RUNn`` → ``NA:DATA NOT
                                READY`` (no programs)
``KEYPROTECT, ON|OFF``          ``OK``; ``NA:CONT NOT READY-4`` while the power is off
anything else                   ``NA:CMD ERR``
==============================  =================================================================

A setting is answered ``OK:<command>``, over RS-485 ``OK:<address>,<command>`` as the manual
shows it; ``echo_address`` puts the address in front of every reply instead (``1,OK:...``,
``1,24.1,...``), as some controllers do. ``powered=False`` starts the chamber in OFF (control
power off), as a chamber is found after its main switch was turned on.

Humidity is a simple model: while humidity control is on and the chamber is in CONSTANT the
reported RH is the set point, otherwise the room's ``ambient_humidity_pct``. A humidity chamber
starts with humidity control on at ``humidity_setpoint_pct`` (the last operator's setting).

The air temperature is the ThermalModel of the simulated lab (CONSTANT drives it toward the set
point at the ramp rate, STANDBY/OFF let it relax to the room), reported rounded to 0.1 °C with no
added noise, so readings are reproducible. A temperature alarm (code 2 above the upper limit,
3 below the lower one) is active while the chamber is in CONSTANT and the reading is outside the
limits; it clears by itself when the reading returns (a real chamber may latch it).

Fault injection (``faults``; from a SimLab, its ``faults["chamber"]``): ``rate`` and ``kinds``,
transport faults drawn per command (timeouts, garbled and truncated replies, disconnects,
``NA:CMD ERR``; ``instruments.sim.faults``); ``drop_reply_every`` n: every n-th command gets no
reply; ``garble_every`` n: every n-th reply is corrupted; ``na_on``: a command word or list of
them (``"TEMP"`` matches ``TEMP?`` and ``TEMP, S..``) answered ``NA:<na_reply>`` (default
``PROTECT ON``).

Timed faults count instrument hours from the first command the chamber answers (in a run, the
first reading of the run's chamber log, at its start):
``power_loss_at_h`` H with ``power_loss_duration_h`` D: at H the chamber loses its power, stops
regulating (the air drifts to the room with the thermal model) and answers nothing; at H + D it
is back in STANDBY with its set point kept, as a real ESPEC comes back from a power cut, so the
controller must send CONSTANT again. ``alarm_at_h`` with ``alarm_duration_h``: an alarm
(``alarm_code``, default 9, door open) is active in that window (``ALARM?``, ``MON?``); the chamber
keeps regulating.
"""
from __future__ import annotations

import ipaddress
import math
import re
import socket
import socketserver
import threading

from instruments.sim.faults import FaultInjector, transport_part

DEFAULT_ROM = "{series}-SIM V1.00 (cellbench simulator)"
FAULT_KEYS = ("drop_reply_every", "garble_every", "na_on", "na_reply", "power_loss_at_h",
              "power_loss_duration_h", "alarm_at_h", "alarm_duration_h", "alarm_code")
TIMED_FAULTS = (("power_loss_at_h", "power_loss_duration_h"), ("alarm_at_h", "alarm_duration_h"))
DOOR_OPEN_ALARM = 9
TERMINATOR = "\r\n"
TRUNCATED = "\0TRUNCATED"  # marks a reply whose end (terminator included) is lost on the line
TEMPERATURE_ALARM_HIGH = 2
TEMPERATURE_ALARM_LOW = 3

_TEMP_TOKEN = re.compile(r"([SHL])(-?\d+(?:\.\d*)?)")
_ADDRESS_PREFIX = re.compile(r"(\d+),(.*)")


def _fmt(value_c: float) -> str:
    return f"{round(value_c, 1) + 0.0:.1f}"


CONTROL_BYTES = ("\x00", "\x15", "\x1b", "\x7f")  # what line noise leaves of a character


class SimulatedDisconnect(ConnectionError):
    """The simulated chamber dropped the connection (a fault injected at the transport)."""


def chamber_fault_problems(faults: dict) -> list[str]:
    """Problems of the chamber's own fault settings (the transport faults, rate and kinds, are
    checked by instruments.sim.faults)."""
    problems = []
    unknown = sorted(set(faults) - set(FAULT_KEYS))
    if unknown:
        problems.append(f"sim.faults.chamber: unknown fault(s) {unknown}; known: "
                        f"{['rate', 'kinds', *FAULT_KEYS]}")
    for key in ("drop_reply_every", "garble_every"):
        if key in faults and (isinstance(faults[key], bool) or not isinstance(faults[key], int)
                              or faults[key] < 1):
            problems.append(f"sim.faults.chamber.{key} must be an integer >= 1, not {faults[key]!r}")
    for at, duration in TIMED_FAULTS:
        if (at in faults) != (duration in faults):
            problems.append(f"sim.faults.chamber: {at} and {duration} go together")
        elif at in faults:
            start, length = faults[at], faults[duration]
            if not (_finite_number(start) and start >= 0 and _finite_number(length) and length > 0):
                problems.append(f"sim.faults.chamber: {at} must be >= 0 h and {duration} > 0 h, "
                                f"not {start!r} and {length!r}")
    code = faults.get("alarm_code", DOOR_OPEN_ALARM)
    if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 99:
        problems.append(f"sim.faults.chamber.alarm_code must be an integer 0-99, not {code!r}")
    return problems


def _check_faults(faults: dict) -> dict:
    _, faults = transport_part(faults)
    problems = chamber_fault_problems(faults)
    if problems:
        raise ValueError("; ".join(problems))
    na_on = faults.get("na_on", ())
    faults["na_on"] = {na_on} if isinstance(na_on, str) else set(na_on)
    faults.setdefault("alarm_code", DOOR_OPEN_ALARM)
    return faults


def _finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class EspecSimulator:
    """Stateful simulated chamber; ``handle(line)`` answers one command line (thread-safe).

    :param source: a SimLab (its thermal model, clock and ``faults["chamber"]``) or a ThermalModel.
    :param clock: optional; must be the clock of ``source`` (the air is integrated on it).
    :param min_temperature_c, max_temperature_c: settable range, °C (default −40…+150).
    :param rs485_address: if set, only commands prefixed ``n,`` with this address are answered.
    :param echo_address: prefix replies to addressed commands with ``n,`` (some controllers do).
    :param humidity: a humidity chamber (wet bulb, HUMI commands); humidity_setpoint_pct: its RH
        set point at power-up, under control; ambient_humidity_pct: the room's RH.
    :param powered: control power on at start (STANDBY, or CONSTANT if the thermal model is
        controlled); False starts in OFF.
    :param faults: fault injection (module docstring); overrides the lab's.
    """

    def __init__(self, source, clock=None, *, min_temperature_c: float = -40.0,
                 max_temperature_c: float = 150.0, rom: str = DEFAULT_ROM,
                 rs485_address: int | None = None, echo_address: bool = False,
                 humidity: bool = False, humidity_setpoint_pct: float = 60.0,
                 ambient_humidity_pct: float = 45.0, powered: bool = True,
                 faults: dict | None = None) -> None:
        if not min_temperature_c < max_temperature_c:
            raise ValueError(f"simulated chamber: min_temperature_c ({min_temperature_c}) must be "
                             f"below max_temperature_c ({max_temperature_c})")
        self.thermal = getattr(source, "thermal", source)
        self.clock = self.thermal.clock
        if clock is not None and clock is not self.clock:
            raise ValueError("simulated chamber: clock is not the clock of the lab's thermal model")
        if faults is None:
            faults = getattr(source, "faults", {}).get("chamber", {})
        self.faults = _check_faults(faults)
        self.injector = (source.fault_injector("chamber", faults) if hasattr(source, "fault_injector")
                         else FaultInjector("chamber", faults))
        self.min_temperature_c = float(min_temperature_c)
        self.max_temperature_c = float(max_temperature_c)
        self.rom = rom.format(series="SH" if humidity else "SU")
        self.rs485_address = rs485_address
        self.echo_address = echo_address
        if not powered:
            self.thermal.set_controlled(False)
        self.mode = ("CONSTANT" if self.thermal.controlled else "STANDBY") if powered else "OFF"
        self.setpoint_c = round(self.thermal.setpoint_c, 1)
        self.upper_limit_c = self.max_temperature_c
        self.lower_limit_c = self.min_temperature_c
        self.humidity = bool(humidity)
        self.humidity_setpoint_pct: float | None = float(humidity_setpoint_pct) if humidity else None
        self.ambient_humidity_pct = float(ambient_humidity_pct)
        self.key_protect = False
        self.commands_handled = 0
        self.fault_clock_start: float | None = None
        """Clock time of the first command answered; the timed faults count from it."""
        self._power_cut: tuple[float, float] | None = None
        self._bind()

    def _bind(self) -> None:
        self._lock = threading.Lock()
        self._queries = {"ROM?": self._rom, "TYPE?": self._type, "MON?": self._monitor,
                         "TEMP?": self._temp, "HUMI?": self._humi, "MODE?": self._mode_query,
                         "ALARM?": self._alarm, "CONSTANT SET?": self._constant_set,
                         "PRGM MON?": lambda args: "NA:CONT NOT READY-2"}
        self._settings = {"TEMP": self._set_temp, "MODE": self._set_mode, "HUMI": self._set_humi,
                          "POWER": self._set_power, "KEYPROTECT": self._set_key_protect}

    # The chamber outlives the controlling process (instruments/sim/persist.py): its state is
    # pickled without the lock and the command tables, which are rebuilt.
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_lock", "_queries", "_settings")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    # --- what a connection uses ----------------------------------------------------------------
    def session(self) -> "LineSession":
        """A new connection: its own partial-line buffer, replies framed with CR LF."""
        return LineSession(self)

    def handle(self, line: str) -> str | None:
        """Answer one command line (without terminator); None means the chamber stays silent.
        A reply that ends in a lost terminator (a truncated reply) is returned ending in
        ``TRUNCATED``; an injected disconnect raises SimulatedDisconnect."""
        with self._lock:
            self.commands_handled += 1
            count = self.commands_handled
            if not self._powered_now():
                return None
            address, command = self._split_address(line.strip())
            if self.rs485_address is not None and address != self.rs485_address:
                return None
            if self._fault_due("drop_reply_every", count):
                return None
            fault = self.injector.draw()
            if fault == "timeout":
                return None
            if fault == "disconnect":
                raise SimulatedDisconnect("the simulated chamber dropped the connection")
            reply = "NA:CMD ERR" if fault == "na" else self._reply(command, address)
            if address is not None and self.echo_address:
                reply = f"{address},{reply}"
            if self._fault_due("garble_every", count):
                reply = "\x15" + reply[len(reply) // 2:]
            if fault == "garbled":
                at = int(self.injector.uniform() * len(reply))
                noise = CONTROL_BYTES[int(self.injector.uniform() * len(CONTROL_BYTES))]
                reply = reply[:at] + noise + reply[at + 1:]
            elif fault == "truncated":
                reply = reply[:int(self.injector.uniform() * len(reply))] + TRUNCATED
            return reply

    def _fault_window(self, at: str, duration: str) -> tuple[float, float] | None:
        if at not in self.faults or self.fault_clock_start is None:
            return None
        start = self.fault_clock_start + self.faults[at] * 3600.0
        return start, start + self.faults[duration] * 3600.0

    def _powered_now(self) -> bool:
        """Whether the chamber has power at this command; starts the fault clock and applies a
        power cut that began or ended since the last command."""
        now = self.clock.now()
        if self.fault_clock_start is None:
            self.fault_clock_start = now
            self._power_cut = self._fault_window("power_loss_at_h", "power_loss_duration_h")
            if self._power_cut is not None:
                self.thermal.lose_control_at(self._power_cut[0])
        if self._power_cut is None or now < self._power_cut[0]:
            return True
        if now < self._power_cut[1]:
            return False
        # Back from the cut: the controller restarts in STANDBY, set point and limits kept.
        self.mode = "STANDBY"
        self._power_cut = None
        return True

    def _fault_due(self, key: str, count: int) -> bool:
        every = self.faults.get(key)
        return every is not None and count % every == 0

    # --- state as the chamber reports it -------------------------------------------------------
    def air_reading_c(self) -> float:
        """Air temperature as displayed, °C (0.1 °C resolution)."""
        return round(self.thermal.air_c(), 1)

    def alarm_codes(self) -> list[int]:
        codes = []
        window = self._fault_window("alarm_at_h", "alarm_duration_h")
        if window is not None and window[0] <= self.clock.now() < window[1]:
            codes.append(self.faults["alarm_code"])
        if self.mode != "CONSTANT":
            return codes
        reading = self.air_reading_c()
        if reading > self.upper_limit_c:
            codes.append(TEMPERATURE_ALARM_HIGH)
        elif reading < self.lower_limit_c:
            codes.append(TEMPERATURE_ALARM_LOW)
        return codes

    # --- protocol ------------------------------------------------------------------------------
    @staticmethod
    def _split_address(line: str) -> tuple[int | None, str]:
        match = _ADDRESS_PREFIX.fullmatch(line)
        if match is None:
            return None, line
        return int(match.group(1)), match.group(2)

    def _reply(self, command: str, address: int | None = None) -> str:
        keyword, comma, args = command.partition(",")
        keyword, args = keyword.strip(), args.strip()
        if keyword.rstrip("?") in self.faults["na_on"]:
            return "NA:" + self.faults.get("na_reply", "PROTECT ON")
        if keyword.endswith("?"):
            query = self._queries.get(keyword)
            return query(args) if query else "NA:CMD ERR"
        setting = self._settings.get(keyword)
        if setting is None or not comma:
            return "NA:CMD ERR"
        refusal = setting(args)
        if refusal:
            return f"NA:{refusal}"
        if address is not None and not self.echo_address:
            return f"OK:{address},{command}"
        return f"OK:{command}"

    def humidity_reading_pct(self) -> float | None:
        """Relative humidity as displayed, %rh (None on a temperature-only chamber)."""
        if not self.humidity:
            return None
        if self.mode == "CONSTANT" and self.humidity_setpoint_pct is not None:
            return self.humidity_setpoint_pct
        return self.ambient_humidity_pct

    def _rom(self, args: str) -> str:
        return self.rom

    def _type(self, args: str) -> str:
        sensors = "T,T" if self.humidity else "T"
        return f"{sensors},S2,{_fmt(self.max_temperature_c)}"

    def _monitor(self, args: str) -> str:
        rh = self.humidity_reading_pct()
        shown = "" if rh is None else f"{rh:.0f}"
        return f"{_fmt(self.air_reading_c())},{shown},{self.mode},{len(self.alarm_codes())}"

    def _temp(self, args: str) -> str:
        return ",".join(_fmt(v) for v in (self.air_reading_c(), self.setpoint_c,
                                          self.upper_limit_c, self.lower_limit_c))

    def _humi(self, args: str) -> str:
        if not self.humidity:
            return "NA:CONT NOT READY-1"
        sp = self.humidity_setpoint_pct
        return f"{self.humidity_reading_pct():.0f},{'OFF' if sp is None else f'{sp:.0f}'},100,0"

    def _mode_query(self, args: str) -> str:
        return self.mode if args in ("", "DETAIL") else "NA:PARA ERR"

    def _constant_set(self, args: str) -> str:
        if args == "TEMP":
            return f"{_fmt(self.setpoint_c)},ON"
        if args == "HUMI" and self.humidity:
            sp = self.humidity_setpoint_pct
            return "0,OFF" if sp is None else f"{sp:.0f},ON"
        return "NA:PARA ERR" if args != "HUMI" else "NA:CONT NOT READY-1"

    def _alarm(self, args: str) -> str:
        codes = self.alarm_codes()
        return ",".join(str(v) for v in [len(codes), *codes])

    def _set_temp(self, args: str) -> str | None:
        values = {}
        for token in args.split():
            match = _TEMP_TOKEN.fullmatch(token)
            if match is None or match.group(1) in values:
                return "PARA ERR"
            values[match.group(1)] = round(float(match.group(2)), 1)
        if not values:
            return "PARA ERR"
        if not all(self.min_temperature_c <= v <= self.max_temperature_c for v in values.values()):
            return "DATA OUT OF RANGE"
        setpoint = values.get("S", self.setpoint_c)
        upper = values.get("H", self.upper_limit_c)
        lower = values.get("L", self.lower_limit_c)
        if not lower <= setpoint <= upper:
            return "DATA OUT OF RANGE"
        self.setpoint_c, self.upper_limit_c, self.lower_limit_c = setpoint, upper, lower
        self.thermal.set_setpoint(setpoint)
        return None

    def _set_humi(self, args: str) -> str | None:
        if not self.humidity:
            return "CONT NOT READY-1"
        if args == "SOFF":
            self.humidity_setpoint_pct = None
            return None
        match = re.fullmatch(r"S(\d+(?:\.\d*)?)", args)
        if match is None:
            return "PARA ERR"
        value = float(match.group(1))
        if not 0.0 <= value <= 100.0:
            return "DATA OUT OF RANGE"
        self.humidity_setpoint_pct = value
        return None

    def _set_power(self, args: str) -> str | None:
        if args == "ON":
            if self.mode == "OFF":
                self.mode = "STANDBY"
            return None
        if args == "OFF":
            self.mode = "OFF"
            self.thermal.set_controlled(False)
            return None
        return "PARA ERR"

    def _set_key_protect(self, args: str) -> str | None:
        if args not in ("ON", "OFF"):
            return "PARA ERR"
        if self.mode == "OFF":
            return "CONT NOT READY-4"
        self.key_protect = args == "ON"
        return None

    def _set_mode(self, args: str) -> str | None:
        if args in ("CONSTANT", "STANDBY", "OFF"):
            if self.mode == "OFF" and args != "OFF":
                return "CHB NOT READY"
            self.mode = args
            self.thermal.set_controlled(args == "CONSTANT")
            return None
        if re.fullmatch(r"RUN\d+", args):
            return "DATA NOT READY"
        return "PARA ERR"


class LineSession:
    """One connection to the simulator: CR LF framed text in, CR LF framed replies out."""

    def __init__(self, simulator: EspecSimulator) -> None:
        self.simulator = simulator
        self._pending = ""

    def feed(self, data: str) -> str:
        """Take received text (any chunking); return the replies to send back, terminated."""
        *lines, self._pending = (self._pending + data).split(TERMINATOR)
        replies = (self.simulator.handle(line) for line in lines)
        return "".join(reply[:-len(TRUNCATED)] if reply.endswith(TRUNCATED) else reply + TERMINATOR
                       for reply in replies if reply is not None)


# --- loopback TCP server -----------------------------------------------------------------------
class SimulatorServer:
    """The simulator on a loopback TCP socket (like the chamber's LAN port 57732).

    Reach it with ``TCPIP0::127.0.0.1::<port>::SOCKET``. ``close()`` drops open connections and
    joins every thread it started.
    """

    def __init__(self, simulator: EspecSimulator, host: str = "127.0.0.1", port: int = 0) -> None:
        address = "127.0.0.1" if host == "localhost" else host
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"simulated chamber server: host {host!r} is not a loopback address")
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._serve_connection(self.request, simulator.session())

        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        self._server = _ThreadingServer((address, port), Handler, family)
        self.host = address
        self.port = self._server.server_address[1]
        # A short poll keeps close() quick; the loop is idle otherwise.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"espec-sim-tcp-{self.port}", daemon=True)
        self._thread.start()

    def _serve_connection(self, sock: socket.socket, session: LineSession) -> None:
        with self._connections_lock:
            self._connections.add(sock)
        try:
            while True:
                data = sock.recv(4096)
                if not data:
                    return
                try:
                    out = session.feed(data.decode("ascii", errors="replace"))
                except SimulatedDisconnect:
                    return  # the socket is closed when this handler returns
                if out:
                    sock.sendall(out.encode("ascii", errors="replace"))
        except OSError:
            return  # the client went away or close() shut the socket
        finally:
            with self._connections_lock:
                self._connections.discard(sock)

    @property
    def resource_name(self) -> str:
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def close(self) -> None:
        self._server.shutdown()
        with self._connections_lock:
            for sock in list(self._connections):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._server.server_close()  # joins the connection threads
        self._thread.join()

    def __enter__(self) -> "SimulatorServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address, handler, family) -> None:
        self.address_family = family
        super().__init__(address, handler)


def serve_tcp(simulator: EspecSimulator, host: str = "127.0.0.1", port: int = 0) -> SimulatorServer:
    """Serve ``simulator`` on a loopback TCP port (0 = any free port; see ``.port``)."""
    return SimulatorServer(simulator, host, port)
