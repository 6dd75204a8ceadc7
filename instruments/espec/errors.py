"""Errors raised by the ESPEC chamber driver.

Every error names the instrument, the command that was sent and the reply (or its absence), so a
failure stored with a run says what happened on the wire without a trace log.
"""
from __future__ import annotations


class EspecError(Exception):
    """The chamber refused a command (``NA:<reason>``) or answered something unexpected."""

    def __init__(self, instrument: str, command: str, reply: str | None, problem: str) -> None:
        self.instrument = instrument
        self.command = command
        self.reply = reply
        self.problem = problem
        shown = "no reply" if reply is None else f"reply {reply!r}"
        super().__init__(f"{instrument}: command {command!r} failed: {problem} ({shown})")


class EspecRefused(EspecError):
    """The chamber answered ``NA:<reason>`` (``reason`` holds the text after ``NA:``)."""

    def __init__(self, instrument: str, command: str, reply: str) -> None:
        self.reason = reply[3:].strip()
        super().__init__(instrument, command, reply, f"chamber refused it: {self.reason}")


class EspecCommunicationError(EspecError):
    """No reply arrived (timeout) or the connection failed."""
