"""The one retry policy of every instrument exchange: how often a transient fault is tried again,
and how long to wait first.

A transient fault is one that another try can cure: a reply lost or garbled on the line, a
timeout, a dropped connection, a busy library. Which faults are transient is each driver's
knowledge (an ESPEC ``NA:DATA OUT OF RANGE`` is the chamber's answer, an EClib -200 is a failed
transfer); how they are retried is decided here, once, for the chamber, the potentiostat and the
cycler's export alike. The pauses go through the injected Clock (virtual time in simulation,
abortable in both), never ``time.sleep``.

    DEFAULT_RETRY.call(lambda attempt: chamber_exchange(), clock=clock,
                       transient=lambda exc: isinstance(exc, EspecCommunicationError),
                       describe="ESPEC chamber: TEMP?")
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRIES = 10
MAX_BACKOFF_S = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` further attempts after a transient fault (0–10), the first after
    ``backoff_s`` seconds of clock time (0–60), each next one after twice the previous pause."""

    retries: int = 3
    backoff_s: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.retries, int) and 0 <= self.retries <= MAX_RETRIES):
            raise ValueError(f"retries must be an integer 0-{MAX_RETRIES}, not {self.retries!r}")
        if not 0 <= self.backoff_s <= MAX_BACKOFF_S:
            raise ValueError(f"retry backoff must be 0-{MAX_BACKOFF_S:g} s, not {self.backoff_s!r}")

    def pause_s(self, retry: int) -> float:
        """The wait before retry number ``retry`` (1-based), s."""
        return self.backoff_s * 2 ** (retry - 1)

    def call(self, attempt: Callable[[int], T], *, clock, transient: Callable[[BaseException], bool],
             describe: str = "", before_retry: Callable[[BaseException], None] | None = None,
             on_retry: Callable[[BaseException], None] | None = None) -> T:
        """``attempt(n)`` for n = 0, 1, ... until it returns; an exception for which
        ``transient(exc)`` holds is retried after the pause, any other one, or the last, is
        raised. ``on_retry(exc)`` counts a retry, ``before_retry(exc)`` prepares the line after
        the pause (flush a late reply, reopen a connection)."""
        for n in range(self.retries + 1):
            try:
                return attempt(n)
            except Exception as exc:  # noqa: BLE001 - classified by the caller's transient()
                if n == self.retries or not transient(exc):
                    raise
                if on_retry is not None:
                    on_retry(exc)
                pause = self.pause_s(n + 1)
                log.warning("%s: %s; retry %d of %d in %g s", describe or "instrument", exc, n + 1,
                            self.retries, pause)
                clock.sleep(pause)
                if before_retry is not None:
                    before_retry(exc)
        raise AssertionError("unreachable")  # pragma: no cover


DEFAULT_RETRY = RetryPolicy()
