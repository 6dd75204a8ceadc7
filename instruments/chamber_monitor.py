"""One poller per shared chamber: the runs in it subscribe to its readings instead of each asking.

In a campaign, every run in a chamber logs it (``TEMP?``) and, while it holds a set point, reads
its alarms (``ALARM?``), each at its own interval. Asked by every run, five full cells in one
chamber sent five ``ALARM?`` a tick, 0.3 s apart, and every run woke at every tick. A
:class:`ChamberMonitor` takes one reading when any subscriber is due and hands it to every
subscriber due then; intervals are laid on one grid of the timeline's time (multiples of the
interval), so runs logging at the same interval are served by the same reading.

The monitor is a participant of the station's timeline (instruments/shared_clock.py) with its own
thread and RunClock, running while it has subscribers: a virtual timeline's runs go on sleeping
while it reads, and a real station's serial line carries one reading per tick. A subscriber is
called in the monitor's thread (``deliver``): it must only take the reading and, if it needs its
run's thread at once, ``nudge`` that run's clock (procedures/chamber_log.py does both).
"""
from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import Callable

from instruments.shared_clock import RunClock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """One reading of the chamber: ``temperature_c`` and ``setpoint_c`` are NaN when it did not
    answer (``error`` says why); ``alarms`` are the active codes, None when not asked."""

    time: float
    temperature_c: float
    setpoint_c: float
    alarms: tuple[int, ...] | None
    error: str | None


@dataclass(eq=False)
class Subscription:
    """A subscriber's schedule: the first reading at ``due``, then on the grid of ``interval_s``.
    A paused subscriber is not served and not waited for (its run waits for the chamber and
    logs nothing); resumed, it is served at once if a reading fell due meanwhile."""

    monitor: "ChamberMonitor"
    interval_s: float
    deliver: Callable[[Reading], None]
    wants_alarms: Callable[[], bool]
    due: float
    paused: bool = field(default=False)
    cancelled: bool = field(default=False)

    def advance(self, now: float) -> None:
        self.due = (math.floor(now / self.interval_s) + 1) * self.interval_s

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.due = max(self.due, self.monitor.timeline.now())
        self.paused = False
        self.monitor._wake()

    def cancel(self) -> None:
        self.monitor._remove(self)


class ChamberMonitor:
    """Reads ``chamber`` for its subscribers on the station's ``timeline``."""

    def __init__(self, chamber, timeline, name: str) -> None:
        self.chamber = chamber
        self.timeline = timeline
        self.name = name
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self._clock: RunClock | None = None
        self._thread: threading.Thread | None = None

    def subscribe(self, interval_s: float, deliver: Callable[[Reading], None],
                  wants_alarms: Callable[[], bool] = lambda: False,
                  first_at: float | None = None) -> Subscription:
        """Call ``deliver(reading)`` every ``interval_s`` (the first at ``first_at``, default now)
        until the returned subscription is cancelled. Called from a participant's thread."""
        if not interval_s > 0:
            raise ValueError(f"reading interval must be positive, not {interval_s}")
        sub = Subscription(self, interval_s, deliver, wants_alarms,
                           self.timeline.now() if first_at is None else first_at)
        with self._lock:
            self._subscriptions.append(sub)
            if self._thread is None:
                # A new participant takes its first turn at the current time, after the caller.
                self._clock = RunClock(self.timeline, f"chamber monitor {self.name}")
                self._thread = threading.Thread(target=self._serve, args=(self._clock,),
                                                name=f"chamber-monitor-{self.name}", daemon=True)
                self._thread.start()
                return sub
        self._wake()
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            sub.cancelled = True
            if sub in self._subscriptions:
                self._subscriptions.remove(sub)
        self._wake()

    def _wake(self) -> None:
        clock = self._clock
        if clock is not None:
            clock.wake()

    def _serve(self, clock: RunClock) -> None:
        with clock.participate():
            while True:
                with self._lock:
                    if not self._subscriptions:
                        # Leave the timeline: the next subscriber starts a new thread.
                        self._thread = self._clock = None
                        return
                    live = [sub for sub in self._subscriptions if not sub.paused]
                if not live:
                    clock.wait_for(lambda: not self._subscriptions
                                   or any(not sub.paused for sub in self._subscriptions))
                    continue
                due = min(sub.due for sub in live)
                if due > clock.now():
                    clock.wait_until(due)
                    continue  # a subscriber may have come, gone or paused meanwhile
                now = clock.now()
                ready = [sub for sub in live if sub.due <= now]
                reading = self._read(now, any(sub.wants_alarms() for sub in ready))
                for sub in ready:
                    sub.advance(now)
                    if not (sub.cancelled or sub.paused):
                        sub.deliver(reading)

    def _read(self, now: float, with_alarms: bool) -> Reading:
        alarms = None
        try:
            status = self.chamber.temperature_status
            if with_alarms:
                alarms = tuple(self.chamber.alarms.codes)
        except Exception as exc:  # noqa: BLE001 - a failed reading is delivered as such
            log.warning("chamber %s reading failed: %s", self.name, exc)
            return Reading(now, math.nan, math.nan, None, str(exc))
        return Reading(now, float(status[0]), float(status[1]), alarms, None)
