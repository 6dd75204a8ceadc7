"""The virtual clock of the simulated lab: waits jump instead of blocking.

Simulators read ``now()`` and integrate their physics over whatever interval passed (they are
written in closed form or advance by events), so a one-hour soak costs one jump plus the
periodic tasks due inside it (chamber logging), not 3,600 loop turns.
"""
from __future__ import annotations

import threading
import time

from instruments.clock import Clock


class VirtualClock(Clock):
    """Simulated time in seconds since the Unix epoch, starting at ``start`` (default: now)."""

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        self._t = time.time() if start is None else float(start)

    def now(self) -> float:
        return self._t

    def _advance_to(self, t: float) -> None:
        if t > self._t:
            self._t = t

    def pass_time(self, seconds: float) -> None:
        """Time passing inside a blocking call (a library waiting for an acknowledgement):
        the clock moves on, no task runs until the next wait."""
        if seconds < 0:
            raise ValueError(f"time cannot pass backwards ({seconds} s)")
        self._advance_to(self._t + seconds)

    def hold(self, released: threading.Event) -> None:
        """A paused simulated run waits in wall time with its virtual time frozen: nothing in the
        simulated lab moves while nobody drives it."""
        while not released.wait(0.05):
            self.check_abort()
