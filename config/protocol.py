"""Protocol files: the sample, and the steps of an experiment, validated before anything runs.

A protocol file is TOML with a ``[protocol]`` header, a ``[sample]`` section (the truth for
analysis and, in simulation, for the simulated pellet or cell) and ``[[steps]]`` whose ``kind``
selects the step model. ``load_protocol`` checks the file on its own and against the station
(chamber range, the potentiostat's EIS frequency limit, and the absolute limits of
``config.limits``: potentials, currents, the cell's window, durations, points) and reports every
problem at once with its location, before any instrument is touched. NaN and infinities are
refused everywhere.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from analysis.physics import disc_area_cm2
from config.cycling import (CCCV, CellSection, ConstantCurrent, CyclingProgram, Rest, Safety,
                            check_program_for_cell)
from config.errors import ConfigError, format_pydantic_errors
from config import limits
from config.station import StationConfig, read_toml

PROTOCOL_DIR = Path(__file__).with_name("protocols")


class _Strict(BaseModel):
    # NaN and ±inf are never a value a file may mean (TOML spells them nan and inf).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class SampleSim(_Strict):
    """What the simulated lab mounts for this sample (ignored by real instruments): a blocking
    pellet of the sample's geometry, or an LSV composite cell swept in ``direction``."""

    load: Literal["pellet", "lsv_composite"] = "pellet"
    direction: Literal["oxidation", "reduction"] | None = None

    @model_validator(mode="after")
    def _direction(self):
        if self.load == "lsv_composite" and self.direction is None:
            raise ValueError("load 'lsv_composite' needs direction = 'oxidation' (o-NBH + carbon) "
                             "or 'reduction' (o-NBH + stainless steel)")
        return self


class Sample(_Strict):
    """The specimen. Geometry is that of the pellet (EIS, DC polarization) or of the cell."""

    id: str = Field(min_length=1)
    batch: str = ""
    mass_mg: float | None = Field(default=None, gt=0)
    thickness_um: float | None = Field(default=None, gt=0, le=20000)
    diameter_mm: float | None = Field(default=None, gt=0, le=100)
    operator: str = ""
    notes: str = ""
    composite: str = Field(default="", description="Working-electrode composite, e.g. 'o-NBH:C 7:3'")
    loading_mg_per_cm2: float | None = Field(default=None, gt=0,
                                             description="Electrolyte loading of the composite, mg/cm²")
    ionic_conductivity_s_per_cm: float | None = Field(
        default=None, gt=0, description="Known ionic conductivity, for t_e = σe/σion")
    sim: SampleSim = SampleSim()

    @property
    def area_cm2(self) -> float | None:
        if self.diameter_mm is None:
            return None
        return disc_area_cm2(self.diameter_mm)


class Stabilization(_Strict):
    """When the chamber counts as settled: |T − set point| ≤ tolerance_c for dwell_s, within timeout_s."""

    tolerance_c: float = Field(default=0.5, gt=0, le=5)
    dwell_s: float = Field(default=120.0, ge=0)
    timeout_s: float = Field(default=7200.0, gt=0)
    poll_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _dwell_within_timeout(self):
        if self.dwell_s >= self.timeout_s:
            raise ValueError(f"dwell_s ({self.dwell_s} s) must be shorter than timeout_s "
                             f"({self.timeout_s} s): the chamber could never count as settled")
        return self


class PeisSettings(_Strict):
    """Potentio-EIS around the open-circuit (or a fixed DC) potential."""

    # BioLogic's EIS range is 10 µHz to 7 MHz at most (the station's own maximum is checked too):
    # bounds that also keep the number of frequencies finite.
    initial_frequency_hz: float = Field(default=7e6, gt=0, le=1e9)
    final_frequency_hz: float = Field(default=1.0, ge=1e-5)
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


class LsvStep(_Strict):
    """Linear sweep from the open-circuit potential to ``end_voltage_v`` (PAPER.md protocol 3)."""

    kind: Literal["lsv"]
    name: str = ""
    rest_s: float = Field(default=600.0, ge=0, description="OCV rest before the sweep")
    end_voltage_v: float = Field(ge=-10, le=10)
    scan_rate_v_per_s: float = Field(default=50e-6, gt=0, le=1.0)
    record_every_dv_v: float = Field(default=0.001, gt=0, le=0.1)
    record_every_dt_s: float = Field(default=60.0, gt=0)
    threshold_a_per_cm2: float = Field(default=10e-6, gt=0)


