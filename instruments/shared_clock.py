"""One clock for many runs in one station process.

Each run gets its own :class:`RunClock`: a Clock with the run's periodic tasks (its chamber log)
and its own abort, whose waits go to the station's *timeline*. In simulation the timeline is a
:class:`SharedVirtualTimeline`, a conservative discrete-event loop: exactly one run thread holds
the baton at a time; a run that waits gives the baton to the run with the earliest pending
wake-up, and virtual time jumps there. A run whose wake-up is not later than every other run's
keeps the baton and jumps at once, so runs that do not interleave cost no thread switch. With
real instruments the timeline is :class:`WallTimeline`: every run waits for real, in parallel.

Shared drivers (a chamber several runs use, the potentiostat's one connection) are given a
:class:`CallerClock`: it waits on the clock of the run whose thread calls, so a chamber command
paced by 0.3 s is a wait of that run, not of the station.

A thread that takes part calls ``timeline.enter(token)`` before its first wait and
``timeline.leave(token)`` when it is done (``RunClock.participate()`` does both); a participant
that waits on anything but the timeline (a lock, a queue) would stop the simulated station.

The participants of a virtual timeline run one at a time, so ``participate()`` keeps their threads
on one core (``SharedVirtualTimeline.cpus``) while they take part. Spread over two cores, every
hand-over of the baton also hands the GIL across cores and wakes a thread on the other one. With
another job busy on both cores, bench/bench_campaign.py took 45.9 and 49.0 s that way and 39.6 and
32.7 s on one core; on two idle cores 37.8 s against 36.4 and 37.6 s. The other cores are left to
what runs beside the timeline: the report process is kept off the timeline's core
(``cores_beside_timelines``), since on it a report slowed every run.
"""
from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import threading
import time
from typing import Callable

from instruments.clock import Clock

# The cores this process may use, read before any thread is kept to one (a helper process started
# from a participant's thread inherits that one core; see cores_beside_timelines).
PROCESS_CPUS: frozenset[int] | None = (frozenset(os.sched_getaffinity(0))
                                       if hasattr(os, "sched_getaffinity") else None)


def _one_core_of_process() -> frozenset[int] | None:
    """The core the participants of a virtual timeline share: the process's highest-numbered one
    (core 0 takes most interrupts); None where a thread cannot be kept to a core, or with one core."""
    if PROCESS_CPUS is None or len(PROCESS_CPUS) < 2:
        return None
    return frozenset({max(PROCESS_CPUS)})


def cores_beside_timelines() -> frozenset[int] | None:
    """The cores for a helper process (reports) that must not slow the runs: all of the process's
    but the one virtual timelines keep their participants on; None where cores cannot be chosen."""
    shared = _one_core_of_process()
    return PROCESS_CPUS if shared is None else PROCESS_CPUS - shared


class _Token:
    """A participant. ``turn`` is a lock used as a binary semaphore: held while the participant
    may not run, released to hand it the baton (cheaper than an Event: no condition variable)."""

    __slots__ = ("name", "turn", "entry")

    def __init__(self, name: str) -> None:
        self.name = name
        self.turn = threading.Lock()
        self.turn.acquire()
        self.entry = None  # its [time, seq, token, live] entry in the wake-up heap


class SharedVirtualTimeline:
    """Virtual time shared by all participants; only the baton holder runs."""

    virtual = True

    def __init__(self, start: float | None = None) -> None:
        self._t = time.time() if start is None else float(start)
        self._lock = threading.Lock()
        self._heap: list[list] = []
        self._seq = itertools.count()
        self._holder: _Token | None = None
        self.switches = 0  # baton hand-overs to another thread (what interleaving costs)
        self.cpus = _one_core_of_process()

    def keep_on_core(self) -> Callable[[], None]:
        """Keep the calling thread on the participants' core; returns what gives its cores back."""
        if self.cpus is None:
            return lambda: None
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.cpus)
        return lambda: os.sched_setaffinity(0, before)

    def now(self) -> float:
        return self._t

    def token(self, name: str) -> _Token:
        """A participant, scheduled to start at the current time (in creation order)."""
        token = _Token(name)
        with self._lock:
            self._push(token, self._t)
        return token

    def enter(self, token: _Token) -> None:
        """Block until ``token`` holds the baton (its first turn)."""
        with self._lock:
            if self._holder is None:
                self._dispatch()
        token.turn.acquire()

    def leave(self, token: _Token) -> None:
        """``token`` is done: drop it and pass the baton on."""
        with self._lock:
            if token.entry is not None:
                token.entry[3] = False
                token.entry = None
            if self._holder is token:
                self._holder = None
                self._dispatch()

    def block(self, token: _Token, t: float) -> None:
        """The holder waits until time ``t`` (or until ``wake``)."""
        with self._lock:
            if self._holder is not token:
                raise RuntimeError(f"{token.name} waits on the shared clock without holding it")
            self._prune()
            if not self._heap or t <= self._heap[0][0]:
                if t > self._t:
                    self._t = t
                return
            self._push(token, t)
            self._holder = None
            self._dispatch()
        token.turn.acquire()

    def wake(self, token: _Token) -> None:
        """Bring a waiting participant's wake-up forward to now (thread-safe; for a resource
        released or an abort)."""
        with self._lock:
            if token.entry is not None and token.entry[0] > self._t:
                token.entry[3] = False
                self._push(token, self._t)

    # --- internals (lock held) -----------------------------------------------------------------
    def _push(self, token: _Token, t: float) -> None:
        entry = [t, next(self._seq), token, True]
        token.entry = entry
        heapq.heappush(self._heap, entry)

    def _prune(self) -> None:
        while self._heap and not self._heap[0][3]:
            heapq.heappop(self._heap)

    def _dispatch(self) -> None:
        self._prune()
        if not self._heap:
            return
        t, _, token, _ = heapq.heappop(self._heap)
        token.entry = None
        if t > self._t:
            self._t = t
        self._holder = token
        self.switches += 1
        token.turn.release()


