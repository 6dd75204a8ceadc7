"""Garbled chamber replies through the driver (issue 9, scope 6): whatever bytes come back, a
query returns finite values or raises EspecError; never UnicodeDecodeError, ValueError, nan.

``CELLBENCH_EXAMPLES`` examples (default 300); the acceptance run is CELLBENCH_EXAMPLES=10000.
"""
from __future__ import annotations

import math
import os

from hypothesis import HealthCheck, given, settings, strategies as st
from pymeasure.adapters import Adapter

from instruments.espec.driver import EspecChamber
from instruments.espec.errors import EspecError
from instruments.sim.clock import VirtualClock

EXAMPLES = int(os.environ.get("CELLBENCH_EXAMPLES", "300"))

VALID = {
    "monitor": "24.1,,CONSTANT,0", "temperature": "24.1,25.0,150.0,-40.0",
    "temperature_status": "24.1,25.0,150.0,-40.0", "setpoint": "24.1,25.0,150.0,-40.0",
    "chamber_type": "T,S2,150.0", "mode": "CONSTANT", "alarms": "2,3,5",
    "humidity_status": "45,60,100,0", "constant_temperature": "-10.0,ON",
    "program_monitor": "3,-5.0,,01:30,0,2", "rom": "P300 Ver 1.00",
}


class RawAdapter(Adapter):
    """Hands the driver the given raw bytes as a VISA read would: decoded as ASCII."""

    def __init__(self, replies: list[bytes]) -> None:
        super().__init__()
        self.replies = list(replies)

    def _write(self, command: str, **kwargs) -> None:
        pass

    def _read(self, **kwargs) -> str:
        if not self.replies:
            raise TimeoutError("no reply")
        return self.replies.pop(0).decode("ascii")

    def flush_read_buffer(self) -> None:
        pass


def _mutations(text: str):
    fields = text.split(",")
    return st.one_of(
        st.binary(max_size=40),
        st.text(max_size=40).map(lambda t: t.encode("utf-8")),
        st.sampled_from(["nan", "inf", "-inf", "1e999", "-1e999", "NaN", "", " ", "1e-999",
                         "0x10", "1_0", "\x00", "\xb0"]).flatmap(
            lambda bad: st.integers(0, len(fields) - 1).map(
                lambda i: ",".join(fields[:i] + [bad] + fields[i + 1:]).encode("latin-1"))),
        st.integers(0, len(text)).map(lambda n: text[:n].encode()),
        st.tuples(st.integers(0, len(text)), st.binary(min_size=1, max_size=3)).map(
            lambda p: text[:p[0]].encode() + p[1] + text[p[0]:].encode()),
    )


@st.composite
def garbled(draw):
    prop = draw(st.sampled_from(sorted(VALID)))
    return prop, draw(_mutations(VALID[prop]))


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, tuple):
        for item in value:
            yield from _floats(item)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbled(), st.integers(0, 2))
def test_a_garbled_reply_is_a_value_or_an_espec_error(case, retries):
    prop, reply = case
    chamber = EspecChamber(RawAdapter([reply] * (retries + 1)), clock=VirtualClock(start=0.0),
                           retries=retries)
    try:
        value = getattr(chamber, prop)
    except EspecError:
        return
    assert all(math.isfinite(x) for x in _floats(value)), (prop, reply, value)


@settings(max_examples=max(EXAMPLES // 3, 50), deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(st.binary(max_size=30), _mutations("OK:MODE, CONSTANT")))
def test_a_garbled_setting_reply_is_accepted_only_as_an_ok_of_the_command(reply):
    chamber = EspecChamber(RawAdapter([reply]), clock=VirtualClock(start=0.0), retries=0)
    try:
        chamber.mode = "CONSTANT"
    except EspecError:
        return
    text = reply.decode("ascii").strip()   # the driver checks the echoed keyword
    assert text.startswith("OK:") and text[3:].split(",")[0].strip() == "MODE"