class DcPolarizationStep(_Strict):
    """Constant-voltage steps across a blocking-electrode pellet (PAPER.md protocol 4).

    Each step is held until the current's drift over the last ``drift_window_s`` falls below
    ``drift_criterion_per_h`` (relative, per hour), at least ``min_step_s``, at most ``max_step_s``.
    """

    kind: Literal["dc_polarization"]
    name: str = ""
    voltages_v: list[float] = Field(default=[0.1, 0.2, 0.3, 0.4], min_length=1)
    drift_criterion_per_h: float = Field(default=0.01, gt=0)
    drift_window_s: float = Field(default=3600.0, gt=0)
    min_step_s: float = Field(default=3600.0, ge=0)
    max_step_s: float = Field(default=21600.0, gt=0)
    check_interval_s: float = Field(default=600.0, gt=0)
    record_every_dt_s: float = Field(default=10.0, gt=0)
    rest_between_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _limits(self):
        bad = [v for v in self.voltages_v if not -2.5 <= v <= 2.5]
        if bad:
            raise ValueError(f"voltages_v {bad} outside ±2.5 V: a blocking-electrode pellet "
                             f"would decompose long before")
        if self.min_step_s > self.max_step_s:
            raise ValueError(f"min_step_s ({self.min_step_s}) exceeds max_step_s ({self.max_step_s})")
        return self


class CyclingStep(_Strict):
    """Run a cycling program on the cycler, optionally with the chamber held at ``temperature_c``."""

    kind: Literal["cycling"]
    name: str = ""
    temperature_c: float | None = None
    soak_s: float = Field(default=0.0, ge=0)
    stabilization: Stabilization = Stabilization()
    program: CyclingProgram


class ColdDischargeStep(_Strict):
    """PAPER.md protocol 7: before each discharge a CCCV recharge at ``charge_temperature_c``; then
    the chamber goes to the discharge temperature, the cell soaks (and gets an EIS), and it is
    discharged at ``discharge_rate_c`` to the cell's lower cut-off.

    The cycler cannot be held by cellbench on every instrument, so the program carries rests
    before each charge and each discharge, ``rest_before_charge_s`` and ``rest_before_discharge_s``
    long, during which the chamber settles and soaks; they must cover settling + soak (+ EIS).
    A discharge caught with the chamber out of its band is stopped and repeated by a new program
    from that temperature on (recharge, soak, discharge): ``program_for(cell, first=k)``.
    """

    kind: Literal["cold_discharge"]
    name: str = ""
    temperatures_c: list[float] = Field(default=[25.0, 0.0, -5.0, -10.0, -15.0], min_length=1)
    charge_temperature_c: float = 20.0
    charge_rate_c: float = Field(default=0.1, gt=0, le=5)
    cv_until_rate_c: float = Field(default=0.1, gt=0, le=5)
    discharge_rate_c: float = Field(default=0.1, gt=0, le=5)
    rest_before_charge_s: float = Field(default=7200.0, gt=0)
    rest_before_discharge_s: float = Field(default=10800.0, gt=0)
    soak_s: float = Field(default=3600.0, ge=0)
    stabilization: Stabilization = Stabilization()
    eis: bool = True
    peis: PeisSettings = PeisSettings(initial_frequency_hz=1e6, final_frequency_hz=0.1)
    record_interval_s: float = Field(default=60.0, gt=0)
    record_dv_v: float = Field(default=0.005, gt=0, le=1.0)

    def program_for(self, cell: CellSection, first: int = 0) -> tuple[CyclingProgram, list[tuple[str, int]]]:
        """The protocol from its ``first`` temperature on as one cycler program with rests for
        the chamber, and, per program step index, what happens there: ('charge_rest' | 'charge'
        | 'discharge_rest' | 'discharge', k) for the k-th temperature. ``first`` > 0: the
        program that repeats a discharge caught out of band (procedures/executors/cycling.py)."""
        steps, roles = [], []
        for k in range(first, len(self.temperatures_c)):
            steps += [Rest(kind="rest", duration_s=self.rest_before_charge_s),
                      CCCV(kind="cccv", rate_c=self.charge_rate_c, voltage_v=cell.upper_cutoff_v,
                           until_rate_c=self.cv_until_rate_c),
                      Rest(kind="rest", duration_s=self.rest_before_discharge_s),
                      ConstantCurrent(kind="cc", direction="discharge", rate_c=self.discharge_rate_c,
                                      until_voltage_v=cell.lower_cutoff_v)]
            roles += [("charge_rest", k), ("charge", k), ("discharge_rest", k), ("discharge", k)]
        current_max = 2.0 * cell.current_for_rate(max(self.charge_rate_c, self.discharge_rate_c))
        program = CyclingProgram(steps=steps, record_interval_s=self.record_interval_s,
                                 record_dv_v=self.record_dv_v,
                                 safety=Safety(voltage_min_v=cell.lower_cutoff_v - 0.5,
                                               voltage_max_v=cell.upper_cutoff_v + 0.2,
                                               current_max_a=current_max))
        return program, roles

    @model_validator(mode="after")
    def _rests_cover_soak(self):
        needed = self.soak_s + self.stabilization.dwell_s
        for field in ("rest_before_charge_s", "rest_before_discharge_s"):
            if getattr(self, field) <= needed:
                raise ValueError(f"{field} ({getattr(self, field)} s) must exceed dwell + soak "
                                 f"({needed} s): the chamber settles during that rest")
        return self


