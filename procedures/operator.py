"""The operator: what a run asks of the person at the station, through whatever front end runs it.

A step that needs a person (load the Landt step table, move the cell's leads to the potentiostat,
confirm a start) calls ``operator.request(message)``. The front end decides how the request
reaches someone: the console prints it and waits for Enter, the GUI shows a dialog, a script
answers through a callback, and an unattended run fails the step with a clear reason instead of
waiting for nobody. Every wait can be aborted: the request returns through ``Aborted`` as soon as
the run is aborted, from any thread or signal.
"""
from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from typing import Callable

from instruments.clock import Aborted


class OperatorUnavailable(RuntimeError):
    """The run needs a person and none is there (unattended run, or the operator declined)."""


@dataclass(frozen=True)
class OperatorRequest:
    """``message``: what to do, in full (it may hold a step table); ``kind``: a short tag that a
    front end may use to choose its dialog ("load_program", "move_leads", "stop_channel", "confirm")."""

    message: str
    kind: str = "confirm"


class Operator:
    """Base: ``request()`` returns once the operator has done what was asked."""

    def request(self, message: str, *, kind: str = "confirm", clock=None) -> None:
        raise NotImplementedError

    @staticmethod
    def _wait(done: threading.Event, clock) -> None:
        """Wait for ``done`` in wall time, waking for an abort of ``clock``'s run."""
        while not done.wait(0.1):
            if clock is not None:
                clock.check_abort()


class UnattendedOperator(Operator):
    """Nobody at the station: a request fails the step at once, saying what was needed."""

    def request(self, message: str, *, kind: str = "confirm", clock=None) -> None:
        raise OperatorUnavailable(f"this step needs an operator ({kind}) and the run is unattended: "
                                  f"{message.splitlines()[0] if message else kind}")


class CallbackOperator(Operator):
    """A script answers: ``callback(OperatorRequest)`` returns when done, or raises to refuse
    (OperatorUnavailable fails the step)."""

    def __init__(self, callback: Callable[[OperatorRequest], None]) -> None:
        self.callback = callback

    def request(self, message: str, *, kind: str = "confirm", clock=None) -> None:
        if clock is not None:
            clock.check_abort()
        self.callback(OperatorRequest(message, kind))


class ConsoleOperator(Operator):
    """The terminal: prints the request on stderr and waits for Enter when stdin is a terminal.

    Without a terminal (a pipe, a service) nobody can answer, so the request fails like an
    unattended one. The wait for Enter runs in a helper thread so an abort (Ctrl+C, SIGTERM, the
    GUI) ends it at once.
    """

    def __init__(self, stdin=None, out=None) -> None:
        self.stdin = stdin if stdin is not None else sys.stdin
        self.out = out if out is not None else sys.stderr

    def request(self, message: str, *, kind: str = "confirm", clock=None) -> None:
        print(f"\n>>> OPERATOR: {message}", file=self.out, flush=True)
        if self.stdin is None or not self.stdin.isatty():
            raise OperatorUnavailable(f"this step needs an operator ({kind}) and no terminal is "
                                      "attached to answer")
        print(">>> press Enter when done (Ctrl+C aborts the run) ", end="", file=self.out, flush=True)
        done = threading.Event()
        answer: list[str] = []

        def read() -> None:
            try:
                answer.append(self.stdin.readline())
            finally:
                done.set()

        threading.Thread(target=read, name="operator-console", daemon=True).start()
        try:
            self._wait(done, clock)
        except Aborted:
            print("", file=self.out, flush=True)
            raise
        if answer and answer[0] == "":
            raise OperatorUnavailable(f"the terminal closed while waiting for the operator ({kind})")


class EventOperator(Operator):
    """A front end with its own event loop (the GUI): ``post(request, answer)`` shows the request;
    the front end calls ``answer(True)`` when done or ``answer(False)`` to decline. The run's
    thread waits, abortably."""

    def __init__(self, post: Callable[[OperatorRequest, Callable[[bool], None]], None]) -> None:
        self.post = post

    def request(self, message: str, *, kind: str = "confirm", clock=None) -> None:
        done = threading.Event()
        accepted: list[bool] = []

        def answer(ok: bool) -> None:
            accepted.append(bool(ok))
            done.set()

        self.post(OperatorRequest(message, kind), answer)
        self._wait(done, clock)
        if not accepted[0]:
            raise OperatorUnavailable(f"the operator declined: {message.splitlines()[0]}")
