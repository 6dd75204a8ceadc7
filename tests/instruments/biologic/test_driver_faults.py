"""BioLogic faults (issue 9, scope 4): transient library errors retried, a start race that
outlasts its timeout an error with the channel stopped, a refused stop never silent."""
import logging
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from instruments.biologic import api
from instruments.biologic import techniques as tq
from instruments.biologic.api import BiologicError
from instruments.biologic.driver import BiologicPotentiostat, StartTimeout
from instruments.biologic.fake_dll import FakeEClib
from instruments.biologic.layouts import LayoutError, layout_for
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab


class Resistor:
    def __init__(self, r_ohm, e0_v=0.0):
        self.r, self.e0 = r_ohm, e0_v

    def rest_potential_v(self, temperature_c):
        return self.e0

    def current_response(self, t_s, e_v, temperature_c):
        return (np.asarray(e_v) - self.e0) / self.r


class Flaky:
    """The fake DLL whose export ``name`` returns ``code`` on its next ``times`` calls."""

    def __init__(self, fake, name, code, times):
        self.fake, self.name, self.code, self.left = fake, name, code, times

    def __getattr__(self, attr):
        function = getattr(self.fake, attr)
        if attr != self.name:
            return function

        def flaky(*args):
            if self.left > 0:
                self.left -= 1
                return self.code
            return function(*args)
        return flaky


@pytest.fixture
def lab():
    lab = SimLab(VirtualClock(start=1.7e9), {"seed": 7})
    lab.load = Resistor(1e3, 0.1)
    return lab


def driver(lab, dll, **kw):
    pstat = BiologicPotentiostat(dll, lab.clock, poll_interval_s=1.0, **kw)
    pstat.connect()
    return pstat


@pytest.mark.parametrize("code", [-200, -202, -12])
def test_transient_errors_are_retried_with_backoff(lab, code):
    fake = FakeEClib(lab, start_race_polls=0)
    flaky = Flaky(fake, "BL_GetData", code, 2)
    pstat = driver(lab, flaky)
    t0 = lab.clock.now()
    rows = pstat.collect(tq.ocv(3.0, record_every_dt_s=1.0))[(0, 0)]
    assert len(rows["time_s"]) == 3
    assert pstat.retried_calls == 2
    assert lab.clock.now() - t0 >= 1.0 + 2.0  # backoff 1 s then 2 s, in the clock's time


def test_a_persistent_fault_is_raised_after_the_retries_and_the_channel_stopped(lab):
    fake = FakeEClib(lab, start_race_polls=0)
    pstat = driver(lab, Flaky(fake, "BL_GetData", -200, 100), retries=3)
    with pytest.raises(BiologicError) as info:
        list(pstat.run(tq.ca([0.1], [60.0], record_every_dt_s=1.0)))
    assert info.value.code == -200 and pstat.retried_calls == 3
    assert fake.calls[-1] == "BL_StopChannel" and not fake.channels[0].running


def test_a_lost_start_reply_does_not_fail_on_the_retry(lab):
    fake = FakeEClib(lab, start_race_polls=0)

    class LostReply(Flaky):
        def __getattr__(self, attr):
            function = getattr(self.fake, attr)
            if attr != "BL_StartChannel":
                return function

            def start(*args):
                code = function(*args)  # the channel starts, its acknowledgement is lost
                if self.left > 0:
                    self.left -= 1
                    return -202
                return code
            return start
    pstat = driver(lab, LostReply(fake, "BL_StartChannel", -202, 1))
    rows = pstat.collect(tq.ocv(3.0, record_every_dt_s=1.0))[(0, 0)]
    assert len(rows["time_s"]) == 3


def test_a_non_transient_error_is_not_retried(lab):
    fake = FakeEClib(lab, fail_on={"BL_LoadTechnique": -401})
    pstat = driver(lab, fake)
    with pytest.raises(BiologicError) as info:
        pstat.run(tq.ocv(3.0, record_every_dt_s=1.0))
    assert info.value.code == -401 and fake.calls.count("BL_LoadTechnique") == 1