Step = Annotated[Union[ChamberStep, PeisStep, TemperatureEisSeries, HoldStep, LsvStep,
                       DcPolarizationStep, CyclingStep, ColdDischargeStep],
                 Field(discriminator="kind")]


STEP_KINDS = frozenset(get_args(model.model_fields["kind"].annotation)[0]
                       for model in get_args(get_args(Step)[0]))


class ChamberWatch(_Strict):
    """The band a chamber must hold while the run soaks or measures at a set point: leaving
    ``set point ± band_c`` suspends the run; it counts as back once within ``band_c −
    hysteresis_c`` (so noise at the edge does not toggle it). A condition that has not recovered
    after ``recovery_timeout_s`` ends the run safe."""

    band_c: float = Field(default=0.5, gt=0, le=10)
    hysteresis_c: float = Field(default=0.2, ge=0)
    recovery_timeout_s: float = Field(default=14400.0, gt=0)

    @model_validator(mode="after")
    def _hysteresis(self):
        if self.hysteresis_c >= self.band_c:
            raise ValueError(f"hysteresis_c ({self.hysteresis_c}) must be below band_c ({self.band_c})")
        return self


class ProtocolInfo(_Strict):
    name: str = Field(min_length=1)
    description: str = ""
    chamber_log_interval_s: float = Field(default=10.0, gt=0)
    watch: ChamberWatch = ChamberWatch()
    analysis: Literal["eis", "lsv", "dcpol", "cycling", "symmetric", "cold_discharge", "none"] = "eis"


class Protocol(_Strict):
    protocol: ProtocolInfo
    sample: Sample
    cell: CellSection | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _geometry(self):
        needs_pellet = any(s.kind in ("peis", "temperature_eis_series", "dc_polarization")
                           for s in self.steps)
        if needs_pellet and (self.sample.thickness_um is None or self.sample.diameter_mm is None):
            raise ValueError("sample.thickness_um and sample.diameter_mm are required for EIS "
                             "(σ = L / (R·A))")
        if any(s.kind == "lsv" for s in self.steps) and self.sample.diameter_mm is None:
            raise ValueError("sample.diameter_mm is required for LSV (current density)")
        if any(s.kind in ("cycling", "cold_discharge") for s in self.steps):
            if self.cell is None:
                raise ValueError("a [cell] section is required for cycling steps")
            problems = []
            for i, step in enumerate(self.steps):
                if step.kind == "cycling":
                    problems += [f"steps[{i}].program.{p}"
                                 for p in check_program_for_cell(step.program, self.cell)]
                elif step.kind == "cold_discharge":
                    problems += _cold_program_problems(i, step, self.cell)
            if problems:
                raise ValueError("; ".join(problems))
        return self


def _cold_program_problems(index: int, step: ColdDischargeStep, cell: CellSection) -> list[str]:
    """The cold-discharge program is built and checked when the file is loaded, not hours into
    the run."""
    if not cell.has_capacity:
        return [f"steps[{index}]: the cold discharge runs at C-rates and the {cell.kind} cell has no "
                "nominal capacity (no cathode mass)"]
    try:
        program, _ = step.program_for(cell)
    except ValidationError as exc:
        return [f"steps[{index}] (its cycler program): {p}" for p in format_pydantic_errors(exc)]
    return [f"steps[{index}] (its cycler program).{p}" for p in check_program_for_cell(program, cell)]


def station_problems(protocol: Protocol, station: StationConfig) -> list[str]:
    """Checks that need the station: temperatures in the chamber's range, EIS frequency limit,
    the absolute limits of potential, current, duration and points (``config.limits``)."""
    return (_steps_station_problems(list(enumerate(protocol.steps)), station)
            + _protocol_limit_problems(protocol, station))


