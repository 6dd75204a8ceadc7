"""Step executors: one function per step kind, and the expansion of compound steps."""
from __future__ import annotations

from config.protocol import ChamberStep, HoldStep, PeisStep, TemperatureEisSeries
from procedures.executors.cycling import run_cold_discharge, run_cycling
from procedures.executors.dc import run_dc_polarization, run_lsv
from procedures.executors.eis import run_peis
from procedures.executors.temperature import run_chamber, run_hold

EXECUTORS = {
    "chamber": run_chamber,
    "peis": run_peis,
    "hold": run_hold,
    "lsv": run_lsv,
    "dc_polarization": run_dc_polarization,
    "cycling": run_cycling,
    "cold_discharge": run_cold_discharge,
}

CHAMBER_KINDS = {"chamber", "temperature_eis_series", "hold", "cold_discharge"}


def expand_steps(protocol):
    """Yield primitive steps; a temperature series becomes chamber + PEIS pairs."""
    for step in protocol.steps:
        if isinstance(step, TemperatureEisSeries):
            label = f"{step.name}: " if step.name else ""
            for t in step.temperatures_c:
                yield ChamberStep(kind="chamber", name=f"{label}chamber to {t:g} °C", setpoint_c=t,
                                  soak_s=step.soak_s, stabilization=step.stabilization)
                yield PeisStep(kind="peis", name=f"{label}PEIS at {t:g} °C", peis=step.peis)
        else:
            yield step


def uses_chamber(protocol) -> bool:
    return any(step.kind in CHAMBER_KINDS or getattr(step, "temperature_c", None) is not None
               for step in protocol.steps)


def execute_step(ctx, step) -> dict:
    try:
        executor = EXECUTORS[step.kind]
    except KeyError:
        raise ValueError(f"no executor for step kind {step.kind!r}") from None
    return executor(ctx, step)


__all__ = ["execute_step", "expand_steps", "uses_chamber", "ChamberStep", "HoldStep", "PeisStep"]
