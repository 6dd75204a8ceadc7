"""Signals that stop a run the way Ctrl+C does: instruments safe, data flushed, run ``aborted``.

SIGINT (Ctrl+C), SIGTERM (a plain ``kill``, a service manager stopping the process) and SIGHUP (a
closed terminal) all call ``on_stop(reason)`` with a reason that names the signal; a second
SIGINT interrupts at once. On Windows, the console's close, logoff and shutdown events are
handled through ``SetConsoleCtrlHandler`` where the OS allows it (it gives a handler a few seconds
on close; on logoff/shutdown it may give none).

Only the main thread may own signal handlers; elsewhere this does nothing.
"""
from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable

SIGNAL_REASONS = {"SIGINT": "interrupted by Ctrl+C (SIGINT)", "SIGTERM": "terminated by SIGTERM",
                  "SIGHUP": "hung up: the terminal closed (SIGHUP)",
                  "SIGBREAK": "interrupted by Ctrl+Break (SIGBREAK)"}
_WINDOWS_EVENTS = {2: "the console window was closed", 5: "the user logged off",
                   6: "the system is shutting down"}


@contextmanager
def stop_on_signals(on_stop: Callable[[str], None]):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    presses: list[int] = []

    def handler(signum, frame):
        name = signal.Signals(signum).name
        if name == "SIGINT":
            presses.append(signum)
            if len(presses) > 1:
                raise KeyboardInterrupt
        on_stop(SIGNAL_REASONS.get(name, f"stopped by {name}"))

    previous = {}
    for name in SIGNAL_REASONS:
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, handler)
    console = _windows_console_handler(on_stop) if sys.platform == "win32" else None
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if console is not None:
            console.remove()


class _ConsoleHandler:
    def __init__(self, on_stop) -> None:
        import ctypes
        from ctypes import wintypes
        self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self._done = threading.Event()

        @ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
        def routine(event):
            reason = _WINDOWS_EVENTS.get(int(event))
            if reason is None:
                return False  # Ctrl+C and Ctrl+Break arrive as signals
            on_stop(reason)
            # Returning ends the process on these events: give the run time to make the
            # instruments safe (Windows allows about 5 s on close).
            self._done.wait(4.5)
            return True

        self._routine = routine
        self._kernel32.SetConsoleCtrlHandler(self._routine, True)

    def remove(self) -> None:
        self._done.set()
        self._kernel32.SetConsoleCtrlHandler(self._routine, False)


def _windows_console_handler(on_stop):
    try:
        return _ConsoleHandler(on_stop)
    except (OSError, AttributeError):  # no console (a service): nothing to handle
        return None
