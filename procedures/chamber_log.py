"""Logs the chamber throughout a run and answers "what was the temperature between t0 and t1"."""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
from config.documents import StreamRole

log = logging.getLogger(__name__)

COLUMNS = {"time_s": "s", "temperature_c": "degC", "setpoint_c": "degC"}


class ChamberLogger:
    """Reads the chamber every ``interval_s`` as a clock task, into the run's ``chamber`` stream;
    on a station whose chamber has a monitor (a campaign's shared chamber,
    instruments/chamber_monitor.py), it takes the monitor's readings instead.

    It keeps only the last ``RECENT`` readings for ``mean_between`` (a measurement asks about its
    own minutes); the whole log is in storage, so memory stays flat however long the run.

    A failed reading is logged and recorded as NaN rather than ending the run: the log is
    context. While a set point is held, each reading also reads the chamber's alarms and is
    judged by the run's ConditionWatch (procedures/watch.py), which suspends the run on a lost
    band, an alarm or a chamber that does not answer.
    """

    RECENT = 10_000
    SIMULATED_PAGE_ROWS = 50

    def __init__(self, ctx, interval_s: float) -> None:
        self.ctx = ctx
        self.interval_s = interval_s
        self.t0 = ctx.run_t0
        self.times: deque[float] = deque(maxlen=self.RECENT)
        self.temperatures: deque[float] = deque(maxlen=self.RECENT)
        self._cancel = None
        self._writer = None
        # A real reading is emitted at once (a crash must not lose it); simulated ones, which
        # come thousands a second, are emitted in pages.
        self._page_rows = self.SIMULATED_PAGE_ROWS if ctx.clock.virtual else 1
        self._pending: list[tuple[float, float, float]] = []
        self._delivered: deque = deque()  # a shared chamber monitor's readings not yet taken

    def start(self) -> None:
        self._writer = self.ctx.new_stream("chamber", COLUMNS, metadata={"role": StreamRole.CHAMBER_LOG.value},
                                           step_index=None, continue_stored=True)
        # A resumed run's log goes on one interval after its state's time, whose reading (if
        # one was due then) is stored already.
        first = None if self._writer.seq == 0 else self.ctx.clock.now() + self.interval_s
        monitor = getattr(self.ctx.station, "chamber_monitor", None)
        if monitor is None:
            self._cancel = self.ctx.clock.every(self.interval_s, lambda now: self._read(now, with_alarms=True),
                                                first_at=first)
            return
        # A chamber shared by a campaign's runs: its monitor reads it for all of them, and this
        # run's thread takes the readings when its waits return.
        clock = self.ctx.clock
        subscription = monitor.subscribe(self.interval_s, self._deliver, wants_alarms=self._watching,
                                         first_at=first)
        removers = [clock.after_wait(self._take_delivered),
                    clock.on_resource_wait(lambda waiting: subscription.pause() if waiting
                                           else subscription.resume())]

        def cancel() -> None:
            subscription.cancel()
            for remove in removers:
                remove()
        self._cancel = cancel

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
            self._take_delivered()
        self._emit_pending()

    def read_now(self) -> float:
        """Take one reading now (also logged); returns the temperature in °C."""
        self._take_delivered()
        temperature = self._read(self.ctx.clock.now(), with_alarms=False)
        self._emit_pending()
        return temperature

    def _read(self, now: float, with_alarms: bool) -> float:
        """One reading; while a set point is watched, the periodic ones also read the alarms
        (a measurement's own readings, just before and after it, only the temperature: the
        alarm is known from at most one interval before)."""
        chamber = self.ctx.station.chamber
        watched = with_alarms and self._watching()
        alarms, error = None, None
        try:
            status = chamber.temperature_status
            temperature, setpoint = float(status[0]), float(status[1])
            if watched:
                alarms = chamber.alarms.codes
        except Exception as exc:  # noqa: BLE001 - any transport fault is logged, not fatal here
            log.warning("chamber reading failed: %s", exc)
            error = str(exc)
            temperature = setpoint = float("nan")
        self._record(now, temperature, setpoint, alarms, error)
        return temperature

    def _watching(self) -> bool:
        watch = self.ctx.watch
        return watch is not None and watch.armed

    def _deliver(self, reading) -> None:
        """A monitor's reading (called in the monitor's thread): kept for this run's thread, which
        is woken at once when the reading may change what its watch says, or on a real station
        (a real reading is stored at once), and otherwise takes it when its wait returns."""
        clock = self.ctx.clock
        self._delivered.append(reading)
        watch = self.ctx.watch
        if not clock.virtual or (watch is not None and watch.concerned_by(
                reading.temperature_c, reading.alarms, reading.error)):
            clock.nudge()

    def _take_delivered(self) -> None:
        while self._delivered:
            r = self._delivered.popleft()
            self._record(r.time, r.temperature_c, r.setpoint_c, r.alarms, r.error)

    def _record(self, now: float, temperature: float, setpoint: float, alarms, error) -> None:
        watch = self.ctx.watch if self._watching() else None
        self.times.append(now)
        self.temperatures.append(temperature)
        self._pending.append((now - self.t0, temperature, setpoint))
        if len(self._pending) >= self._page_rows:
            self._emit_pending()
        if watch is not None:
            watch.observe(now, temperature, alarms, error)

    def _emit_pending(self) -> None:
        if self._pending:
            time_s, temperature, setpoint = zip(*self._pending)
            self._pending = []
            self._writer.write({"time_s": time_s, "temperature_c": temperature, "setpoint_c": setpoint})

    def mean_between(self, t_start: float, t_end: float) -> float | None:
        """Mean of the readings taken in [t_start, t_end], or None if there are none."""
        t = np.asarray(self.times)
        v = np.asarray(self.temperatures)
        sel = (t >= t_start) & (t <= t_end) & np.isfinite(v)
        return float(v[sel].mean()) if sel.any() else None
