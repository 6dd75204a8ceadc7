"""ESPEC temperature chamber (SU/SH benchtops, P300/SCP-220 controllers) over its ASCII protocol.

The protocol (research/landt_espec.md §1): lines end in CR LF both ways; queries end in ``?`` and
answer comma-separated fields; settings (``TEMP, S25.0``) answer ``OK:<echo>`` or
``NA:<reason>``; over RS-485 the manual's setting reply is ``OK:<address>,<echo>`` (EHS-211M/411M
communication manual, "OK : address, setting command"), and some controllers echo the address in
front instead (``1,OK:...``): both are accepted. Every setting is therefore sent as a query and its
reply read and checked: an unread ``OK:`` would answer the next query one reply late. Replies are
parsed by splitting on commas and ``float()`` (negative temperatures; the empty humidity field of
temperature-only chambers), never by regular expressions that assume a sign.

Control power and humidity: a chamber whose mode reads ``OFF`` has its control power off and may
refuse ``MODE, CONSTANT`` (``NA:CHB NOT READY``), so ``hold_temperature`` sends ``POWER, ON``
first; on a humidity chamber the last RH set point would stay under control (condensation on a
cold cell), so it switches humidity control off (``HUMI, SOFF``, as espec_pr3j does) for
temperature-only work.

Faults: a reply that does not arrive, cannot be decoded (bytes that are not ASCII), is garbled
or holds a non-finite number (``nan``, ``inf``, ``1e999``) is an error, never a value. Such a
transient fault is retried ``retries`` times, after a pause that doubles from
``retry_backoff_s`` (clock time), with the read buffer flushed so that a late reply cannot answer
the next command; a setting is sent again (ESPEC settings are idempotent); the policy is
``instruments.retry``'s. ``NA:`` is the chamber's answer, not a fault, and is raised at once,
except ``NA:CMD ERR`` and ``NA:PARA ERR`` to a command this driver formatted and checked: the
command was corrupted on its way in, and is sent again like any transient fault. At connect,
``check_range`` compares the station's maximum temperature with the chamber's own (``TYPE?``).

The chamber needs a pause between commands (0.2–0.5 s); the driver waits it through the injected
Clock, so simulated runs do not sleep. Periodic clock tasks may run during that pause, before a
command goes out, never between a command and its reply. One thread at a time may use a driver.
"""
from __future__ import annotations

import logging
import math
from typing import NamedTuple

from pymeasure.instruments import Instrument
from pymeasure.instruments.validators import strict_discrete_set
from pyvisa.constants import Parity, StopBits
from pyvisa.errors import VisaIOError

from instruments.clock import Clock, WallClock
from instruments.espec.errors import EspecCommunicationError, EspecError, EspecRefused
from instruments.retry import RetryPolicy

log = logging.getLogger(__name__)

DEFAULT_MIN_TEMPERATURE_C = -40.0
DEFAULT_MAX_TEMPERATURE_C = 150.0
MODES = ("CONSTANT", "STANDBY", "OFF")


# --- replies ---------------------------------------------------------------------------------
class ChamberType(NamedTuple):
    """``TYPE?``: sensor types, controller, and the highest settable temperature in °C."""

    dry_bulb: str
    wet_bulb: str | None  # None on temperature-only chambers (3-field reply)
    controller: str
    max_temperature_c: float


class Monitor(NamedTuple):
    """``MON?``: air temperature °C, humidity %rh (None without humidity), mode, alarm count."""

    temperature_c: float
    humidity_pct: float | None
    mode: str
    alarm_count: int


class TemperatureStatus(NamedTuple):
    """``TEMP?``: present value, set point, upper and lower alarm limits, all °C."""

    temperature_c: float
    setpoint_c: float
    upper_limit_c: float
    lower_limit_c: float


class HumidityStatus(NamedTuple):
    """``HUMI?``: present value %rh, set point %rh (None while humidity control is OFF), upper
    and lower alarm limits %rh."""

    humidity_pct: float
    setpoint_pct: float | None
    upper_limit_pct: float
    lower_limit_pct: float


