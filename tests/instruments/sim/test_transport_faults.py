"""Transport faults injected by the simulators at a rate (issue 9, scope 5), met by the real
drivers on their real path and retried under the one retry policy (scope 4)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from config.errors import ConfigError
from config.station import load_station
from instruments.biologic import techniques as tq
from instruments.biologic.api import BiologicError
from instruments.biologic.driver import BiologicPotentiostat
from instruments.biologic.fake_dll import FakeEClib
from instruments.espec.adapters import SimulatorAdapter
from instruments.espec.driver import EspecChamber
from instruments.espec.errors import EspecCommunicationError, EspecError
from instruments.espec.simulator import EspecSimulator
from instruments.retry import RetryPolicy
from instruments.sim.clock import VirtualClock
from instruments.sim.faults import KINDS, FaultInjector
from instruments.sim.lab import SimLab

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "landt"))
from test_landt_simulator import CELL, T0, StandInCell, cccv_program, run_to_end  # noqa: E402

from instruments.landt.simulator import SimulatedLandt  # noqa: E402


# --- the policy ---------------------------------------------------------------------------------
def test_retries_pause_on_the_clock_doubling_and_give_up_with_the_last_error():
    clock = VirtualClock(start=0.0)
    attempts = []

    def attempt(n):
        attempts.append(clock.now())
        raise TimeoutError(f"attempt {n}")
    with pytest.raises(TimeoutError, match="attempt 3"):
        RetryPolicy(3, 1.0).call(attempt, clock=clock, transient=lambda exc: True)
    assert attempts == [0.0, 1.0, 3.0, 7.0]


def test_an_error_that_is_not_transient_is_raised_at_once():
    clock = VirtualClock(start=0.0)
    calls = []
    with pytest.raises(ValueError):
        RetryPolicy(3, 1.0).call(lambda n: calls.append(n) or int("x"), clock=clock,
                                 transient=lambda exc: isinstance(exc, TimeoutError))
    assert calls == [0] and clock.now() == 0.0


@pytest.mark.parametrize("retries, backoff", [(-1, 1.0), (11, 1.0), (3, -0.5), (3, 61.0), (2.5, 1.0)])
def test_a_policy_out_of_its_bounds_is_refused(retries, backoff):
    with pytest.raises(ValueError):
        RetryPolicy(retries, backoff)


# --- the station file ---------------------------------------------------------------------------
def test_fault_tables_are_validated_when_the_station_file_is_read(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[station]\nsimulate = true\n"
                    "[sim.faults.chamber]\nrate = 1.5\nkinds = ['timeout', 'smoke']\n"
                    "[sim.faults.cycler]\ntimeout_s = 3\n[sim.faults.oven]\nrate = 0.1\n")
    with pytest.raises(ConfigError) as caught:
        load_station(path)
    text = str(caught.value)
    for expected in ("sim.faults.chamber.rate", "unknown ['smoke']", "sim.faults.cycler.timeout_s",
                     "sim.faults.oven: no such instrument"):
        assert expected in text
    path.write_text("[station]\nsimulate = true\n[sim.faults.chamber]\nrate = 0.01\n"
                    "drop_reply_every = 50\n[sim.faults.potentiostat]\nrate = 0.01\n"
                    "kinds = ['timeout']\ntimeout_s = 2.0\n")
    assert load_station(path).sim.faults["potentiostat"]["timeout_s"] == 2.0


def test_draws_are_reproducible_and_do_not_touch_the_lab_noise():
    a, b = (FaultInjector("chamber", {"rate": 0.1}, seed=3) for _ in range(2))
    assert [a.draw() for _ in range(500)] == [b.draw() for _ in range(500)]
    assert 20 < sum(a.injected.values()) < 90
    quiet, faulty = SimLab(VirtualClock(0.0), {"seed": 3}), SimLab(VirtualClock(0.0), {
        "seed": 3, "faults": {"chamber": {"rate": 0.5}}})
    for _ in range(100):
        faulty.fault_injector("chamber").draw()
    assert quiet.rng.random() == faulty.rng.random()


# --- the chamber ----------------------------------------------------------------------------------
def chamber_with(kind, rate, retries=8):
    lab = SimLab(VirtualClock(start=T0), {"seed": 11, "faults": {"chamber": {"rate": rate, "kinds": [kind]}}})
    simulator = EspecSimulator(lab)
    return EspecChamber(SimulatorAdapter(simulator), clock=lab.clock, retries=retries), simulator, lab


@pytest.mark.parametrize("kind", KINDS["chamber"])
def test_every_chamber_fault_is_retried_to_the_right_answer(kind):
    chamber, simulator, lab = chamber_with(kind, 0.1)
    for k in range(80):
        chamber.setpoint = 20.0 + k % 5       # a setting: sent again until acknowledged
        status = chamber.temperature_status    # a query: asked again until it parses
        assert status[1] == 20.0 + k % 5
        assert np.isfinite(status[0])
    injected = lab.injectors["chamber"].injected[kind]
    assert injected > 5
    assert chamber.retried_commands == injected  # one retry per fault, no more


@pytest.mark.parametrize("kind", KINDS["chamber"])
def test_a_chamber_fault_on_every_command_is_raised_naming_the_command(kind):
    chamber, _, _ = chamber_with(kind, 1.0, retries=2)
    with pytest.raises(EspecError) as caught:
        chamber.temperature_status
    assert "TEMP?" in str(caught.value)
    if kind in ("timeout", "truncated", "disconnect"):
        assert isinstance(caught.value, EspecCommunicationError)
    assert chamber.retried_commands == 2


def test_a_truncated_reply_leaves_its_fragment_and_no_terminator_on_the_line():
    lab = SimLab(VirtualClock(start=T0), {"faults": {"chamber": {"rate": 1.0, "kinds": ["truncated"]}}})
    session = EspecSimulator(lab).session()
    out = session.feed("TEMP?\r\n")
    assert "\r\n" not in out and "\0" not in out


# --- the potentiostat ---------------------------------------------------------------------------
class Resistor:
    def rest_potential_v(self, temperature_c):
        return 0.0

    def current_response(self, t_s, e_v, temperature_c):
        return np.asarray(e_v) / 1e3


def potentiostat_with(kind, rate, retries=6):
    lab = SimLab(VirtualClock(start=T0), {"seed": 5, "faults": {"potentiostat": {
        "rate": rate, "kinds": [kind], "timeout_s": 5.0}}})
    lab.load = Resistor()
    pstat = BiologicPotentiostat(FakeEClib(lab), lab.clock, poll_interval_s=1.0, retries=retries)
    return pstat, lab


@pytest.mark.parametrize("kind", ["timeout", "not_connected", "connection_failed"])
def test_every_transient_library_fault_is_retried_and_the_data_are_whole(kind):
    times = {}
    for rate in (0.0, 0.1):
        pstat, lab = potentiostat_with(kind, rate)
        pstat.connect()
        times[rate] = pstat.collect(tq.ca([0.1], [120.0], record_every_dt_s=1.0))[(0, 0)]["time_s"]
    np.testing.assert_array_equal(times[0.1], times[0.0])    # every row, once
    assert len(times[0.0]) >= 120
    injected = lab.injectors["potentiostat"].injected[kind]
    assert injected >= 3 and pstat.retried_calls == injected


def test_a_timeout_takes_the_library_s_time_and_nothing_else_runs_meanwhile():
    pstat, lab = potentiostat_with("timeout", 1.0, retries=0)
    ticks = []
    lab.clock.every(1.0, ticks.append)
    t0 = lab.clock.now()
    with pytest.raises(BiologicError, match="-202"):
        pstat.connect()
    assert lab.clock.now() - t0 == pytest.approx(5.0) and ticks == []


def test_an_incompatible_technique_file_is_not_retried():
    pstat, lab = potentiostat_with("incompatible_technique", 1.0)
    pstat.connect()                                           # no technique loaded: no -401
    with pytest.raises(BiologicError, match="-401"):
        pstat.collect(tq.ocv(10.0, record_every_dt_s=1.0))
    assert pstat.retried_calls == 0 and not pstat.dll.channels[0].running


# --- the cycler -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS["cycler"])
def test_cycler_faults_lose_and_repeat_no_record(kind, tmp_path):
    frames = {}
    for label, faults in (("quiet", {}), ("faulty", {"cycler": {"rate": 0.15, "kinds": [kind]}})):
        lab = SimLab(VirtualClock(T0), {"seed": 2, "faults": faults})
        sim = SimulatedLandt(lab, StandInCell(), tmp_path / f"{label}.txt")
        sim.start(cccv_program(cycles=3), CELL, "S1")
        frames[label] = run_to_end(sim, lab.clock, poll_s=120.0)
    assert lab.injectors["cycler"].injected[kind] >= 5
    if kind == "read_error":
        assert sim.retried_reads == lab.injectors["cycler"].injected[kind]
    pd.testing.assert_frame_equal(frames["faulty"], frames["quiet"])


def test_a_dropped_lan_connection_is_opened_again_through_visa():
    from instruments.espec.adapters import open_chamber
    from instruments.espec.simulator import serve_tcp
    lab = SimLab(VirtualClock(start=T0), {"seed": 4, "faults": {"chamber": {"rate": 0.1,
                                                                          "kinds": ["disconnect"]}}})
    with serve_tcp(EspecSimulator(lab)) as server:
        chamber = open_chamber({"transport": "tcp", "timeout_s": 0.5}, lab.clock, visa_library="@py",
                               address=server.resource_name)
        chamber.retries = 8
        try:
            for k in range(30):
                chamber.setpoint = 20.0 + k % 3
                assert chamber.temperature_status[1] == 20.0 + k % 3
        finally:
            chamber.close()
    injected = lab.injectors["chamber"].injected["disconnect"]
    assert injected >= 3 and chamber.retried_commands == injected
