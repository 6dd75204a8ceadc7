"""Chamber air and sample temperature of the simulated lab, integrated in closed form.

The chamber drives its air toward the set point at a finite ramp rate (CONSTANT mode) or lets it
relax toward the room (STANDBY/OFF). The sample follows the air with a first-order lag. Both
inputs are piecewise linear or exponential in time, so the sample's response over any interval
is exact: a jump of the virtual clock by an hour costs a few segment evaluations, not steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ThermalConstants:
    """Constants of the chamber and the sample holder.

    ambient_c: room temperature in °C.
    ramp_rate_c_per_min: how fast the chamber air moves toward its set point, °C/min (> 0).
    sample_time_constant_s: first-order lag of the sample behind the air, s (> 0).
    standby_time_constant_s: time constant of the air relaxing to the room when not controlled, s.
    """

    ambient_c: float = 23.0
    ramp_rate_c_per_min: float = 2.0
    sample_time_constant_s: float = 300.0
    standby_time_constant_s: float = 1800.0


class ThermalModel:
    """Air and sample temperature as functions of clock time.

    ``controlled`` says whether the chamber holds ``setpoint_c`` (CONSTANT) or is idle. The state
    is advanced lazily to the clock's time whenever it is read or the drive changes.
    """

    def __init__(self, clock, constants: ThermalConstants | None = None,
                 initial_c: float | None = None) -> None:
        self.clock = clock
        self.k = constants or ThermalConstants()
        if self.k.ramp_rate_c_per_min <= 0 or self.k.sample_time_constant_s <= 0:
            raise ValueError("ramp rate and sample time constant must be positive")
        start = self.k.ambient_c if initial_c is None else initial_c
        self._t = clock.now()
        self._air = start
        self._sample = start
        self.setpoint_c = self.k.ambient_c
        self.controlled = False
        self._control_lost_at: list[float] = []

    # --- faults --------------------------------------------------------------------------
    def lose_control_at(self, t: float) -> None:
        """At clock time ``t`` the chamber stops regulating (a power loss): from then on the air
        relaxes to the room whatever the drive was. Scheduled in the model itself because the
        sample is read by other instruments too: the loss must happen at ``t`` however late the
        chamber is next asked."""
        self._control_lost_at = sorted([*self._control_lost_at, float(t)])

    # --- drive ---------------------------------------------------------------------------
    def set_setpoint(self, setpoint_c: float) -> None:
        self._advance()
        self.setpoint_c = float(setpoint_c)

    def set_controlled(self, controlled: bool) -> None:
        self._advance()
        self.controlled = bool(controlled)

    # --- readings ------------------------------------------------------------------------
    def air_c(self) -> float:
        self._advance()
        return self._air

    def sample_c(self) -> float:
        self._advance()
        return self._sample

    # --- integration ---------------------------------------------------------------------
    def _advance(self) -> None:
        t = self.clock.now()
        while self._control_lost_at and self._control_lost_at[0] <= t:
            self._integrate_to(self._control_lost_at.pop(0))
            self.controlled = False
        self._integrate_to(t)

    def _integrate_to(self, t: float) -> None:
        dt = t - self._t
        if dt <= 0:
            return
        if self.controlled:
            self._advance_controlled(dt)
        else:
            self._advance_relaxing(dt, self.k.ambient_c, self.k.standby_time_constant_s)
        self._t = t

    def _advance_controlled(self, dt: float) -> None:
        rate = self.k.ramp_rate_c_per_min / 60.0
        gap = self.setpoint_c - self._air
        ramp_time = abs(gap) / rate
        if ramp_time > 0:
            seg = min(dt, ramp_time)
            slope = math.copysign(rate, gap)
            self._sample = _lag_linear(self._sample, self._air, slope, seg,
                                       self.k.sample_time_constant_s)
            self._air += slope * seg
            dt -= seg
            if seg == ramp_time:
                self._air = self.setpoint_c
        if dt > 0:
            self._sample = _lag_linear(self._sample, self._air, 0.0, dt,
                                       self.k.sample_time_constant_s)

    def _advance_relaxing(self, dt: float, target: float, tau_air: float) -> None:
        tau = self.k.sample_time_constant_s
        a0 = self._air - target
        x0 = self._sample - target
        ea = math.exp(-dt / tau_air)
        es = math.exp(-dt / tau)
        if math.isclose(tau_air, tau):
            x = (x0 + a0 * dt / tau) * es
        else:
            amp = a0 * tau_air / (tau_air - tau)
            x = amp * ea + (x0 - amp) * es
        self._air = target + a0 * ea
        self._sample = target + x


def _lag_linear(x0: float, u0: float, slope: float, dt: float, tau: float) -> float:
    """First-order lag x' = (u - x)/tau with u(t) = u0 + slope*t, exact after dt."""
    e = math.exp(-dt / tau)
    return (u0 + slope * dt - slope * tau) + (x0 - u0 + slope * tau) * e


class ChamberAir:
    """One chamber's air seen by every sample inside it: the chamber simulator drives each
    position's ThermalModel the same way, so each sample lags behind the same air with its own
    state (a position mounted later starts from the holder's temperature, not the room's).

    It offers what the chamber simulator uses of a ThermalModel: the drive and the air reading.
    """

    def __init__(self, clock, constants: ThermalConstants | None = None) -> None:
        self.clock = clock
        self.constants = constants or ThermalConstants()
        self._air = ThermalModel(clock, self.constants)  # the air, without a sample
        self.samples: list[ThermalModel] = []

    def add_sample(self) -> ThermalModel:
        """A sample holder in this chamber, in the chamber's present state."""
        model = ThermalModel(self.clock, self.constants, initial_c=self._air.air_c())
        model.setpoint_c, model.controlled = self._air.setpoint_c, self._air.controlled
        self.samples.append(model)
        return model

    @property
    def setpoint_c(self) -> float:
        return self._air.setpoint_c

    @property
    def controlled(self) -> bool:
        return self._air.controlled

    def set_setpoint(self, setpoint_c: float) -> None:
        for model in (self._air, *self.samples):
            model.set_setpoint(setpoint_c)

    def set_controlled(self, controlled: bool) -> None:
        for model in (self._air, *self.samples):
            model.set_controlled(controlled)

    def air_c(self) -> float:
        return self._air.air_c()