def test_a_start_race_outlasting_its_timeout_is_an_error_and_stops_the_channel(lab):
    fake = FakeEClib(lab, start_race_polls=1000)
    pstat = driver(lab, fake, start_timeout_s=20.0)
    with pytest.raises(StartTimeout, match="did not start within 20 s"):
        list(pstat.run(tq.ocv(3600.0, record_every_dt_s=1.0)))
    assert fake.calls[-1] == "BL_StopChannel"
    assert not fake.channels[0].running
    # the next run is not refused with -13 (channel already running)
    fake.start_race_polls = 0
    assert len(pstat.collect(tq.ocv(3.0, record_every_dt_s=1.0))[(0, 0)]["time_s"]) == 3


def test_a_refused_stop_after_an_error_is_logged_and_the_error_kept(lab, caplog):
    fake = FakeEClib(lab, start_race_polls=1000, fail_on={"BL_StopChannel": -1})
    pstat = driver(lab, fake, start_timeout_s=5.0)
    with caplog.at_level(logging.ERROR), pytest.raises(StartTimeout):
        list(pstat.run(tq.ocv(60.0, record_every_dt_s=1.0)))
    assert any("BL_StopChannel returned -1" in r.getMessage() for r in caplog.records)
    with pytest.raises(BiologicError, match="BL_StopChannel"):
        pstat.stop()


def test_potentials_beyond_the_station_limit_are_refused_before_sending(lab):
    fake = FakeEClib(lab, start_race_polls=0)
    pstat = driver(lab, fake, max_voltage_v=5.0)
    with pytest.raises(tq.TechniqueError, match=r"Voltage_step: 6.0 V .* beyond the station's limit ±5.0 V"):
        pstat.run(tq.ca([0.1, 6.0], [1.0, 1.0], record_every_dt_s=1.0))
    with pytest.raises(tq.TechniqueError, match="Initial_Voltage_step"):
        pstat.run(tq.peis(1e5, 1.0, 0.01, points_per_decade=5, dc_voltage_v=4.995, vs_initial=False))
    assert "BL_LoadTechnique" not in fake.calls


# --- garbled data buffers ---------------------------------------------------------------------
EXAMPLES = int(os.environ.get("CELLBENCH_EXAMPLES", "300"))
CHAIN = [tq.ocv(10.0, record_every_dt_s=1.0),
         tq.peis(1e5, 1.0, 0.01, points_per_decade=5),
         tq.ca([0.1], [10.0], record_every_dt_s=1.0)]
IDS = sorted({t.spec.technique_id for t in CHAIN}) + [0, 999]


@st.composite
def garbled_buffers(draw):
    infos = api.TDataInfos()
    infos.NbRows = draw(st.integers(-5, 1200))
    infos.NbCols = draw(st.integers(0, 20))
    infos.TechniqueIndex = draw(st.integers(-1, 3))
    infos.TechniqueID = draw(st.sampled_from(IDS))
    infos.ProcessIndex = draw(st.integers(0, 2))
    if draw(st.booleans()):  # a buffer that matches the chain, holding garbled words
        k = draw(st.integers(0, len(CHAIN) - 1))
        infos.TechniqueIndex, infos.TechniqueID = k, CHAIN[k].spec.technique_id
        infos.ProcessIndex = draw(st.integers(0, 1))
        try:
            infos.NbCols = layout_for(infos.TechniqueID, "premium", infos.ProcessIndex).n_cols
        except LayoutError:
            pass
        infos.NbRows = draw(st.integers(0, 40))
    infos.StartTime = draw(st.floats(allow_nan=True, allow_infinity=True))
    cv = api.TCurrentValues()
    cv.TimeBase = draw(st.floats(allow_nan=True, allow_infinity=True, width=32))
    seed = draw(st.integers(0, 2**32 - 1))
    special = draw(st.sampled_from([None, 0x7FC00000, 0x7F800000, 0xFF800000]))  # nan, ±inf
    words = np.random.default_rng(seed).integers(0, 2**32, size=api.DATA_BUFFER_WORDS, dtype=np.uint64)
    words = words.astype(np.uint32)
    if special is not None:
        words[draw(st.integers(0, 60))] = special
    return words, infos, cv


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(garbled_buffers())
def test_a_garbled_data_buffer_is_finite_data_or_a_layout_error(buffer):
    words, infos, cv = buffer
    pstat = BiologicPotentiostat(FakeEClib(SimLab(VirtualClock(start=0.0), {"seed": 1})),
                                 VirtualClock(start=0.0))
    try:
        chunk = pstat._decode(CHAIN, words, infos, cv)
    except LayoutError:
        return
    event("decoded")
    assert len(chunk) == infos.NbRows
    assert np.isfinite(chunk.columns["time_s"]).all()