def _protocol_limit_problems(protocol: Protocol, station: StationConfig) -> list[str]:
    """The limits that need the whole protocol: the cell's, and the worst-case totals."""
    cell = protocol.cell
    problems = limits.cell_limit_problems(cell, station) if cell is not None else []
    total_s = points = 0.0
    for i, step in enumerate(protocol.steps):
        where = f"steps[{i}]"
        if isinstance(step, CyclingStep) and cell is not None:
            problems += limits.program_limit_problems(f"{where}.program", step.program, cell, station)
        elif isinstance(step, ColdDischargeStep) and cell is not None and cell.has_capacity:
            program, _ = step.program_for(cell)
            problems += limits.program_limit_problems(f"{where} (its cycler program)", program, cell,
                                                      station)
            if step.eis:
                problems += limits.cell_eis_bias_problems(f"{where}.peis", step.peis, cell)
        step_s, step_points = limits.step_worst_case(step, cell, station)
        total_s += step_s
        points += step_points
    return problems + limits.total_problems(total_s, points, protocol.protocol.chamber_log_interval_s,
                                            station)


def _steps_station_problems(indexed_steps, station: StationConfig) -> list[str]:
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

    for i, step in indexed_steps:
        where = f"steps[{i}]"
        problems.extend(limits.duration_problems(where, limits.step_duration_fields(step), station))
        if isinstance(step, (PeisStep, TemperatureEisSeries)):
            problems.extend(limits.potential_problems(
                f"{where}.peis.dc_voltage_v", [_peis_extreme_v(step.peis)], station))
        elif isinstance(step, LsvStep):
            problems.extend(limits.potential_problems(f"{where}.end_voltage_v", [step.end_voltage_v],
                                                      station))
        elif isinstance(step, DcPolarizationStep):
            problems.extend(limits.potential_problems(f"{where}.voltages_v", step.voltages_v, station))
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
        elif isinstance(step, CyclingStep):
            check_t(f"{where}.temperature_c", step.temperature_c)
        elif isinstance(step, ColdDischargeStep):
            check_t(f"{where}.charge_temperature_c", step.charge_temperature_c)
            for j, t in enumerate(step.temperatures_c):
                check_t(f"{where}.temperatures_c[{j}]", t)
            if step.eis:
                check_peis(f"{where}.peis", step.peis)
    return problems


def _peis_extreme_v(peis: PeisSettings) -> float:
    """The farthest potential an EIS may reach: bias plus amplitude (vs OCV, the OCV is itself
    within the limits, so the bias plus amplitude is what must fit)."""
    return math.copysign(abs(peis.dc_voltage_v) + peis.amplitude_v, peis.dc_voltage_v)


def _valid_steps_station_problems(data: dict, station: StationConfig) -> list[str]:
    """Station checks of the steps that are valid on their own, so that a file with an unknown
    key elsewhere still gets its out-of-range temperatures reported in the same pass."""
    steps = data.get("steps") if isinstance(data, dict) else None
    if not isinstance(steps, list):
        return []
    adapter = TypeAdapter(Step)
    valid, problems = [], []
    lo, hi = station.chamber.min_temperature_c, station.chamber.max_temperature_c
    for i, raw in enumerate(steps):
        try:
            valid.append((i, adapter.validate_python(raw)))
        except ValidationError:
            # Still check the temperatures of an invalid step when they are plain numbers.
            if not isinstance(raw, dict):
                continue
            temps = raw.get("temperatures_c")
            candidates = [(f"steps[{i}].temperatures_c[{j}]", t) for j, t in enumerate(temps)] \
                if isinstance(temps, list) else []
            candidates.append((f"steps[{i}].setpoint_c", raw.get("setpoint_c")))
            for where, t in candidates:
                if isinstance(t, (int, float)) and not isinstance(t, bool) and not lo <= t <= hi:
                    problems.append(f"{where}: {t} °C is outside the chamber's range {lo}…{hi} °C")
            problems += _invalid_step_limit_problems(i, raw, data.get("cell"), station)
    return problems + _steps_station_problems(valid, station)


def _invalid_step_limit_problems(index: int, raw: dict, raw_cell, station: StationConfig) -> list[str]:
    """The limits of a step that is not valid on its own (a typo in the step must not hide a
    40 A program): its cycling program checked whole when it validates (C-rates resolved with
    the cell), its plain values otherwise."""
    try:
        program = CyclingProgram.model_validate(raw.get("program"))
        cell = CellSection.model_validate(raw_cell)
    except ValidationError:
        return limits.raw_step_problems(f"steps[{index}]", raw, station)
    rest = {key: value for key, value in raw.items() if key != "program"}
    return (limits.program_limit_problems(f"steps[{index}].program", program, cell, station)
            + limits.raw_step_problems(f"steps[{index}]", rest, station))


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
        problems = (format_pydantic_errors(exc, STEP_KINDS)
                    + _valid_steps_station_problems(data, station))
        raise ConfigError(str(path), problems) from None
    problems = station_problems(protocol, station)
    if problems:
        raise ConfigError(str(path), problems)
    return protocol
