"""Logs the chamber throughout a run and answers "what was the temperature between t0 and t1"."""
from __future__ import annotations

import logging
from collections import deque

import numpy as np
from config.documents import StreamRole

log = logging.getLogger(__name__)

COLUMNS = {"time_s": "s", "temperature_c": "degC", "setpoint_c": "degC"}


class ChamberLogger:
    """Reads the chamber every ``interval_s`` as a clock task, into the run's ``chamber`` stream.

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

    def start(self) -> None:
        self._writer = self.ctx.new_stream("chamber", COLUMNS, metadata={"role": StreamRole.CHAMBER_LOG.value},
                                           step_index=None, continue_stored=True)
        # A resumed run's log goes on one interval after its state's time, whose reading (if
        # one was due then) is stored already.
        first = None if self._writer.seq == 0 else self.ctx.clock.now() + self.interval_s
        self._cancel = self.ctx.clock.every(self.interval_s, lambda now: self._read(now, with_alarms=True),
                                            first_at=first)

    def stop(self) -> None:
        if self._cancel is not None:
            self._cancel()
            self._cancel = None
        self._emit_pending()

    def read_now(self) -> float:
        """Take one reading now (also logged); returns the temperature in °C."""
        temperature = self._read(self.ctx.clock.now(), with_alarms=False)
        self._emit_pending()
        return temperature

    def _read(self, now: float, with_alarms: bool) -> float:
        """One reading; while a set point is watched, the periodic ones also read the alarms
        (a measurement's own readings, just before and after it, only the temperature: the
        alarm is known from at most one interval before)."""
        chamber = self.ctx.station.chamber
        watch = self.ctx.watch if self.ctx.watch is not None and self.ctx.watch.armed else None
        alarms, error = None, None
        try:
            status = chamber.temperature_status
            temperature, setpoint = float(status[0]), float(status[1])
            if watch is not None and with_alarms:
                alarms = chamber.alarms.codes
        except Exception as exc:  # noqa: BLE001 - any transport fault is logged, not fatal here
            log.warning("chamber reading failed: %s", exc)
            error = str(exc)
            temperature = setpoint = float("nan")
        self.times.append(now)
        self.temperatures.append(temperature)
        self._pending.append((now - self.t0, temperature, setpoint))
        if len(self._pending) >= self._page_rows:
            self._emit_pending()
        if watch is not None:
            watch.observe(now, temperature, alarms, error)
        return temperature

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
