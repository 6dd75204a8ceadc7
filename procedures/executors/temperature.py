"""Chamber steps: set, wait until stable, soak (watched: procedures/watch.py); and long holds."""
from __future__ import annotations

from procedures.watch import hold_setpoint


def run_chamber(ctx, step) -> dict:
    """Set point, stability, soak. A suspension during the soak repeats the soak once the chamber
    is stable again."""
    t0 = ctx.clock.now()
    settled = hold_setpoint(ctx, step.setpoint_c, step.stabilization, step.soak_s)
    return {"setpoint_c": step.setpoint_c, "settled_after_s": settled - t0, "soak_s": step.soak_s}


def run_hold(ctx, step) -> dict:
    """A plain wait, never watched: with a set point it does not wait for stability; without one
    the cell needs no chamber (in a campaign another run may hold it at its own temperature)."""
    if ctx.watch is not None:
        ctx.watch.disarm()
    if step.setpoint_c is not None:
        ctx.station.set_chamber(step.setpoint_c)
    ctx.clock.sleep(step.duration_s)
    return {"duration_s": step.duration_s, "setpoint_c": step.setpoint_c}
