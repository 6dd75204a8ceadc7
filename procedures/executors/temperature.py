"""Chamber steps: set, wait until stable, soak; and long holds."""
from __future__ import annotations

from instruments.espec.stability import wait_until_stable


def run_chamber(ctx, step) -> dict:
    clock = ctx.clock
    chamber = ctx.station.chamber
    t0 = clock.now()
    ctx.station.set_chamber(step.setpoint_c)
    stab = step.stabilization
    wait_until_stable(chamber, step.setpoint_c, stab.tolerance_c, stab.dwell_s, stab.timeout_s,
                      clock, poll_s=stab.poll_s)
    settled = clock.now()
    clock.sleep(step.soak_s)
    return {"setpoint_c": step.setpoint_c, "settled_after_s": settled - t0, "soak_s": step.soak_s}


def run_hold(ctx, step) -> dict:
    if step.setpoint_c is not None:
        ctx.station.set_chamber(step.setpoint_c)
    ctx.clock.sleep(step.duration_s)
    return {"duration_s": step.duration_s, "setpoint_c": step.setpoint_c}