class _WallToken:
    __slots__ = ("name", "event")

    def __init__(self, name: str) -> None:
        self.name = name
        self.event = threading.Event()


class WallTimeline:
    """Real time: every participant waits on its own, in parallel."""

    virtual = False

    def now(self) -> float:
        return time.time()

    def token(self, name: str) -> _WallToken:
        return _WallToken(name)

    def enter(self, token: _WallToken) -> None:
        token.event.clear()

    def leave(self, token: _WallToken) -> None:
        pass

    def block(self, token: _WallToken, t: float) -> None:
        while True:
            remaining = t - time.time()
            if remaining <= 0 or token.event.wait(remaining):
                token.event.clear()
                return

    def wake(self, token: _WallToken) -> None:
        token.event.set()

    def keep_on_core(self) -> Callable[[], None]:
        """Real time: participants wait in parallel, on any core."""
        return lambda: None


_current = threading.local()


class RunClock(Clock):
    """One run's clock on a shared timeline: its own periodic tasks and abort."""

    def __init__(self, timeline, name: str) -> None:
        super().__init__()
        self.timeline = timeline
        self.virtual = timeline.virtual
        self.token = timeline.token(name)
        self._after_wait: list[Callable[[], None]] = []
        self._resource_wait_hooks: list[Callable[[bool], None]] = []
        self._in_after_wait = False
        self._woken = False

    def now(self) -> float:
        return self.timeline.now()

    def _advance_to(self, t: float) -> None:
        while not self._abort.is_set():
            self.timeline.block(self.token, t)
            self._run_after_wait()
            if self._woken or self.timeline.now() >= t:
                self._woken = False
                return
            # nudged: the after-wait hooks ran, the wait goes on

    def abort(self, reason: str = "abort requested") -> None:
        super().abort(reason)
        self.timeline.wake(self.token)

    def wake(self) -> None:
        """End the current wait early (what it waited for happened)."""
        self._woken = True
        self.timeline.wake(self.token)

    def nudge(self) -> None:
        """Run the after-wait hooks in this run's thread now; its wait goes on (thread-safe)."""
        self.timeline.wake(self.token)

    def after_wait(self, hook: Callable[[], None]) -> Callable[[], None]:
        """Call ``hook()`` in this run's thread whenever one of its waits returns or is nudged
        (not from inside a hook); returns the function that removes it."""
        self._after_wait.append(hook)
        return lambda: self._after_wait.remove(hook) if hook in self._after_wait else None

    def on_resource_wait(self, hook: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``hook(True)`` when a ``wait_for`` begins and ``hook(False)`` when it ends (what
        runs outside this clock's own tasks, and must stop too); returns the remover."""
        self._resource_wait_hooks.append(hook)
        return lambda: (self._resource_wait_hooks.remove(hook)
                        if hook in self._resource_wait_hooks else None)

    def _run_after_wait(self) -> None:
        if not self._after_wait or self._in_after_wait:
            return
        self._in_after_wait = True
        try:
            for hook in list(self._after_wait):
                hook()
        finally:
            self._in_after_wait = False

    def wait_for(self, ready: Callable[[], bool], recheck_s: float = 86400.0) -> None:
        """Wait until ``ready()``, checked whenever another thread calls ``wake()`` and at least
        every ``recheck_s``; raises Aborted on abort. Periodic tasks are suspended meanwhile and
        resume from the end of the wait (a run waiting for its chamber measures nothing, so
        it logs nothing)."""
        self.check_abort()
        for hook in list(self._resource_wait_hooks):
            hook(True)
        try:
            while not ready():
                self._advance_to(self.now() + recheck_s)
                self.check_abort()
        finally:
            for hook in list(self._resource_wait_hooks):
                hook(False)
        now = self.now()
        self._queue = [(max(due, now), n, task) for due, n, task in self._queue]
        heapq.heapify(self._queue)

    @contextlib.contextmanager
    def participate(self):
        """Take part in the timeline from this thread; shared drivers wait on this clock."""
        _current.clock = self
        give_cores_back = self.timeline.keep_on_core()
        self.timeline.enter(self.token)
        try:
            yield self
        finally:
            _current.clock = None
            self.timeline.leave(self.token)
            give_cores_back()


class CallerClock(Clock):
    """The clock of the run whose thread is calling: what a driver shared by runs waits on."""

    def __init__(self, timeline) -> None:
        super().__init__()
        self.timeline = timeline
        self.virtual = timeline.virtual

    @staticmethod
    def _run_clock() -> RunClock:
        clock = getattr(_current, "clock", None)
        if clock is None:
            raise RuntimeError("a shared instrument was used from a thread that takes no part in "
                               "the station's clock")
        return clock

    def now(self) -> float:
        return self.timeline.now()

    def wait_until(self, t: float) -> None:
        self._run_clock().wait_until(t)

    def sleep(self, seconds: float) -> None:
        self._run_clock().sleep(seconds)

    def check_abort(self) -> None:
        self._run_clock().check_abort()

    def every(self, *args, **kwargs):
        return self._run_clock().every(*args, **kwargs)

    @property
    def aborted(self) -> bool:
        return self._run_clock().aborted
