"""Protocol files: the sample, and the steps of an experiment, validated before anything runs.

A protocol file is TOML with a ``[protocol]`` header, a ``[sample]`` section (the truth for
analysis and, in simulation, for the simulated pellet or cell) and ``[[steps]]`` whose ``kind``
selects the step model. ``load_protocol`` checks the file on its own and against the station
(chamber range, the potentiostat's EIS frequency limit) and reports every problem at once with
its location, before any instrument is touched.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.errors import ConfigError, format_pydantic_errors
from config.station import StationConfig, read_toml

PROTOCOL_DIR = Path(__file__).with_name("protocols")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Sample(_Strict):
    """The specimen. Geometry is that of the pellet (EIS, DC polarization) or of the cell."""

    id: str = Field(min_length=1)
    batch: str = ""
    mass_mg: float | None = Field(default=None, gt=0)
    thickness_um: float | None = Field(default=None, gt=0, le=20000)
    diameter_mm: float | None = Field(default=None, gt=0, le=100)
    operator: str = ""
    notes: str = ""

    @property
    def area_cm2(self) -> float | None:
        if self.diameter_mm is None:
            return None
        return math.pi * (self.diameter_mm / 10.0) ** 2 / 4.0


class Stabilization(_Strict):
    """When the chamber counts as settled: |T − set point| ≤ tolerance_c for dwell_s, within timeout_s."""

    tolerance_c: float = Field(default=0.5, gt=0, le=5)
    dwell_s: float = Field(default=120.0, ge=0)
    timeout_s: float = Field(default=7200.0, gt=0)
    poll_s: float = Field(default=10.0, gt=0)


class PeisSettings(_Strict):
    """Potentio-EIS around the open-circuit (or a fixed DC) potential."""

    initial_frequency_hz: float = Field(default=7e6, gt=0)
    final_frequency_hz: float = Field(default=1.0, gt=0)
    points_per_decade: int = Field(default=10, ge=1, le=100)
    amplitude_v: float = Field(default=0.01, gt=0, le=1.0)
    dc_voltage_v: float = Field(default=0.0, ge=-10, le=10)
    dc_vs_ocv: bool = True
    average_n_times: int = Field(default=1, ge=1, le=100)
    wait_for_steady_periods: float = Field(default=0.1, ge=0, le=100)

    @model_validator(mode="after")
    def _sweep(self):
        if self.final_frequency_hz >= self.initial_frequency_hz:
            raise ValueError(f"final_frequency_hz ({self.final_frequency_hz}) must be below "
                             f"initial_frequency_hz ({self.initial_frequency_hz}): sweeps run high to low")
        return self

    @property
    def frequency_number(self) -> int:
        decades = math.log10(self.initial_frequency_hz / self.final_frequency_hz)
        return max(2, int(round(decades * self.points_per_decade)) + 1)


class ChamberStep(_Strict):
    """Set the chamber, wait until stable, then soak."""

    kind: Literal["chamber"]
    name: str = ""
    setpoint_c: float
    soak_s: float = Field(default=3600.0, ge=0)
    stabilization: Stabilization = Stabilization()


class PeisStep(_Strict):
    """One impedance spectrum at whatever temperature the chamber holds."""

    kind: Literal["peis"]
    name: str = ""
    peis: PeisSettings = PeisSettings()


class TemperatureEisSeries(_Strict):
    """For each set point: chamber, stabilise, soak, PEIS (PAPER.md protocol 1)."""

    kind: Literal["temperature_eis_series"]
    name: str = ""
    temperatures_c: list[float] = Field(min_length=1)
    soak_s: float = Field(default=3600.0, ge=0)
    stabilization: Stabilization = Stabilization()
    peis: PeisSettings = PeisSettings()


class HoldStep(_Strict):
    """Wait (e.g. 30 days of storage), with the chamber at a set point or idle."""

    kind: Literal["hold"]
    name: str = ""
    duration_s: float = Field(gt=0)
    setpoint_c: float | None = None


Step = Annotated[Union[ChamberStep, PeisStep, TemperatureEisSeries, HoldStep],
                 Field(discriminator="kind")]


class ProtocolInfo(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    chamber_log_interval_s: float = Field(default=10.0, gt=0)
    analysis: Literal["eis", "none"] = "eis"


class Protocol(_Strict):
    protocol: ProtocolInfo
    sample: Sample
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _geometry(self):
        needs_pellet = any(s.kind in ("peis", "temperature_eis_series") for s in self.steps)
        if needs_pellet and (self.sample.thickness_um is None or self.sample.diameter_mm is None):
            raise ValueError("sample.thickness_um and sample.diameter_mm are required for EIS "
                             "(σ = L / (R·A))")
        return self


def station_problems(protocol: Protocol, station: StationConfig) -> list[str]:
    """Checks that need the station: temperatures in the chamber's range, EIS frequency limit."""
    lo, hi = station.chamber.min_temperature_c, station.chamber.max_temperature_c
    fmax = station.potentiostat.max_eis_frequency_hz
    problems = []

    def check_t(where: str, t: float | None) -> None:
        if t is not None and not lo <= t <= hi:
            problems.append(f"{where}: {t} °C is outside the chamber's range {lo}…{hi} °C")

    def check_peis(where: str, peis: PeisSettings) -> None:
        if peis.initial_frequency_hz > fmax:
            problems.append(f"{where}.initial_frequency_hz: {peis.initial_frequency_hz:g} Hz is above "
                            f"the potentiostat's maximum {fmax:g} Hz ({station.potentiostat.model})")

    for i, step in enumerate(protocol.steps):
        where = f"steps[{i}]"
        if isinstance(step, ChamberStep):
            check_t(f"{where}.setpoint_c", step.setpoint_c)
        elif isinstance(step, TemperatureEisSeries):
            for j, t in enumerate(step.temperatures_c):
                check_t(f"{where}.temperatures_c[{j}]", t)
            check_peis(f"{where}.peis", step.peis)
        elif isinstance(step, PeisStep):
            check_peis(f"{where}.peis", step.peis)
        elif isinstance(step, HoldStep):
            check_t(f"{where}.setpoint_c", step.setpoint_c)
    return problems


def resolve_protocol_path(name_or_path: str | Path) -> Path:
    """A path as given, or the name of a shipped protocol (``onbh_conductivity``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = PROTOCOL_DIR / (path.name if path.suffix == ".toml" else f"{path.name}.toml")
    return shipped if shipped.exists() else path


def load_protocol(path: str | Path, station: StationConfig) -> Protocol:
    """Read, validate and check a protocol against the station; ConfigError lists every problem."""
    path = resolve_protocol_path(path)
    data = read_toml(path)
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), format_pydantic_errors(exc)) from None
    problems = station_problems(protocol, station)
    if problems:
        raise ConfigError(str(path), problems)
    return protocol