class ConstantSetting(NamedTuple):
    """``CONSTANT SET?, TEMP`` (or ``HUMI``): the constant-mode set point and whether that
    loop is controlled (ON/OFF)."""

    setpoint: float | None
    enabled: bool


class ProgramMonitor(NamedTuple):
    """``PRGM MON?``: running step, its temperature °C and humidity %rh (None without), the
    step's remaining time (s) and the two repeat counters."""

    step: int
    temperature_c: float
    humidity_pct: float | None
    remaining_s: float
    counter_a: int
    counter_b: int


class Alarms(NamedTuple):
    """``ALARM?``: number of active alarms and their codes (2/3: absolute high/low temperature)."""

    count: int
    codes: tuple[int, ...]


def _fields(fields: list[str], n: int | tuple[int, ...], what: str) -> list[str]:
    allowed = (n,) if isinstance(n, int) else n
    if len(fields) not in allowed:
        raise ValueError(f"{what} needs {' or '.join(map(str, allowed))} comma-separated fields, "
                         f"got {len(fields)}")
    return fields


def _number(text: str, what: str) -> float:
    """A finite number: ``nan``, ``inf`` and ``1e999`` are garbled replies, not readings."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{what} {text.strip()!r} is not a finite number")
    return value


def _mode_word(text: str) -> str:
    # Modes are upper-case words: CONSTANT, RUN PAUSE, RMT RUN END HOLD ...
    if not text or not all(c.isupper() or c == " " for c in text):
        raise ValueError(f"{text!r} is not an operation mode")
    return text


def parse_rom(fields: list[str]) -> str:
    text = ",".join(fields).strip()
    if not text:
        raise ValueError("empty ROM version")
    return text


def parse_type(fields: list[str]) -> ChamberType:
    fields = _fields(fields, (3, 4), "TYPE?")
    if len(fields) == 4:
        return ChamberType(fields[0], fields[1], fields[2], _number(fields[3], "maximum temperature"))
    return ChamberType(fields[0], None, fields[1], _number(fields[2], "maximum temperature"))


def parse_monitor(fields: list[str]) -> Monitor:
    t, h, mode, alarms = _fields(fields, 4, "MON?")
    return Monitor(_number(t, "temperature"), _number(h, "humidity") if h.strip() else None,
                   _mode_word(mode), int(alarms))


def parse_temperature_status(fields: list[str]) -> TemperatureStatus:
    return TemperatureStatus(*(_number(f, "temperature") for f in _fields(fields, 4, "TEMP?")))


def parse_mode(fields: list[str]) -> str:
    return _mode_word(_fields(fields, 1, "MODE?")[0].strip())


def _on_off(text: str, what: str) -> bool:
    word = text.strip().upper()
    if word not in ("ON", "OFF"):
        raise ValueError(f"{what}: {text!r} is neither ON nor OFF")
    return word == "ON"


def parse_humidity_status(fields: list[str]) -> HumidityStatus:
    pv, sp, upper, lower = _fields(fields, 4, "HUMI?")
    setpoint = None if sp.strip().upper() == "OFF" else _number(sp, "humidity")
    return HumidityStatus(_number(pv, "humidity"), setpoint, _number(upper, "humidity"),
                          _number(lower, "humidity"))


def parse_constant_setting(fields: list[str]) -> ConstantSetting:
    value, enabled = _fields(fields, 2, "CONSTANT SET?")
    return ConstantSetting(_number(value, "set point") if value.strip() else None,
                           _on_off(enabled, "CONSTANT SET?"))


def parse_program_monitor(fields: list[str]) -> ProgramMonitor:
    step, temperature, humidity, remaining, count_a, count_b = _fields(fields, 6, "PRGM MON?")
    hours, colon, minutes = remaining.partition(":")
    if not colon:
        raise ValueError(f"PRGM MON?: remaining time {remaining!r} is not HH:MM")
    return ProgramMonitor(int(step), _number(temperature, "temperature"),
                          _number(humidity, "humidity") if humidity.strip() else None,
                          int(hours) * 3600.0 + int(minutes) * 60.0, int(count_a), int(count_b))


def parse_alarms(fields: list[str]) -> Alarms:
    count = int(fields[0])
    codes = tuple(int(f) for f in fields[1:])
    if count != len(codes):
        raise ValueError(f"alarm count {count} but {len(codes)} code(s) listed")
    return Alarms(count, codes)


# Shape checks of every query the driver sends, run on each reply before it is returned.
_QUERY_PARSERS = {
    "ROM?": parse_rom,
    "TYPE?": parse_type,
    "MON?": parse_monitor,
    "TEMP?": parse_temperature_status,
    "MODE?": parse_mode,
    "MODE?, DETAIL": parse_mode,
    "ALARM?": parse_alarms,
    "HUMI?": parse_humidity_status,
    "CONSTANT SET?, TEMP": parse_constant_setting,
    "PRGM MON?": parse_program_monitor,
}


def _keyword(command: str) -> str:
    return command.split(",", 1)[0].strip()


def _is_query(command: str) -> bool:
    return _keyword(command).endswith("?")


# --- values sent -----------------------------------------------------------------------------
def format_temperature(value_c: float) -> str:
    """One decimal place, as the chamber expects (``-10.0``; never ``-0.0``)."""
    return f"{round(float(value_c), 1) + 0.0:.1f}"


def temperature_in_limits(value, limits):
    """pymeasure validator: a finite temperature in °C within ``limits`` = (min, max)."""
    low, high = limits
    try:
        value_c = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number in °C, not {value!r}") from None
    if not math.isfinite(value_c) or not low <= value_c <= high:
        raise ValueError(f"temperature {value!r} °C is outside the chamber's limits "
                         f"{low:g}…{high:g} °C (station file: chamber.min/max_temperature_c)")
    return value_c


def _status_field(index: int):
    return lambda fields: parse_temperature_status(fields)[index]


# --- the driver ------------------------------------------------------------------------------
class EspecChamber(Instrument):
    """An ESPEC chamber on RS-232C, RS-485 (``rs485_address`` 1–16) or a TCP socket (port 57732).

    :param adapter: VISA resource (``ASRL/dev/ttyUSB0::INSTR``, ``COM3``,
        ``TCPIP0::host::57732::SOCKET``) or a pymeasure Adapter (simulator, protocol tests).
    :param clock: the Clock that paces commands (default: wall clock).
    :param min_temperature_c, max_temperature_c: limits of every temperature sent, °C; values
        outside are refused before anything is sent (default −40…+150).
    :param command_interval_s: least time between commands, s (default 0.3).
    :param rs485_address: prefix ``n,`` on every command (1–16), None on RS-232C and TCP.
    :param safe_temperature_c: set point of the safe state on shutdown, °C; None = STANDBY.
    :param power_off_when_safe: after STANDBY in the safe state, also switch control power off
        (``POWER, OFF``), for labs that leave an idle chamber off.
    :param timeout_s: reply timeout, s; baud_rate: serial speed (8N1, CR LF framing).
    :param retries: further attempts after a transient fault (0–10, default 3).
    :param retry_backoff_s: pause before the first retry, s, doubled for each next (default 1).
    """

    def __init__(self, adapter, name: str = "ESPEC chamber", *, clock: Clock | None = None,
                 min_temperature_c: float = DEFAULT_MIN_TEMPERATURE_C,
                 max_temperature_c: float = DEFAULT_MAX_TEMPERATURE_C,
                 command_interval_s: float = 0.3, rs485_address: int | None = None,
                 safe_temperature_c: float | None = None, power_off_when_safe: bool = False,
                 timeout_s: float = 3.0, baud_rate: int = 9600, retries: int = 3,
                 retry_backoff_s: float = 1.0, **kwargs) -> None:
        if not min_temperature_c < max_temperature_c:
            raise ValueError(f"{name}: min_temperature_c ({min_temperature_c}) must be below "
                             f"max_temperature_c ({max_temperature_c})")
        if command_interval_s < 0:
            raise ValueError(f"{name}: command_interval_s must be >= 0, not {command_interval_s}")
        if rs485_address is not None and not 1 <= int(rs485_address) <= 16:
            raise ValueError(f"{name}: rs485_address must be 1-16, not {rs485_address}")
        try:
            RetryPolicy(retries, retry_backoff_s)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        limits = (float(min_temperature_c), float(max_temperature_c))
        if safe_temperature_c is not None:
            temperature_in_limits(safe_temperature_c, limits)
        super().__init__(adapter, name, includeSCPI=False,
                         write_termination="\r\n", read_termination="\r\n",
                         timeout=int(timeout_s * 1000),
                         asrl={"baud_rate": baud_rate, "data_bits": 8, "parity": Parity.none,
                               "stop_bits": StopBits.one},
                         **kwargs)
        self._reserved_names = frozenset(self._special_names)
        self.clock = clock or WallClock()
        self.temperature_limits_c = limits
        self.setpoint_values = limits
        self.upper_limit_values = limits
        self.lower_limit_values = limits
        self.command_interval_s = float(command_interval_s)
        self.rs485_address = None if rs485_address is None else int(rs485_address)
        self.safe_temperature_c = safe_temperature_c
        self.power_off_when_safe = bool(power_off_when_safe)
        self._humidity: bool | None = None  # probed once by has_humidity()
        self._next_command_at = -math.inf
        self._last_command: str | None = None
        self._unsent: EspecCommunicationError | None = None
        self._rs485_echo: bool | None = None  # learned from the first unambiguous reply
        self.retries, self.retry_backoff_s = int(retries), float(retry_backoff_s)
        self.retried_commands = 0

    # pymeasure's CommonBase checks every attribute read, in Python, against the reserved names
    # of the dynamic properties (``setpoint_values``: settable, stored under another name, not
    # readable); a chamber query reads ~25 attributes, so that check was a fifth of its cost.
    # A reserved name is never found by the plain lookup (no class here defines one), so the
    # check is made where the lookup fails.
    __getattribute__ = object.__getattribute__

    def __getattr__(self, name: str):
        if name in self.__dict__.get("_reserved_names", ()):
            raise AttributeError(f"{name} is a reserved variable name and it cannot be read")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value) -> None:
        # The same list is scanned on every attribute write (three per command); only a reserved
        # name needs pymeasure's renaming.
        reserved = self.__dict__.get("_reserved_names")
        if reserved is None or name in reserved:
            super().__setattr__(name, value)
        else:
            object.__setattr__(self, name, value)

    # --- properties --------------------------------------------------------------------------
    rom = Instrument.measurement(
        "ROM?", """Get the controller's model and firmware version (str).""",
        cast=str, maxsplit=0)

    chamber_type = Instrument.measurement(
        "TYPE?", """Get the sensor types, controller and highest temperature (ChamberType;
        ``wet_bulb`` is None on temperature-only chambers).""",
        cast=str, get_process_list=parse_type)

    monitor = Instrument.measurement(
        "MON?", """Get air temperature in °C, humidity in %rh (None on temperature-only
        chambers), operation mode and number of active alarms (Monitor).""",
        cast=str, get_process_list=parse_monitor)

    temperature = Instrument.measurement(
        "TEMP?", """Get the chamber air temperature (present value) in °C (float).""",
        cast=str, get_process_list=_status_field(0))

    temperature_status = Instrument.measurement(
        "TEMP?", """Get present value, set point, upper and lower alarm limits in °C
        (TemperatureStatus).""",
        cast=str, get_process_list=parse_temperature_status)

    setpoint = Instrument.control(
        "TEMP?", "TEMP, S%s",
        """Control the temperature set point in °C (float within the chamber limits, default
        -40 to 150, sent with one decimal place). The chamber refuses a set point outside its
        upper/lower alarm limits (NA:DATA OUT OF RANGE); use set_temperature to move all three.""",
        validator=temperature_in_limits, values=(DEFAULT_MIN_TEMPERATURE_C,
                                                 DEFAULT_MAX_TEMPERATURE_C),
        set_process=format_temperature, check_set_errors=True, dynamic=True,
        cast=str, get_process_list=_status_field(1))

    upper_limit = Instrument.control(
        "TEMP?", "TEMP, H%s",
        """Control the upper temperature alarm limit in °C (float within the chamber limits,
        default -40 to 150; must stay at or above the set point).""",
        validator=temperature_in_limits, values=(DEFAULT_MIN_TEMPERATURE_C,
                                                 DEFAULT_MAX_TEMPERATURE_C),
        set_process=format_temperature, check_set_errors=True, dynamic=True,
        cast=str, get_process_list=_status_field(2))

    lower_limit = Instrument.control(
        "TEMP?", "TEMP, L%s",
        """Control the lower temperature alarm limit in °C (float within the chamber limits,
        default -40 to 150; must stay at or below the set point).""",
        validator=temperature_in_limits, values=(DEFAULT_MIN_TEMPERATURE_C,
                                                 DEFAULT_MAX_TEMPERATURE_C),
        set_process=format_temperature, check_set_errors=True, dynamic=True,
        cast=str, get_process_list=_status_field(3))

    mode = Instrument.control(
        "MODE?", "MODE, %s",
        """Control the operation mode (str): set CONSTANT (hold the set point), STANDBY
        (idle, controller on) or OFF; reads may also return RUN ... while a program runs.""",
        validator=strict_discrete_set, values=MODES, check_set_errors=True,
        cast=str, maxsplit=0)

    mode_detail = Instrument.measurement(
        "MODE?, DETAIL", """Get the operation mode with its detail (str), e.g. ``RUN PAUSE`` or
        ``RMT RUN END HOLD`` (not on SCP-220/ES102 controllers: they answer NA).""",
        cast=str, maxsplit=0)

    power = Instrument.setting(
        "POWER, %s", """Set the control power (str ON or OFF). OFF is the ``OFF`` mode; ON
        brings the chamber to STANDBY, from which CONSTANT can be set.""",
        validator=strict_discrete_set, values=("ON", "OFF"), check_set_errors=True)

    humidity_status = Instrument.measurement(
        "HUMI?", """Get the humidity present value, set point (None while humidity control is
        off) and alarm limits, all in %rh (HumidityStatus). Temperature-only chambers refuse it
        (EspecRefused); use has_humidity() to ask first.""",
        cast=str, get_process_list=parse_humidity_status)

    constant_temperature = Instrument.measurement(
        "CONSTANT SET?, TEMP", """Get the constant-mode temperature set point in °C and whether
        temperature control is on (ConstantSetting); on P300 controllers this is the value
        CONSTANT mode will hold, which can differ from TEMP? while a program runs.""",
        cast=str, get_process_list=parse_constant_setting)

    program_monitor = Instrument.measurement(
        "PRGM MON?", """Get the running program's step, its temperature °C and humidity %rh,
        remaining step time in s and counters (ProgramMonitor); NA when no program runs.""",
        cast=str, get_process_list=parse_program_monitor)

    key_protect = Instrument.setting(
        "KEYPROTECT, %s", """Set the front-panel key lock (str ON or OFF), so nobody changes
        the chamber by hand during a run (the chamber refuses it while its power is off).""",
        validator=strict_discrete_set, values=("ON", "OFF"), check_set_errors=True)

    alarms = Instrument.measurement(
        "ALARM?", """Get the active alarms (Alarms: count and codes; 2 and 3 are the absolute
        high and low temperature limits).""",
        cast=str, get_process=lambda field: parse_alarms([field]),
        get_process_list=parse_alarms)

    # --- methods -----------------------------------------------------------------------------
    def set_temperature(self, setpoint_c: float, upper_c: float | None = None,
                        lower_c: float | None = None) -> None:
        """Set the set point and optionally the upper/lower alarm limits (°C) in one command,
        ``TEMP, S.. H.. L..``. All values must lie within the chamber limits and
        lower ≤ set point ≤ upper; otherwise ValueError, and nothing is sent."""
        limits = self.temperature_limits_c
        setpoint_c = temperature_in_limits(setpoint_c, limits)
        parts = [f"S{format_temperature(setpoint_c)}"]
        if upper_c is not None:
            upper_c = temperature_in_limits(upper_c, limits)
            if upper_c < setpoint_c:
                raise ValueError(f"{self.name}: upper alarm limit {upper_c} °C is below the "
                                 f"set point {setpoint_c} °C")
            parts.append(f"H{format_temperature(upper_c)}")
        if lower_c is not None:
            lower_c = temperature_in_limits(lower_c, limits)
            if lower_c > setpoint_c:
                raise ValueError(f"{self.name}: lower alarm limit {lower_c} °C is above the "
                                 f"set point {setpoint_c} °C")
            parts.append(f"L{format_temperature(lower_c)}")
        self.send_setting("TEMP, " + " ".join(parts))

    def has_humidity(self) -> bool:
        """Whether the chamber controls humidity: a wet-bulb sensor in ``TYPE?`` and a ``HUMI?``
        it answers (temperature-only chambers answer NA). Probed once, then remembered."""
        if self._humidity is None:
            humidity = self.chamber_type.wet_bulb is not None
            if humidity:
                try:
                    self.humidity_status
                except EspecRefused:
                    humidity = False
            self._humidity = humidity
        return self._humidity

    def humidity_off(self) -> None:
        """Switch humidity control off (``HUMI, SOFF``): the chamber then controls temperature
        only and the humidity set point no longer condenses water on a cold cell."""
        self.send_setting("HUMI, SOFF")

    def power_on(self) -> None:
        """Switch control power on if the chamber is ``OFF`` (nothing is sent otherwise)."""
        if self.mode == "OFF":
            self.power = "ON"

    def hold_temperature(self, setpoint_c: float, upper_c: float | None = None,
                         lower_c: float | None = None) -> None:
        """Hold ``setpoint_c`` °C in CONSTANT mode, temperature only: control power on if it was
        off, humidity control off on a humidity chamber, set point and alarm limits (°C, see
        set_temperature), then ``MODE, CONSTANT``."""
        self.power_on()
        if self.has_humidity() and self.humidity_status.setpoint_pct is not None:
            self.humidity_off()
        self.set_temperature(setpoint_c, upper_c, lower_c)
        self.mode = "CONSTANT"

    def safe_state(self, safe_temperature_c: float | None = None) -> None:
        """Put the chamber in a safe state: STANDBY (then control power off if the driver was
        built with ``power_off_when_safe``), or CONSTANT at ``safe_temperature_c`` °C."""
        if safe_temperature_c is None:
            if self.mode != "OFF":
                self.mode = "STANDBY"
            if self.power_off_when_safe:
                self.power = "OFF"
        else:
            self.hold_temperature(safe_temperature_c)

    def shutdown(self) -> None:
        """Safe state (``safe_temperature_c`` from the constructor, else STANDBY), then
        disconnect. Called on leaving a ``with`` block; a second call does nothing."""
        if self.isShutdown:
            return
        try:
            self.safe_state(self.safe_temperature_c)
        finally:
            self.adapter.close()
            super().shutdown()

    def close(self) -> None:
        """Disconnect without changing what the chamber does."""
        self.adapter.close()
        self.isShutdown = True

    def check_range(self) -> ChamberType:
        """Compare the station's maximum temperature with the chamber's own (``TYPE?``); a
        station file that promises more than the chamber can do is refused before any set
        point is sent."""
        chamber_type = self.chamber_type
        high = self.temperature_limits_c[1]
        if high > chamber_type.max_temperature_c:
            reply = ",".join(str(field) for field in chamber_type if field is not None)
            raise EspecError(self.name, "TYPE?", reply,
                             f"the station file allows set points up to {high:g} °C "
                             f"(chamber.max_temperature_c) but this chamber reports a maximum of "
                             f"{chamber_type.max_temperature_c:g} °C; lower "
                             f"chamber.max_temperature_c")
        return chamber_type

    def send_setting(self, command: str) -> None:
        """Send a setting command and check its ``OK:`` reply (EspecError otherwise)."""
        self.write(command)
        self.check_set_errors()

    # --- communication -----------------------------------------------------------------------
    def _retry(self, attempt, command: str):
        """``attempt(n)`` under the retry policy: transient faults retried after a pause, with
        the connection reopened if it failed and a late reply flushed."""
        def count(exc) -> None:
            self.retried_commands += 1

        def prepare(exc) -> None:
            if isinstance(exc, EspecCommunicationError):
                self._reopen()
            try:
                self.adapter.flush_read_buffer()
            except Exception as flush_exc:  # noqa: BLE001 - a failed flush must not hide the fault
                log.debug("%s: flushing the read buffer failed: %s", self.name, flush_exc)
        return RetryPolicy(self.retries, self.retry_backoff_s).call(
            attempt, clock=self.clock, transient=is_transient, describe=f"{self.name}: {command!r}",
            on_retry=count, before_retry=prepare)

    def _reopen(self) -> None:
        """After no reply or a failed send, open the VISA resource again with its settings: a
        LAN chamber's socket does not survive the chamber's or the switch's restart."""
        adapter = self.adapter
        if callable(getattr(adapter, "reopen", None)):
            adapter.reopen()  # the in-process simulator's connection
            return
        connection = getattr(adapter, "connection", None)
        manager = getattr(adapter, "manager", None)
        name = getattr(adapter, "resource_name", None)
        if connection is None or manager is None or not isinstance(name, str):
            return  # not a VISA resource (simulator, protocol tests)
        settings = {key: getattr(connection, key) for key in (
            "timeout", "read_termination", "write_termination", "baud_rate", "data_bits", "parity",
            "stop_bits") if hasattr(connection, key)}
        try:
            connection.close()
        except Exception as close_exc:  # noqa: BLE001 - it is being replaced anyway
            log.debug("%s: closing the lost connection failed: %s", self.name, close_exc)
        try:
            adapter.connection = manager.open_resource(name, **settings)
        except Exception as open_exc:  # noqa: BLE001 - the next attempt reports the fault
            log.warning("%s: reopening %s failed: %s", self.name, name, open_exc)

    def ask(self, command: str, query_delay=None) -> str:
        """Send a query and read its checked reply, retrying transient faults."""
        return self._retry(lambda n: super(EspecChamber, self).ask(command, query_delay), command)

    def write(self, command: str, **kwargs) -> None:
        """Send ``command`` after the pacing interval, with the RS-485 address prefix if any.
        A command that cannot be sent is reported by the read of its reply (every command has
        one), so a setting and a query are retried alike."""
        clock = self.clock
        while clock.now() < self._next_command_at:
            clock.wait_until(self._next_command_at)
        self._last_command = command
        self._unsent = None
        wire = command if self.rs485_address is None else f"{self.rs485_address},{command}"
        try:
            super().write(wire, **kwargs)
        except (VisaIOError, OSError) as exc:
            self._unsent = EspecCommunicationError(self.name, command, None, f"could not send: {exc}")
        finally:
            self._next_command_at = clock.now() + self.command_interval_s

    def read(self, **kwargs) -> str:
        """Read one reply and check it against the last command: ``NA:`` raises EspecRefused,
        a setting must be answered ``OK:<echo>``, a known query must have its fields."""
        command = self._last_command or "(nothing sent)"
        if self._unsent is not None:
            unsent, self._unsent = self._unsent, None
            raise unsent
        try:
            reply = super().read(**kwargs)
        except (VisaIOError, TimeoutError, OSError) as exc:
            raise EspecCommunicationError(self.name, command, None, f"no reply: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise EspecError(self.name, command, repr(exc.object[:80]),
                             f"undecodable reply (byte 0x{exc.object[exc.start]:02x} is not ASCII)") \
                from None
        finally:
            self._next_command_at = self.clock.now() + self.command_interval_s
        reply = self._strip_address(command, reply.strip())
        self._check_reply(command, reply)
        return reply

    def check_set_errors(self) -> list:
        """Read and check the ``OK:``/``NA:`` reply of the setting just sent; on a transient
        fault send the setting again (settings are idempotent) and read again."""
        command = self._last_command

        def attempt(n: int) -> list:
            if n and command is not None:
                self.write(command)
            self.read()
            return []
        if command is None:
            self.read()
            return []
        return self._retry(attempt, command)

    def _check_reply(self, command: str, reply: str) -> None:
        if not reply.isprintable():
            raise EspecError(self.name, command, reply, "garbled reply (control characters)")
        if reply.startswith("NA:"):
            raise EspecRefused(self.name, command, reply)
        if not _is_query(command):
            if not reply.startswith("OK:"):
                raise EspecError(self.name, command, reply, "expected 'OK:' and the command")
            if _keyword(self._echo_without_address(reply[3:])) != _keyword(command):
                raise EspecError(self.name, command, reply,
                                 "the reply acknowledges another command")
            return
        if reply.startswith("OK:"):
            raise EspecError(self.name, command, reply, "a query was answered with 'OK:'")
        parser = _QUERY_PARSERS.get(command)
        if parser is not None:
            try:
                parser(reply.split(","))
            except ValueError as exc:
                raise EspecError(self.name, command, reply, f"unexpected reply: {exc}") from None

    def _echo_without_address(self, echo: str) -> str:
        """The echoed command of an RS-485 ``OK:<address>,<command>`` reply (the manual's form)."""
        if self.rs485_address is None:
            return echo
        address, comma, rest = echo.partition(",")
        return rest if comma and address.strip() == str(self.rs485_address) else echo

    def _strip_address(self, command: str, reply: str) -> str:
        """Drop an echoed RS-485 address ``n,``. Manuals show replies without it, some
        controllers echo it; whether this one does is learned from the first reply. Only
        ``ALARM?`` is ambiguous (``2,1,5``: alarm count 2, or address 2 and count 1), so until
        then it is resolved by the alarm count and, if still ambiguous, taken as no echo."""
        if self.rs485_address is None:
            return reply
        prefix = f"{self.rs485_address},"
        if not reply.startswith(prefix):
            self._rs485_echo = False
            return reply
        if command != "ALARM?":
            self._rs485_echo = True
            return reply[len(prefix):]
        if self._rs485_echo is None:
            stripped = reply[len(prefix):]
            if _alarm_count_matches(stripped) and not _alarm_count_matches(reply):
                return stripped
            return reply
        return reply[len(prefix):] if self._rs485_echo else reply


CORRUPTED_COMMAND_REFUSALS = ("CMD ERR", "PARA ERR")
"""``NA:`` reasons that, to a command the driver formatted and checked, mean the command was
corrupted on the line."""


def is_transient(exc: BaseException) -> bool:
    """Whether another try may cure ``exc``: no reply, a garbled or undecodable reply, a broken
    connection, or a command the chamber received corrupted."""
    if isinstance(exc, EspecRefused):
        return exc.reason in CORRUPTED_COMMAND_REFUSALS
    return isinstance(exc, EspecError)


def _alarm_count_matches(reply: str) -> bool:
    try:
        parse_alarms(reply.split(","))
    except ValueError:
        return False
    return True
