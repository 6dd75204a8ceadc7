"""Vendor-neutral cycling programs: the cell, the steps, the safety limits, and their expansion.

A program is a list of steps in the style of aurora-unicycler: pydantic models with a ``kind``
discriminator and units in the field names. Currents are given either as a C-rate (``rate_c``,
resolved against the cell's nominal capacity) or in amperes (``current_a``, a magnitude: the
direction says whether it charges or discharges). End conditions are exactly the set a Landt
step table can express: time, voltage (>= on charge, <= on discharge), |current| <=, capacity,
and the cycle count of a loop.

Cycle numbering (the convention of ``expand`` and of the cycler records): a cycle starts at each
charge step that follows a discharge step (rests in between do not matter). Cycle 1 begins with
the program when its first current-carrying step is a charge; a discharge before the first charge
belongs to cycle 0, as in ``analysis.cycling``. A CV step continues the direction of the CC or
CCCV step before it in the program (charge when there is none), so it never starts a cycle.

Loops: ``Loop(to_tag, count)`` runs the block from the tagged step up to the loop ``count`` times
in total (count 1 runs it once, i.e. no repeat). Loops nest; an inner loop's pass counter resets
whenever an outer loop jumps back over it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Iterator, Literal, Sequence, Union

from pydantic import (BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator,
                      model_validator)

from config.errors import ConfigError, format_pydantic_errors, reject_non_finite
from analysis.physics import disc_area_cm2

Direction = Literal["charge", "discharge"]


class _Strict(BaseModel):
    # NaN and ±inf are never a value a file may mean (TOML spells them nan and inf).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class CellSection(_Strict):
    """The cell on the cycler channel.

    kind: "full" (NaCrO2 | Sn), "half" (NaCrO2 | Na9Sn4) or "symmetric" (Na9Sn4 | Na9Sn4).
    cathode_loading_mg_per_cm2: active cathode mass per electrode area, mg/cm² (> 0).
    area_cm2 or diameter_mm: electrode area, cm², or the die diameter, mm (one is required).
    active_mass_mg: active cathode mass, mg; default loading × area.
    specific_capacity_mah_per_g: capacity of the active material that defines 1 C (NaCrO2: 120).
    lower_cutoff_v, upper_cutoff_v: the cell's discharge and charge cut-off voltages, V.
    sim: overrides of the simulated cell model's constants (ignored by real instruments).
    """

    kind: Literal["full", "half", "symmetric"] = "full"
    anode: Literal["Sn", "Na9Sn4"] = "Sn"
    cathode_loading_mg_per_cm2: float | None = Field(default=None, gt=0)
    area_cm2: float | None = Field(default=None, gt=0)
    diameter_mm: float | None = Field(default=None, gt=0)
    active_mass_mg: float | None = Field(default=None, gt=0)
    specific_capacity_mah_per_g: float = Field(default=120.0, gt=0)
    lower_cutoff_v: float
    upper_cutoff_v: float
    sim: dict = Field(default_factory=dict)

    _finite_sim = field_validator("sim")(reject_non_finite)

    @model_validator(mode="after")
    def _derive(self):
        if self.diameter_mm is not None:
            area = disc_area_cm2(self.diameter_mm)
            if self.area_cm2 is not None and abs(self.area_cm2 - area) > 0.01 * area:
                raise ValueError(f"area_cm2 {self.area_cm2} disagrees with diameter_mm "
                                 f"{self.diameter_mm} (area {area:.4f} cm²); give one of them")
            self.area_cm2 = area
        if self.area_cm2 is None:
            raise ValueError("give area_cm2 or diameter_mm")
        if self.active_mass_mg is None and self.cathode_loading_mg_per_cm2 is not None:
            self.active_mass_mg = self.cathode_loading_mg_per_cm2 * self.area_cm2
        if self.kind != "symmetric" and self.active_mass_mg is None:
            raise ValueError(f"a {self.kind} cell needs cathode_loading_mg_per_cm2 or active_mass_mg")
        if self.lower_cutoff_v >= self.upper_cutoff_v:
            raise ValueError(f"lower_cutoff_v ({self.lower_cutoff_v} V) must be below "
                             f"upper_cutoff_v ({self.upper_cutoff_v} V)")
        return self

    @property
    def has_capacity(self) -> bool:
        return self.active_mass_mg is not None

    @property
    def capacity_ah(self) -> float:
        """Nominal capacity (the charge of 1 C for one hour), Ah."""
        if self.active_mass_mg is None:
            raise ValueError(f"a {self.kind} cell without cathode mass has no nominal capacity; "
                             "give currents in current_a instead of rates")
        return self.active_mass_mg * self.specific_capacity_mah_per_g * 1e-6

    def current_for_rate(self, rate_c: float) -> float:
        """Current magnitude, A, of a C-rate (rate_c > 0; 1 C discharges capacity_ah in 1 h)."""
        return rate_c * self.capacity_ah


# --- steps -------------------------------------------------------------------------------------
class _Step(_Strict):
    tag: str | None = Field(default=None, min_length=1)


def _one_of(model, names: tuple[str, str], required: bool = True) -> None:
    given = [n for n in names if getattr(model, n) is not None]
    if len(given) > 1:
        raise ValueError(f"give either {names[0]} or {names[1]}, not both")
    if required and not given:
        raise ValueError(f"give {names[0]} or {names[1]}")


class Rest(_Step):
    """Open circuit for ``duration_s`` seconds (> 0)."""

    kind: Literal["rest"] = "rest"
    duration_s: float = Field(gt=0)


class ConstantCurrent(_Step):
    """Constant current (magnitude rate_c in C or current_a in A) in ``direction`` until the first
    end condition: voltage (>= on charge, <= on discharge), time (s) or capacity passed (Ah)."""

    kind: Literal["cc"] = "cc"
    rate_c: float | None = Field(default=None, gt=0)
    current_a: float | None = Field(default=None, gt=0)
    direction: Direction
    until_voltage_v: float | None = None
    until_time_s: float | None = Field(default=None, gt=0)
    until_capacity_ah: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        _one_of(self, ("rate_c", "current_a"))
        if self.until_voltage_v is None and self.until_time_s is None and self.until_capacity_ah is None:
            raise ValueError("a cc step needs an end condition: until_voltage_v, until_time_s "
                             "or until_capacity_ah")
        return self


class ConstantVoltage(_Step):
    """Hold ``voltage_v`` until |current| <= until_rate_c (in C) or until_current_a (A), or until
    ``until_time_s``."""

    kind: Literal["cv"] = "cv"
    voltage_v: float
    until_rate_c: float | None = Field(default=None, gt=0)
    until_current_a: float | None = Field(default=None, gt=0)
    until_time_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        _one_of(self, ("until_rate_c", "until_current_a"), required=False)
        if self.until_rate_c is None and self.until_current_a is None and self.until_time_s is None:
            raise ValueError("a cv step needs an end condition: until_rate_c, until_current_a "
                             "or until_time_s")
        return self


class CCCV(_Step):
    """Charge at constant current (rate_c or current_a) to ``voltage_v``, then hold ``voltage_v``
    until |current| <= until_rate_c / until_current_a; ``until_time_s`` bounds the CV hold."""

    kind: Literal["cccv"] = "cccv"
    rate_c: float | None = Field(default=None, gt=0)
    current_a: float | None = Field(default=None, gt=0)
    voltage_v: float
    until_rate_c: float | None = Field(default=None, gt=0)
    until_current_a: float | None = Field(default=None, gt=0)
    until_time_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self):
        _one_of(self, ("rate_c", "current_a"))
        _one_of(self, ("until_rate_c", "until_current_a"))
        return self


class Loop(_Step):
    """Run the block from the step tagged ``to_tag`` up to this loop ``count`` times in total."""

    kind: Literal["loop"] = "loop"
    to_tag: str = Field(min_length=1)
    count: int = Field(ge=1)


Step = Annotated[Union[Rest, ConstantCurrent, ConstantVoltage, CCCV, Loop], Field(discriminator="kind")]
_STEP_ADAPTER = TypeAdapter(Step)


class Safety(_Strict):
    """Limits the cycler must never exceed: voltage window, V, and current magnitude, A."""

    voltage_min_v: float
    voltage_max_v: float
    current_max_a: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self):
        if self.voltage_min_v >= self.voltage_max_v:
            raise ValueError(f"voltage_min_v ({self.voltage_min_v} V) must be below "
                             f"voltage_max_v ({self.voltage_max_v} V)")
        return self


class CyclingProgram(_Strict):
    """Steps, safety limits and logging: a record every ``record_interval_s`` seconds or every
    ``record_dv_v`` volts of change, whichever comes first."""

    steps: list[Step] = Field(min_length=1)
    safety: Safety
    record_interval_s: float = Field(default=60.0, gt=0)
    record_dv_v: float = Field(default=0.005, gt=0, le=1.0)

    @model_validator(mode="after")
    def _check_across_steps(self):
        problems = program_problems(self.steps, self.safety)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def program_problems(steps: Sequence, safety: Safety | None) -> list[str]:
    """Problems that involve more than one step or the safety limits, as 'location: message'.

    ``steps`` may hold None for steps that failed their own validation (they are skipped).
    """
    problems: list[str] = []
    tags: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step is None or step.tag is None:
            continue
        if step.tag in tags:
            problems.append(f"steps[{i}].tag: duplicate tag {step.tag!r} (first at steps[{tags[step.tag]}])")
        else:
            tags[step.tag] = i
    blocks: list[tuple[int, int]] = []  # (first step, loop) of each loop that is valid on its own
    for i, step in enumerate(steps):
        if isinstance(step, Loop):
            target = tags.get(step.to_tag)
            if target is None:
                problems.append(f"steps[{i}].to_tag: no step is tagged {step.to_tag!r} "
                                f"(tags: {sorted(tags) or 'none'})")
            elif target >= i:
                problems.append(f"steps[{i}].to_tag: the step tagged {step.to_tag!r} (steps[{target}]) "
                                "must come before the loop")
            elif isinstance(steps[target], Loop):
                problems.append(f"steps[{i}].to_tag: {step.to_tag!r} tags a loop; tag a step that runs")
            else:
                blocks.append((target, i))
        if safety is None or step is None:
            continue
        for field in ("until_voltage_v", "voltage_v"):
            value = getattr(step, field, None)
            if value is not None and not safety.voltage_min_v <= value <= safety.voltage_max_v:
                problems.append(f"steps[{i}].{field}: {value} V is outside the safety window "
                                f"{safety.voltage_min_v}…{safety.voltage_max_v} V")
        current = getattr(step, "current_a", None)
        if current is not None and current > safety.current_max_a:
            problems.append(f"steps[{i}].current_a: {current} A exceeds safety.current_max_a "
                            f"({safety.current_max_a} A)")
    # A loop that jumps into the middle of another's block would run that block's steps more
    # often than the product of the counts, which is what the limits and the plan count.
    for first, loop in blocks:
        for other_first, other_loop in blocks:
            if first < other_first < loop < other_loop:
                problems.append(f"steps[{other_loop}].to_tag: its block (steps[{other_first}]…"
                                f"steps[{other_loop}]) crosses that of the loop at steps[{loop}] "
                                f"(steps[{first}]…steps[{loop}]); loops must nest")
    return problems


def load_program(data: dict, source: str = "cycling program") -> CyclingProgram:
    """Validate a program given as plain data; raises ConfigError listing every problem at once
    (each step's own problems and those across steps, with locations like ``steps[3].to_tag``)."""
    try:
        return CyclingProgram.model_validate(data)
    except ValidationError as exc:
        problems = [p for p in format_pydantic_errors(exc) if not p.startswith("<top>")]
    if not isinstance(data, dict):
        raise ConfigError(source, problems)
    steps = []
    raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    for raw in raw_steps:
        try:
            steps.append(_STEP_ADAPTER.validate_python(raw))
        except ValidationError:
            steps.append(None)
    try:
        safety = Safety.model_validate(data.get("safety"))
    except ValidationError:
        safety = None
    problems += program_problems(steps, safety)
    raise ConfigError(source, problems)


def check_program_for_cell(program: CyclingProgram, cell: CellSection) -> list[str]:
    """Problems that appear only with a concrete cell: rates on a cell without capacity, currents
    above the safety limit once rates are resolved."""
    problems = []
    limit = program.safety.current_max_a
    for i, step in enumerate(program.steps):
        for field in ("rate_c", "until_rate_c"):
            rate = getattr(step, field, None)
            if rate is None:
                continue
            if not cell.has_capacity:
                problems.append(f"steps[{i}].{field}: the {cell.kind} cell has no nominal capacity "
                                f"(no cathode mass); give the current in amperes")
            elif field == "rate_c" and cell.current_for_rate(rate) > limit:
                problems.append(f"steps[{i}].rate_c: {rate} C is {cell.current_for_rate(rate):.6g} A "
                                f"for this cell, above safety.current_max_a ({limit} A)")
    return problems


# --- expansion ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConcreteStep:
    """One step as the cycler runs it: currents resolved to A, loop passes unrolled.

    number: 1-based order of execution; index: position in ``program.steps``; cycle: see module doc.
    kind: "rest" | "cc" | "cv" | "cccv"; direction: "charge" | "discharge" | None (rest).
    current_a: signed CC current (positive on charge) for cc and cccv; voltage_v: CV hold voltage.
    until_*: end conditions (None = not set); until_current_a is a magnitude.
    duration_s: length of a rest.
    """

    number: int
    index: int
    cycle: int
    kind: str
    direction: str | None
    current_a: float | None = None
    voltage_v: float | None = None
    until_voltage_v: float | None = None
    until_current_a: float | None = None
    until_time_s: float | None = None
    until_capacity_ah: float | None = None
    duration_s: float | None = None
    tag: str | None = None


def step_directions(program: CyclingProgram) -> list[str | None]:
    """Direction of every program step: a CV step continues the CC/CCCV step before it."""
    directions: list[str | None] = []
    last = "charge"
    for step in program.steps:
        if isinstance(step, ConstantCurrent):
            last = step.direction
            directions.append(last)
        elif isinstance(step, CCCV):
            last = "charge"
            directions.append(last)
        elif isinstance(step, ConstantVoltage):
            directions.append(last)
        else:
            directions.append(None)
    return directions


def _amps(cell: CellSection, rate_c: float | None, current_a: float | None) -> float | None:
    if current_a is not None:
        return current_a
    return None if rate_c is None else cell.current_for_rate(rate_c)


def _concrete(step, index: int, number: int, cycle: int, direction, cell) -> ConcreteStep:
    common = dict(number=number, index=index, cycle=cycle, direction=direction, tag=step.tag)
    if isinstance(step, Rest):
        return ConcreteStep(kind="rest", duration_s=step.duration_s, **common)
    if isinstance(step, ConstantCurrent):
        sign = 1.0 if step.direction == "charge" else -1.0
        return ConcreteStep(kind="cc", current_a=sign * _amps(cell, step.rate_c, step.current_a),
                            until_voltage_v=step.until_voltage_v, until_time_s=step.until_time_s,
                            until_capacity_ah=step.until_capacity_ah, **common)
    if isinstance(step, ConstantVoltage):
        return ConcreteStep(kind="cv", voltage_v=step.voltage_v,
                            until_current_a=_amps(cell, step.until_rate_c, step.until_current_a),
                            until_time_s=step.until_time_s, **common)
    return ConcreteStep(kind="cccv", current_a=_amps(cell, step.rate_c, step.current_a),
                        voltage_v=step.voltage_v, until_voltage_v=step.voltage_v,
                        until_current_a=_amps(cell, step.until_rate_c, step.until_current_a),
                        until_time_s=step.until_time_s, **common)


def expand(program: CyclingProgram, cell: CellSection) -> Iterator[ConcreteStep]:
    """The steps in the order they run, as a lazy iterator (a 1,000-cycle program costs no memory).

    Raises ConfigError at once (before iterating) when the program does not fit the cell.
    """
    problems = check_program_for_cell(program, cell)
    if problems:
        raise ConfigError("cycling program", problems)
    return _walk(program, cell)


def _walk(program: CyclingProgram, cell: CellSection) -> Iterator[ConcreteStep]:
    steps = program.steps
    directions = step_directions(program)
    tag_index = {s.tag: i for i, s in enumerate(steps) if s.tag is not None}
    first_active = next((d for d in directions if d is not None), "charge")
    cycle = 1 if first_active == "charge" else 0
    previous_active = None
    passes = [0] * len(steps)
    number = 0
    i = 0
    while i < len(steps):
        step = steps[i]
        if isinstance(step, Loop):
            passes[i] += 1
            if passes[i] < step.count:
                target = tag_index[step.to_tag]
                for j in range(target, i):
                    passes[j] = 0
                i = target
            else:
                passes[i] = 0
                i += 1
            continue
        direction = directions[i]
        if direction == "charge" and previous_active == "discharge":
            cycle += 1
        if direction is not None:
            previous_active = direction
        number += 1
        yield _concrete(step, i, number, cycle, direction, cell)
        i += 1


def with_rests(program: CyclingProgram, rests: Sequence[tuple[int, float]]) -> CyclingProgram:
    """A copy of ``program`` with Rest steps of ``duration_s`` inserted before the steps at the
    given indices (into ``program.steps``), e.g. for the chamber to settle before a cold step.

    A rest inserted before a tagged step takes over its tag, so a loop back to that step waits
    again on every pass.
    """
    by_index: dict[int, list[float]] = {}
    for index, duration_s in rests:
        if not 0 <= index <= len(program.steps):
            raise ValueError(f"rest before step {index}: the program has steps 0…{len(program.steps) - 1}"
                             f" (or {len(program.steps)} for the end)")
        if not duration_s > 0:
            raise ValueError(f"rest before step {index}: duration_s must be > 0, not {duration_s}")
        by_index.setdefault(index, []).append(float(duration_s))
    steps = []
    for i in range(len(program.steps) + 1):
        step = program.steps[i] if i < len(program.steps) else None
        durations = by_index.get(i, [])
        for k, duration in enumerate(durations):
            tag = step.tag if (k == 0 and step is not None) else None
            steps.append(Rest(duration_s=duration, tag=tag))
        if step is not None:
            steps.append(step.model_copy(update={"tag": None}) if durations and step.tag else step)
    return program.model_copy(update={"steps": steps})
