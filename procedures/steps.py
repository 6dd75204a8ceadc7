"""The step-kind registry: for each ``kind`` of protocol step, its model, how it expands into
primitive steps, its executor, its station checks, what it needs of the chamber (which
temperatures; a campaign shares chambers by it), and how long it is expected to take.

Adding a step kind means writing its model (config/protocol.py, and its station checks there) and
one entry here; the runner, ``plan`` and progress read everything else from this table. A pause
takes effect between steps; an executor that has safe points inside its step (the DC polarization,
between voltage steps) calls ``ctx.checkpoint()`` there.

Watched chamber (procedures/watch.py): once a step has settled the chamber at a set point, the
run is suspended when the chamber leaves its band, alarms or stops answering. What each kind does
then, in its executor:

=========================  ==========================================================================
``chamber``                the soak starts over once the chamber is back and stable
``temperature_eis_series`` as ``chamber`` and ``peis`` (its expansion)
``peis``                   the spectrum is stored, marked invalid (``valid: false`` in its stream's
                           metadata), left out of the analysis, and measured again into a new
                           stream after stabilization and a full soak
``lsv``                    destructive: the channel is stopped and the step fails with the reason
``dc_polarization``        the channel is stopped and the step fails with the reason (its steady
                           states would mix two temperatures)
``cycling``                the cycler cannot be paused from outside: it goes on, records taken while
                           suspended get ``out_of_band = 1``, and the analysis names their cycles
``cold_discharge``         its soaks and cell EIS as above; a discharge caught out of band is
                           stopped (its records stay stored, ``out_of_band = 1``), and once the
                           chamber is back a new cycler program runs the protocol on from that
                           temperature into a new stream (``repeats`` in its metadata): the cell is
                           recharged as the protocol charges it, the chamber soaks again at the
                           temperature, the discharge is measured again; the analysis leaves the
                           spoiled one out and says so (``repeated_discharges``, a warning)
``hold``                   not watched (it sets a set point without waiting for it)
=========================  ==========================================================================
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
    # The other instruments a step of this kind talks to, given the station file (opened and
    # identified before the run is stored).
    instruments: Callable[[object, object], tuple[str, ...]] = lambda step, station_cfg: ()
    resume: str = "redo"
    """After a crash inside a step of this kind (procedures/resume.py): ``redo`` it from its start
    (what it had stored is kept, marked incomplete); ``redo_after_soak``: redo it and the chamber
    step just before it (a spectrum is measured after its soak); ``continue`` from its last
    checkpoint (the executor reads ``ctx.resume_position``); ``fail``: it cannot be taken up
    again (a destructive measurement), it ends failed and the run goes on."""

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


def _potentiostat(step, station_cfg) -> tuple[str, ...]:
    return ("potentiostat",)


def _cold_discharge_instruments(step, station_cfg) -> tuple[str, ...]:
    # The cell's EIS needs the potentiostat, unless the station never reaches the cell with it.
    cell_eis = step.eis and station_cfg.cycler.cell_eis != "none"
    return ("cycler", "potentiostat") if cell_eis else ("cycler",)


STEP_KINDS: dict[str, StepKind] = {k.kind: k for k in (
    StepKind("chamber", ChamberStep, run_chamber, est.estimate_chamber,
             chamber_temperatures=lambda s: _temperatures(s.setpoint_c)),
    StepKind("peis", PeisStep, run_peis, est.estimate_peis, channels=("potentiostat",),
             instruments=_potentiostat, resume="redo_after_soak"),
    StepKind("temperature_eis_series", TemperatureEisSeries, None, None, expand=_expand_series,
             channels=("potentiostat",), instruments=_potentiostat,
             chamber_temperatures=lambda s: _temperatures(*s.temperatures_c)),
    StepKind("hold", HoldStep, run_hold, est.estimate_hold,
             chamber_temperatures=lambda s: _temperatures(s.setpoint_c)),
    StepKind("lsv", LsvStep, run_lsv, est.estimate_lsv, channels=("potentiostat",),
             instruments=_potentiostat, resume="fail"),
    StepKind("dc_polarization", DcPolarizationStep, run_dc_polarization, est.estimate_dcpol,
             channels=("potentiostat",), instruments=_potentiostat, resume="continue"),
    StepKind("cycling", CyclingStep, run_cycling, est.estimate_cycling, channels=("cycler",),
             chamber_temperatures=lambda s: None if s.temperature_c is None
             else _temperatures(s.temperature_c),
             instruments=lambda s, cfg: ("cycler",), resume="continue"),
    StepKind("cold_discharge", ColdDischargeStep, run_cold_discharge, est.estimate_cold_discharge,
             channels=("cycler",),
             chamber_temperatures=lambda s: _temperatures(s.charge_temperature_c, *s.temperatures_c),
             instruments=_cold_discharge_instruments, resume="continue"),
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


def instruments_used(protocol, station_cfg) -> list[str]:
    """The instruments a protocol talks to on this station, in the order they are opened."""
    used = {"chamber"} if uses_chamber(protocol) else set()
    for step in protocol.steps:
        used.update(kind_of(step).instruments(step, station_cfg))
    return [name for name in ("chamber", "potentiostat", "cycler") if name in used]


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
