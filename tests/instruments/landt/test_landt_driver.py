"""The Landt driver: start with the operator's help, state from the export, in virtual time."""
from __future__ import annotations

import pandas as pd
import pytest

from config.cycling import CellSection, load_program
from config.errors import ConfigError
from instruments.cycler import CyclerError, CyclerState
from instruments.landt.driver import LandtCycler, LandtStartTimeout
from instruments.landt.simulator import EXPORT_HEADER, SimulatedLandt
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab
from tests.instruments.landt.test_landt_simulator import StandInCell

T0 = 1_700_000_000.0
CELL = CellSection(kind="half", anode="Na9Sn4", active_mass_mg=1e-3 / 120e-6, area_cm2=0.785,
                   lower_cutoff_v=2.6, upper_cutoff_v=3.4)
PROGRAM = load_program({"steps": [
    {"kind": "rest", "duration_s": 600},
    {"kind": "cccv", "tag": "c", "rate_c": 0.5, "voltage_v": 3.4, "until_rate_c": 0.05},
    {"kind": "cc", "direction": "discharge", "rate_c": 0.5, "until_voltage_v": 2.6},
    {"kind": "loop", "to_tag": "c", "count": 2},
], "safety": {"voltage_min_v": 2.0, "voltage_max_v": 4.0, "current_max_a": 0.01}})


def rows(first: int, n: int, step: int) -> str:
    """Rest records in the simulator's layout, times in seconds (header HEADER_S)."""
    return "".join(f"{k}\t1\t{step}\tRest\t{60.0 * k}\t{60.0 * k}\t3.0\t0.0\t0.0\t0.0\n"
                   for k in range(first, first + n))


def write(path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


HEADER_S = EXPORT_HEADER.replace("TestTime", "TestTime/s").replace("StepTime", "StepTime/s")


def test_start_through_the_prompt(tmp_path):
    clock = VirtualClock(T0)
    path = tmp_path / "ch1.txt"
    prompts = []

    def operator(text):
        prompts.append(text)
        write(path, HEADER_S + rows(1, 3, step=1))

    landt = LandtCycler(path, clock, channel=2, poll_interval_s=10)
    assert not landt.capabilities.remote_start and landt.capabilities.live_data
    assert landt.state() == CyclerState.IDLE
    landt.start(PROGRAM, CELL, "S1", on_prompt=operator)
    assert clock.now() == T0                                  # data were there at once
    assert "CC_Chg" in prompts[0] and "CV_Chg" in prompts[0] and "channel 2" in prompts[0]
    assert str(path) in prompts[0]
    assert landt.state() == CyclerState.RUNNING
    records = landt.read_new_records()
    assert records["record"].tolist() == [1, 2, 3]
    assert len(landt.read_new_records()) == 0
    with pytest.raises(CyclerError, match="refused"):
        landt.start(PROGRAM, CELL, "S1")


def test_start_waits_until_data_appear(tmp_path):
    clock = VirtualClock(T0)
    path = tmp_path / "ch1.txt"
    clock.every(3600.0, lambda now: write(path, HEADER_S + rows(1, 2, step=1)) if not path.exists() else None,
                first_at=T0 + 1800.0)
    landt = LandtCycler(path, clock, poll_interval_s=60, start_timeout_s=7200)
    landt.start(PROGRAM, CELL, "S1")
    assert T0 + 1800.0 <= clock.now() <= T0 + 1800.0 + 60.0
    assert len(landt.read_new_records()) == 2


def test_start_times_out_with_a_clear_error(tmp_path):
    clock = VirtualClock(T0)
    landt = LandtCycler(tmp_path / "ch1.txt", clock, poll_interval_s=30, start_timeout_s=900)
    with pytest.raises(LandtStartTimeout, match=r"no records appeared in .*ch1.txt within 900 s"):
        landt.start(PROGRAM, CELL, "S1", on_prompt=lambda text: None)
    assert clock.now() == pytest.approx(T0 + 900.0)


def test_start_refuses_an_export_with_old_records_and_a_bad_program(tmp_path):
    clock = VirtualClock(T0)
    path = tmp_path / "ch1.txt"
    write(path, HEADER_S + rows(1, 2, step=1))
    with pytest.raises(CyclerError, match="already holds records"):
        LandtCycler(path, clock).start(PROGRAM, CELL, "S1")
    fast = PROGRAM.model_copy(update={"safety": PROGRAM.safety.model_copy(update={"current_max_a": 1e-4})})
    with pytest.raises(ConfigError, match="current_max_a"):
        LandtCycler(tmp_path / "new.txt", clock).start(fast, CELL, "S1")


def test_state_from_the_growth_of_the_export(tmp_path):
    clock = VirtualClock(T0)
    path = tmp_path / "ch1.txt"
    landt = LandtCycler(path, clock, finished_after_s=600, stalled_after_s=3600)
    landt.start(PROGRAM, CELL, "S1", on_prompt=lambda text: write(path, HEADER_S + rows(1, 2, step=1)))
    clock.sleep(1200)                      # quiet at step 1 of 4: not finished
    assert landt.state() == CyclerState.RUNNING
    write(path, rows(3, 2, step=4))        # the last work step (CC_DChg) is 4
    assert landt.state() == CyclerState.RUNNING
    clock.sleep(601)
    assert landt.state() == CyclerState.FINISHED
    assert landt.read_new_records()["record"].tolist() == [1, 2, 3, 4]

    stalled = LandtCycler(tmp_path / "ch2.txt", clock, finished_after_s=600, stalled_after_s=3600)
    stalled.start(PROGRAM, CELL, "S2",
                  on_prompt=lambda text: write(tmp_path / "ch2.txt", HEADER_S + rows(1, 2, step=2)))
    clock.sleep(3601)
    assert stalled.state() == CyclerState.FAULT
    assert "no new record" in stalled.fault_reason


def test_stop_asks_the_operator(tmp_path):
    clock = VirtualClock(T0)
    path = tmp_path / "ch1.txt"
    prompts = []

    def operator(text):
        prompts.append(text)
        if not path.exists():
            write(path, HEADER_S + rows(1, 2, step=1))

    landt = LandtCycler(path, clock)
    landt.start(PROGRAM, CELL, "S1", on_prompt=operator)
    landt.stop()
    assert "Stop channel 1" in prompts[-1]
    assert landt.state() == CyclerState.FINISHED


def test_driver_follows_the_simulated_landt_export(tmp_path):
    lab = SimLab(VirtualClock(T0))
    path = tmp_path / "ch1.txt"
    sim = SimulatedLandt(lab, StandInCell(), path)
    landt = LandtCycler(path, lab.clock, poll_interval_s=60, finished_after_s=900)
    # the simulator computes lazily when asked; in the station a periodic task asks it
    lab.clock.every(60.0, lambda now: sim.state())
    # the "operator" loads the program into the (simulated) Landt and starts it
    landt.start(PROGRAM, CELL, "S1", on_prompt=lambda text: sim.start(PROGRAM, CELL, "S1"))
    frames, sim_frames = [], []
    while landt.state() == CyclerState.RUNNING:
        lab.clock.sleep(600)
        sim_frames.append(sim.read_new_records())
        frames.append(landt.read_new_records())
    assert landt.state() == CyclerState.FINISHED and sim.state() == CyclerState.FINISHED
    followed = pd.concat(frames + [landt.read_new_records()], ignore_index=True)
    simulated = pd.concat(sim_frames, ignore_index=True)
    pd.testing.assert_frame_equal(followed, simulated)
    assert sorted(followed["cycle"].unique()) == [1, 2]
