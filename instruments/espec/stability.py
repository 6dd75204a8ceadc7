"""Waiting for the chamber air to settle at a set point.

No ESPEC controller reports "set point reached", so stability is judged from polled readings:
every reading within ``tolerance_c`` of the set point for at least ``dwell_s``. (This is the
air; the sample lags behind it, so procedures add their own soak afterwards.)
"""
from __future__ import annotations

from typing import Callable, NamedTuple


class Reading(NamedTuple):
    time_s: float
    temperature_c: float


class ChamberNotStable(TimeoutError):
    """The chamber did not hold the set point within the allowed time."""

    def __init__(self, setpoint_c: float, tolerance_c: float, timeout_s: float,
                 last: Reading | None) -> None:
        self.setpoint_c = setpoint_c
        self.last_reading = last
        shown = "no reading" if last is None else f"last reading {last.temperature_c:.1f} °C"
        super().__init__(f"chamber not stable at {setpoint_c:.1f} ± {tolerance_c:g} °C after "
                         f"{timeout_s:g} s ({shown})")


def wait_until_stable(chamber, setpoint_c: float, tolerance_c: float, dwell_s: float,
                      timeout_s: float, clock, poll_s: float = 10.0,
                      on_reading: Callable[[Reading], None] | None = None) -> list[Reading]:
    """Poll ``chamber.temperature`` every ``poll_s`` s until the readings have stayed within
    ``tolerance_c`` °C of ``setpoint_c`` for ``dwell_s`` s; return all readings taken.

    Raises ChamberNotStable (a TimeoutError) once ``timeout_s`` s have passed without that.
    ``on_reading`` is called with each Reading (e.g. to log it).
    """
    for name, value, minimum in (("tolerance_c", tolerance_c, 0.0), ("poll_s", poll_s, 0.0),
                                 ("timeout_s", timeout_s, 0.0)):
        if not value > minimum:
            raise ValueError(f"wait_until_stable: {name} must be > 0, not {value}")
    if dwell_s < 0:
        raise ValueError(f"wait_until_stable: dwell_s must be >= 0, not {dwell_s}")
    start = clock.now()
    readings: list[Reading] = []
    in_band_since: float | None = None
    polls = 0
    while True:
        reading = Reading(clock.now(), float(chamber.temperature))
        readings.append(reading)
        if on_reading is not None:
            on_reading(reading)
        if abs(reading.temperature_c - setpoint_c) <= tolerance_c:
            if in_band_since is None:
                in_band_since = reading.time_s
            if reading.time_s - in_band_since >= dwell_s:
                return readings
        else:
            in_band_since = None
        if reading.time_s - start >= timeout_s:
            raise ChamberNotStable(setpoint_c, tolerance_c, timeout_s, reading)
        polls += 1
        # Scheduled from the start, so the time each query takes does not stretch the period.
        clock.wait_until(max(start + polls * poll_s, clock.now()))
