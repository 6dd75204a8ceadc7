"""Clocks: the only place where cellbench code waits.

Procedures, drivers and simulators ask a Clock for the time and for waits, never ``time.sleep``
or ``time.time``. The wall clock waits for real; the virtual clock (``instruments.sim.clock``)
jumps. Both run *periodic tasks* cooperatively inside ``sleep``: that is how the chamber is
logged every 10 s while a procedure soaks or polls the potentiostat, in one thread, with the
same code in real and simulated time.

Waits are interruptible: ``abort()`` makes every current and future wait raise ``Aborted``
(Ctrl+C and the GUI's abort button call it), so a procedure stops at its next wait, not at the
end of a one-hour soak.
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable


class Aborted(Exception):
    """Raised from a Clock wait once the run has been asked to abort."""


class _Task:
    __slots__ = ("interval", "callback", "cancelled")

    def __init__(self, interval: float, callback: Callable[[float], None]) -> None:
        self.interval = interval
        self.callback = callback
        self.cancelled = False


class Clock:
    """Base clock: time in seconds since the Unix epoch, cooperative periodic tasks, abort."""

    virtual = False

    def __init__(self) -> None:
        self._abort = threading.Event()
        self._abort_reason = ""
        self._queue: list[tuple[float, int, _Task]] = []
        self._counter = itertools.count()
        self._in_task = False

    # --- time --------------------------------------------------------------------------
    def now(self) -> float:
        raise NotImplementedError

    def _advance_to(self, t: float) -> None:
        """Block (or jump) until ``now() >= t`` or abort; must not run tasks."""
        raise NotImplementedError

    # --- waits -------------------------------------------------------------------------
    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (>= 0), running due periodic tasks; raises Aborted on abort."""
        if seconds < 0:
            raise ValueError(f"cannot sleep a negative time ({seconds} s)")
        self.wait_until(self.now() + seconds)

    def wait_until(self, t: float) -> None:
        """Wait until the clock reads ``t``, running due periodic tasks; raises Aborted on abort."""
        self.check_abort()
        while True:
            due = self._queue[0][0] if (self._queue and not self._in_task) else None
            if due is not None and due <= t:
                self._advance_to(due)
                self.check_abort()
                self._run_due_tasks()
                continue
            self._advance_to(t)
            self.check_abort()
            return

    def every(self, interval_s: float, callback: Callable[[float], None],
              first_at: float | None = None) -> Callable[[], None]:
        """Call ``callback(now)`` every ``interval_s`` during waits; returns a cancel function.

        Tasks run inside ``sleep``/``wait_until`` of the thread that waits, never concurrently
        with it, so they may use the same instruments. A task's own waits do not run tasks.
        """
        if interval_s <= 0:
            raise ValueError(f"task interval must be positive, not {interval_s}")
        task = _Task(interval_s, callback)
        start = self.now() if first_at is None else first_at
        heapq.heappush(self._queue, (start, next(self._counter), task))

        def cancel() -> None:
            task.cancelled = True
            self._queue = [e for e in self._queue if e[2] is not task]
            heapq.heapify(self._queue)
        return cancel

    def _run_due_tasks(self) -> None:
        now = self.now()
        while self._queue and self._queue[0][0] <= now:
            due, _, task = heapq.heappop(self._queue)
            if task.cancelled:
                continue
            heapq.heappush(self._queue, (due + task.interval, next(self._counter), task))
            self._in_task = True
            try:
                task.callback(now)
            finally:
                self._in_task = False

    def hold(self, released: threading.Event) -> None:
        """Wait until ``released`` is set (a paused run), running periodic tasks so that logging
        goes on; raises Aborted on abort."""
        while not released.is_set():
            self.sleep(1.0)

    # --- abort -------------------------------------------------------------------------
    def abort(self, reason: str = "abort requested") -> None:
        """Make current and future waits raise Aborted (thread-safe)."""
        self._abort_reason = reason
        self._abort.set()

    def clear_abort(self) -> None:
        self._abort.clear()
        self._abort_reason = ""

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def check_abort(self) -> None:
        if self._abort.is_set():
            raise Aborted(self._abort_reason)


class WallClock(Clock):
    """Real time. Waits block on an Event so that ``abort()`` from another thread wakes them."""

    def now(self) -> float:
        return time.time()

    def _advance_to(self, t: float) -> None:
        while True:
            remaining = t - time.time()
            if remaining <= 0 or self._abort.wait(remaining):
                return
