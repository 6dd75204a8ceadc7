"""The simulated Landt: virtual-time runs against a stand-in cell that follows notes/cell_api.md."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from config.cycling import CellSection, CyclingProgram
from instruments.cycler import CANONICAL_COLUMNS, CyclerState
from instruments.landt.exports import read_export
from instruments.landt.simulator import SimulatedLandt
from instruments.sim.clock import VirtualClock
from instruments.sim.lab import SimLab

T0 = 1_700_000_000.0


@dataclass
class StepTrace:
    time_s: np.ndarray
    voltage_v: np.ndarray
    current_a: np.ndarray
    capacity_ah: np.ndarray
    energy_wh: np.ndarray
    end_reason: str


class StandInCell:
    """OCV = 2.5 V + 1 V × state of charge, an ohmic resistance that grows in the cold, and a CV
    current that decays exponentially. Every trace it returns is kept in ``traces``."""

    TAU_S = 1800.0

    def __init__(self, capacity_ah: float = 1e-3, soc: float = 0.05, resistance_ohm: float = 50.0):
        self.capacity_ah = capacity_ah
        self.soc = soc
        self.resistance_ohm = resistance_ohm
        self.voltage_v = self.ocv_v(25.0)
        self.traces: list[StepTrace] = []
        self.temperatures_c: list[float] = []

    def ocv_v(self, temperature_c: float) -> float:
        return 2.5 + self.soc

    def _r(self, temperature_c: float) -> float:
        return self.resistance_ohm * math.exp(0.03 * (25.0 - temperature_c))

    def _trace(self, t, v, i, reason, temperature_c) -> StepTrace:
        dt = np.diff(t)
        capacity = np.concatenate(([0.0], np.cumsum(0.5 * (np.abs(i[1:]) + np.abs(i[:-1])) * dt))) / 3600
        power = np.abs(v * i)
        energy = np.concatenate(([0.0], np.cumsum(0.5 * (power[1:] + power[:-1]) * dt))) / 3600
        trace = StepTrace(t, v, i, capacity, energy, reason)
        self.traces.append(trace)
        self.temperatures_c.append(temperature_c)
        self.voltage_v = float(v[-1])
        return trace

    @staticmethod
    def _times(end_s: float, interval_s: float) -> np.ndarray:
        t = np.arange(0.0, end_s, interval_s)
        return np.append(t, end_s) if end_s > 0 else np.array([0.0, 0.0])

    def run_cc(self, current_a, temperature_c, *, until_voltage_v=None, max_duration_s=math.inf,
               max_capacity_ah=None, record_interval_s=60.0, record_dv=0.005):
        r = self._r(temperature_c)
        slope = current_a / (3600.0 * self.capacity_ah)
        v0 = 2.5 + self.soc + current_a * r
        end, reason = max_duration_s, "time"
        if until_voltage_v is not None:
            t_v = max(0.0, (until_voltage_v - v0) / slope)
            if t_v < end:
                end, reason = t_v, "voltage"
        if max_capacity_ah is not None and max_capacity_ah * 3600 / abs(current_a) < end:
            end, reason = max_capacity_ah * 3600 / abs(current_a), "capacity"
        t = self._times(end, record_interval_s)
        soc = self.soc + slope * t
        self.soc = float(soc[-1])
        return self._trace(t, 2.5 + soc + current_a * r, np.full(t.size, float(current_a)), reason,
                           temperature_c)

    def run_cv(self, voltage_v, temperature_c, *, until_current_a, max_duration_s=math.inf,
               record_interval_s=60.0, record_di_frac=0.05):
        r = self._r(temperature_c)
        i0 = (voltage_v - self.ocv_v(temperature_c)) / r
        end = self.TAU_S * math.log(abs(i0) / until_current_a) if abs(i0) > until_current_a else 0.0
        reason = "current"
        if max_duration_s < end:
            end, reason = max_duration_s, "time"
        t = self._times(end, record_interval_s)
        i = i0 * np.exp(-t / self.TAU_S)
        self.soc += i0 * self.TAU_S * (1 - math.exp(-end / self.TAU_S)) / (3600 * self.capacity_ah)
        return self._trace(t, np.full(t.size, float(voltage_v)), i, reason, temperature_c)

    def run_rest(self, duration_s, temperature_c, *, record_interval_s=60.0):
        t = self._times(duration_s, record_interval_s)
        return self._trace(t, np.full(t.size, self.ocv_v(temperature_c)), np.zeros(t.size), "time",
                           temperature_c)


CELL = CellSection(kind="half", anode="Na9Sn4", active_mass_mg=1e-3 / 120e-6, area_cm2=0.785,
                   lower_cutoff_v=2.6, upper_cutoff_v=3.4)


def cccv_program(cycles: int = 3, rate_c: float = 0.5, **safety) -> CyclingProgram:
    return CyclingProgram.model_validate({
        "steps": [
            {"kind": "rest", "duration_s": 600},
            {"kind": "cccv", "tag": "cycle", "rate_c": rate_c, "voltage_v": 3.4, "until_rate_c": 0.05},
            {"kind": "rest", "duration_s": 300},
            {"kind": "cc", "direction": "discharge", "rate_c": rate_c, "until_voltage_v": 2.6},
            {"kind": "loop", "to_tag": "cycle", "count": cycles},
        ],
        "safety": {"voltage_min_v": 2.0, "voltage_max_v": 4.0, "current_max_a": 0.01, **safety},
    })


@pytest.fixture
def lab():
    return SimLab(VirtualClock(T0))


def run_to_end(sim, clock, poll_s=300.0, limit_s=30 * 86400.0):
    frames = []
    while sim.state() in (CyclerState.RUNNING, CyclerState.PAUSED):
        assert clock.now() - T0 < limit_s, "simulated run did not end"
        clock.sleep(poll_s)
        frames.append(sim.read_new_records())
    frames.append(sim.read_new_records())
    return pd.concat(frames, ignore_index=True)


def test_three_cccv_cycles_give_canonical_records(lab, tmp_path):
    cell = StandInCell()
    sim = SimulatedLandt(lab, cell, tmp_path / "ch1.txt")
    assert sim.capabilities.remote_start and sim.capabilities.pause
    assert sim.state() == CyclerState.IDLE
    sim.start(cccv_program(), CELL, "S1")
    records = run_to_end(sim, lab.clock)
    assert sim.state() == CyclerState.FINISHED
    assert tuple(records.columns) == CANONICAL_COLUMNS
    assert records["record"].tolist() == list(range(1, len(records) + 1))
    assert sorted(records["cycle"].unique()) == [1, 2, 3]
    # Landt step numbers of the step table: Rest 1, CC_Chg 2, CV_Chg 3, Rest 4, CC_DChg 5
    steps = records.groupby(["cycle", "step"], sort=False)["step_type"].first()
    assert steps.loc[1].to_dict() == {1: "rest", 2: "cc_charge", 3: "cv_charge", 4: "rest",
                                      5: "cc_discharge"}
    assert (records.loc[records.step_type.str.endswith("_charge"), "current_a"] > 0).all()
    assert (records.loc[records.step_type == "cc_discharge", "current_a"] < 0).all()
    assert np.all(np.diff(records["test_time_s"]) >= 0)
    # 0.5 C of 1 mAh
    assert records.loc[records.step == 2, "current_a"].iloc[0] == pytest.approx(0.5e-3, rel=1e-6)
    # Ah-counting over each step agrees with the capacity column
    for _, group in records.groupby(["cycle", "step"]):
        t, i = group["step_time_s"].to_numpy(), np.abs(group["current_a"].to_numpy())
        counted_ah = np.sum(0.5 * (i[1:] + i[:-1]) * np.diff(t)) / 3600
        assert group["capacity_ah"].iloc[-1] == pytest.approx(counted_ah, rel=1e-4, abs=1e-9)
    # the records read through the follower are exactly the traces the cell model computed
    assert len(records) == sum(len(tr.time_s) for tr in cell.traces)
    computed_v = np.concatenate([tr.voltage_v for tr in cell.traces])
    computed_i = np.concatenate([tr.current_a for tr in cell.traces])
    computed_q = np.concatenate([tr.capacity_ah for tr in cell.traces])
    computed_t = np.concatenate([tr.time_s for tr in cell.traces])
    np.testing.assert_allclose(records["voltage_v"], computed_v, atol=1e-6)
    np.testing.assert_allclose(records["current_a"], computed_i, atol=1e-9)
    np.testing.assert_allclose(records["capacity_ah"], computed_q, atol=1e-9)
    np.testing.assert_allclose(records["step_time_s"], computed_t, atol=5e-4)
    # and the whole file, read at once, gives the same frame
    whole = read_export(tmp_path / "ch1.txt")
    pd.testing.assert_frame_equal(whole, records)


def test_minimal_lanhe_layout_is_followed_by_deriving_steps_capacity_and_cycles(lab, tmp_path):
    full_lab = SimLab(VirtualClock(T0))
    full = SimulatedLandt(full_lab, StandInCell(), tmp_path / "full.txt")
    full.start(cccv_program(cycles=2), CELL, "S1")
    expected = run_to_end(full, full_lab.clock)
    sim = SimulatedLandt(lab, StandInCell(), tmp_path / "minimal.txt", layout="minimal")
    sim.start(cccv_program(cycles=2), CELL, "S1")
    records = run_to_end(sim, lab.clock)
    assert (tmp_path / "minimal.txt").read_text().splitlines()[0] == "TestTime\tVoltage/V\tCurrent/mA"
    assert len(records) == len(expected)
    np.testing.assert_allclose(records["voltage_v"], expected["voltage_v"], atol=1e-6)
    np.testing.assert_allclose(records["current_a"], expected["current_a"], atol=1e-9)
    assert records["cycle"].tolist() == expected["cycle"].tolist()
    # without step numbers a step is a change of direction (CC and CV of a CCCV both charge):
    # rest, charge, rest, discharge in cycle 1; the loop returns to the charge for cycle 2
    assert records.groupby("cycle")["step"].nunique().tolist() == [4, 3]
    # capacity by integrating the records: the model's own count within a fraction of a percent
    last = records.groupby("step").tail(1)
    truth = expected.groupby(["cycle", "step_type"])["capacity_ah"].max()
    derived = last.groupby(["cycle", "step_type"])["capacity_ah"].max()
    assert derived.loc[(1, "discharge")] == pytest.approx(truth.loc[(1, "cc_discharge")], rel=5e-3)
    pd.testing.assert_frame_equal(read_export(tmp_path / "minimal.txt"), records)


def test_a_minimal_export_of_rests_only_is_read_once_the_program_ends(lab, tmp_path):
    program = CyclingProgram.model_validate({
        "steps": [{"kind": "rest", "duration_s": 600}],
        "safety": {"voltage_min_v": 2.0, "voltage_max_v": 4.0, "current_max_a": 0.01}})
    sim = SimulatedLandt(lab, StandInCell(), tmp_path / "rest.txt", layout="minimal")
    sim.start(program, CELL, "S1")
    records = run_to_end(sim, lab.clock, poll_s=120.0)
    assert len(records) > 0 and set(records["step_type"]) == {"rest"}
    assert set(records["cycle"]) == {1}


@pytest.mark.parametrize("layout", ["multisheet", "cycle_split"])
def test_saved_workbook_layouts_read_back_to_the_same_records(lab, tmp_path, layout):
    sim = SimulatedLandt(lab, StandInCell(), tmp_path / "ch1.txt")
    sim.start(cccv_program(cycles=2), CELL, "S1")
    records = run_to_end(sim, lab.clock)
    path = tmp_path / f"{layout}.xlsx"
    sim.save_workbook(path, layout, rows_per_sheet=len(records) // 3)
    if layout == "multisheet":
        import openpyxl
        book = openpyxl.load_workbook(path, read_only=True)
        assert book.sheetnames[:4] == ["Record", "Record1", "Record2", "Record3"]
        assert next(book["Record1"].iter_rows(values_only=True))[0] != "Test Time/s"  # no header
    back = read_export(path)
    for column in ("record", "cycle", "step", "step_type"):
        assert back[column].tolist() == records[column].tolist(), column
    for column in ("test_time_s", "step_time_s", "voltage_v", "current_a", "capacity_ah", "energy_wh"):
        np.testing.assert_allclose(back[column], records[column], rtol=1e-12, atol=1e-12)


def test_unknown_layout_is_refused(lab, tmp_path):
    with pytest.raises(ValueError, match="layout"):
        SimulatedLandt(lab, StandInCell(), tmp_path / "ch1.txt", layout="binary")


def test_each_step_uses_the_sample_temperature_when_it_starts(lab, tmp_path):
    cell = StandInCell()
    sim = SimulatedLandt(lab, cell, tmp_path / "ch1.txt")
    sim.start(cccv_program(cycles=2), CELL, "S1")
    lab.clock.sleep(2 * 3600.0)             # inside the first CC charge (about 1.7 h)
    sim.read_new_records()
    lab.thermal.set_setpoint(-10.0)
    lab.thermal.set_controlled(True)
    records = run_to_end(sim, lab.clock, poll_s=60.0)
    assert cell.temperatures_c[0] == pytest.approx(23.0, abs=0.5)
    assert cell.temperatures_c[-1] == pytest.approx(-10.0, abs=0.5)
    # colder means more resistance: the second discharge starts lower below its OCV
    first = records[(records.step == 5) & (records.cycle == 1)]["voltage_v"].iloc[0]
    second = records[(records.step == 5) & (records.cycle == 2)]["voltage_v"].iloc[0]
    assert second < first - 0.01


def test_stop_ends_the_program_at_the_current_time(lab, tmp_path):
    cell = StandInCell(soc=0.05)
    sim = SimulatedLandt(lab, cell, tmp_path / "ch1.txt")
    sim.start(cccv_program(), CELL, "S1")
    lab.clock.sleep(3600.0 + 17.0)
    sim.stop()
    assert sim.state() == CyclerState.FINISHED
    records = sim.read_new_records()
    assert records["test_time_s"].iloc[-1] == pytest.approx(3617.0, abs=1e-3)
    assert records["step"].iloc[-1] == 2          # still charging at constant current
    # the cell was rewound and recomputed: its charge is what the records say passed
    charged_ah = records.loc[records.step == 2, "capacity_ah"].iloc[-1]
    assert cell.soc == pytest.approx(0.05 + charged_ah / 1e-3, abs=2e-6)  # export: 1 nAh digits
    lab.clock.sleep(3600.0)
    assert len(sim.read_new_records()) == 0


def test_pause_holds_the_step_and_resume_continues_it(lab, tmp_path):
    reference = StandInCell()
    ref_lab = SimLab(VirtualClock(T0))
    ref = SimulatedLandt(ref_lab, reference, tmp_path / "ref.txt")
    ref.start(cccv_program(cycles=1), CELL, "S1")
    ref_records = run_to_end(ref, ref_lab.clock)

    cell = StandInCell()
    sim = SimulatedLandt(lab, cell, tmp_path / "ch1.txt")
    sim.start(cccv_program(cycles=1), CELL, "S1")
    lab.clock.sleep(1800.0)
    sim.pause()
    assert sim.state() == CyclerState.PAUSED
    lab.clock.sleep(7200.0)
    sim.resume()
    records = run_to_end(sim, lab.clock)
    times = records["test_time_s"].to_numpy()
    assert not np.any((times > 1800.0 + 1e-3) & (times < 9000.0 - 1e-3))
    cc = records[records.step == 2]
    assert cc["step_time_s"].is_monotonic_increasing
    ref_cc = ref_records[ref_records.step == 2]
    assert cc["capacity_ah"].iloc[-1] == pytest.approx(ref_cc["capacity_ah"].iloc[-1], rel=1e-6)


def test_safety_limit_faults_the_channel(lab, tmp_path):
    program = CyclingProgram.model_validate({
        "steps": [{"kind": "cc", "direction": "charge", "rate_c": 1.0, "until_time_s": 36000}],
        "safety": {"voltage_min_v": 2.0, "voltage_max_v": 3.8, "current_max_a": 0.01},
    })
    sim = SimulatedLandt(lab, StandInCell(), tmp_path / "ch1.txt")
    sim.start(program, CELL, "S1")
    records = run_to_end(sim, lab.clock)
    assert sim.state() == CyclerState.FAULT
    assert "safety" in sim.fault_reason
    assert records["voltage_v"].iloc[-1] > 3.8
    assert (records["voltage_v"].iloc[:-1] <= 3.8).all()
    assert records["test_time_s"].iloc[-1] < 36000


def test_start_refuses_while_running(lab, tmp_path):
    sim = SimulatedLandt(lab, StandInCell(), tmp_path / "ch1.txt")
    sim.start(cccv_program(), CELL, "S1")
    with pytest.raises(Exception, match="refused"):
        sim.start(cccv_program(), CELL, "S1")
