"""The step-kind registry: for each ``kind`` of protocol step, its model, how it expands into
primitive steps, its executor, its station checks, what it needs of the chamber (which
temperatures; a campaign shares chambers by it), and how long it is expected to take.

Adding a step kind means writing its model (config/protocol.py, and its station checks there) and
one entry here; the runner, ``plan`` and progress read everything else from this table. A pause
takes effect between steps; an executor that has safe points inside its step (the DC polarization,
between voltage steps) calls ``ctx.checkpoint()`` there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from config.protocol import (ChamberStep, ColdDischargeStep, CyclingStep, DcPolarizationStep,
                             HoldStep, LsvStep, PeisStep, TemperatureEisSeries)
from procedures import estimates as est
from procedures.executors.cycling import run_cold_discharge, run_cycling
from procedures.executors.dc import run_dc_polarization, run_lsv
from procedures.executors.eis import run_peis
from procedures.executors.temperature import run_chamber, run_hold


@dataclass(frozen=True)
class StepKind:
    kind: str
    model: type
    execute: Callable | None
    estimate: Callable[["est.PlanState", object], est.Estimate] | None
    expand: Callable[[object], Iterable] | None = None
    channels: tuple = ()
    """The instruments whose channel the step drives (a cell position must have them)."""
    chamber_temperatures: Callable[[object], tuple | None] = lambda step: None
    """What the step needs of its chamber: ``None``, whatever the run holds (a measurement at the
    temperature an earlier step set); ``()``, no chamber (a pause the cell spends outside any
    controlled temperature, such as storage); ``(T,)``, the chamber at T (shared with every run
    that needs T); several temperatures, the chamber to itself for the whole step."""

    def uses_chamber(self, step) -> bool:
        return bool(self.chamber_temperatures(step))


# --- expansion ------------------------------------------------------------------------------------
def _expand_series(step: TemperatureEisSeries):
    label = f"{step.name}: " if step.name else ""
    for t in step.temperatures_c:
        yield ChamberStep(kind="chamber", name=f"{label}chamber to {t:g} °C", setpoint_c=t,
                          soak_s=step.soak_s, stabilization=step.stabilization)
        yield PeisStep(kind="peis", name=f"{label}PEIS at {t:g} °C", peis=step.peis)


def _temperatures(*values) -> tuple:
    return tuple(dict.fromkeys(float(v) for v in values if v is not None))


STEP_KINDS: dict[str, StepKind] = {k.kind: k for k in (
    StepKind("chamber", ChamberStep, run_chamber, est.estimate_chamber,
             chamber_temperatures=lambda s: _temperatures(s.setpoint_c)),
    StepKind("peis", PeisStep, run_peis, est.estimate_peis, channels=("potentiostat",)),
    StepKind("temperature_eis_series", TemperatureEisSeries, None, None, expand=_expand_series,
             channels=("potentiostat",),
             chamber_temperatures=lambda s: _temperatures(*s.temperatures_c)),
    StepKind("hold", HoldStep, run_hold, est.estimate_hold,
             chamber_temperatures=lambda s: _temperatures(s.setpoint_c)),
    StepKind("lsv", LsvStep, run_lsv, est.estimate_lsv, channels=("potentiostat",)),
    StepKind("dc_polarization", DcPolarizationStep, run_dc_polarization, est.estimate_dcpol,
             channels=("potentiostat",)),
    StepKind("cycling", CyclingStep, run_cycling, est.estimate_cycling, channels=("cycler",),
             chamber_temperatures=lambda s: None if s.temperature_c is None
             else _temperatures(s.temperature_c)),
    StepKind("cold_discharge", ColdDischargeStep, run_cold_discharge, est.estimate_cold_discharge,
             channels=("cycler",),
             chamber_temperatures=lambda s: _temperatures(s.charge_temperature_c, *s.temperatures_c)),
)}


def kind_of(step) -> StepKind:
    try:
        return STEP_KINDS[step.kind]
    except KeyError:
        raise ValueError(f"no step kind {step.kind!r}; known: {sorted(STEP_KINDS)}") from None


def expand_steps(protocol):
    """The primitive steps of a protocol, compound ones expanded, in order."""
    for step in protocol.steps:
        kind = kind_of(step)
        if kind.expand is None:
            yield step
        else:
            yield from kind.expand(step)


def uses_chamber(protocol) -> bool:
    return any(kind_of(step).uses_chamber(step) for step in protocol.steps)


def chamber_temperatures(step) -> tuple | None:
    return kind_of(step).chamber_temperatures(step)


def execute_step(ctx, step) -> dict:
    return kind_of(step).execute(ctx, step)


@dataclass(frozen=True)
class PlannedStep:
    index: int
    name: str
    kind: str
    estimate: est.Estimate


def plan_steps(protocol, station_cfg) -> list[PlannedStep]:
    """Every primitive step with its expected duration, in run order."""
    state = est.PlanState(protocol, station_cfg)
    return [PlannedStep(i, step.name or step.kind, step.kind, kind_of(step).estimate(state, step))
            for i, step in enumerate(expand_steps(protocol))]
