"""The station file: which instruments, how to reach them, their limits, and the sim-lab constants.

One TOML file names the chamber, the potentiostat and the cycler, each with its driver, transport
and address. ``simulate = true`` (or ``cellbench run --simulate``) replaces every instrument by its
simulator on a virtual clock; the drivers and the wire protocols stay the same.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError, format_pydantic_errors, reject_non_finite

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_STATION = Path(__file__).with_name("station.toml")


class _Strict(BaseModel):
    # NaN and ±inf are never a value a file may mean (TOML spells them nan and inf).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ChamberConfig(_Strict):
    """ESPEC chamber. ``address`` is a VISA resource (``ASRL/dev/ttyUSB0::INSTR``, ``COM3``,
    ``TCPIP0::192.168.0.20::57732::SOCKET``); ``rs485_address`` (1–16) prefixes commands on RS-485."""

    driver: Literal["espec"] = "espec"
    transport: Literal["serial", "rs485", "tcp"] = "serial"
    address: str = ""
    rs485_address: int | None = Field(default=None, ge=1, le=16)
    baud_rate: int = 9600
    timeout_s: float = Field(default=3.0, gt=0)
    command_interval_s: float = Field(default=0.3, ge=0.2, le=2.0)
    min_temperature_c: float = Field(default=-40.0, ge=-100.0, le=300.0)
    max_temperature_c: float = Field(
        default=150.0, ge=-100.0, le=300.0, description="Highest set point, °C; at connect it is "
        "compared with the maximum the chamber itself reports (TYPE?)")
    safe_temperature_c: float | None = Field(
        default=None, description="Set point after a run ends or aborts; None = STANDBY")
    power_off_when_safe: bool = Field(
        default=False, description="After STANDBY in the safe state, switch control power off")

    @model_validator(mode="after")
    def _check(self):
        if self.min_temperature_c >= self.max_temperature_c:
            raise ValueError(f"min_temperature_c ({self.min_temperature_c}) must be below "
                             f"max_temperature_c ({self.max_temperature_c})")
        if self.transport == "rs485" and self.rs485_address is None:
            raise ValueError("transport 'rs485' needs rs485_address (1-16)")
        if self.safe_temperature_c is not None and not (
                self.min_temperature_c <= self.safe_temperature_c <= self.max_temperature_c):
            raise ValueError(f"safe_temperature_c {self.safe_temperature_c} is outside the "
                             f"chamber's range {self.min_temperature_c}…{self.max_temperature_c} °C")
        return self


class PotentiostatConfig(_Strict):
    """BioLogic potentiostat through the EC-Lab Development Package (Windows DLL, not shipped)."""

    driver: Literal["biologic"] = "biologic"
    address: str = "USB0"
    channel: int = Field(default=1, ge=1, le=16, description="1-based channel number (one run)")
    n_channels: int | None = Field(default=None, ge=1, le=16, description="Channels of the device, "
                                   "for cell positions (default: up to ``channel``)")
    dll_path: str = Field(default="", description="Path to EClib64.dll (or EClib.dll)")
    firmware_dir: str = Field(default="", description="Folder with kernel*.bin, *.xlx, *.ecc")
    board: Literal["essential", "premium", "digicore"] = "premium"
    model: str = "SP-200"
    max_eis_frequency_hz: float = Field(default=7e6, gt=0)
    max_voltage_v: float = Field(default=10.0, gt=0, le=100.0,
                                 description="No potential beyond ±max_voltage_v is ever applied, V")
    connect_timeout_s: int = Field(default=5, ge=1, le=60)
    poll_interval_s: float = Field(default=1.0, gt=0)


class CyclerConfig(_Strict):
    """Landt cycler: followed through the text export the Landt software writes."""

    driver: Literal["landt"] = "landt"
    channel: int = Field(default=1, ge=1, description="1-based channel number (one run)")
    n_channels: int | None = Field(default=None, ge=1, le=256, description="Channels of the system, "
                                   "for cell positions (default: up to ``channel``)")
    export_path: str = Field(default="", description="The live tab-separated text export the Landt "
                             "software writes for this channel; ``{channel}`` in it stands for the "
                             "channel number (one export per channel)")
    poll_interval_s: float = Field(default=60.0, gt=0)
    max_voltage_v: float = Field(default=10.0, gt=0, le=100.0,
                                 description="No cut-off or safety limit beyond ±max_voltage_v, V")
    max_current_a: float = Field(default=10.0, gt=0, le=1000.0,
                                 description="No current above max_current_a on a channel, A")
    start_timeout_s: float = Field(default=3600.0, gt=0)
    cell_eis: Literal["none", "prompt"] = Field(
        default="prompt", description="How the potentiostat reaches the cell for EIS: 'prompt' asks "
        "the operator to move the leads; 'none' skips cell EIS")


class SimThermal(_Strict):
    ambient_c: float = 23.0
    ramp_rate_c_per_min: float = Field(default=2.0, gt=0)
    sample_time_constant_s: float = Field(default=300.0, gt=0, le=600)
    standby_time_constant_s: float = Field(default=1800.0, gt=0)


class SimPellet(_Strict):
    sigma_ref_s_per_cm: float = Field(default=4.6e-3, gt=0)
    ref_temperature_c: float = 30.0
    sigma_low_s_per_cm: float = Field(default=0.3e-3, gt=0)
    low_temperature_c: float = -10.0
    ea_ev: float | None = Field(default=None, gt=0)
    relative_permittivity: float = Field(default=10.0, gt=0)
    bulk_cpe_n: float = Field(default=0.95, gt=0, le=1)
    gb_resistance_ratio: float = Field(default=0.0, ge=0)
    gb_ea_ev: float = Field(default=0.55, gt=0)
    gb_capacitance_f: float = Field(default=2e-10, gt=0)
    gb_cpe_n: float = Field(default=0.85, gt=0, le=1)
    electrode_q_f_s_n: float = Field(default=2e-6, gt=0)
    electrode_cpe_n: float = Field(default=0.88, gt=0, le=1)
    lead_inductance_h: float = Field(default=1e-7, ge=0)
    lead_resistance_ohm: float = Field(default=0.0, ge=0)
    noise_pct: float = Field(default=0.3, ge=0, le=5)
    electronic_sigma_s_per_cm: float = Field(default=1e-8, gt=0)
    aging_per_day: float = Field(default=0.0, ge=0, le=0.1)


class SimConfig(_Strict):
    seed: int = 0
    potentiostat_poll_interval_s: float = Field(
        default=30.0, gt=0, le=600,
        description="BL_GetData polling in virtual time; rows are the same, fewer polls run faster")
    cycler_poll_interval_s: float = Field(default=1800.0, gt=0, le=3600,
                                          description="Reading the simulated cycler's export, virtual s")
    chamber_over_tcp: bool = Field(
        default=False, description="Serve the chamber simulator on a loopback TCP port and reach it "
        "through pyvisa-py, as a LAN chamber (port 57732) is reached")
    offline_time: Literal["none"] | float = Field(
        default="none", description="Instrument time that passes while no process controls the "
        "simulated station (after a crash, until resume): \"none\", or a factor of the wall time "
        "that passed (1.0 = real time)")
    potentiostat_buffer_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, le=1 << 30,
        description="Data memory of a simulated BioLogic channel; rows not read before it is full "
        "are lost, oldest first, and reported as IRQskipped (instruments/biologic/fake_dll.py)")
    thermal: SimThermal = SimThermal()
    pellet: SimPellet = SimPellet()
    cell: dict = Field(default_factory=dict, description="Overrides of the cell model constants")
    polarization: dict = Field(default_factory=dict,
                               description="Overrides of the LSV / DC-polarization model constants")
    faults: dict = Field(default_factory=dict, description="Fault injection, per instrument: "
                         "[sim.faults.chamber|potentiostat|cycler] with rate and kinds "
                         "(instruments/sim/faults.py) and each simulator's own settings")

    _finite_tables = field_validator("cell", "polarization", "faults")(reject_non_finite)

    @field_validator("faults")
    @classmethod
    def _known_faults(cls, faults: dict) -> dict:
        # The simulators define their faults; checked here so a typo fails at load, not mid-run.
        from instruments.sim.faults import fault_table_problems
        problems = fault_table_problems(faults)
        if problems:
            raise ValueError("; ".join(problems))
        return faults
    @field_validator("offline_time")
    @classmethod
    def _offline_factor(cls, value):
        if value != "none" and not 0 <= value <= 1e6:
            raise ValueError(f"offline_time must be \"none\" or a factor 0…1e6 of wall time, not {value}")
        return value


class PlanningConfig(_Strict):
    """What duration estimates (``plan``, remaining time) assume of a real station."""

    chamber_ramp_rate_c_per_min: float = Field(default=1.0, gt=0, le=50)
    chamber_start_c: float = 23.0


ONE_YEAR_S = 365.0 * 86400.0


class LimitsConfig(_Strict):
    """What no protocol may ask of this station, whatever its instruments could do."""

    max_protocol_duration_s: float = Field(
        default=ONE_YEAR_S, gt=0, description="Longest a protocol may run at worst (every timeout "
        "reached), s; also the bound of every single duration in it")
    max_points: int = Field(default=20_000_000, ge=1, description="Most data points a protocol may "
                            "record (its sampling intervals over its worst-case duration)")


CHANNEL_INSTRUMENTS = ("potentiostat", "cycler")


class Position(_Strict):
    """Where one cell sits: its channels (``"potentiostat:3"``, ``"cycler:1"``) and the chamber
    it is in (none: on the bench, at room temperature)."""

    channels: list[str] = Field(min_length=1)
    chamber: str | None = None

    def channel_of(self, instrument: str) -> int | None:
        for ref in self.channels:
            name, _, number = ref.partition(":")
            if name == instrument:
                return int(number)
        return None


def _channel_ref_problem(ref: str) -> str | None:
    name, sep, number = ref.partition(":")
    if not sep or name not in CHANNEL_INSTRUMENTS or not number.isdigit():
        return (f"{ref!r} is not 'instrument:channel' with instrument one of "
                f"{list(CHANNEL_INSTRUMENTS)} and a channel number")
    return None


class StationInfo(_Strict):
    name: str = "station"
    simulate: bool = False


class StationConfig(_Strict):
    station: StationInfo = StationInfo()
    chamber: ChamberConfig = ChamberConfig()
    potentiostat: PotentiostatConfig = PotentiostatConfig()
    cycler: CyclerConfig = CyclerConfig()
    planning: PlanningConfig = PlanningConfig()
    limits: LimitsConfig = LimitsConfig()
    sim: SimConfig = SimConfig()
    chambers: dict[str, ChamberConfig] = Field(
        default_factory=dict, description="Named chambers of a station with cell positions")
    positions: dict[str, Position] = Field(
        default_factory=dict, description="Cell positions: channels and chamber of each")

    @property
    def simulate(self) -> bool:
        return self.station.simulate

    @model_validator(mode="after")
    def _positions(self):
        problems = []
        counts = {"potentiostat": self.potentiostat.n_channels or self.potentiostat.channel,
                  "cycler": self.cycler.n_channels or self.cycler.channel}
        taken: dict[str, str] = {}
        for name, position in self.positions.items():
            where = f"positions.{name}"
            kinds = []
            for ref in position.channels:
                problem = _channel_ref_problem(ref)
                if problem:
                    problems.append(f"{where}.channels: {problem}")
                    continue
                instrument, number = ref.split(":")
                kinds.append(instrument)
                if not 1 <= int(number) <= counts[instrument]:
                    problems.append(f"{where}.channels: {ref!r}: the {instrument} has channels "
                                    f"1…{counts[instrument]} ({instrument}.n_channels)")
                elif ref in taken:
                    problems.append(f"{where}.channels: {ref!r} is already position "
                                    f"{taken[ref]!r}'s")
                else:
                    taken[ref] = name
            if len(kinds) != len(set(kinds)):
                problems.append(f"{where}.channels: one channel per instrument, not {position.channels}")
            if position.chamber is not None and position.chamber not in self.chambers:
                problems.append(f"{where}.chamber: no chamber {position.chamber!r}; the station has "
                                f"{sorted(self.chambers) or 'none'} ([chambers.NAME])")
        if self.cycler.export_path and len([r for r in taken if r.startswith("cycler:")]) > 1 \
                and "{channel}" not in self.cycler.export_path:
            problems.append("cycler.export_path: several cycler channels need one export each; "
                            "write {channel} where the channel number goes")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def for_position(self, name: str) -> "StationConfig":
        """The station as one run on position ``name`` sees it: its chamber as ``chamber``, its
        channels as ``potentiostat.channel`` and ``cycler.channel``."""
        try:
            position = self.positions[name]
        except KeyError:
            raise ConfigError("station", [f"no position {name!r}; the station has "
                                          f"{sorted(self.positions) or 'none'}"]) from None
        update = {}
        if position.chamber is not None:
            update["chamber"] = self.chambers[position.chamber]
        for instrument in CHANNEL_INSTRUMENTS:
            number = position.channel_of(instrument)
            if number is not None:
                update[instrument] = getattr(self, instrument).model_copy(update={"channel": number})
        return self.model_copy(update=update)


def load_station(path: str | Path | None = None, simulate: bool | None = None) -> StationConfig:
    """Read and validate a station file; ``simulate`` overrides the file's choice."""
    path = Path(path) if path else DEFAULT_STATION
    data = read_toml(path)
    try:
        station = StationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), format_pydantic_errors(exc)) from None
    if simulate is not None:
        station.station.simulate = simulate
    problems = []
    if not station.simulate:
        if not station.potentiostat.dll_path:
            problems.append("potentiostat.dll_path: required to drive a real BioLogic "
                            "(path to EClib64.dll of the EC-Lab Development Package)")
        if not station.chamber.address:
            problems.append("chamber.address: required to drive a real ESPEC chamber")
    if problems:
        raise ConfigError(str(path), problems)
    return station


def read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), ["is a directory, not a TOML file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text (byte {exc.start}): TOML files are UTF-8"]) \
            from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc.strerror or exc}"]) from None
