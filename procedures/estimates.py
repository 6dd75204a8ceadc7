"""Expected durations of protocol steps, and what each figure rests on.

``plan`` prints them before a run; the runner starts its remaining-time estimate from them and
refines it from measured progress. Each estimate says its kind: "fixed" (set by the protocol or
by the instrument's timing), "nominal" (from nominal capacity, rates or an assumed start), or
"maximum" (the step ends on a criterion, at the latest after this).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PEIS_OVERHEAD_S = 0.05
"""Per-frequency dead time of a BioLogic channel (switching, transfer), s."""
PEIS_MIN_POINT_S = 0.1
"""Shortest time a BioLogic channel spends at one frequency, s."""
ASSUMED_OCV_V = 1.3
"""Open-circuit potential assumed for an LSV estimate (Na9Sn4 | o-NBH composites rest near it)."""


@dataclass(frozen=True)
class Estimate:
    """Expected duration of a step, s, and what the figure rests on. ``kind``: "fixed" (set by the
    protocol or the instrument's timing), "nominal" (from nominal capacity and rates), "maximum"
    (the step ends on a criterion, at the latest after this)."""

    duration_s: float
    kind: str
    basis: str
    cycles: int | None = None


class PlanState:
    """What an estimate needs to know of what came before: the chamber's temperature, the station's
    ramp rate, the protocol's cell."""

    def __init__(self, protocol, station_cfg) -> None:
        self.protocol = protocol
        self.station_cfg = station_cfg
        self.chamber_c = (station_cfg.sim.thermal.ambient_c if station_cfg.simulate
                          else station_cfg.planning.chamber_start_c)
        self.potentiostat_poll_s = (station_cfg.sim.potentiostat_poll_interval_s if station_cfg.simulate
                                    else station_cfg.potentiostat.poll_interval_s)
        self.ramp_c_per_min = (station_cfg.sim.thermal.ramp_rate_c_per_min if station_cfg.simulate
                               else station_cfg.planning.chamber_ramp_rate_c_per_min)

    def settle_s(self, setpoint_c: float, stabilization) -> float:
        ramp = abs(setpoint_c - self.chamber_c) / self.ramp_c_per_min * 60.0
        self.chamber_c = setpoint_c
        # A chamber not settled by the timeout fails the step there.
        return min(ramp + stabilization.dwell_s, stabilization.timeout_s)


# --- estimates ------------------------------------------------------------------------------------
def peis_duration_s(settings) -> float:
    """Each frequency takes (wait + averaging) periods plus a dead time, at least a minimum."""
    n = settings.frequency_number
    decades = math.log10(settings.final_frequency_hz / settings.initial_frequency_hz)
    periods = settings.wait_for_steady_periods + settings.average_n_times
    total = 0.0
    for i in range(n):
        f = settings.initial_frequency_hz * 10 ** (decades * i / (n - 1))
        total += max(PEIS_MIN_POINT_S, periods / f + PEIS_OVERHEAD_S)
    return total


def estimate_chamber(state: PlanState, step) -> Estimate:
    settle = state.settle_s(step.setpoint_c, step.stabilization)
    return Estimate(settle + step.soak_s, "nominal",
                    f"settling {settle / 60:.0f} min (ramp {state.ramp_c_per_min:g} °C/min + "
                    f"{step.stabilization.dwell_s:g} s dwell) + {step.soak_s:g} s soak")


def estimate_peis(state: PlanState, step) -> Estimate:
    p = step.peis
    poll = state.potentiostat_poll_s
    # The end is seen at the first poll after the last frequency.
    duration = math.ceil(peis_duration_s(p) / poll) * poll
    return Estimate(duration, "fixed",
                    f"{p.frequency_number} frequencies {p.initial_frequency_hz:g}→"
                    f"{p.final_frequency_hz:g} Hz, {p.wait_for_steady_periods:g}+{p.average_n_times} "
                    f"periods each + {PEIS_OVERHEAD_S:g} s dead time, seen at a {poll:g} s poll")


def estimate_hold(state: PlanState, step) -> Estimate:
    if step.setpoint_c is not None:
        state.chamber_c = step.setpoint_c
    return Estimate(step.duration_s, "fixed", f"hold {step.duration_s:g} s")


def estimate_lsv(state: PlanState, step) -> Estimate:
    sweep = abs(step.end_voltage_v - ASSUMED_OCV_V) / step.scan_rate_v_per_s
    return Estimate(step.rest_s + sweep, "nominal",
                    f"{step.rest_s:g} s OCV rest + sweep from the OCV (assumed {ASSUMED_OCV_V} V) to "
                    f"{step.end_voltage_v:g} V at {step.scan_rate_v_per_s * 1e6:g} µV/s")


def estimate_dcpol(state: PlanState, step) -> Estimate:
    n = len(step.voltages_v)
    total = n * step.max_step_s + max(n - 1, 0) * step.rest_between_s
    return Estimate(total, "maximum",
                    f"{n} steps of at most {step.max_step_s:g} s (each ends early once the drift "
                    f"< {step.drift_criterion_per_h:g}/h, at least {step.min_step_s:g} s)")


def program_step_counts(steps) -> list[int]:
    """How many times each step of a cycling program runs, loops unrolled."""
    tags = {s.tag: i for i, s in enumerate(steps) if s.tag}
    counts = [0] * len(steps)
    left: dict[int, int] = {}
    i = 0
    while i < len(steps):
        step = steps[i]
        if step.kind == "loop":
            remaining = left.get(i, step.count) - 1
            if remaining > 0:
                left[i] = remaining
                i = tags[step.to_tag]
                continue
            left.pop(i, None)
        else:
            counts[i] += 1
        i += 1
    return counts


def program_estimate(program, cell) -> tuple[float, int, str]:
    """(duration_s, number of charges = cycles, basis) of a cycling program on ``cell``: CC steps
    last at most the nominal capacity at their current, a CV hold its time bound (none when it
    ends at once, its end rate being the charge rate or above), rests their duration."""
    counts = program_step_counts(program.steps)
    total = 0.0
    cycles = 0
    capacity = cell.capacity_ah if cell.has_capacity else None
    for step, n in zip(program.steps, counts):
        if n == 0 or step.kind == "loop":
            continue
        if step.kind == "rest":
            d = step.duration_s
        else:
            current = getattr(step, "current_a", None)
            if current is None and getattr(step, "rate_c", None) is not None and capacity:
                current = cell.current_for_rate(step.rate_c)
            bounds = [b for b in (getattr(step, "until_time_s", None),) if b]
            if getattr(step, "until_capacity_ah", None) and current:
                bounds.append(step.until_capacity_ah / current * 3600.0)
            if capacity and current and step.kind in ("cc", "cccv"):
                bounds.append(capacity / current * 3600.0)
            d = min(bounds) if bounds else 0.0
            if step.kind == "cccv" and step.until_time_s and not (
                    step.until_rate_c and step.rate_c and step.until_rate_c >= step.rate_c):
                d += step.until_time_s
            if step.kind in ("cccv",) or (step.kind == "cc" and step.direction == "charge"):
                cycles += n
        total += d * n
    basis = (f"nominal capacity {capacity * 1e3:.3g} mAh at the program's rates, rests as set"
             if capacity else "time bounds of the program's steps")
    return total, cycles, basis


def estimate_cycling(state: PlanState, step) -> Estimate:
    settle = 0.0
    if step.temperature_c is not None:
        settle = state.settle_s(step.temperature_c, step.stabilization) + step.soak_s
    total, cycles, basis = program_estimate(step.program, state.protocol.cell)
    return Estimate(settle + total, "nominal", f"{cycles} cycles; {basis}", cycles=cycles)


def estimate_cold_discharge(state: PlanState, step) -> Estimate:
    program, _ = step.program_for(state.protocol.cell)
    total, cycles, basis = program_estimate(program, state.protocol.cell)
    state.chamber_c = step.temperatures_c[-1]
    return Estimate(total, "nominal", f"{cycles} recharge–discharge cycles with rests; {basis}",
                    cycles=cycles)
